"""submit() or close() on a closed Scheduler raises at once instead of hanging."""

from __future__ import annotations

import asyncio

import pytest

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import Scheduler, SiteLimits
from mailsflux.errors import MailsfluxError, SchedulerClosedError
from mailsflux.types import DeliveryResult
from tests._jobs import messages
from tests._scripted_smtp import ScriptedSMTP


# A guard against the old hang, not a timing assertion.
@pytest.mark.timeout(60)
def test_submit_and_close_after_close_raise() -> None:
    results: list[DeliveryResult] = []

    async def go(port: int) -> tuple[BaseException, BaseException]:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            results.append,
            default_limits=SiteLimits(tls="none"),
        )
        first, late = messages(2)
        await s.submit(first)
        await s.close()
        with pytest.raises(SchedulerClosedError) as late_submit:
            await s.submit(late)
        with pytest.raises(SchedulerClosedError) as second_close:
            await s.close()
        return late_submit.value, second_close.value

    with ScriptedSMTP() as server:
        late_submit, second_close = asyncio.run(go(server.port))
    assert [r.status for r in results] == ["delivered"]
    assert len(server.bodies) == 1
    for exc in (late_submit, second_close):
        assert isinstance(exc, MailsfluxError) and exc.permanent
        assert "close" in str(exc)
