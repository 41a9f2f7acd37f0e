"""SuppressionList from code: one address form everywhere, reasons and dates,
both scopes, streamed import with bad lines reported, export that imports
back, and stores made before list entries kept their address."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from mailsflux.feedback import SuppressionError, SuppressionList
from mailsflux.feedback.suppression import BATCH, parse_date
from mailsflux.tracking.events import EventStore

SECRET = b"s" * 32


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    s = EventStore(tmp_path / "t.sqlite", SECRET)
    yield s  # type: ignore[misc]
    s.close()


def test_every_spelling_of_an_address_is_one_entry(store: EventStore) -> None:
    entries = SuppressionList(store)
    assert entries.add("Name <Jörg@Straße.DE.>", "hard-bounce")
    for same in ("jörg@xn--strae-oqa.de", "JÖRG@straße.de", "jörg@STRASSE.de".replace("SS", "ß")):
        assert not entries.add(same, "manual"), same  # the first entry is kept
        (hit,) = entries.check(same)
        assert (hit.address, hit.reason) == ("jörg@xn--strae-oqa.de", "hard-bounce")
    # The store the sends check sees it in every spelling too.
    assert store.is_suppressed("JÖRG@XN--STRAE-OQA.DE.")
    # straße is not strasse (IDNA 2008): another person's domain.
    assert entries.check("jörg@strasse.de") == []


def test_bad_address_and_reason_say_why(store: EventStore) -> None:
    entries = SuppressionList(store)
    with pytest.raises(SuppressionError, match="has no @"):
        entries.add("nobody", "manual")
    with pytest.raises(SuppressionError, match="not a fully qualified"):
        entries.check("a@localhost")
    with pytest.raises(SuppressionError, match="unknown reason 'spam'"):
        entries.add("a@example.com", "spam")
    assert list(entries.entries()) == []


def test_scopes_remove_and_old_reason_spellings(store: EventStore) -> None:
    entries = SuppressionList(store)
    assert entries.add("all@example.com", "unsubscribe", at=1_700_000_000.0)
    assert entries.add("one@example.com", "unsubscribe", list_name="welcome")
    # What the send path and older ingests wrote before there was one spelling.
    store.suppress("old@example.com", reason="bounce")
    store.suppress("older@example.com", reason="hard bounce")
    assert entries.check("one@example.com") == []  # other lists still reach it
    (hit,) = entries.check("one@example.com", "welcome")
    assert (hit.list, hit.reason) == ("welcome", "unsubscribe")
    assert entries.lists_left("ONE@example.com") == ["welcome"]
    assert [e.address for e in entries.entries(reason="hard-bounce")] == [
        "old@example.com",
        "older@example.com",
    ]
    assert [e.address for e in entries.entries(list_name="welcome")] == ["one@example.com"]
    assert [e.address for e in entries.entries(list_name="")] == [
        "all@example.com",
        "old@example.com",
        "older@example.com",
    ]
    assert not entries.remove("one@example.com")  # no every-list entry
    assert entries.remove("One@Example.com", list_name="welcome")
    assert entries.check("one@example.com", "welcome") == []
    assert entries.remove("ALL@example.com")
    assert not store.is_suppressed("all@example.com")


def test_import_streams_reports_bad_lines_and_goes_on(store: EventStore) -> None:
    entries = SuppressionList(store)
    good = [f"user{i}@example.com" for i in range(BATCH + 5)]  # more than one batch
    lines = [
        b"address,reason,date,list\n",
        b"# exported by hand\n",
        *(g.encode() + b"\n" for g in good[:BATCH]),
        b"not-an-address\n",
        b"\n",
        b"x@example.com,spam\n",
        b"\xff\xfe@example.com\n",
        b"y@example.com,complaint,yesterday\n",
        b"z@example.com,complaint,2025-01-02T03:04:05Z,news,extra\n",
        *(g.encode() + b",hard bounce\n" for g in good[BATCH:]),
        b"USER0@EXAMPLE.COM  # twice\n",
        b"w@example.com,complaint,2025-01-02,news\n",
    ]
    problems: list[str] = []
    stats = entries.import_lines(
        iter(lines), source="list.csv", reason="unsubscribe", on_problem=problems.append
    )
    assert problems == [
        f"list.csv:{BATCH + 3}: address 'not-an-address' has no @",
        f"list.csv:{BATCH + 5}: unknown reason 'spam' (expected one of: unsubscribe,"
        " hard-bounce, complaint, manual)",
        f"list.csv:{BATCH + 6}: not UTF-8 text",
        f"list.csv:{BATCH + 7}: date 'yesterday' is not ISO 8601"
        " (2026-11-29 or 2026-11-29T14:48:47Z)",
        f"list.csv:{BATCH + 8}: 5 fields; expected address[,reason[,date[,list]]]",
    ]
    assert (stats.entries, stats.added, stats.already, stats.bad) == (
        BATCH + 5 + 5 + 2,
        BATCH + 5 + 1,
        1,
        5,
    )
    assert entries.check("user3@example.com")[0].reason == "unsubscribe"
    assert entries.check(good[-1])[0].reason == "hard-bounce"
    (w,) = entries.check("w@example.com", "news")
    assert (w.reason, w.at) == ("complaint", parse_date("2025-01-02T00:00:00Z"))
    assert entries.check("w@example.com") == []


def test_export_imports_back_and_skips_erased_people(tmp_path: Path, store: EventStore) -> None:
    entries = SuppressionList(store)
    entries.add("a@example.com", "complaint", at=1_600_000_000.0)
    entries.add("b@example.com", "manual", list_name="news", at=1_600_000_100.0)
    entries.add("gone@example.com", "unsubscribe")
    entries.add("gone@example.com", "unsubscribe", list_name="news")
    store.erase("gone@example.com")  # keeps only the keyed hash
    out = io.StringIO()
    stats = entries.export_csv(out)
    assert (stats.written, stats.erased) == (2, 2)
    assert out.getvalue() == (
        "address,reason,date,list\n"
        "a@example.com,complaint,2020-09-13T12:26:40Z,\n"
        "b@example.com,manual,2020-09-13T12:28:20Z,news\n"
    )
    assert store.is_suppressed("gone@example.com")  # still honoured
    assert [e.address for e in entries.entries()].count(None) == 2

    other = EventStore(tmp_path / "other.sqlite", SECRET)
    try:
        again = SuppressionList(other)
        stats2 = again.import_lines(
            io.BytesIO(out.getvalue().encode()), source="x", on_problem=pytest.fail
        )
        assert stats2.added == 2
        back = io.StringIO()
        again.export_csv(back)
        assert back.getvalue() == out.getvalue()
    finally:
        other.close()


def test_a_store_from_before_list_addresses_opens_and_lists(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    s = EventStore(path, SECRET)
    s.suppress_list("early@example.com", "news")
    s.close()
    # The table as stores made before this column had it.
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE ls2 (addr_h BLOB NOT NULL, list TEXT NOT NULL, at REAL NOT NULL,"
        " reason TEXT NOT NULL, message_id TEXT NOT NULL, PRIMARY KEY (addr_h, list));"
        "INSERT INTO ls2 SELECT addr_h, list, at, reason, message_id FROM list_suppression;"
        "DROP TABLE list_suppression; ALTER TABLE ls2 RENAME TO list_suppression;"
    )
    conn.close()
    s = EventStore(path, SECRET)
    try:
        entries = SuppressionList(s)
        assert entries.check("early@example.com", "news")  # still honoured
        entries.add("late@example.com", "unsubscribe", list_name="news")
        assert [e.address for e in entries.entries(list_name="news")] == [
            None,
            "late@example.com",
        ]
    finally:
        s.close()
