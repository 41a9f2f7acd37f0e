"""How an application uses Mailsflux: only public names from ``import mailsflux``.

Type-checked with ``mypy --strict`` by tests/test_engine_typed.py (never run).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import mailsflux
from mailsflux import (
    Attachment,
    Batch,
    Config,
    Delivery,
    DeliveryResult,
    DKIMKey,
    Engine,
    JobHandle,
    JobSummary,
    MailsfluxError,
    Message,
    SyncEngine,
)

config = Config(
    dkim=[DKIMKey(domain="shop.example", selector="s1", key="s1.pem")],
    delivery=Delivery(relay="smtp://relay.example:587", connections=8, rate=50.0),
)


def welcome(to: str, first: str) -> Message:
    return Message(
        sender="Shop <hello@shop.example>",
        to=to,
        subject="Welcome, {{first}}",
        html="<p>Hi {{first}}</p>",
        text="Hi {{first}}",
        data={"first": first},
        attachments=[Attachment(content=Path("terms.pdf"))],
        tags=("welcome",),
        metadata={"user": "42"},
    )


async def rows() -> AsyncIterator[dict[str, str]]:
    yield {"email": "a@example.com", "first": "Ada"}


def log(result: DeliveryResult) -> None:
    print(result.recipient, result.status, result.tags)


async def main() -> None:
    async with Engine(config, on_result=log) as engine:
        try:
            result: DeliveryResult = await engine.send(welcome("Ada <ada@example.com>", "Ada"))
        except MailsfluxError as exc:
            print(exc.field, exc.permanent)
            return
        code: int | None = result.code
        status: mailsflux.DeliveryStatus = result.status
        print(code, status, result.enhanced_status, result.reply)

        handle: JobHandle = await engine.submit(Batch(template=welcome("", ""), recipients=rows()))
        async for r in handle:
            print(r.status, handle.counts.sent)
        partial: JobSummary = await handle.cancel()
        done: JobSummary = await (await engine.submit(Path("job.toml"))).wait()
        print(partial.interrupted, done.sent)
        async for r in engine.results():
            print(r.message_id)


def script() -> None:
    with SyncEngine("engine.toml") as engine:
        print(engine.send(welcome("bob@example.com", "Bob")).status)
        print(engine.run(Path("job.toml")).rate)


asyncio.run(main())
