"""An Engine config for the tests: a generated DKIM key, delivery to a local server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import Config, Delivery, DeliveryResult, DKIMKey, Engine


def engine_config(tmp_path: Path, relay: str, **delivery: object) -> Config:
    settings: dict[str, object] = {
        "relay": relay,
        "ehlo_name": "mta.sender.example",
        "timeout": 10.0,
        "retry_initial": 0.05,
        **delivery,
    }
    return Config(
        dkim=[
            DKIMKey(
                domain="sender.example",
                selector="t1",
                key=str(tmp_path / "dkim" / "t1.pem"),
                generate=True,
                bits=1024,
            )
        ],
        delivery=Delivery(**settings),  # type: ignore[arg-type]
        base=str(tmp_path),
    )


async def listening(engine: Engine) -> tuple[list[DeliveryResult], asyncio.Future[None]]:
    """Start collecting ``engine.results()``: the list they go to, and the task
    (it ends when the engine is left)."""
    seen: list[DeliveryResult] = []

    async def listen() -> None:
        async for r in engine.results():
            seen.append(r)

    listener = asyncio.ensure_future(listen())
    await asyncio.sleep(0)
    return seen, listener
