"""VERP in MAIL FROM: with ``[tracking] bounce_domain`` each message's envelope
sender is ``bounces+TOKEN@bounce-domain``, the From header stays the sender;
the token opens back to message id, recipient and job, and a DSN sent to it
suppresses the recipient through `bounces ingest`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailsflux import Engine, Message, Tracking
from mailsflux.feedback import Verp
from mailsflux.tracking.config import load_config
from tests._bounces import write_tracking_config
from tests._cli import run_cli
from tests._engine import engine_config
from tests._events import read_events
from tests._jobs import make_job
from tests._mail import Received, RecordingHandler, SMTPServer, parse

BOUNCE = "bounce.sender.example"


def _dsn(received: Received) -> bytes:
    """The DSN a receiving MTA sends back to the message's envelope sender
    (RFC 3464), quoting the headers it had with the Return-Path it added."""
    rcpt = received.rcpt_tos[0]
    head = received.data.split(b"\r\n\r\n", 1)[0].decode()
    text = (
        "From: MAILER-DAEMON@mx.example.com\n"
        f"To: {received.mail_from}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        f"--B\nContent-Type: text/plain\n\n<{rcpt}>: 550 5.1.1 User unknown\n\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.com\n\n"
        f"Final-Recipient: rfc822; {rcpt}\nAction: failed\nStatus: 5.1.1\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: User unknown\n\n"
        "--B\nContent-Type: text/rfc822-headers\n\n"
        f"Return-Path: <{received.mail_from}>\n{head.replace(chr(13), '')}\n\n--B--\n"
    )
    return text.encode()


def test_job_mail_from_opens_back_and_its_dsn_suppresses(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        job = make_job(
            tmp_path,
            [
                ["alice.smith@example.com", "A", "Alice", "Pro"],
                ["bob.jones@example.org", "B", "Bob", "Team"],
            ],
            relay=server.url,
            sender="Sender Co <news@sender.example>",
        )
        cfg = write_tracking_config(job.parent / "tracking.toml")
        # The domain as people type it: one form (A-label, no root dot) goes out.
        job.write_text(
            job.read_text()
            + f'\n[tracking]\nconfig = "tracking.toml"\nbounce_domain = "{BOUNCE.upper()}."\n'
        )
        r = run_cli("send", str(job), "-q", "--json")
        assert r.returncode == 0, r.stderr
    tracking = load_config(cfg)
    verp = Verp(tracking.keys, tracking.current_key, BOUNCE)
    by_rcpt = {m.rcpt_tos[0]: m for m in handler.received}
    assert sorted(by_rcpt) == ["alice.smith@example.com", "bob.jones@example.org"]
    for rcpt, m in by_rcpt.items():
        assert m.mail_from.startswith("bounces+") and m.mail_from.endswith("@" + BOUNCE)
        # No address readable in it. The local parts hold a ".", which the
        # token's base32 never does: a plain "bob" turned up in one by chance.
        assert rcpt.split("@")[0] not in m.mail_from
        msg = parse(m.data)
        assert msg["From"] == "Sender Co <news@sender.example>"  # the header stays
        assert msg["Return-Path"] is None  # the receiver adds it, from MAIL FROM
        payload = verp.open(m.mail_from)
        assert payload is not None
        assert (payload.message_id, payload.recipient, payload.job) == (
            msg["Message-ID"].strip("<>"),
            rcpt,
            "job",
        )
    assert (
        by_rcpt["alice.smith@example.com"].mail_from != by_rcpt["bob.jones@example.org"].mail_from
    )

    # Alice's mailbox is gone: her MTA's DSN goes to the VERP address.
    alice = by_rcpt["alice.smith@example.com"]
    dsn = tmp_path / "dsn.eml"
    dsn.write_bytes(_dsn(alice))
    events = tmp_path / "events.jsonl"
    r = run_cli(
        "bounces", "ingest", str(dsn), "--tracking", str(cfg), "--bounce-domain", BOUNCE,
        "--events", str(events), "--quarantine", str(tmp_path / "q"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("1 suppressed, 0 quarantined")
    (event,) = read_events(events)
    assert (event["recipient"], event["job"], event["message_id"]) == (
        "alice.smith@example.com",
        "job",
        parse(alice.data)["Message-ID"].strip("<>"),
    )
    r = run_cli("suppression", "check", "alice.smith@example.com", "bob.jones@example.org",
                "--tracking", str(cfg))  # fmt: skip
    assert r.returncode == 1
    assert r.stdout.splitlines()[0].startswith("a***@example.com: suppressed (hard-bounce, ")
    assert r.stdout.splitlines()[1] == "b***@example.org: not suppressed"


def test_engine_sends_with_verp_and_without(tmp_path: Path) -> None:
    write_tracking_config(tmp_path / "tracking.toml")
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url)

        async def go(bounce_domain: str | None) -> None:
            config.tracking = Tracking(config="tracking.toml", bounce_domain=bounce_domain)
            async with Engine(config) as engine:
                r = await engine.send(
                    Message(
                        sender="news@sender.example",
                        to="carol@example.com",
                        subject="Hi",
                        text="Hi",
                    )
                )
                assert r.status == "delivered"

        asyncio.run(go(BOUNCE))
        asyncio.run(go(None))
    verp_mail, plain = handler.received
    tracking = load_config(tmp_path / "tracking.toml")
    payload = Verp(tracking.keys, tracking.current_key, BOUNCE).open(verp_mail.mail_from)
    assert payload is not None and payload.recipient == "carol@example.com"
    assert payload.message_id == parse(verp_mail.data)["Message-ID"].strip("<>")
    assert plain.mail_from == "news@sender.example"


def test_a_bad_bounce_domain_is_a_job_error(tmp_path: Path) -> None:
    job = make_job(tmp_path, [["a@example.com", "A", "A", "Pro"]])
    write_tracking_config(job.parent / "tracking.toml")
    job.write_text(
        job.read_text()
        + '\n[tracking]\nconfig = "tracking.toml"\nbounce_domain = "bounce example"\n'
    )
    r = run_cli("send", str(job), "-q")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert (
        f"{job}:" in r.stderr and "bounce domain 'bounce example' is not a domain name" in r.stderr
    )


class _SenderAtRcpt(RecordingHandler):
    """Also notes the MAIL FROM of every attempt, refused ones too."""

    def __init__(self) -> None:
        self.refusing = True
        super().__init__(lambda a, n: "450 4.7.1 greylisted" if self.refusing else None)
        self.senders: list[str] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.senders.append(envelope.mail_from or "")
        return await super().handle_RCPT(server, session, envelope, address, options)


def test_a_deferred_message_keeps_its_return_path_in_the_spool(
    tmp_path: Path, private_spool: Path
) -> None:
    handler = _SenderAtRcpt()
    with SMTPServer(handler) as server:
        job = make_job(
            tmp_path,
            [["dave@example.com", "D", "Dave", "Pro"]],
            relay=server.url,
            algorithm="ed25519-sha256",
            attempts=1,
        )
        cfg = write_tracking_config(job.parent / "tracking.toml")
        job.write_text(
            job.read_text().replace("[delivery]", "[delivery]\nqueue_initial = 0.3")
            + f'\n[tracking]\nconfig = "tracking.toml"\nbounce_domain = "{BOUNCE}"\n'
        )
        sent = run_cli("send", str(job), "-q")
        assert sent.returncode == 1 and "1 deferred in the spool" in sent.stdout, sent.stdout
        handler.refusing = False
        time.sleep(0.7)  # past the first retry (0.3 s +- 10 %)
        ran = run_cli("queue", "run")
        assert ran.returncode == 0 and "1 tried: 1 delivered" in ran.stdout, ran.stdout
    first, retry = handler.senders
    assert first == retry and first.startswith("bounces+")
    (m,) = handler.received
    tracking = load_config(cfg)
    payload = Verp(tracking.keys, tracking.current_key, BOUNCE).open(m.mail_from)
    assert payload is not None
    assert payload.message_id == parse(m.data)["Message-ID"].strip("<>")
