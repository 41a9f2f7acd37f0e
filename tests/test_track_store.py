"""The tracking event store: batching writer, encryption at rest, export,
erasure, retention and the suppression list."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from mailsflux.errors import ConfigError
from mailsflux.tracking import EventStore, Retention, TrackEvent
from mailsflux.tracking.machines import classify

SECRET = b"s" * 32
DAY = 86400.0


def ev(rcpt: str, kind: str = "click", at: float | None = None, **kw: object) -> TrackEvent:
    return TrackEvent(
        kind=kind,  # type: ignore[arg-type]
        at=time.time() if at is None else at,
        message_id=kw.pop("message_id", "m1@x"),  # type: ignore[arg-type]
        recipient=rcpt,
        job="welcome",
        url=kw.pop("url", "https://e.com/?u=" + rcpt),  # type: ignore[arg-type]
        user_agent=kw.pop("user_agent", "Mozilla/5.0 Firefox"),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_events_are_batched_off_the_caller_and_read_back(tmp_path: Path) -> None:
    with EventStore(tmp_path / "t.sqlite", SECRET) as store:
        t0 = time.perf_counter()
        for i in range(5000):
            assert store.record(ev(f"user{i % 50}@example.com", ip="192.0.2.1"))
        assert time.perf_counter() - t0 < 2.0  # no disk wait per event
        assert store.flush()
        assert store.count() == 5000
        assert store.count("click") == 5000 and store.count("open") == 0
        mine = store.events(recipient="USER7@example.com ")
        assert len(mine) == 100
        e = mine[0]
        assert (e.recipient, e.url, e.user_agent, e.ip, e.job) == (
            "user7@example.com",
            "https://e.com/?u=user7@example.com",
            "Mozilla/5.0 Firefox",
            "192.0.2.1",
            "welcome",
        )
        assert store.dropped == 0


def test_concurrent_recorders(tmp_path: Path) -> None:
    with EventStore(tmp_path / "t.sqlite", SECRET) as store:

        def work(n: int) -> None:
            for i in range(1000):
                store.record(ev(f"t{n}-{i}@example.com"))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        store.flush()
        assert store.count() == 4000


def test_personal_data_is_encrypted_at_rest(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with EventStore(path, SECRET) as store:
        store.record(
            ev("secret.person@example.com", user_agent="UniqueAgent/9.9", ip="203.0.113.77")
        )
        store.suppress("other.person@example.com")
        store.flush()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for needle in (b"secret.person", b"other.person", b"UniqueAgent", b"203.0.113.77", b"u=secret"):
        assert needle not in raw
    assert path.stat().st_mode & 0o077 == 0
    rows = sqlite3.connect(path).execute("SELECT rcpt, rcpt_h, ua FROM events").fetchall()
    assert rows[0][0][:1] == b"\x01" and len(rows[0][1]) == 32
    with pytest.raises(ValueError, match="another secret"):
        EventStore(path, b"t" * 32)
    with pytest.raises(ConfigError):
        EventStore(tmp_path / "u.sqlite", b"short")


def test_tampered_ciphertext_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with EventStore(path, SECRET) as store:
        store.record(ev("a@example.com"))
        store.flush()
        db = sqlite3.connect(path)
        db.execute("UPDATE events SET ua = url")  # a value moved to another column
        db.commit()
        with pytest.raises(ValueError):
            store.events()


def test_export_and_erase_one_person(tmp_path: Path) -> None:
    with EventStore(tmp_path / "t.sqlite", SECRET) as store:
        for who in ("ada@example.com", "bob@example.com", "ada@example.com"):
            store.record(ev(who))
        store.suppress("Ada@Example.com", job="welcome", message_id="m1@x")
        doc = json.loads(store.export_json("ada@example.com"))
        assert doc["address"] == "ada@example.com"
        assert len(doc["events"]) == 2
        assert {e["recipient"] for e in doc["events"]} == {"ada@example.com"}
        assert doc["suppression"]["address"] == "ada@example.com"
        assert doc["suppression"]["reason"] == "unsubscribe"

        store.record(ev("ada@example.com"))  # still queued when erase is called
        assert store.erase("ada@example.com") == 3
        assert store.events(recipient="ada@example.com") == []
        assert store.count() == 1
        # the opt-out holds, without the address
        assert store.is_suppressed("ada@example.com")
        s = store.suppression("ada@example.com")
        assert s is not None and s.address is None
        assert store.export("ada@example.com")["events"] == []

        assert store.erase("bob@example.com", keep_suppression=False) == 1
        assert store.count() == 0


def test_retention(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    r = Retention(events_days=365, personal_days=90)
    with EventStore(tmp_path / "t.sqlite", SECRET, retention=r) as store:
        store.record(ev("old@example.com", at=now - 400 * DAY))
        store.record(ev("mid@example.com", at=now - 100 * DAY, ip="192.0.2.9"))
        store.record(ev("new@example.com", at=now - 10 * DAY))
        store.flush()
        result = store.purge(now)
        assert (result.deleted, result.scrubbed) == (1, 1)
        got = store.events()
        assert [e.recipient for e in got] == [None, "new@example.com"]
        scrubbed = got[0]
        assert (scrubbed.url, scrubbed.user_agent, scrubbed.ip) == (None, None, None)
        assert (scrubbed.kind, scrubbed.job, scrubbed.message_id) == ("click", "welcome", "m1@x")
        assert store.purge(now) == type(result)(deleted=0, scrubbed=0)
        assert store.events(recipient="mid@example.com") == []


def test_suppression_list(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with EventStore(path, SECRET) as store:
        assert not store.is_suppressed("x@example.com")
        assert store.suppress("x@example.com", reason="unsubscribe")
        assert not store.suppress(" X@EXAMPLE.COM ")
        assert store.is_suppressed("X@example.com")
    # another process (the sender) sees it
    with EventStore(path, SECRET) as sender:
        assert sender.is_suppressed("x@example.com")
        assert not sender.is_suppressed("y@example.com")
        assert sender.unsuppress("x@example.com")
        assert not sender.is_suppressed("x@example.com")


def test_queue_bound_counts_drops(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "t.sqlite", SECRET, queue_max=10)
    store._thread = threading.Thread()  # pretend the writer runs, but it does not drain
    for _ in range(15):
        store.record(ev("a@example.com"))
    assert store.dropped == 5
    store._thread = None
    store.close()


def test_machine_classification() -> None:
    now = 1_000_000.0
    human = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126 Safari/537.36"
    assert classify("GET", human, now - 3600, now, 10) == ""
    assert classify("HEAD", human, now - 3600, now, 10) == "head"
    assert classify("GET", "", now - 3600, now, 10) == "no-user-agent"
    assert classify("GET", human, now - 2, now, 10) == "fast"
    google = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    assert classify("GET", google, now - 3600, now, 10) == "proxy:google"
    apple = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    )
    assert classify("GET", apple, now - 3600, now, 10) == "proxy:apple"
    safari = apple + " Version/17.0 Safari/605.1.15"
    assert classify("GET", safari, now - 3600, now, 10) == ""
    assert classify("GET", "python-requests/2.31", now - 3600, now, 10).startswith("scanner:")
    assert classify("GET", "Barracuda Sentinel (EE)", now - 3600, now, 10).startswith("scanner:")


def test_suppression_view_sees_new_entries_from_another_writer(tmp_path: Path) -> None:
    from mailsflux.tracking.events import SuppressionView

    path = tmp_path / "t.sqlite"
    now = [0.0]
    with EventStore(path, SECRET) as sender, EventStore(path, SECRET) as server:
        sender.suppress("early@example.com")
        view = SuppressionView(sender, refresh=5.0, clock=lambda: now[0])
        assert "Early@Example.com" in view  # addresses compare normalised
        assert "late@example.com" not in view
        server.suppress("late@example.com")  # e.g. a one-click unsubscribe meanwhile
        now[0] = 4.0
        assert "late@example.com" not in view  # not re-read before `refresh`
        now[0] = 5.0
        assert "late@example.com" in view
        view.add("bounced@example.com")
        assert "bounced@example.com" in view
        assert not sender.is_suppressed("bounced@example.com")  # add() is the view only
