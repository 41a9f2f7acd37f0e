"""The spool's keys: AES-256-GCM, kept in a file only its owner can read.

The file holds one key a line, ``KID:KEY`` (eight hex digits, then 32
bytes in URL-safe base64), newest first. New records are sealed with the
first; any key still listed opens the records sealed with it, so a key is
rotated by adding a new one on top (:meth:`SpoolKeys.rotate`) and dropped
once no record needs it (``mailsflux queue rekey`` rewrites them all under
the newest key).

A ring read from a file reads it again when it meets a key id it does not
hold: a running server learns a key ``mailsflux keys rotate-store`` added
the first time it opens a value sealed with it (or at its next start).
Until then it seals with the key it had, which the file still holds.

A sealed record is ``0x01 || kid (4 bytes) || nonce (12) || ciphertext ||
tag (16)``. The caller's context (job and row) is the associated data, so
a record moved to another row does not open there.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mailsflux._files import create_whole
from mailsflux.errors import SpoolError
from mailsflux.spool._records import seal_each as _seal_each

_VERSION: Final = 1
_KID_LEN: Final = 4
_NONCE_LEN: Final = 12


class UnknownKeyError(SpoolError):
    """A record sealed with a key this ring lacks even after reading its file
    again: not damage, a key file that lags a rotation (``kid``: the key id)."""

    def __init__(self, message: str, *, kid: str, file: str | None = None) -> None:
        super().__init__(message, file=file)
        self.kid = kid


class SpoolKeys:
    """The key ring: seal with the newest key, open with whichever sealed it."""

    def __init__(self, keys: list[tuple[bytes, bytes]], path: Path | None = None) -> None:
        if not keys:
            raise SpoolError("the spool key file holds no key", file=str(path) if path else None)
        self.path = path
        self._set(keys)

    def _set(self, keys: list[tuple[bytes, bytes]]) -> None:
        # One assignment each: a thread sealing meanwhile pairs a key id
        # with that id's key, never with another's.
        self._by_id = {kid: AESGCM(k) for kid, k in keys}
        # The sealed form's head (version and key id) goes with the key.
        kid = keys[0][0]
        self._current = (kid, self._by_id[kid], bytes([_VERSION]) + kid)
        self._keys = keys

    @classmethod
    def generate(cls) -> SpoolKeys:
        """A ring of one fresh key, held only in memory (tests, throwaway spools)."""
        return cls([(secrets.token_bytes(_KID_LEN), AESGCM.generate_key(bit_length=256))])

    @classmethod
    def load(cls, path: Path, *, create: bool = True) -> SpoolKeys:
        """The ring in ``path``; a new file with one fresh key when it is missing."""
        if create and not path.exists():
            kid, key = secrets.token_bytes(_KID_LEN), AESGCM.generate_key(bit_length=256)
            _write_new(path, [(kid, key)])
        try:
            st = path.stat()
            text = path.read_text("ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpoolError(f"cannot read the spool key file: {exc}", file=str(path)) from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SpoolError(
                f"the spool key file is readable by others (mode {stat.S_IMODE(st.st_mode):o});"
                " it must be 0600: chmod 600 it",
                file=str(path),
            )
        keys: list[tuple[bytes, bytes]] = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            kid_hex, sep, b64 = line.partition(":")
            try:
                kid = bytes.fromhex(kid_hex)
                key = base64.urlsafe_b64decode(b64)
            except ValueError:
                kid, key = b"", b""
            if not sep or len(kid) != _KID_LEN or len(key) != 32:
                raise SpoolError(
                    "not a spool key: expected KID:KEY (8 hex digits, 32 bytes in base64)",
                    file=str(path),
                    line=n,
                )
            keys.append((kid, key))
        return cls(keys, path)

    def rotate(self) -> str:
        """Put a new key first in the file (and in this ring); returns its id."""
        if self.path is None:
            raise SpoolError("an in-memory key ring has no file to rotate")
        kid, key = secrets.token_bytes(_KID_LEN), AESGCM.generate_key(bit_length=256)
        keys = [(kid, key), *self._keys]
        tmp = self.path.with_name(f".{self.path.name}.rotate")
        tmp.unlink(missing_ok=True)
        _write_new(tmp, keys)
        os.replace(tmp, self.path)
        self._set(keys)
        return kid.hex()

    def _reload(self, kid: bytes) -> AESGCM | None:
        """Key ``kid`` after reading the file again (another process rotated)."""
        if self.path is None:
            return None
        fresh = SpoolKeys.load(self.path, create=False)
        if kid in fresh._by_id:
            self._set(fresh._keys)
        return self._by_id.get(kid)

    @property
    def current_id(self) -> str:
        return self._current[0].hex()

    @property
    def ids(self) -> list[str]:
        """Every key id the ring holds (hex), newest first."""
        return [kid.hex() for kid, _ in self._keys]

    def seal(self, plain: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE_LEN)  # what secrets.token_bytes reads, without its two calls
        _, aead, head = self._current
        return head + nonce + aead.encrypt(nonce, plain, context)

    def seal_many(
        self, items: Sequence[tuple[bytes, bytes]], blob: bool = False
    ) -> list[bytes] | list[bytearray]:
        """:meth:`seal` each ``(plain, context)``, their nonces drawn from the OS
        in one read: a spool commit seals a result a row, and a read each was
        one system call a message (each nonce is still 96 random bits).

        ``blob``: each as a bytearray, which ``sqlite3`` binds as it is; a
        bytes value goes through its adapter lookup first (about 0.3 us)."""
        if not items:
            return []
        _, aead, head = self._current
        return _seal_each(
            aead.encrypt,
            head,
            os.urandom(_NONCE_LEN * len(items)),
            items if isinstance(items, list) else list(items),
            blob,
        )

    def key_id(self, sealed: bytes) -> str:
        return sealed[1 : 1 + _KID_LEN].hex()

    def open(self, sealed: bytes, context: bytes) -> bytes:
        if len(sealed) < 1 + _KID_LEN + _NONCE_LEN + 16 or sealed[0] != _VERSION:
            raise SpoolError("a spool record is damaged (too short or of an unknown version)")
        kid = sealed[1 : 1 + _KID_LEN]
        aead = self._by_id.get(kid) or self._reload(kid)
        if aead is None:
            raise UnknownKeyError(
                f"a spool record was sealed with key {kid.hex()}, which the key file no longer"
                " holds",
                kid=kid.hex(),
                file=str(self.path) if self.path else None,
            )
        nonce = sealed[1 + _KID_LEN : 1 + _KID_LEN + _NONCE_LEN]
        try:
            return aead.decrypt(nonce, sealed[1 + _KID_LEN + _NONCE_LEN :], context)
        except InvalidTag:
            raise SpoolError(
                "a spool record does not authenticate (altered, or moved to another row)"
            ) from None


def _write_new(path: Path, keys: list[tuple[bytes, bytes]]) -> None:
    """Create ``path`` 0600, whole or not at all; if another process got there
    first, theirs is the key."""
    body = "".join(f"{kid.hex()}:{base64.urlsafe_b64encode(key).decode()}\n" for kid, key in keys)
    head = "# Mailsflux spool keys, newest first. Losing this file loses the spool.\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        create_whole(path, (head + body).encode("ascii"))
    except OSError as exc:
        raise SpoolError(f"cannot create the spool key file: {exc}", file=str(path)) from None
