"""Checks on a relay before a job starts sending to it."""

from __future__ import annotations

import socket

from mailsflux._errors import TemporaryDeliveryError
from mailsflux._job import Relay
from mailsflux._smtp import SMTPSession


async def probe(relay: Relay, timeout: float) -> None:
    """Connect and say EHLO once, so an unreachable relay fails the job at once."""
    try:
        session = await SMTPSession.open(
            relay.host,
            relay.port,
            tls=relay.session_tls,
            username=relay.username,
            password=relay.password,
            timeout=timeout,
            local_hostname=socket.getfqdn() or "localhost",
        )
    except TemporaryDeliveryError as exc:
        raise TemporaryDeliveryError(
            f"cannot reach relay {relay.host}:{relay.port}: {exc.message}"
        ) from None
    await session.quit()
