"""One endpoint's HTTP/1.1 connection: POST a body, get the status.

asyncio streams with h11 (the sans-IO HTTP/1.1 implementation uvicorn
uses): cancelling a POST (the server stopping) drops it at once, which a
blocking client in a thread could not. The connection is kept alive
between batches.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from urllib.parse import unquote, urlsplit

import h11

from mailsflux._aio import within
from mailsflux._tls import client_context

#: Bytes of an answer's body read before the connection is dropped instead.
_MAX_ANSWER = 64 << 10


class PostError(Exception):
    """The POST did not get an answer (connection refused, reset, timeout, bad HTTP)."""


class Client:
    def __init__(self, url: str, *, timeout: float, ca_file: str = "") -> None:
        u = urlsplit(url)
        assert u.hostname is not None
        self.host = u.hostname
        self.https = u.scheme == "https"
        self.port = u.port or (443 if self.https else 80)
        self.target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self.authority = u.netloc.rpartition("@")[2]
        #: Credentials in the url (``https://user:pass@host/``) go as Basic auth.
        self.auth: list[tuple[str, str]] = []
        if u.username is not None:
            pair = f"{unquote(u.username)}:{unquote(u.password or '')}".encode()
            self.auth = [("Authorization", "Basic " + base64.b64encode(pair).decode())]
        self.timeout = timeout
        self._tls: ssl.SSLContext | None = None
        if self.https:
            self._tls = client_context(cafile=ca_file or None)
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection] | None
        self._conn = None

    async def post(self, body: bytes, headers: list[tuple[str, str]]) -> int:
        """POST ``body``; the answer's status. A kept-alive connection the
        endpoint has closed meanwhile is opened again once, at no cost."""
        for attempt in (0, 1):
            reused = self._conn is not None
            try:
                return await within(self._post(body, headers), self.timeout)
            except TimeoutError:
                self.close()
                raise PostError(f"no answer within {self.timeout:g} s") from None
            except (OSError, EOFError, h11.ProtocolError, PostError) as exc:
                self.close()
                if not reused or attempt:
                    raise PostError(_describe(exc)) from None
        raise AssertionError("unreachable")

    async def _post(self, body: bytes, headers: list[tuple[str, str]]) -> int:
        if self._conn is None:
            reader, writer = await asyncio.open_connection(
                self.host,
                self.port,
                ssl=self._tls,
                server_hostname=self.host if self._tls else None,
            )
            self._conn = (reader, writer, h11.Connection(h11.CLIENT))
        reader, writer, conn = self._conn
        request = h11.Request(
            method="POST",
            target=self.target,
            headers=[
                ("Host", self.authority),
                ("Content-Length", str(len(body))),
                *self.auth,
                *headers,
            ],
        )
        writer.write(conn.send(request) + conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        status = 0
        size = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await reader.read(65536)
                conn.receive_data(chunk)  # b"" is the end: h11 then raises or closes
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > _MAX_ANSWER:
                    self.close()
                    return status
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise PostError("the endpoint closed the connection")
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            self.close()
        return status

    def close(self) -> None:
        if self._conn is not None:
            writer = self._conn[1]
            self._conn = None
            with contextlib.suppress(Exception):
                writer.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__
