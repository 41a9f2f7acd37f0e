"""`mailsflux bounces ingest`: a maildir, an mbox and files become events and
suppressions (VERP tokens name the address we mailed); what cannot be parsed
is kept in quarantine and counted."""

from __future__ import annotations

import json
import mailbox
import os
import shutil
from pathlib import Path

from mailsflux.feedback.ingest import read_sources
from mailsflux.spool import SpoolKeys
from mailsflux.tracking.config import load_config
from tests._bounces import DIR, DOMAIN, samples, write_tracking_config
from tests._cli import run_cli
from tests._events import read_events


def _keys() -> SpoolKeys:
    return SpoolKeys.load(Path(os.environ["MAILSFLUX_SPOOL"]) / "keys", create=False)


def test_ingest_maildir_mbox_and_files(tmp_path: Path) -> None:
    files = samples()
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, p in enumerate(files[:10]):
        shutil.copy(p, maildir / "new" / f"{i:03d}.host:2,")
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    for p in files[10:20]:
        box.add(p.read_bytes())
    box.close()
    loose = files[20:]
    cfg = write_tracking_config(tmp_path / "tracking.toml")
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(b"\x00\x01 not mail at all")
    events = tmp_path / "events.jsonl"
    qdir = tmp_path / "q"
    slist = tmp_path / "suppressed.txt"
    slist.write_text("already@example.com\nalice@example.com  # by hand\n")

    r = run_cli(
        "bounces", "ingest", str(maildir), str(tmp_path / "bounces.mbox"),
        *map(str, loose), str(garbage),
        "--events", str(events), "--quarantine", str(qdir), "--tracking", str(cfg),
        "--bounce-domain", DOMAIN, "--suppression-list", str(slist),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    n = len(files) + 1
    # 1 not-a-report sample and the garbage file are quarantined.
    assert r.stdout.strip() == (
        f"{n} reports: 19 bounces, 3 complaints, 2 auto-replies; "
        "25 events, 16 suppressed, 2 quarantined"
    )
    # Sealed (a report quotes people's mail); `bounces ingest` opens them again.
    assert all(p.name.endswith(".eml.sealed") for p in qdir.iterdir())
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in qdir.iterdir())
    assert sorted(data for _, data in read_sources(qdir.iterdir(), _keys())) == sorted(
        [garbage.read_bytes(), (DIR / "not-a-report.eml").read_bytes()]
    )
    again = run_cli("bounces", "parse", "--json", *map(str, sorted(qdir.iterdir())))
    assert again.returncode == 0, again.stderr
    assert {json.loads(x)["kind"] for x in again.stdout.splitlines()} == {"not-a-report"}
    assert events.stat().st_mode & 0o777 == 0o600  # it names recipients
    assert "quinn@example.com" not in events.read_text()  # sealed
    docs = read_events(events)
    by_rcpt = {d["recipient"]: d for d in docs}
    # The forwarder named another address; the token names the one we mailed.
    quinn = by_rcpt["quinn@example.com"]
    d = quinn["details"]
    assert (quinn["type"], d["reported_recipient"], d["hard"]) == (
        "bounced",
        "quinn.old@example.org",
        True,
    )
    assert (quinn["message_id"], quinn["job"], quinn["tenant"]) == (
        "<m20.welcome@sender.example>",
        "welcome",
        "acme",
    )
    assert by_rcpt["uma@mailbox.example"]["type"] == "complained"
    assert by_rcpt["carol@example.org"]["type"] in ("deferred", "bounced")
    assert by_rcpt["walter@example.com"]["type"] == "auto_replied"
    assert by_rcpt["judy@example.org"]["type"] == "deferred"

    store = load_config(cfg).open_store()
    try:
        for gone in (
            "alice@example.com",
            "quinn@example.com",
            "uma@mailbox.example",
            "Trent@Mailbox.example",
        ):
            assert store.is_suppressed(gone), gone
        assert store.suppression("uma@mailbox.example").reason == "complaint"  # type: ignore[union-attr]
        assert store.suppression("quinn@example.com").job == "welcome"  # type: ignore[union-attr]
        for kept in (
            "quinn.old@example.org",
            "bob@example.net",
            "erin@example.com",
            "walter@example.com",
        ):
            assert not store.is_suppressed(kept), kept
    finally:
        store.close()
    listed = [line.split("#")[0].strip() for line in slist.read_text().splitlines()]
    assert listed.count("alice@example.com") == 1 and "quinn@example.com" in listed

    # Again: nothing new to suppress, the same events once more.
    r = run_cli(
        "bounces", "ingest", str(maildir), "--events", str(events), "--quarantine", str(qdir),
        "--tracking", str(cfg), "--bounce-domain", DOMAIN,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(", 0 suppressed, 0 quarantined")


def test_bad_paths_are_one_line(tmp_path: Path) -> None:
    r = run_cli("bounces", "ingest", str(tmp_path), "--quarantine", str(tmp_path / "q"))
    assert (r.returncode, r.stdout) == (2, "")
    assert (
        r.stderr.strip() == f"mailsflux: error: {tmp_path}: not a maildir (no cur/, new/ and tmp/)"
    )
    assert not (tmp_path / "q").exists()  # nothing started
    events = tmp_path / "events.jsonl"
    r = run_cli(
        "bounces", "ingest", str(DIR / "exim-failed.eml"), "--bounce-domain", DOMAIN,
        "--events", str(events),
    )  # fmt: skip
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "needs --tracking" in r.stderr and "Traceback" not in r.stderr
    assert not events.exists()  # nothing started
