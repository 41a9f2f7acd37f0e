"""Signed tracking tokens: what they carry, and their verification.

A token is ``{key_id}.{base64url(payload || tag)}`` (no padding), where
``payload`` is the msgpack array ``[message_id, recipient, job, sent_at,
kind, url]`` (kind 0 open, 1 click, 2 unsubscribe; ``sent_at`` in Unix
seconds) and ``tag`` is HMAC-SHA256(key, ``key_id + "." + payload``)
truncated to 16 bytes (128 bits).  Tokens are made by the compiled
:mod:`mailsflux.tracking._rewrite`; they are verified here with the standard library,
independently of that code.

Preference-page tokens (:meth:`TokenVerifier.preferences_token`) are
sealed rather than only signed, because their page lists everything one
person receives: ``{key_id}.{base64url(nonce || AES-256-GCM(payload))}``
with the msgpack payload ``[recipient, job, issued_at]`` and a key derived
from the tracking key (HKDF-SHA256), so the address is not readable in the
link.

Anything that is not exactly a token made with a known key decodes to
``None``: an unknown key id (a retired or foreign key), bad base64 (also a
non-canonical spelling of the same bytes), a truncated or altered body, a
wrong tag, or a payload of the wrong shape.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from collections.abc import Mapping
from typing import Final, Literal

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mailsflux.errors import ConfigError

TokenKind = Literal["open", "click", "unsubscribe"]
KINDS: Final[tuple[TokenKind, ...]] = ("open", "click", "unsubscribe")

#: Bytes of the HMAC-SHA256 tag kept in a token (128 bits).
TAG_SIZE: Final = 16
#: Shortest key accepted (bytes); 32 random bytes are recommended.
MIN_KEY_SIZE: Final = 16
#: Longest token accepted (characters): a bound on work per request.
MAX_TOKEN: Final = 8192

KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_BODY = re.compile(r"[A-Za-z0-9_-]+")

_Wire = tuple[str, str, str, int, int, str]
_DECODER: Final = msgspec.msgpack.Decoder(_Wire)
_PrefWire = tuple[str, str, int]
_PREF_DECODER: Final = msgspec.msgpack.Decoder(_PrefWire)
_PREF_LABEL: Final = b"mailsflux preferences token v1"


class PreferencesPayload(msgspec.Struct, frozen=True, gc=False):
    """What a preference-page token says: whose page, from which list's mail."""

    recipient: str
    job: str
    #: When the link was made (Unix seconds).
    issued_at: int
    key_id: str


def _pref_aead(key: bytes) -> AESGCM:
    return AESGCM(
        HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PREF_LABEL).derive(key)
    )


class TokenPayload(msgspec.Struct, frozen=True, gc=False):
    """What a verified token says."""

    kind: TokenKind
    message_id: str
    recipient: str
    #: The link's URL (clicks); ``""`` for opens and unsubscribes.
    url: str
    job: str
    #: When the message was composed (Unix seconds), to spot link scanners.
    sent_at: int
    #: The key that signed it.
    key_id: str


def check_keys(keys: Mapping[str, bytes], current_key_id: str | None = None) -> dict[str, bytes]:
    """Validate a key ring; return it as a plain dict.

    Key ids are 1-16 characters of ``A-Z a-z 0-9 _ -``; keys are bytes, at
    least :data:`MIN_KEY_SIZE` long.  ``current_key_id`` must be in the ring.
    """
    ring: dict[str, bytes] = {}
    if not keys:
        raise ConfigError("no tracking keys given", field="keys")
    for kid, key in keys.items():
        if not isinstance(kid, str) or not KEY_ID.fullmatch(kid):
            raise ConfigError(
                f"tracking key id {kid!r}: use 1-16 characters of A-Z a-z 0-9 _ -", field="keys"
            )
        if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_SIZE:
            raise ConfigError(
                f"tracking key {kid!r} must be at least {MIN_KEY_SIZE} bytes", field=f"keys.{kid}"
            )
        ring[kid] = bytes(key)
    if current_key_id is not None and current_key_id not in ring:
        raise ConfigError(
            f"current tracking key {current_key_id!r} is not among the keys", field="current_key"
        )
    return ring


def b64_decode_strict(body: str) -> bytes | None:
    """base64url without padding, canonical spelling only; ``None`` otherwise."""
    if not _BODY.fullmatch(body) or len(body) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
        return None  # unused low bits set: another spelling of the same bytes
    return raw


class TokenVerifier:
    """Checks tokens against a key ring (old keys stay here after rotation)."""

    __slots__ = ("_aead", "_keys")

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self._keys = check_keys(keys)
        self._aead = {kid: _pref_aead(k) for kid, k in self._keys.items()}

    def preferences_token(self, key_id: str, recipient: str, job: str, issued_at: int) -> str:
        """A sealed token for ``/p/``: the preference page of ``recipient``."""
        aead = self._aead[key_id]
        nonce = os.urandom(12)
        payload = msgspec.msgpack.encode((recipient, job, int(issued_at)))
        sealed = aead.encrypt(nonce, payload, key_id.encode("ascii") + b".p")
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        token = f"{key_id}.{body}"
        if len(token) > MAX_TOKEN:
            raise ValueError("preferences token too long (address or job name)")
        return token

    def decode_preferences(self, token: str) -> PreferencesPayload | None:
        """The payload of a genuine preference-page token, else ``None``."""
        if len(token) > MAX_TOKEN:
            return None
        kid, dot, body = token.partition(".")
        aead = self._aead.get(kid)
        if aead is None or not dot:
            return None
        raw = b64_decode_strict(body)
        if raw is None or len(raw) <= 12 + TAG_SIZE:
            return None
        try:
            payload = aead.decrypt(raw[:12], raw[12:], kid.encode("ascii") + b".p")
            recipient, job, issued = _PREF_DECODER.decode(payload)
        except (InvalidTag, msgspec.DecodeError):
            return None
        return PreferencesPayload(recipient=recipient, job=job, issued_at=issued, key_id=kid)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def decode(self, token: str, kind: TokenKind | None = None) -> TokenPayload | None:
        """The payload of a genuine token (of ``kind``, if given), else ``None``."""
        if len(token) > MAX_TOKEN:
            return None
        kid, dot, body = token.partition(".")
        key = self._keys.get(kid)
        if key is None or not dot:
            return None
        raw = b64_decode_strict(body)
        if raw is None or len(raw) <= TAG_SIZE:
            return None
        payload, tag = raw[:-TAG_SIZE], raw[-TAG_SIZE:]
        expect = hmac.digest(key, kid.encode("ascii") + b"." + payload, "sha256")[:TAG_SIZE]
        if not hmac.compare_digest(expect, tag):
            return None
        try:
            message_id, recipient, job, sent_at, k, url = _DECODER.decode(payload)
        except msgspec.DecodeError:  # pragma: no cover - only a key holder can sign
            return None
        if not 0 <= k < len(KINDS):
            return None
        got = KINDS[k]
        if kind is not None and got != kind:
            return None
        return TokenPayload(
            kind=got,
            message_id=message_id,
            recipient=recipient,
            url=url,
            job=job,
            sent_at=sent_at,
            key_id=kid,
        )


__all__ = [
    "KINDS",
    "MIN_KEY_SIZE",
    "TAG_SIZE",
    "PreferencesPayload",
    "TokenKind",
    "TokenPayload",
    "TokenVerifier",
    "check_keys",
]
