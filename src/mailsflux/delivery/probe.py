"""Checks on a relay before a job starts sending to it."""

from __future__ import annotations

import ssl

from mailsflux.delivery.relay import Relay
from mailsflux.delivery.smtp import SMTPSession
from mailsflux.errors import TemporaryDeliveryError


async def probe(
    relay: Relay,
    timeout: float,
    *,
    local_hostname: str,
    tls_context: ssl.SSLContext | None = None,
) -> str | None:
    """Connect, EHLO (and STARTTLS and AUTH, as the job will) once.

    A relay that cannot be reached (refused, no answer, a TLS or credential
    failure) fails the job at once: that is a wrong URL or setting, and
    retrying every message would only hide it. A relay that answers with a
    temporary reply (RFC 5321 4.2.1: 4yz, such as ``421`` at connect) is
    busy, not wrong: the job goes on, its messages are retried and deferred
    like any other, and the returned note says so.
    """
    try:
        session = await SMTPSession.open(
            relay.host,
            relay.port,
            tls=relay.session_tls,
            username=relay.username,
            password=relay.password,
            timeout=timeout,
            local_hostname=local_hostname,
            tls_context=tls_context,
        )
    except TemporaryDeliveryError as exc:
        if exc.code is not None and 400 <= exc.code < 500:
            return (
                f"relay {relay.host}:{relay.port} answered {exc.message}; sending anyway,"
                " messages are retried"
            )
        hint = ""
        if relay.username is not None and relay.tls != "none":
            hint = (
                "; credentials go only over TLS with a verified certificate (a private"
                " CA: [delivery] tls_ca)"
            )
        raise TemporaryDeliveryError(
            f"cannot reach relay {relay.host}:{relay.port}: {exc.message}{hint}"
        ) from None
    await session.quit()
    return None
