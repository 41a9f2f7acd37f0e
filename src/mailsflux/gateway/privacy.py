"""A person's rights, per tenant: export, erase, correct, object.

The same work ``mailsflux privacy`` does for an installation, scoped to one
tenant's stores (its spool, its log, its tracking store), for the HTTP API's
admin role. Every request leaves an audit line (who, when, what, how many)
naming the address only by a keyed hash.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from mailsflux._files import create_whole
from mailsflux.compose import normalize_address, parse_address
from mailsflux.errors import ConfigError, MailsfluxError
from mailsflux.masking import ADDRESS
from mailsflux.sealedlines import open_append

Action = Literal["export", "erase", "correct", "object"]


def address_key(address: str, field: str = "address") -> str:
    """The one comparison form of ``address``; ConfigError (one line) if it is none."""
    try:
        return normalize_address(str(parse_address(address)))
    except (MailsfluxError, ValueError) as exc:
        raise ConfigError(f"{address!r} is not an address: {exc}", field=field) from None


def matcher(key: str) -> Callable[[str], bool]:
    """Whether a stored recipient is the person ``key`` names."""

    def match(rcpt: str) -> bool:
        try:
            return normalize_address(rcpt) == key
        except ValueError:
            return False

    return match


def audit(
    folder: Path,
    action: str,
    key: str,
    counts: dict[str, int],
    by: str = "",
    failed: str | None = None,
) -> None:
    """One line per request in ``folder/privacy-audit.jsonl`` (0600): the
    address as HMAC-SHA256 under a key kept beside it, never in clear.
    ``counts`` is what was done; ``failed``, why the request stopped there
    (any address in it replaced by ``***``)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file = folder / "audit.key"
    create_whole(key_file, secrets.token_bytes(32))
    mac = hmac.new(key_file.read_bytes(), key.encode(), hashlib.sha256).hexdigest()
    line = {"time": round(time.time(), 3), "action": action, "by": by or getpass.getuser(),
            "address_hmac": mac, "counts": counts}  # fmt: skip
    if failed is not None:
        line["failed"] = ADDRESS.sub("***", failed)
    # Nothing personal to seal; appended under the file's lock (retention rewrites it).
    with open_append(folder / "privacy-audit.jsonl", None) as f:
        f.write(json.dumps(line).encode() + b"\n")


__all__ = ["Action", "address_key", "audit", "matcher"]
