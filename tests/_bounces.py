"""The bounce sample corpus (tests/data/bounces) and its test key."""

from __future__ import annotations

import json
from pathlib import Path

DIR = Path(__file__).parent / "data" / "bounces"
KEYS = {"t1": b"feedback-test-key-0123456789abcd"}
DOMAIN = "bounce.sender.example"


def samples() -> list[Path]:
    return sorted(DIR.glob("*.eml"))


def expected() -> dict[str, dict[str, object]]:
    doc: dict[str, dict[str, object]] = json.loads((DIR / "expected.json").read_text("utf-8"))
    return doc


def write_tracking_config(path: Path) -> Path:
    """A tracking config whose key ``t1`` is the corpus's VERP test key."""
    import base64
    import os

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    path.write_text(
        'base_url = "https://t.sender.example"\ncurrent_key = "t1"\n'
        f'store = "tracking.sqlite"\nstore_secret = "{b64(os.urandom(32))}"\n\n'
        f'[keys]\nt1 = "{b64(KEYS["t1"])}"\n',
        "utf-8",
    )
    return path
