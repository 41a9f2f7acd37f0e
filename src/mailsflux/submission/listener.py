"""The SMTP submission listener: aiosmtpd with TLS-only AUTH, per-tenant
senders, per-credential rates, and a 250 only once the message is durable."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
import sys
from pathlib import Path
from typing import Any, AnyStr, cast

from aiosmtpd.smtp import (
    SMTP,
    AuthResult,
    Envelope,
    LoginPassword,
    Session,
    TLSSetupException,
    syntax,
)

from mailsflux import masking
from mailsflux.compose import parse_address
from mailsflux.delivery import LocalThrottles, RateSpec
from mailsflux.errors import ConfigError, HeaderError, MailsfluxError
from mailsflux.gateway import Gateway
from mailsflux.submission.data import TOO_BIG, authors, read_data, simple_path
from mailsflux.submission.settings import SubmissionSpec
from mailsflux.tenants import KeyStore, Principal

log = masking.logger("mailsflux.submission")  # addresses masked in every record

SEND_ROLE = "send"

#: aiosmtpd's own replies carry no enhanced status code (RFC 3463, which the
#: EHLO reply promises); these are the ones a submission client can meet.
_ENHANCED = {
    "250 OK": "250 2.0.0 OK",
    "221 Bye": "221 2.0.0 Bye",
    "552 Error: message size exceeds fixed maximum message size": TOO_BIG,
    "500 Command line too long": "500 5.5.2 Command line too long",
    "503 Error: need MAIL command": "503 5.5.1 Error: need MAIL command",
    "503 Error: need RCPT command": "503 5.5.1 Error: need RCPT command",
    "503 Error: nested MAIL command": "503 5.5.1 Error: nested MAIL command",
    "503 Already authenticated": "503 5.5.1 Already authenticated",
    "503 Error: send HELO first": "503 5.5.1 Error: send HELO first",
    "503 Error: send EHLO first": "503 5.5.1 Error: send EHLO first",
    "501 Too many values": "501 5.5.4 Too many values",
    "501 Not enough value": "501 5.5.4 Not enough values",
}
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"


def error_reply(exc: MailsfluxError) -> str:
    """The SMTP reply for an error the gateway raised: 5xx when retrying
    cannot help, else 4xx, with an enhanced status code of the same class.

    ``exc.code`` may be an HTTP status (the gateway serves both front
    doors), so the reply code comes from the enhanced status. A temporary
    error's text stays in the log (it may name files); a permanent one is
    about the message, so the client is told what.
    """
    klass = 5 if exc.permanent else 4
    status = exc.enhanced_status or ""
    if not _STATUS.fullmatch(status):
        # 5.6.0: the message's own content is at fault (RFC 3463 "other media error")
        status = "4.3.0" if klass == 4 else "5.6.0" if isinstance(exc, HeaderError) else "5.0.0"
    status = f"{klass}{status[1:]}"
    if klass == 4:
        code = 452 if status in ("4.3.1", "4.5.3") else 451
        return f"{code} {status} Cannot accept the message now, try again later"
    code = {"5.3.4": 552, "5.5.4": 501}.get(status, 550 if status.startswith("5.7.") else 554)
    text = " ".join(exc.message.split())[:300] or "Message refused"
    return f"{code} {status} {text.encode('ascii', 'replace').decode('ascii')}"


class _SubmissionSMTP(SMTP):
    """One client connection. aiosmtpd does the protocol; this adds async
    logins, implicit TLS, enhanced status codes on aiosmtpd's replies, and
    faster DATA and address parsing (:mod:`mailsflux.submission.data`)."""

    def __init__(self, handler: _Handler, **kw: Any) -> None:
        super().__init__(handler, **kw)
        self._listener = handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:
            if transport.get_extra_info("ssl_object") is not None:
                # Implicit TLS: encrypted from the first byte, so AUTH may go ahead.
                self._auth_require_tls = False
            self._listener.connections.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._listener.connections.discard(self)
        super().connection_lost(error)

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            status = _ENHANCED.get(status, status)
        await super().push(status)

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str) -> None:
        # aiosmtpd wraps the connection in asyncio's pure-Python TLS layer by
        # hand; loop.start_tls is uvloop's native one (about 300 us less a
        # message here). The state that follows is aiosmtpd's (RFC 3207 4.2).
        if arg:
            await self.push("501 Syntax: STARTTLS")
            return
        if self.tls_context is None:
            await self.push("454 4.7.0 TLS not available")
            return
        await self.push("220 Ready to start TLS")
        raw = cast(asyncio.Transport, self.transport)
        # Whatever the client sent after STARTTLS in the clear is dropped
        # (RFC 3207 5: command injection), and nothing more is read in the clear.
        raw.pause_reading()
        self._reader._buffer.clear()  # type: ignore[attr-defined]
        try:
            tls = await self.loop.start_tls(raw, self, self.tls_context, server_side=True)
        except Exception as error:
            raise TLSSetupException() from error
        if tls is None:
            raise TLSSetupException()
        self._writer._transport = tls  # type: ignore[attr-defined]
        self._reader._transport = tls  # type: ignore[attr-defined]
        self._replace_writer(self._writer)  # type: ignore[attr-defined]  # so is the protocol
        self._original_transport = raw
        self._tls_protocol = cast(Any, tls)  # aiosmtpd only asks whether it is set
        self.transport = tls
        self.envelope = self._create_envelope()
        self.session = self._create_session()
        self.session.peer = tls.get_extra_info("peername")
        self.session.ssl = {"cipher": tls.get_extra_info("cipher")}
        self._reset_timeout()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        fast = simple_path(arg)
        return fast if fast is not None else super()._getaddr(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd's own checks and replies; only the reading is read_data's
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None and self.session is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = await read_data(self._reader, self._listener.spec.max_size)
        if isinstance(data, str):
            self.envelope = self._create_envelope()
            await self.push(data)
            return
        self.envelope.content = self.envelope.original_content = data
        status = await self._listener.handle_DATA(self, self.session, self.envelope)
        self.envelope = self._create_envelope()
        await self.push(status)

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        # aiosmtpd calls this synchronously; it only parses here, so that the
        # slow password hash (in _login) never stalls the other connections.
        return AuthResult(success=True, auth_data=auth_data)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._login(await super().auth_PLAIN(server, args))

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._login(await super().auth_LOGIN(server, args))

    async def _login(self, parsed: AuthResult) -> AuthResult:
        creds = parsed.auth_data
        if not parsed.success or not isinstance(creds, LoginPassword):
            return parsed  # aborted or malformed: aiosmtpd has answered already
        failed = AuthResult(success=False, handled=False)  # 535 5.7.8
        try:
            username, password = creds.login.decode("utf-8"), creds.password.decode("utf-8")
        except UnicodeDecodeError:
            return failed
        async with self._listener.hashing:
            principal = await asyncio.to_thread(self._listener.keys.login, username, password)
        if principal is None:
            self._listener.failed_logins += 1
            log.info("submission: AUTH failed for %r from %s", username[:64], _peer(self.session))
            return failed
        return AuthResult(success=True, auth_data=principal)


class _QuietLoginData(logging.Filter):
    """aiosmtpd warns about its own deprecated ``login_data`` on every
    successful AUTH (it sets the attribute itself); that is noise here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Session.login_data is deprecated")


def _quiet_aiosmtpd() -> None:
    aiosmtpd_log = logging.getLogger("mail.log")
    if not any(isinstance(f, _QuietLoginData) for f in aiosmtpd_log.filters):
        aiosmtpd_log.addFilter(_QuietLoginData())


def _peer(session: Session | None) -> str:
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


class _Handler:
    """What every connection of one listener shares: the key store, the
    gateway, the rate limits, the counters."""

    def __init__(self, gateway: Gateway, keys: KeyStore, spec: SubmissionSpec) -> None:
        self.gateway = gateway
        self.keys = keys
        self.spec = spec
        self.throttles = LocalThrottles()
        # An Argon2id check takes tens of ms and 64 MB: a flood of wrong
        # passwords waits here instead of filling memory and the thread pool.
        self.hashing = asyncio.Semaphore(2)
        self._rates: dict[str, RateSpec] = {}
        self.connections: set[_SubmissionSMTP] = set()
        self.inflight: set[asyncio.Task[list[str]]] = set()
        self.closing = False
        self.accepted = 0
        self.refused = 0
        self.throttled = 0
        self.failed_logins = 0

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, lines: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*lines[:-1], "250-ENHANCEDSTATUSCODES", lines[-1]]

    def _rate(self, principal: Principal) -> RateSpec | None:
        if self.spec.rate is None:
            return None
        spec = self._rates.get(principal.key_id)
        if spec is None:
            # limit 1 per 1/rate seconds is `rate` per second, fractions included
            spec = RateSpec(f"smtp:{principal.key_id}", 1, self.spec.burst, 1.0 / self.spec.rate)
            self._rates[principal.key_id] = spec
        return spec

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.closing:
            return _SHUTTING_DOWN
        principal = cast(Principal, session.auth_data)
        if not principal.may(SEND_ROLE):
            self.refused += 1
            return "550 5.7.1 This credential may not send mail (it lacks the send role)"
        if not self.gateway.sender_allowed(principal, address):
            self.refused += 1
            return "553 5.7.1 Sender address not allowed for this credential"
        rate = self._rate(principal)
        if rate is not None:
            grant = self.throttles.acquire_now((rate,))
            if not grant.granted:
                self.throttled += 1
                return (
                    "451 4.7.1 Too many messages for this credential,"
                    f" try again in {max(grant.retry_after, 0.1):.1f} s"
                )
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.spec.max_recipients:
            return f"452 4.5.3 Too many recipients (at most {self.spec.max_recipients})"
        try:
            # Refused here, one recipient at a time, rather than failing the
            # whole message at DATA once some copies are already stored.
            parse_address(address)
        except MailsfluxError:
            return "553 5.1.3 Recipient address is not valid"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        principal = cast(Principal, session.auth_data)
        data = envelope.original_content or b""
        # The From header is the tenant's too: another tenant's address there
        # would go out under this tenant's DKIM signature.
        found = authors(data)
        if found is None:
            self.refused += 1
            return "554 5.6.0 The message needs one From header with an address"
        if not all(self.gateway.sender_allowed(principal, a) for a in found):
            self.refused += 1
            return "550 5.7.1 From header address not allowed for this credential"
        task = asyncio.ensure_future(
            self.gateway.accept_raw(
                principal, envelope.mail_from or "", list(envelope.rcpt_tos), data
            )
        )
        # A client that hangs up mid-write must not cut the spool write short:
        # the write finishes (the client, unanswered, will send again).
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        try:
            ids = await asyncio.shield(task)
        except MailsfluxError as exc:
            self.refused += 1
            if exc.permanent:
                log.info("submission: %s refused: %s", principal.key_id, exc)
            else:
                log.warning("submission: %s deferred: %s", principal.key_id, exc)
            return error_reply(exc)
        except Exception:
            self.refused += 1
            log.exception("submission: accepting a message of %s failed", principal.key_id)
            return "451 4.3.0 Cannot accept the message now, try again later"
        self.accepted += 1
        more = f" (+{len(ids) - 1} more)" if len(ids) > 1 else ""
        return f"250 2.0.0 OK queued as {ids[0] if ids else '-'}{more}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("submission: session error", exc_info=error)
        return "451 4.3.0 Internal error, try again later"


class SubmissionServer:
    """The running listeners: :meth:`close` stops taking connections,
    :meth:`wait_closed` lets messages being spooled finish, then hangs up."""

    def __init__(self, handler: _Handler, servers: dict[str, asyncio.Server]) -> None:
        self._handler = handler
        self._servers = servers

    @property
    def ports(self) -> dict[str, int]:
        """``{"starttls": port, "implicit_tls": port}``, the listeners that run."""
        return {k: int(s.sockets[0].getsockname()[1]) for k, s in self._servers.items()}

    @property
    def stats(self) -> dict[str, int]:
        h = self._handler
        return {
            "connections": len(h.connections),
            "accepted": h.accepted,
            "refused": h.refused,
            "throttled": h.throttled,
            "failed_logins": h.failed_logins,
        }

    def close(self) -> None:
        self._handler.closing = True
        for server in self._servers.values():
            server.close()

    async def wait_closed(self) -> None:
        self.close()
        if self._handler.inflight:
            await asyncio.wait(list(self._handler.inflight))
        for conn in list(self._handler.connections):
            if conn.transport is not None:
                conn.transport.close()
        for server in self._servers.values():
            await server.wait_closed()

    async def __aenter__(self) -> SubmissionServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.wait_closed()


async def start_submission(
    gateway: Gateway, keys: KeyStore, settings: SubmissionSpec, *, base: str | Path = "."
) -> SubmissionServer:
    """Listen as ``settings`` says (relative certificate paths start at
    ``base``); raises :class:`ConfigError` for a bad certificate or a port
    that cannot be bound."""
    ctx = settings.tls_context(base)
    loop = asyncio.get_running_loop()
    # aiosmtpd would ask for the FQDN (a DNS lookup) on every connection.
    hostname = settings.hostname or await asyncio.to_thread(socket.getfqdn)
    handler = _Handler(gateway, keys, settings)
    _quiet_aiosmtpd()

    def protocol(tls: ssl.SSLContext | None) -> _SubmissionSMTP:
        return _SubmissionSMTP(
            handler,
            hostname=hostname,
            ident="Mailsflux ESMTP submission",
            data_size_limit=settings.max_size,
            enable_SMTPUTF8=True,
            tls_context=tls,
            auth_required=True,
            auth_require_tls=True,
            timeout=settings.timeout,
            command_call_limit={"AUTH": settings.max_auth_attempts, "*": sys.maxsize},
            loop=loop,
        )

    servers: dict[str, asyncio.Server] = {}
    try:
        for name, (host, port) in settings.addresses().items():
            implicit = name == "implicit_tls"
            field = "implicit_tls_listen" if implicit else "listen"
            try:
                servers[name] = await loop.create_server(
                    lambda starttls=None if implicit else ctx: protocol(starttls),
                    host,
                    port,
                    ssl=ctx if implicit else None,
                )
            except OSError as exc:
                raise ConfigError(
                    f"submission: cannot listen on {host}:{port}: {exc.strerror or exc}",
                    field=f"submission.{field}",
                ) from None
    except BaseException:
        for server in servers.values():
            server.close()
        raise
    return SubmissionServer(handler, servers)


__all__ = ["SEND_ROLE", "SubmissionServer", "error_reply", "start_submission"]
