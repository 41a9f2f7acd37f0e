"""Personal data at rest: AES-256-GCM for values, a keyed hash for lookups.

Both keys come from one store secret (HKDF-SHA256 with distinct labels).  A
sealed value is ``version (1 byte) || nonce (12) || ciphertext || tag (16)``,
and the column it belongs to is bound in as associated data, so a value
cannot be moved to another column unnoticed.  Addresses are looked up by
HMAC-SHA256 of their normalized form (``_addresses.normalize_address``: A-label
domain, lower case): equal for equal addresses, useless without the secret.
"""

from __future__ import annotations

import hmac
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mailsflux.compose import normalize_address
from mailsflux.errors import ConfigError

#: Shortest store secret accepted (bytes).
MIN_SECRET: Final = 32
_VERSION: Final = b"\x01"


def _derive(secret: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(secret)


class PersonalData:
    """Seals and opens personal values; hashes addresses for lookup."""

    __slots__ = ("_aead", "_lookup")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET:
            raise ConfigError(
                f"the tracking store secret must be at least {MIN_SECRET} bytes",
                field="store_secret",
            )
        self._aead = AESGCM(_derive(secret, b"mailsflux tracking store v1: aes-256-gcm"))
        self._lookup = _derive(secret, b"mailsflux tracking store v1: address lookup")

    def seal(self, value: str, column: bytes) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, value.encode("utf-8"), column)

    def open(self, blob: bytes | None, column: bytes) -> str | None:
        """The value, or ``None`` for a scrubbed (NULL) one; raises on tampering."""
        if blob is None:
            return None
        if blob[:1] != _VERSION or len(blob) < 29:
            raise ValueError(f"sealed {column.decode()} value has an unknown format")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], column).decode("utf-8")
        except InvalidTag:
            raise ValueError(
                f"sealed {column.decode()} value does not open with this secret"
            ) from None

    def lookup(self, address: str) -> bytes:
        return hmac.digest(self._lookup, normalize_address(address).encode("utf-8"), "sha256")

    def check_value(self) -> bytes:
        """A value that shows whether a store was made with this secret."""
        return hmac.digest(self._lookup, b"mailsflux key check", "sha256")


__all__ = ["MIN_SECRET", "PersonalData"]
