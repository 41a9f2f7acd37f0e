"""SMTP submission end to end: STARTTLS, AUTH (PLAIN and LOGIN), and the
message reaches the counting server DKIM-signed with the tenant's key."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests._mail import RecordingHandler, SMTPServer, dkim_verify, parse, txt_record
from tests._submission import SENDER, message, submission, until


def test_starttls_auth_send_arrives_signed(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> list[str]:
        replies = []
        async with submission(tmp_path, mx.url) as s:
            for mechanism in ("auth_plain", "auth_login"):
                client = s.client()
                await client.connect()
                await client.ehlo()
                assert client.get_transport_info("ssl_object").version() == "TLSv1.3"
                assert {"plain", "login"} <= set(client.server_auth_methods)
                await getattr(client, mechanism)(s.username, s.password)
                data = message(f"via {mechanism}", to="Ann <ann@x.test>")
                data = data.replace(b"To:", b"Bcc: hidden@x.test\r\nTo:")
                errors, reply = await client.sendmail(SENDER, ["ann@x.test", "bob@y.test"], data)
                assert errors == {}
                replies.append(reply)
                await client.quit()
            # 250 means stored; delivery follows from the spool.
            assert await until(lambda: len(handler.received) == 4)
        return replies

    with SMTPServer(handler) as mx:
        replies = asyncio.run(go())

    assert all(r.startswith("2.0.0 OK queued as ") for r in replies), replies
    record = txt_record(tmp_path / "dkim" / "acme.txt")
    got = sorted(handler.received, key=lambda r: (parse(r.data)["Subject"], r.rcpt_tos))
    assert [(r.mail_from, r.rcpt_tos) for r in got] == [
        (SENDER, ["ann@x.test"]),
        (SENDER, ["bob@y.test"]),
    ] * 2
    for r in got:
        assert dkim_verify(r.data, record, selector="s1", domain="acme.example")
        msg = parse(r.data)
        assert msg["Bcc"] is None  # blind copies stay blind
        assert msg["Message-ID"] and msg["Date"]  # added by the submission agent
    ids = {parse(r.data)["Message-ID"].strip("<>") for r in got}
    assert ids == {r.removeprefix("2.0.0 OK queued as ") for r in replies}
