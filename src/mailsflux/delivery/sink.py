"""A local SMTP sink on loopback: accepts every message and counts it.

``mailsflux send --local-sink`` runs it as a child process so the demo needs
no mail server; ``python -m mailsflux.delivery.sink`` runs it by hand. It prints
``LISTENING <host> <port>`` once ready, and a JSON tally when it gets
SIGTERM or SIGINT. With ``--save DIR`` each message is written as an
``.eml`` file there (off by default: mail content is not kept).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailsflux._aio import within


class CountingHandler:
    def __init__(self, save: Path | None = None) -> None:
        self.messages = 0
        self.recipients = 0
        self.octets = 0
        self.signed = 0
        self.save = save

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        self.messages += 1
        self.recipients += len(envelope.rcpt_tos)
        self.octets += len(data)
        if data[:16].lower().startswith(b"dkim-signature:"):
            self.signed += 1
        if self.save is not None:
            name = f"{self.messages:07d}.eml"
            (self.save / name).write_bytes(data)
        return "250 2.0.0 OK queued"

    def tally(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "recipients": self.recipients,
            "octets": self.octets,
            "dkim_signed": self.signed,
        }


async def serve(host: str, port: int, save: Path | None) -> None:
    handler = CountingHandler(save)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler, hostname="mailsflux-sink", enable_SMTPUTF8=True, ident="mailsflux sink"
        ),
        host=host,
        port=port,
    )
    sock_port = server.sockets[0].getsockname()[1]
    print(f"LISTENING {host} {sock_port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    print(json.dumps(handler.tally()), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mailsflux sink", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--save", type=Path, default=None, help="write each message into DIR")
    args = ap.parse_args(argv)
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
    try:
        import uvloop

        uvloop.run(serve(args.host, args.port, args.save))
    except ImportError:
        asyncio.run(serve(args.host, args.port, args.save))
    return 0


class LocalSink:
    """Runs the sink as a child process for the length of a ``with`` block."""

    def __init__(self, save: Path | None = None) -> None:
        self.save = save
        self.host = "127.0.0.1"
        self.port = 0
        self.tally: dict[str, Any] = {}
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> LocalSink:
        cmd = [sys.executable, "-m", "mailsflux.delivery.sink", "--host", self.host, "--port", "0"]
        if self.save is not None:
            cmd += ["--save", str(self.save)]
        env = dict(os.environ)
        self._proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, env=env
        )
        assert self._proc.stdout is not None
        line = await within(self._proc.stdout.readline(), 30)
        parts = line.decode().split()
        if len(parts) != 3 or parts[0] != "LISTENING":
            self._proc.kill()
            raise RuntimeError(f"local sink did not start: {line!r}")
        self.port = int(parts[2])
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None or proc.stdout is None:
            return
        if proc.returncode is None:
            # A Ctrl-C reaches the sink too, and it may already have stopped.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        out = await within(proc.stdout.read(), 30)
        await proc.wait()
        for line in out.decode().splitlines():
            if line.startswith("{"):
                self.tally = json.loads(line)


if __name__ == "__main__":
    sys.exit(main())
