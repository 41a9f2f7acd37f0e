"""Nothing personal in the clear from a CLI job: ``send`` with tracking and an
events file, a deferral retried by ``queue run``, a bounce at SMTP time, a
bounce report ingested later, and an unsubscribe. No file the job, its spool,
its events files and its tracking store wrote holds a recipient's address,
name or a line of a body, and no line any command printed holds an address
whole (they are masked); ``report`` still reads it all."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

from mailsflux.tracking import load_config
from tests._bounces import write_tracking_config
from tests._cli import run_cli
from tests._events import read_events
from tests._http import Server
from tests._jobs import make_job
from tests._mail import RecordingHandler, SMTPServer, parse

BOUNCE = "bounce.sender.example"
ROWS = [
    ["annabelle.quixote@example.net", "Annabelle Quixote", "Annabelle", "Gold"],
    ["slow.zebediah@example.org", "Zebediah Slowcombe", "Zebediah", "Gold"],
    ["gone.philomena@example.com", "Philomena Gonzaga", "Philomena", "Gold"],
    ["broken..row@example.com", "Barnaby Brokenshire", "Barnaby", "Gold"],
]
TEXT = "Hello {{first_name}},\n\nSecret line 7731: your parcel code is Q-55-ZZ.\n"
HTML = '<p>Secret line 7731 for {{first_name}}</p><a href="https://example.com/s">s</a>'


def _dsn(rcpt: str, mail_from: str, message_id: str) -> bytes:
    return (
        f"From: MAILER-DAEMON@mx.example.org\nTo: {mail_from}\nSubject: Undelivered\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;"
        ' boundary="B"\n\n--B\nContent-Type: text/plain\n\nGone.\n\n'
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
        f"Final-Recipient: rfc822; {rcpt}\nAction: failed\nStatus: 5.1.1\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: mailbox closed\n\n"
        "--B\nContent-Type: text/rfc822-headers\n\n"
        f"Return-Path: <{mail_from}>\nMessage-ID: <{message_id}>\n\n--B--\n"
    ).encode()


def test_cli_job_leaves_no_address_name_or_body_line(tmp_path: Path, private_spool: Path) -> None:
    out = tmp_path / "out"  # everything the job and its servers write, but the spool
    out.mkdir()
    cfg = write_tracking_config(out / "tracking.toml")
    outputs: list[str] = []

    def cli(*args: str) -> tuple[int, str]:
        r = run_cli(*args)
        outputs.append(r.stdout + r.stderr)
        return r.returncode, r.stdout + r.stderr

    def reply(address: str, n: int) -> str | None:
        if address.startswith("gone."):
            return "550 5.1.1 <gone.philomena@example.com>: no such user"
        if address.startswith("slow.") and n == 1:
            return "451 4.2.1 <slow.zebediah@example.org> try again later"
        return None

    handler = RecordingHandler(reply)
    with SMTPServer(handler) as smtp:
        job = make_job(tmp_path, ROWS, relay=smtp.url, text=TEXT, html=HTML, attempts=1)
        job.write_text(
            job.read_text()
            + f'queue_initial = 0.2\n\n[tracking]\nconfig = "{cfg}"\nbounce_domain = "{BOUNCE}"\n'
        )
        code, said = cli("send", str(job), "-q", "--events", str(out / "events.jsonl"))
        assert code == 1, said  # a bad row, a bounce, a deferral
        assert "b***@example.com" in said  # the bad row is named, masked
        time.sleep(0.5)
        code, said = cli("queue", "run")
        assert code == 0 and "1 delivered" in said, said

    by_rcpt = {m.rcpt_tos[0]: m for m in handler.received}
    assert sorted(by_rcpt) == ["annabelle.quixote@example.net", "slow.zebediah@example.org"]
    # Annabelle unsubscribes (one click); Zebediah's mailbox closes later (a DSN).
    header = parse(by_rcpt["annabelle.quixote@example.net"].data)["List-Unsubscribe"]
    one_click = re.search(r"<(https://[^>]+)>", header).group(1)  # type: ignore[union-attr]
    with Server(load_config(cfg).app()) as web:
        status, _, _ = web.request(
            "POST", urlsplit(one_click).path, body=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        assert status == 200
    zeb = by_rcpt["slow.zebediah@example.org"]
    dsn = tmp_path / "dsn.eml"  # an input, like the recipient file: not searched
    dsn.write_bytes(_dsn(zeb.rcpt_tos[0], zeb.mail_from, parse(zeb.data)["Message-ID"].strip("<>")))
    code, said = cli(
        "bounces", "ingest", str(dsn), "--tracking", str(cfg), "--bounce-domain", BOUNCE,
        "--events", str(out / "bounce-events.jsonl"), "--quarantine", str(out / "q"),
    )  # fmt: skip
    assert code == 0 and "1 suppressed, 0 quarantined" in said, said
    code, said = cli("report", "job", "--tracking", str(cfg), "--json")
    assert code == 0, said
    report = json.loads(said[: said.rindex("}") + 1])
    assert report["totals"]["delivered"] == 2 and report["totals"]["bounced"] >= 1, report
    code, said = cli("status", "job")
    assert code == 0, said

    # The project's readers open what it sealed.
    events = read_events(out / "events.jsonl")
    assert {e["recipient"]: e["type"] for e in events} == {
        "annabelle.quixote@example.net": "delivered",
        "gone.philomena@example.com": "bounced",
        "slow.zebediah@example.org": "deferred",
    }
    (bounce,) = read_events(out / "bounce-events.jsonl")
    assert bounce["recipient"] == "slow.zebediah@example.org" and bounce["type"] == "bounced"

    needles = [r[0] for r in ROWS] + [r[0].split("@")[0] for r in ROWS]
    needles += [r[1] for r in ROWS] + [r[1].split()[1] for r in ROWS]
    needles += ["Secret line 7731", "Q-55-ZZ"]
    hits = [
        f"{f}: {n}"
        for where in (out, private_spool)
        for f in sorted(where.rglob("*"))
        if f.is_file()
        for n in needles
        if n.encode() in f.read_bytes()
    ]
    assert hits == []
    printed = "\n".join(outputs)
    assert [r[0] for r in ROWS if r[0] in printed] == []  # every address masked
