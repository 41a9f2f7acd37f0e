"""An Engine config for the tests: a generated DKIM key, delivery to a local server."""

from __future__ import annotations

from pathlib import Path

from mailsflux import Config, Delivery, DKIMKey


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
