"""A hand-written SMTP server whose every reply a test can script.

aiosmtpd neither offers PIPELINING nor lets a test hold a reply back, so the
pipelining tests use this small server instead: it runs on port 0 in its own
thread and records every command line it reads, in order.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

# (command line, server state) -> reply line, or None for the default.
Script = Callable[[str, "Conn"], str | None]


class Conn:
    def __init__(self, server: ScriptedSMTP, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.writer = writer
        self.messages = 0


class ScriptedSMTP:
    def __init__(
        self,
        *,
        pipelining: bool = True,
        script: Script | None = None,
        hold_mail_reply_until_data: bool = False,
        drop_after_messages: int | None = None,
        data_without_recipients: bool = False,
        broken_starttls: bool = False,
        hang_first_session: bool = False,
        end_of_data_delay: float = 0.0,
        size: str | None = "10000000",
        helo_reply: str | None = None,
        helo_refusals: int | None = None,
        idle_close: float | None = None,
        greeting: str = "220 scripted ESMTP",
        auth: bool = False,
        idle_reply: str = "421 4.4.2 scripted Error: timeout exceeded",
        smtputf8: bool = False,
    ) -> None:
        self.pipelining = pipelining
        self.script = script
        self.hold = hold_mail_reply_until_data
        self.drop_after = drop_after_messages
        # A non-conforming server that answers DATA with 354 even with no
        # accepted recipient (RFC 2920 says it must refuse).
        self.data_without_rcpt = data_without_recipients
        # Offer STARTTLS, then answer the TLS ClientHello with garbage.
        self.broken_starttls = broken_starttls
        # The first session takes its first message, then never answers again.
        self.hang_first = hang_first_session
        # Seconds before answering the final dot (a server scanning the message).
        self.end_delay = end_of_data_delay
        # What the EHLO reply says after SIZE (a broken server may say
        # anything); None: no SIZE line at all.
        self.size = size
        # The reply to EHLO and HELO instead of accepting (a server refusing our name).
        self.helo_reply = helo_reply
        # Only the first this many sessions get ``helo_reply`` (None: all).
        self.helo_refusals = helo_refusals
        # Seconds a session may wait for a command before the server says 421
        # and closes it (Postfix smtpd_timeout, much shortened).
        self.idle_close = idle_close
        self.idle_reply = idle_reply
        # Sessions inside a mail transaction (MAIL to the reply to the final
        # dot) now, and the most there ever were at once.
        self.active = 0
        self.max_active = 0
        # Anything but 220 is said, then the connection is closed (a 421 at
        # connect: RFC 5321 3.8, the server is not available now).
        self.greeting = greeting
        # Offer AUTH PLAIN LOGIN in plain text and accept any login (a server
        # that a man in the middle stripped of STARTTLS looks like this).
        self.auth = auth
        # Offer SMTPUTF8 (RFC 6531): UTF-8 envelope addresses.
        self.smtputf8 = smtputf8
        self.lines: list[str] = []
        self.bodies: list[bytes] = []
        self.sessions = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.base_events.Server | None = None

    def __enter__(self) -> ScriptedSMTP:
        self.thread.start()

        async def start() -> asyncio.base_events.Server:
            return await asyncio.start_server(self._handle, "127.0.0.1", 0)

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self.server is not None:
                self.server.close()
            # Handlers still running (a hung session) end here, not with the loop.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in others:
                t.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        conn = Conn(self, writer)
        held: list[str] = []
        accepted = 0
        in_mail = False
        writer.write(f"{self.greeting}\r\n".encode())
        if not self.greeting.startswith("220"):
            await writer.drain()
            writer.close()
            return
        try:
            while line := await self._readline(reader, writer):
                cmd = line.decode().rstrip("\r\n")
                self.lines.append(cmd)
                verb = cmd.split(" ", 1)[0].split(":", 1)[0].upper()
                if verb in ("EHLO", "HELO") and self._refuse_helo():
                    writer.write(f"{self.helo_reply}\r\n".encode())
                    continue
                if verb == "RSET" and in_mail:
                    in_mail = False
                    self.active -= 1
                if verb == "MAIL" and not in_mail:
                    in_mail = True
                    self.active += 1
                    self.max_active = max(self.max_active, self.active)
                if verb == "EHLO":
                    ext = ["250-scripted"]
                    if self.size is not None:
                        ext.append(f"250-SIZE {self.size}")
                    if self.pipelining:
                        ext.append("250-PIPELINING")
                    if self.broken_starttls:
                        ext.append("250-STARTTLS")
                    if self.auth:
                        ext.append("250-AUTH PLAIN LOGIN")
                    if self.smtputf8:
                        ext.append("250-SMTPUTF8")
                    writer.write(("\r\n".join([*ext, "250 8BITMIME"]) + "\r\n").encode())
                    continue
                reply = self.script(cmd, conn) if self.script else None
                if verb in ("MAIL", "RSET"):
                    accepted = 0
                if verb == "MAIL":
                    reply = reply or "250 2.1.0 ok"
                elif verb == "RCPT":
                    reply = reply or "250 2.1.5 ok"
                    accepted += reply.startswith("2")
                elif verb == "DATA":
                    if not accepted and not self.data_without_rcpt:
                        reply = reply or "554 5.5.1 no valid recipients"
                    reply = reply or "354 go ahead"
                    if reply.startswith("354"):
                        # Only a pipelining client has sent MAIL and RCPT without
                        # waiting: a lock-step client would wait here for ever.
                        for h in held:
                            writer.write(h.encode())
                        held.clear()
                        writer.write(f"{reply}\r\n".encode())
                        body = await self._read_body(reader)
                        if body is None:
                            return  # cut off before the final dot: no message
                        conn.messages += 1
                        self.bodies.append(body)
                        if self.hang_first and self.sessions == 1:
                            await asyncio.sleep(3600)
                        if self.drop_after is not None and conn.messages >= self.drop_after:
                            writer.close()
                            return
                        if self.end_delay:
                            await asyncio.sleep(self.end_delay)
                        end = self.script(".", conn) if self.script else None
                        if in_mail:
                            in_mail = False
                            self.active -= 1
                        writer.write(f"{end or '250 2.0.0 queued'}\r\n".encode())
                        await writer.drain()
                        continue
                elif verb == "STARTTLS" and self.broken_starttls:
                    writer.write(b"220 2.0.0 ready\r\n")
                    await writer.drain()
                    await reader.read(1)
                    writer.write(b"this is not a TLS record\r\n")
                    await writer.drain()
                    break
                elif verb == "AUTH" and self.auth:
                    reply = reply or "235 2.7.0 authenticated"
                elif verb == "QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    reply = reply or "250 ok"
                if self.hold and verb in ("MAIL", "RCPT"):
                    held.append(f"{reply}\r\n")
                    continue
                for h in held:
                    writer.write(h.encode())
                held.clear()
                writer.write(f"{reply}\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if in_mail:
                self.active -= 1
            writer.close()

    def _refuse_helo(self) -> bool:
        if self.helo_reply is None:
            return False
        return self.helo_refusals is None or self.sessions <= self.helo_refusals

    async def _readline(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        if self.idle_close is None:
            return await reader.readline()
        try:
            return await asyncio.wait_for(reader.readline(), self.idle_close)
        except TimeoutError:
            writer.write(f"{self.idle_reply}\r\n".encode())
            return b""

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader) -> bytes | None:
        """The message up to the final dot; None if the client went away first."""
        chunks: list[bytes] = []
        while (line := await reader.readline()) != b".\r\n":
            if not line:
                return None
            chunks.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(chunks)
