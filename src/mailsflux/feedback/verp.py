"""VERP return paths: ``bounces+TOKEN@bounce-domain``, sealed, no lookup.

The token carries the message id, recipient, job and tenant of one message,
encrypted and authenticated with AES-SIV (RFC 5297) under a key derived
(HKDF-SHA256) from a tracking key, so one key ring serves both: rotating a
tracking key rotates VERP too, and old keys keep opening bounces for mail
already sent.  AES-SIV needs no nonce (its 16-byte tag is the IV), which
keeps the token short; being deterministic only shows that two bounces are
for the same message and recipient, which the bounces say anyway.

Spelling: lowercase base32 without padding.  Local parts are case-folded by
some MTAs and forwarders, and base64 would not survive that; ``+`` is the
usual subaddress separator every MTA passes through.  The body is
``key_hint(2) || AES-SIV(payload)``: the hint (the first two bytes of
SHA-256 of the key id) picks the key without spelling the case-sensitive id.

Length: the token is about 1.6 characters per payload byte; a typical
message (60-character message id, 30-character address) gives a local part
near 200 characters, past RFC 5321's 64-octet limit for local parts.  Postfix,
Exim, Sendmail, Exchange and the large mailbox providers accept and return
them (RFC 5321 4.5.3.1 asks implementations not to enforce the limit); a
site that does enforce it returns the mail to the envelope sender's domain
in the DSN anyway, so keep message ids and job names short when that matters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Final

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mailsflux.compose import idna_domain
from mailsflux.errors import AddressError, ConfigError
from mailsflux.tracking.tokens import check_keys

#: Longest local part opened (characters): a bound on work per RCPT.
MAX_LOCAL: Final = 1024
_INFO: Final = b"mailsflux verp v1"
_B32: Final = frozenset("abcdefghijklmnopqrstuvwxyz234567")

_Wire = tuple[str, str, str, str]
_DECODER: Final = msgspec.msgpack.Decoder(_Wire)
_ENCODER: Final = msgspec.msgpack.Encoder()


class VerpPayload(msgspec.Struct, frozen=True):
    """What a genuine VERP token says."""

    message_id: str
    recipient: str
    job: str
    tenant: str
    #: The tracking key it was sealed with.
    key_id: str


def _hint(kid: str) -> bytes:
    return hashlib.sha256(kid.encode("ascii")).digest()[:2]


def _derive(key: bytes, kid: str) -> AESSIV:
    okm = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=None, info=_INFO + b"|" + kid.encode("ascii")
    ).derive(key)
    return AESSIV(okm)


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes | None:
    if not text or not set(text) <= _B32 or len(text) % 8 in (1, 3, 6):
        return None
    try:
        raw = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    return raw if _b32(raw) == text else None  # one spelling per token


class Verp:
    """Makes and opens VERP addresses with a tracking key ring.

    ``Verp(keys, "k2", "bounce.example.com")``; ``prefix`` is the local
    part before the ``+`` (``bounces``).
    """

    def __init__(
        self,
        keys: Mapping[str, bytes],
        current_key_id: str,
        domain: str,
        *,
        prefix: str = "bounces",
    ) -> None:
        ring = check_keys(keys, current_key_id)
        try:
            # The one domain form (A-label, lower case, no root dot): a Unicode
            # bounce domain would make MAIL FROM need SMTPUTF8.
            domain = idna_domain(domain.strip())
        except AddressError:
            raise ConfigError(
                f"bounce domain {domain!r} is not a domain name", field="bounce_domain"
            ) from None
        if not prefix or any(c in prefix for c in '+@ \t\r\n"<>'):
            raise ConfigError(f"VERP prefix {prefix!r} is not a plain local part", field="prefix")
        self.domain = domain
        self.prefix = prefix.lower()
        self.current_key_id = current_key_id
        self._seal = _derive(ring[current_key_id], current_key_id)
        self._hint = _hint(current_key_id)
        # Two ids may share a hint: each one sharing it is tried.
        self._open: dict[bytes, list[tuple[str, AESSIV]]] = {}
        for kid, key in ring.items():
            self._open.setdefault(_hint(kid), []).append((kid, _derive(key, kid)))

    def make(self, message_id: str, recipient: str, job: str = "", tenant: str = "") -> str:
        """The return path for one message to one recipient."""
        payload = _ENCODER.encode((message_id, recipient, job, tenant))
        sealed = self._seal.encrypt(payload, [self._hint])
        return f"{self.prefix}+{_b32(self._hint + sealed)}@{self.domain}"

    def open(self, address: str) -> VerpPayload | None:
        """The payload of a genuine VERP address of this domain, else ``None``.

        The case of the whole address is ignored; angle brackets are allowed.
        """
        if not isinstance(address, str) or len(address) > MAX_LOCAL + 256:
            return None
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at:
            return None
        try:
            if idna_domain(domain) != self.domain:
                return None
        except AddressError:
            return None
        return self.open_local(local)

    def open_local(self, local: str) -> VerpPayload | None:
        """Like :meth:`open`, for a local part (``bounces+TOKEN``)."""
        if len(local) > MAX_LOCAL:
            return None
        head, plus, token = local.lower().partition("+")
        if not plus or head != self.prefix:
            return None
        raw = _unb32(token)
        if raw is None or len(raw) < 2 + 16:
            return None
        for kid, siv in self._open.get(raw[:2], ()):
            try:
                payload = siv.decrypt(raw[2:], [raw[:2]])
            except InvalidTag:
                continue
            try:
                message_id, recipient, job, tenant = _DECODER.decode(payload)
            except msgspec.DecodeError:  # pragma: no cover - only a key holder can seal
                return None
            return VerpPayload(message_id, recipient, job, tenant, kid)
        return None

    def is_verp(self, address: str) -> bool:
        return self.open(address) is not None


__all__ = ["MAX_LOCAL", "Verp", "VerpPayload"]
