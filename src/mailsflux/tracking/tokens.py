"""Sealed tracking tokens: what they carry, and how they are opened.

A token is ``{key_id}.{base64url(V || C)}`` (no padding): AES-256-SIV
(RFC 5297) of the msgpack array ``[message_id, recipient, job, sent_at,
kind, url]`` (kind 0 open, 1 click, 2 unsubscribe; ``sent_at`` in Unix
seconds), with the key id as associated data and the 64-byte key
:func:`token_key` derives from the tracking key.  The key id stays in clear
so that keys rotate: old keys stay in the ring and keep opening tokens of
mail already sent.  Tokens are made by the compiled
:mod:`mailsflux.tracking._rewrite`; they are opened here with the
cryptography package, independently of that code.

Why AES-SIV rather than AES-GCM: a link token must be short and is made
per link on the hot path.  SIV is deterministic authenticated encryption
(RFC 5297 section 4): it needs no nonce in the token (AES-GCM would add 12
bytes, 16 characters, per link, and a nonce derived from the payload would be
a construction of our own), its 16-byte synthetic IV is also the tag, so a
sealed token is exactly as long as the signed one was, and a repeated
payload shows only that two links are the same link of the same message.

Before tokens were sealed they were only signed: ``{key_id}.{base64url(payload
|| tag)}`` with ``tag`` HMAC-SHA256(key, ``key_id + "." + payload``)
truncated to 16 bytes.  Those are in mail already sent, so :class:`TokenVerifier`
still accepts them for a transition period (``signed_days``; an unsubscribe
always), but nothing makes them any more.

Preference-page tokens (:meth:`TokenVerifier.preferences_token`) are
sealed with AES-256-GCM and a random nonce (they are made once per page
view, not per link): ``{key_id}.{base64url(nonce || AES-256-GCM(payload))}``
with the msgpack payload ``[recipient, job, issued_at]``.  Both keys come
from the tracking key by HKDF-SHA256 (:func:`derive_key`), each under its own
label.

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
import time
from collections.abc import Callable, Mapping
from typing import Final, Literal

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mailsflux.errors import ConfigError

TokenKind = Literal["open", "click", "unsubscribe"]
KINDS: Final[tuple[TokenKind, ...]] = ("open", "click", "unsubscribe")

#: Bytes of the synthetic IV of a sealed token, and of the HMAC tag of an old
#: signed one (128 bits).
TAG_SIZE: Final = 16
#: Days after sending that an old signed-only open or click token is accepted.
SIGNED_DAYS: Final = 90.0
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
_TOKEN_LABEL: Final = b"mailsflux tracking token v2"


class PreferencesPayload(msgspec.Struct, frozen=True, gc=False):
    """What a preference-page token says: whose page, from which list's mail."""

    recipient: str
    job: str
    #: When the link was made (Unix seconds).
    issued_at: int
    key_id: str


def derive_key(key: bytes, label: bytes, length: int = 32) -> bytes:
    """A key for one use of a tracking key: HKDF-SHA256 (RFC 5869) under ``label``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(key)


def token_key(key: bytes) -> bytes:
    """The AES-256-SIV key (64 bytes) that seals open, click and unsubscribe tokens."""
    return derive_key(key, _TOKEN_LABEL, 64)


def _pref_aead(key: bytes) -> AESGCM:
    return AESGCM(derive_key(key, _PREF_LABEL))


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
    #: The key that sealed (or, before tokens were sealed, signed) it.
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
    """Opens tokens with a key ring (old keys stay here after rotation).

    ``signed_days``: how long after sending an old signed-only open or click
    token (mail sent before tokens were sealed) is still accepted; ``0``
    refuses them.  A signed unsubscribe token is always accepted, as an
    unsubscribe link never expires.  ``clock`` gives the time for that.
    """

    __slots__ = ("_aead", "_clock", "_keys", "_signed_secs", "_siv")

    def __init__(
        self,
        keys: Mapping[str, bytes],
        *,
        signed_days: float = SIGNED_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = check_keys(keys)
        self._aead = {kid: _pref_aead(k) for kid, k in self._keys.items()}
        self._siv = {kid: AESSIV(token_key(k)) for kid, k in self._keys.items()}
        self._signed_secs = max(0.0, signed_days) * 86400.0
        self._clock = clock

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
        siv = self._siv.get(kid)
        if siv is None or not dot:
            return None
        raw = b64_decode_strict(body)
        if raw is None or len(raw) <= TAG_SIZE:
            return None
        try:
            payload = siv.decrypt(raw, [kid.encode("ascii")])
        except InvalidTag:
            return self._decode_signed(kid, raw, kind)
        return self._payload(kid, payload, kind)

    def _decode_signed(self, kid: str, raw: bytes, kind: TokenKind | None) -> TokenPayload | None:
        """An old signed-only token (payload || HMAC tag), within its transition period."""
        payload, tag = raw[:-TAG_SIZE], raw[-TAG_SIZE:]
        msg = kid.encode("ascii") + b"." + payload
        expect = hmac.digest(self._keys[kid], msg, "sha256")[:TAG_SIZE]
        if not hmac.compare_digest(expect, tag):
            return None
        p = self._payload(kid, payload, kind)
        if p is None or p.kind == "unsubscribe":
            return p
        return p if self._clock() - p.sent_at <= self._signed_secs else None

    @staticmethod
    def _payload(kid: str, payload: bytes, kind: TokenKind | None) -> TokenPayload | None:
        try:
            message_id, recipient, job, sent_at, k, url = _DECODER.decode(payload)
        except msgspec.DecodeError:  # pragma: no cover - only a key holder can seal
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
    "SIGNED_DAYS",
    "TAG_SIZE",
    "PreferencesPayload",
    "TokenKind",
    "TokenPayload",
    "TokenVerifier",
    "check_keys",
    "derive_key",
    "token_key",
]
