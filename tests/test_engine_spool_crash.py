"""An embedding process is killed (SIGKILL) while its sends are in flight:
every message it handed to ``Engine.send`` was stored first, and the next
engine on the same spool delivers all of them; only those in open SMTP
transactions at the kill may arrive twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailsflux import Engine, Message
from mailsflux.engine import Config
from mailsflux.jobs.jobfile import SpoolSpec
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer

N = 60


class SlowHandler(RecordingHandler):
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def _config(tmp_path: Path, url: str) -> Config:
    config = engine_config(tmp_path, url, connections=2)
    # A message taken to be sent is left alone for 1 s (not 15 min), so the
    # next engine retries what the killed one held.
    config.spool = SpoolSpec(dir=str(tmp_path / "spool"), claim=1.0)
    return config


def test_messages_sent_by_a_killed_engine_are_delivered_by_the_next(tmp_path: Path) -> None:
    handler = SlowHandler()
    with SMTPServer(handler) as server:
        config = _config(tmp_path, server.url)
        (tmp_path / "config.json").write_bytes(__import__("msgspec").json.encode(config))
        script = textwrap.dedent(
            f"""
            import asyncio, msgspec
            from mailsflux import Engine, Message
            from mailsflux.engine import Config

            config = msgspec.json.decode(open({str(tmp_path / "config.json")!r}, "rb").read(),
                                         type=Config)

            async def main():
                async with Engine(config) as engine:
                    await asyncio.gather(*(
                        engine.send(Message(sender="news@sender.example", to=f"r{{i}}@example.com",
                                            subject="hi", text="hello"))
                        for i in range({N})
                    ))
                print("all sent", flush=True)

            asyncio.run(main())
            """
        )
        proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(handler.received) < 10 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
        before = len(handler.received)
        assert before < N

        async def recover() -> None:
            async with Engine(_config(tmp_path, server.url)):
                while len({r for m in handler.received for r in m.rcpt_tos}) < N:
                    if time.monotonic() > deadline + 60:
                        break
                    await asyncio.sleep(0.05)

        asyncio.run(recover())

    got = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert set(got) == {f"r{i}@example.com" for i in range(N)}
    assert sum(got.values()) - N <= 2 * 32, (before, got.most_common(3))


def test_an_engine_without_a_spool_keeps_nothing(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url)
        config.spool = SpoolSpec(enabled=False, dir=str(tmp_path / "spool"))

        async def go() -> None:
            async with Engine(config) as engine:
                r = await engine.send(
                    Message(sender="news@sender.example", to="a@example.com", subject="s", text="t")
                )
                assert r.status == "delivered"

        asyncio.run(go())
    assert not (tmp_path / "spool").exists()
