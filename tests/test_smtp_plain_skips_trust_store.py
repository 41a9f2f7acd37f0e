"""A session without TLS (``tls="none"``: a plain relay such as
``smtp+plain://``) never builds a TLS context: loading the system trust
store costs every process about 50 ms, and a plain session has no use for
it. Sessions that may use TLS still get the checking default."""

from __future__ import annotations

import asyncio

from mailsflux.delivery import smtp
from mailsflux.delivery.smtp import SMTPSession
from tests._mail import RecordingHandler, SMTPServer


def test_plain_session_builds_no_tls_context() -> None:
    async def go(port: int, tls: smtp.TLSMode) -> None:
        s = await SMTPSession.open("127.0.0.1", port, tls=tls, timeout=5)
        await s.quit()

    with SMTPServer(RecordingHandler()) as server:
        smtp._default_context.cache_clear()
        asyncio.run(go(server.port, "none"))
        assert smtp._default_context.cache_info().currsize == 0
        # The server offers no STARTTLS: an opportunistic session stays plain,
        # but its context was made ready for one.
        asyncio.run(go(server.port, "opportunistic"))
        assert smtp._default_context.cache_info().currsize >= 1
