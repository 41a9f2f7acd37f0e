"""swaks, a shell SMTP client, uses the listener as its relay: STARTTLS with
AUTH PLAIN, implicit TLS with AUTH LOGIN (the certificate verified both
times), and a refused sender makes it fail."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests._mail import RecordingHandler, SMTPServer, dkim_verify, txt_record
from tests._submission import FOREIGN_SENDER, SENDER, Running, submission, until

pytestmark = pytest.mark.skipif(
    shutil.which("swaks") is None, reason="swaks not installed (scripts/test.sh installs it)"
)


async def swaks(s: Running, sender: str, *how: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "swaks",
        "--server", "127.0.0.1",
        "--from", sender,
        "--to", "ann@x.test",
        "--h-Subject", f"swaks {' '.join(how)}",
        "--auth-user", s.username,
        "--auth-password", s.password,
        "--tls-verify", "--tls-ca-path", s.ca_file,
        "--timeout", "20",
        *how,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode("utf-8", "replace")


def test_swaks_relays_through_the_listener(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> None:
        async with submission(tmp_path, mx.url) as s:
            starttls = ("--port", str(s.port), "-tls", "--auth", "PLAIN")
            implicit = ("--port", str(s.implicit_port), "--tls-on-connect", "--auth", "LOGIN")
            for how in (starttls, implicit):
                code, out = await swaks(s, SENDER, *how)
                assert code == 0, out
                assert "<~  250 2.0.0 OK queued as " in out
            code, out = await swaks(s, FOREIGN_SENDER, *starttls)
            assert code != 0 and "<~* 553 5.7.1 " in out, out
            assert await until(lambda: len(handler.received) == 2)
            await asyncio.sleep(0.3)

    with SMTPServer(handler) as mx:
        asyncio.run(go())
    record = txt_record(tmp_path / "dkim" / "acme.txt")
    assert sorted(r.mail_from for r in handler.received) == [SENDER, SENDER]
    for r in handler.received:
        assert dkim_verify(r.data, record, selector="s1", domain="acme.example")
