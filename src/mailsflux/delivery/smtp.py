"""SMTP sessions: aiosmtplib for the handshake, a pipelined path for sending.

aiosmtplib opens the connection, says EHLO, negotiates STARTTLS and AUTH.
Then the transport is handed to :class:`_ReplyReader`, which queues every
reply it parses, because aiosmtplib's own protocol keeps only one pending
reply and so cannot pipeline. With RFC 2920 PIPELINING the MAIL, RCPT and
DATA commands of a message go out in one write, and the next message's
envelope rides along with the current message's end of data: one round trip
per message instead of four.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
import socket
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import aiosmtplib

from mailsflux._aio import within
from mailsflux._tls import client_context
from mailsflux.delivery._smtpfast import Pipeline as _Pipeline
from mailsflux.delivery._smtpfast import ReaderState as _ReaderState
from mailsflux.delivery._smtpfast import envelope as _envelope_fast
from mailsflux.delivery._smtpfast import payload as _payload
from mailsflux.delivery._smtpfast import receive as _receive
from mailsflux.errors import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError
from mailsflux.types import RenderedMessage

TLSMode = Literal["none", "opportunistic", "required", "implicit"]


class Reply(NamedTuple):
    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


#: Which reply decided a message: ``mail`` (MAIL FROM: only our sender is
#: named, so a refusal there is never the recipient's), ``rcpt``, ``data``
#: (the DATA command), ``eod`` (the reply to the final dot), or ``local``
#: (refused here before anything was sent).
Stage = Literal["local", "mail", "rcpt", "data", "eod"]


class Outcome(NamedTuple):
    """What the server said about one message, and at which stage."""

    status: Literal["delivered", "bounced", "deferred"]
    code: int | None
    text: str
    stage: Stage = "eod"

    @classmethod
    def of(cls, reply: Reply, stage: Stage = "eod") -> Outcome:
        return cls(_status(reply.code), reply.code, reply.text, stage)


def _status(code: int) -> Literal["delivered", "bounced", "deferred"]:
    """What a reply code makes of a message: 2xx delivered, 5xx bounced, else deferred."""
    if 200 <= code < 300:
        return "delivered"
    return "bounced" if 500 <= code < 600 else "deferred"


class SessionError(TemporaryDeliveryError):
    """The session broke mid-batch; ``completed`` holds the outcomes known so far."""

    def __init__(
        self,
        message: str,
        completed: list[Outcome],
        *,
        closed: bool = False,
        reply: Reply | None = None,
    ) -> None:
        super().__init__(message)
        self.completed = completed
        #: The server closed the connection (as opposed to a timeout or garbage).
        self.closed = closed
        #: A refusal the server sent for the unfinished message before the
        #: break (typically a 421 as it closes, RFC 5321 3.8), not in ``completed``.
        self.reply = reply


def _parse_py(
    buf: bytes | bytearray | memoryview, lines: list[str]
) -> tuple[int, list[tuple[int, str]], bytes | None]:
    """The reference reply parser; :func:`mailsflux.delivery._smtpfast.parse` is the fast one.

    Returns ``(bytes consumed, [(code, text), ...], malformed line or None)``.
    Each ``\\n``-ended line (trailing ``\\r`` stripped) must be three digits
    then a space, a hyphen or nothing; a hyphen continues a multi-line reply,
    whose earlier lines wait in ``lines`` (changed in place). A malformed line
    stops parsing; the replies before it are returned with its first 80 bytes.
    """
    replies: list[tuple[int, str]] = []
    start = 0
    while (end := buf.find(b"\n", start)) != -1:  # type: ignore[union-attr]
        line = bytes(buf[start:end]).rstrip(b"\r")
        start = end + 1
        if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in (b"", b" ", b"-"):
            return start, replies, line[:80]
        lines.append(line[4:].decode("utf-8", "replace"))
        if line[3:4] != b"-":
            replies.append((int(line[:3]), "\n".join(lines)))
            lines.clear()
    return start, replies, None


_tuple_new = tuple.__new__


class _ReplyReader(_ReaderState, asyncio.Protocol):
    """Parses replies as they arrive and queues them, in order, as ``(code, text)``.

    A reader takes replies off :attr:`_replies` itself when enough are
    there, and otherwise awaits :meth:`wait` for them: one wait (and one
    future) for a whole pipelined group of replies, not one per reply.

    One watchdog timer per connection enforces the reply timeout, per reply:
    each :meth:`wait` sets the deadline, a reply that arrives while more
    are awaited moves it on by the timeout (as reading them one by one
    would), and the timer (armed at most once per deadline, not once per
    wait) fails the connection when it finds a reader still waiting past it.

    The fields the compiled pipeline sets each message (the deadline, the
    last reply, the waiter) are C fields of :class:`_ReaderState`.
    """

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._buf = bytearray()
        self._lines: list[str] = []
        self._replies: deque[tuple[int, str]] = deque()
        self._waiter = None
        self._need = 0  # replies the waiter waits for
        self._lost = None
        self.closed_by_peer = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._timeout = 0.0
        #: The last reply read (send() clears it as each message starts).
        self.last = None
        # The loop the first wait ran in, kept: asking for the running loop
        # costs a getpid() system call (asyncio's fork check), once a message.
        self._loop: asyncio.AbstractEventLoop | None = None
        #: When the watchdog timer fires (inf: none armed).
        self._timer_at = math.inf
        #: The compiled exchange running now (SMTPSession.send), if any:
        #: the replies are its.
        self._pipe: _Pipeline | None = None

    def data_received(self, data: bytes) -> None:
        pipe = self._pipe
        if pipe is not None:
            why = pipe.feed(data)
            if why is not None:
                self._fail(TemporaryDeliveryError(why))
            return
        came, why = _receive(self._buf, self._lines, self._replies, data)
        if came:
            q = self._replies
            w = self._waiter
            if w is not None:
                if len(q) >= self._need:
                    self._waiter = None
                    if not w.done():
                        w.set_result(None)
                else:
                    # Some of the awaited replies came: the next one gets a
                    # whole timeout from now, as a read of it alone would.
                    self._deadline = (
                        self._loop or asyncio.get_running_loop()
                    ).time() + self._timeout
        if why is not None:
            self._fail(TemporaryDeliveryError(why))

    def _fail(self, exc: Exception) -> None:
        if self._lost is None:
            self._lost = exc
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf
        w, self._waiter = self._waiter, None
        if w is not None and not w.done():
            # The replies that did come for the wait count as read, as they
            # would reading them one by one.
            if self._replies:
                self.last = self._replies[-1]
            w.set_exception(exc)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        # None: we closed it ourselves; an exception: the peer reset it.
        self.closed_by_peer |= exc is not None and self._lost is None
        self._fail(TemporaryDeliveryError(f"connection lost: {exc or 'closed by server'}"))

    def eof_received(self) -> bool:
        self.closed_by_peer |= self._lost is None
        self._fail(TemporaryDeliveryError("connection closed by server"))
        return False

    def _watchdog(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        w = self._waiter
        if self._lost is not None or w is None or w.done():
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self._deadline:
            self._fail(TemporaryDeliveryError(f"no reply within {self._timeout:g} s"))
        else:
            self._arm(self._deadline)

    def _arm(self, deadline: float) -> None:
        """The watchdog fires at ``deadline`` (instead of any later time)."""
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer = self._loop.call_at(deadline, self._watchdog)
        self._timer_at = deadline

    def wait(self, n: int, timeout: float) -> asyncio.Future[None]:
        """A future done when :attr:`_replies` holds ``n`` replies (the caller
        saw fewer), each within ``timeout``; it fails when the connection does.

        On a break the replies that did come count as read (:attr:`last` is
        the latest), as they would reading them one by one.
        """
        if self._lost is not None:
            if self._replies:
                self.last = self._replies[-1]
            raise self._lost
        if self._waiter is not None and not self._waiter.done():
            raise RuntimeError("two readers waiting on one SMTP connection")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiter, self._need = fut, n
        deadline = loop.time() + timeout
        self._deadline, self._timeout = deadline, timeout
        if self._timer_at > deadline:
            self._arm(deadline)
        return fut

    async def read(self, timeout: float) -> Reply:
        if not self._replies:
            await self.wait(1, timeout)
        self.last = reply = _tuple_new(Reply, self._replies.popleft())
        return reply

    def write(self, data: bytes) -> None:
        if self._lost is not None:
            raise self._lost
        self.transport.write(data)  # type: ignore[attr-defined]


_LINE_ENDS = re.compile(rb"\r\n|\r|\n")

# An envelope address (RFC 5321 4.1.2, UTF-8 per RFC 6531): a dot-atom local
# part, "@", a domain or an address literal. Quoted local parts are refused,
# as the recipient reader refuses them. Nothing here can hold CR, LF, NUL,
# space, "<" or ">", so an address can never end the path or add a command.
# Non-ASCII but for C1 controls, U+2028/U+2029 (line ends to some readers),
# surrogates and the noncharacters U+FFFE/U+FFFF: what the composer refuses.
_U = "\u00a0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff"


def _address_pattern(u: str) -> str:
    atom = f"[A-Za-z0-9!#$%&'*+\\-/=?^_`{{|}}~{u}]+"
    label = f"[A-Za-z0-9{u}](?:[A-Za-z0-9\\-{u}]*[A-Za-z0-9{u}])?"
    return f"{atom}(?:\\.{atom})*@(?:{label}(?:\\.{label})*|\\[[A-Za-z0-9:.\\-]+\\])"


_ASCII_ADDRESS = re.compile(_address_pattern("")).fullmatch


@functools.cache
def _unicode_address() -> Callable[[str], re.Match[str] | None]:
    # Its Unicode classes take ~13 ms to compile, in every process that
    # imports this module: made when the first non-ASCII address comes.
    return re.compile(_address_pattern(_U)).fullmatch


def _address(addr: str) -> re.Match[str] | None:
    """The whole of ``addr`` as an envelope address, or None. An ASCII
    address cannot hold a character of the non-ASCII ranges, so the ASCII
    pattern decides it alike."""
    if addr.isascii():
        return _ASCII_ADDRESS(addr)
    return _unicode_address()(addr)


def _stuffed(data: bytes) -> bytes:
    """The reference DATA payload: dot-stuffed (RFC 5321 4.5.2), CRLF-ended, with
    the final dot; :func:`mailsflux.delivery._smtpfast.payload` is the fast one.

    A bare CR or LF becomes CRLF first: left alone, ``LF . CRLF`` would end
    the data early at servers that take LF as a line end (SMTP smuggling).
    """
    data = _LINE_ENDS.sub(b"\r\n", data)
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SMTPSession:
    """One open SMTP connection that sends messages, pipelined when offered."""

    def __init__(
        self, client: aiosmtplib.SMTP, timeout: float, data_timeout: float | None = None
    ) -> None:
        transport = client.transport
        assert transport is not None
        self._client = client
        self._reader = _ReplyReader(transport)
        transport.set_protocol(self._reader)
        self.timeout = timeout
        # RFC 5321 4.5.3.2.6: the reply to the final dot may take 10 minutes
        # (the server may be scanning the message); commands get ``timeout``.
        self.data_timeout = data_timeout if data_timeout is not None else timeout
        self.pipelining = client.supports_extension("pipelining")
        self.smtputf8 = client.supports_extension("smtputf8")
        self.size_limit = _size(client)
        self.tls = transport.get_extra_info("sslcontext") is not None
        ssl_object = transport.get_extra_info("ssl_object")
        #: The negotiated protocol ("TLSv1.3"), None in plain text.
        self.tls_version: str | None = ssl_object.version() if ssl_object is not None else None
        self.sent = 0
        self._sender: str | None = None  # the last envelope sender found valid

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        tls: TLSMode = "opportunistic",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        data_timeout: float | None = None,
        local_hostname: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        address: str | None = None,
        tls_check: Callable[[ssl.SSLObject], str | None] | None = None,
    ) -> SMTPSession:
        """Connect, EHLO, STARTTLS as ``tls`` says, AUTH when given credentials.

        ``opportunistic`` upgrades when the server offers STARTTLS without
        checking its certificate (RFC 7435), and when the handshake fails it
        connects again in plain text; ``required`` checks the certificate and
        never falls back. ``tls_context`` checks certificates (``required``,
        ``implicit``) in place of the default one.

        Credentials are sent only over TLS whose certificate was verified
        against ``host``, or with ``tls="none"`` (the caller's explicit,
        unsafe choice); anything else raises before AUTH, whatever the mode.

        ``address`` connects to that IP address while ``host`` stays the name
        the certificate must match (an MX host looked up by the scheduler).

        ``tls_check`` judges the TLS peer once the handshake is done (DANE);
        a reason it returns ends the session before any command is sent.
        """

        async def connected_socket() -> socket.socket:
            assert address is not None
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await within(
                    asyncio.get_running_loop().sock_connect(sock, (address, port)), timeout
                )
            except BaseException:
                sock.close()
                raise
            return sock

        async def attempt(start_tls: bool | None, validate: bool) -> aiosmtplib.SMTP:
            # Only a checking context may replace the default checking one:
            # opportunistic TLS accepts any certificate (RFC 7435). Both
            # defaults are ours, not aiosmtplib's, for the TLS 1.2 floor.
            # Without TLS none is needed: loading the system trust store
            # costs a process about 50 ms.
            context: ssl.SSLContext | None = None
            if tls != "none":
                context = (
                    (tls_context or _default_context(True)) if validate else _default_context(False)
                )
            sock = await connected_socket() if address is not None else None
            client = aiosmtplib.SMTP(
                hostname=host,
                port=None if sock is not None else port,
                sock=sock,
                use_tls=tls == "implicit",
                start_tls=start_tls,
                validate_certs=validate,
                tls_context=context,
                timeout=timeout,
                local_hostname=local_hostname,
            )
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                # connect() says EHLO only when it tries STARTTLS; we need the extensions.
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
            if tls == "required" and client.transport is not None:
                if client.transport.get_extra_info("sslcontext") is None:
                    client.close()
                    raise TemporaryDeliveryError(
                        f"{host}:{port} does not offer STARTTLS, and TLS is required"
                    )
            if tls_check is not None:
                obj = client.transport.get_extra_info("ssl_object") if client.transport else None
                why = "no TLS session" if obj is None else tls_check(obj)
                if why is not None:
                    client.close()
                    raise TemporaryDeliveryError(why)
            if username is not None and tls != "none":
                refusal = _unsafe_for_credentials(client)
                if refusal is not None:
                    client.close()
                    raise TemporaryDeliveryError(
                        f"{host}:{port}: credentials not sent: {refusal}"
                        " (they go only over TLS with a verified certificate)"
                    )
            if username is not None:
                await client.login(username, password or "")
            return client

        try:
            if tls == "opportunistic":
                try:
                    client = await attempt(None, False)
                except (ssl.SSLError, aiosmtplib.SMTPException) as exc:
                    if not _tls_failure(exc):
                        raise
                    client = await attempt(False, False)
            elif tls == "none":
                client = await attempt(False, False)
            elif tls == "required":
                client = await attempt(True, True)
            else:
                client = await attempt(None, True)
        except DeliveryError:
            raise  # ours, already saying why (DeliveryError is an OSError too)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise PermanentDeliveryError(
                f"{host}:{port} refused our credentials: {exc.message}", code=exc.code
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise TemporaryDeliveryError(
                f"{host}:{port}: {exc.code} {exc.message}", code=exc.code
            ) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            raise TemporaryDeliveryError(f"cannot connect to {host}:{port}: {exc}") from None
        return cls(client, timeout, data_timeout)

    def _envelope(self, m: RenderedMessage) -> bytes:
        opts = b""
        if m.smtputf8:
            opts += b" SMTPUTF8"
        if self.size_limit is not None:
            opts += b" SIZE=%d" % len(m.data)
        return (
            b"MAIL FROM:<" + m.mail_from.encode("utf-8") + b">" + opts + b"\r\n"
            b"RCPT TO:<" + m.rcpt_to.encode("utf-8") + b">\r\nDATA\r\n"
        )

    def _refusal(self, m: RenderedMessage) -> Outcome | None:
        """A message this server cannot take, decided before sending anything."""
        if _address(m.rcpt_to) is None or (
            m.mail_from != self._sender and not self._check_sender(m.mail_from)
        ):
            return Outcome(
                "bounced",
                None,
                # No RFC section here: the classifier would read "4.1.2" as
                # an enhanced status code.
                f"invalid envelope address for recipient {m.rcpt_to!r}"
                f" (sender {m.mail_from!r}); nothing sent",
            )
        if not m.smtputf8 and not (m.rcpt_to.isascii() and m.mail_from.isascii()):
            # Without SMTPUTF8 on MAIL a server may not take UTF-8 (RFC 6531 3.4).
            return Outcome(
                "bounced",
                None,
                f"non-ASCII envelope address for recipient {m.rcpt_to!r} (sender"
                f" {m.mail_from!r}) in a message not marked SMTPUTF8; nothing sent",
            )
        if m.smtputf8 and not self.smtputf8:
            return Outcome("bounced", None, "server does not offer SMTPUTF8 (RFC 6531)", "local")
        if self.size_limit and len(m.data) > self.size_limit:
            text = f"message larger than server SIZE {self.size_limit}"
            return Outcome("bounced", None, text, "local")
        return None

    async def send(
        self, messages: Sequence[RenderedMessage], stop: Callable[[Outcome], bool] | None = None
    ) -> list[Outcome]:
        """Send ``messages`` in order; one :class:`Outcome` each, in order.

        ``stop(outcome)`` returning True (a reply that throttles the site)
        ends the batch early: the one message whose envelope is already on
        the wire still goes, and the outcomes list is then shorter than
        ``messages``; the rest were not attempted.

        Raises :class:`SessionError` if the connection breaks; its
        ``completed`` holds the outcomes of the messages before the break.
        """
        out: list[Outcome] = []
        r = self._reader
        q = r._replies
        read, write, wait = r.read, r.write, r.wait
        t = self.timeout
        pipelining = self.pipelining
        todo = list(messages)
        n = len(todo)
        try:
            # True when this message's envelope already went out, pipelined
            # behind the previous message (so it passed _refusal then).
            pending_env = False
            stopping = False
            start = 0
            if pipelining and n and not q and r._lost is None:
                start, pending_env = await self._pipelined(todo, out, stop)
            for i in range(start, n):
                m = todo[i]
                r.last = None
                if stop is not None and out and not stopping and stop(out[-1]):
                    stopping = True
                if stopping and not pending_env:
                    break
                if not pending_env:
                    env = self._prepare(m)
                    if not isinstance(env, bytes):
                        out.append(env)
                        continue
                    if pipelining:
                        write(env)
                mail: tuple[int, str]
                rcpt: tuple[int, str]
                data: tuple[int, str]
                if pipelining:
                    # The three replies usually came together (with the
                    # previous message's end): taken without a wait.
                    if len(q) < 3:
                        await wait(3, t)
                    mail, rcpt, data = q.popleft(), q.popleft(), q.popleft()
                    r.last = data
                else:
                    assert isinstance(env, bytes)  # without PIPELINING never pending
                    write(env[: env.index(b"\r\n") + 2])
                    mail = await read(t)
                    rcpt = data = Reply(503, "not sent")
                    if 200 <= mail[0] < 300:
                        write(env[env.index(b"RCPT") : env.index(b"DATA")])
                        rcpt = await read(t)
                        if 200 <= rcpt[0] < 300:
                            write(b"DATA\r\n")
                            data = await read(t)
                nxt: bytes | None = None
                if pipelining and not stopping and i + 1 < n:
                    ahead = self._prepare(todo[i + 1])
                    if isinstance(ahead, bytes):
                        nxt = ahead
                pending_env = nxt is not None
                if data[0] == 354 and 200 <= mail[0] < 300 and 200 <= rcpt[0] < 300:
                    # One write: the stuffed message, its end, the next envelope.
                    write(_payload(m.data, nxt or b""))
                    if not q:
                        await wait(1, self.data_timeout)
                    code, text = q.popleft()
                    out.append(_tuple_new(Outcome, (_status(code), code, text, "eod")))
                    self.sent += 1
                    continue
                if data[0] == 354:  # DATA accepted without a recipient: end it empty
                    write(b".\r\n")
                    await read(t)
                mail_r, rcpt_r, data_r = Reply(*mail), Reply(*rcpt), Reply(*data)
                stage: Stage = "mail" if not mail_r.ok else "rcpt" if not rcpt_r.ok else "data"
                bad = mail_r if not mail_r.ok else rcpt_r if not rcpt_r.ok else data_r
                if bad.code < 400:
                    # Envelope accepted but DATA not answered 354 (a 2xx from a
                    # broken server): the message was never sent, so never "delivered".
                    text = f"unexpected reply to DATA: {bad.text}"
                    out.append(Outcome("deferred", bad.code, text, stage))
                else:
                    out.append(Outcome.of(bad, stage))
                r.last = None  # that reply is an outcome now, not the break's reason
                write(b"RSET\r\n" + (nxt or b""))
                await read(t)
        except TemporaryDeliveryError as exc:
            self.close()
            # Only a refusal (4xx, 5xx) is the break's reason: a 354 awaiting
            # the message's data, or a 2xx, is not.
            last = r.last
            reply = Reply(*last) if last is not None and last[0] >= 400 else None
            raise SessionError(exc.message, out, closed=r.closed_by_peer, reply=reply) from None
        return out

    async def _pipelined(
        self,
        todo: list[RenderedMessage],
        out: list[Outcome],
        stop: Callable[[Outcome], bool] | None,
    ) -> tuple[int, bool]:
        """The leading messages of ``todo`` that are answered 2xx throughout,
        exchanged by the compiled :class:`~mailsflux.delivery._smtpfast.Pipeline`
        (their outcomes appended to ``out``); returns where ``send`` goes on
        and whether that message's envelope is on the wire already."""
        r = self._reader
        if r._loop is None:
            r._loop = asyncio.get_running_loop()
        size = self.size_limit
        pipe = _Pipeline(
            r, todo, out, Outcome, -1 if size is None else size, self.timeout, self.data_timeout
        )
        if not pipe.start():
            return 0, False
        r._pipe = pipe
        try:
            await r.wait(1 << 62, self.timeout)
        finally:
            r._pipe = None
            self.sent += pipe.sent
        if stop is not None and len(out) >= 2 and out[-1][0] != "delivered":
            # send() asks stop() about the last outcome; the delivery
            # before it (the pipeline asked nothing) must reset its count.
            stop(out[-2])
        return pipe.stop_at, pipe.pending

    def _prepare(self, m: RenderedMessage) -> bytes | Outcome:
        """The envelope commands for ``m``, or why this server cannot take it."""
        size_limit = self.size_limit
        if not m.smtputf8:
            size = len(m.data)
            if not size_limit or size <= size_limit:
                # ASCII addresses, checked and written in one compiled call.
                env = _envelope_fast(m.mail_from, m.rcpt_to, -1 if size_limit is None else size)
                if env is not None:
                    return env
        refusal = self._refusal(m)
        return refusal if refusal is not None else self._envelope(m)

    def _check_sender(self, mail_from: str) -> bool:
        # A job has one sender, or few: remember the last good one.
        if mail_from and _address(mail_from) is None:
            return False
        self._sender = mail_from
        return True

    async def quit(self) -> None:
        try:
            self._reader.write(b"QUIT\r\n")
            await self._reader.read(min(self.timeout, 5.0))
        except TemporaryDeliveryError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        transport = self._reader.transport
        if not transport.is_closing():
            transport.close()

    def farewell(self) -> Reply | None:
        """A refusal the server sent unasked before closing (a 421 on an idle
        session, RFC 5321 3.8), or None; read once."""
        replies = self._reader._replies
        last = Reply(*replies[-1]) if replies else None
        replies.clear()
        return last if last is not None and not last.ok else None

    @property
    def is_open(self) -> bool:
        return self._reader._lost is None and not self._reader.transport.is_closing()


def _size(client: aiosmtplib.SMTP) -> int | None:
    if not client.supports_extension("size"):
        return None
    # RFC 1870: SIZE [number]; anything else (a hostile or broken server) means no limit.
    m = re.fullmatch(r"\s*([0-9]{1,20})\s*", client.esmtp_extensions.get("size", ""))
    return int(m.group(1)) if m else 0


@functools.cache
def _default_context(verify: bool) -> ssl.SSLContext:
    # Built once: loading the system trust store per connection costs
    # milliseconds, and a context is safe to share between connections.
    return client_context(verify=verify)


def _unsafe_for_credentials(client: aiosmtplib.SMTP) -> str | None:
    """Why this connection must not carry a password, or None when it may.

    It may when it is TLS whose handshake required a certificate valid for
    the host name we connected to (aiosmtplib passes it as server_hostname).
    """
    ctx = client.get_transport_info("sslcontext") if client.transport is not None else None
    if not isinstance(ctx, ssl.SSLContext):
        return "the connection is not TLS"
    if ctx.verify_mode != ssl.CERT_REQUIRED or not ctx.check_hostname:
        return "the server's TLS certificate was not verified"
    return None


def _tls_failure(exc: BaseException) -> bool:
    if isinstance(exc, ssl.SSLError):
        return True
    text = str(exc).lower()
    if "reset while upgrading transport" in text:
        # aiosmtplib's word for a peer that ended the STARTTLS handshake, as
        # one offering only TLS 1.0/1.1 does when refused: a handshake failure.
        return True
    return "tls" in text or "ssl" in text or "handshake" in text or "certificate" in text
