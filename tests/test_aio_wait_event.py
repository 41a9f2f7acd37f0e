"""A cancel that races the event's wake-up still ends the waiting loop.

On Python 3.11 ``asyncio.wait_for(event.wait(), t)`` swallowed such a cancel
(CPython gh-86296) and a `serve` stop hung on its webhook dispatcher.
"""

from __future__ import annotations

import asyncio

import pytest

from mailsflux._aio import wait_event


def test_cancel_in_the_same_step_as_the_wake_up_ends_the_loop() -> None:
    async def main() -> int:
        event = asyncio.Event()
        rounds = 0

        async def loop() -> None:
            nonlocal rounds
            while True:
                event.clear()
                await wait_event(event, 5.0)
                rounds += 1

        task = asyncio.ensure_future(loop())
        await asyncio.sleep(0.05)
        event.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 3.0)
        return rounds

    assert asyncio.run(main()) == 0


def test_timeout_and_wake_up() -> None:
    async def main() -> tuple[bool, bool]:
        event = asyncio.Event()
        late = await wait_event(event, 0.01)
        asyncio.get_running_loop().call_later(0.01, event.set)
        return late, await wait_event(event, 5.0)

    assert asyncio.run(main()) == (False, True)


def test_a_cancel_as_the_awaited_call_fails_ends_the_retry_loop() -> None:
    """A webhook POST refused in the same step as serve's stop cancels its
    dispatcher: with ``wait_for`` the refusal won and the retries went on."""
    from mailsflux._aio import within

    async def main() -> int:
        loop = asyncio.get_running_loop()
        calls: list[asyncio.Future[None]] = []
        tries = 0

        async def retrying() -> None:
            nonlocal tries
            while True:
                fut: asyncio.Future[None] = loop.create_future()
                calls.append(fut)
                try:
                    await within(fut, 5.0)
                except ConnectionRefusedError:
                    tries += 1
                    await asyncio.sleep(0)

        task = asyncio.ensure_future(retrying())
        await asyncio.sleep(0.05)
        calls[-1].set_exception(ConnectionRefusedError())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 3.0)
        return tries

    assert asyncio.run(main()) == 0
