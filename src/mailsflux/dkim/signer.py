"""The DKIM signer (RFC 6376, RFC 8463) over the compiled canonicalizer.

Per message the work is: normalize + locate header fields and canonicalize +
hash the body (compiled, :mod:`mailsflux.dkim._canon`), pick the ``h=`` list (cached
per header-count pattern), assemble the DKIM-Signature field from
preformatted pieces, canonicalize the signed fields + that field (compiled),
and one private-key operation: ``cryptography``'s, or for Ed25519
libsodium's where PyNaCl is installed (:mod:`mailsflux.dkim.sodium`).

Signature field layout (b= is last, so removing its value for hashing is
removing everything after ``b=``, as RFC 6376 section 3.7 asks)::

    DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;
     s=sel; t=1700000000; x=1700086400;
     h=From:From:Sender:Reply-To:To:To:Cc:Subject:Subject:Date:Date:...;
     bh=<base64 SHA-256 of the canonical body>;
     b=<base64 signature, folded every 76 characters>
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from mailsflux.dkim._canon import Message, Policy, SigningPlan, dkim_field
from mailsflux.dkim.keys import (
    RSA_SHA256,
    PrivateKey,
    ascii_domain,
    check_algorithm,
    load_private_key,
)
from mailsflux.dkim.sodium import CRYPTOGRAPHY, ed25519_signer
from mailsflux.errors import DKIMError

#: The oversigning policy (RFC 6376 section 8.15, with the h= selection rule
#: of section 5.4.2): each of these is named in h= once more than the message
#: has it, so also once when it is absent (Reply-To, Cc, ...).  The extra
#: entry signs "no further field of this name", so a replayer who adds one
#: above the signed ones, where readers look, breaks the signature.  These are
#: the fields that change what a reader sees, whom a reply reaches, how the
#: body is decoded, or where an unsubscribe goes (RFC 8058 section 4 asks for
#: List-Unsubscribe and List-Unsubscribe-Post to be signed).
OVERSIGNED: tuple[str, ...] = (
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
#: Signed by default, each as many times as the message has it, those in
#: :data:`OVERSIGNED` once more.  Trace fields (Received, ARC) and the rest
#: stay addable by relays.
DEFAULT_HEADERS: tuple[str, ...] = (*OVERSIGNED, "Feedback-ID")
_OVERSIGNED_LOWER = frozenset(n.lower() for n in OVERSIGNED)

_MAX_LINE = 78
_B_FIRST = 72  # " b=" + 72 = 75 columns on the first b= line
_B_WIDTH = 76  # " " + 76 = 77 columns on the following ones
_FIELD_NAME_RE = re.compile(r"[!-9<-~]+")  # RFC 5322 ftext minus ';' (a tag-list separator)
_IDENTITY_RE = re.compile(r"[!-:<-~]*@[A-Za-z0-9._-]+")

_RSA_PADDING = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def _fold_tags(first: str, tags: Sequence[str]) -> str:
    """``first`` then ``tags`` joined by ``"; "``/``";\\r\\n "`` within 78 columns."""
    out = first
    col = len(first)
    for i, tag in enumerate(tags):
        piece = tag + ";"
        if i and col + 1 + len(piece) > _MAX_LINE:
            out += "\r\n " + piece
            col = 1 + len(piece)
        else:
            out += (" " if i or first.endswith(":") else "") + piece
            col += 1 + len(piece)
    return out


class Signer:
    """Signs messages for one ``d=`` domain, selector and key.

    Build it once (the key is parsed and checked here, and cached process-wide
    per domain, selector and key source) and call :meth:`sign` per message.
    ``headers=None`` signs :data:`DEFAULT_HEADERS`, each as many times as the
    message has it, those in :data:`OVERSIGNED` once more.  A given ``headers``
    list is used as the ``h=`` tag verbatim: each name covers the next field
    of that name from the bottom (RFC 6376 section 5.4.2); listing a name more
    often than the message has it "oversigns" it.  It must include From.
    """

    # Layout knobs for reproducing published vectors exactly (tests set these
    # in a subclass): the h= separator and whether q=dns/txt is written.
    _h_separator: ClassVar[str] = ":"
    _query_tag: ClassVar[bool] = False

    domain: str
    selector: str
    algorithm: str
    canonicalization: str
    identity: str | None
    expire_after: int | None

    def __init__(
        self,
        *,
        domain: str,
        selector: str,
        key: bytes | str | os.PathLike[str],
        algorithm: str = RSA_SHA256,
        canonicalization: str = "relaxed/relaxed",
        headers: Sequence[str] | None = None,
        expire_after: int | None = None,
        identity: str | None = None,
    ) -> None:
        self.algorithm = check_algorithm(algorithm)
        self.domain = ascii_domain(domain, "domain")
        self.selector = ascii_domain(selector, "selector")
        self._policy = Policy(canonicalization)
        self.canonicalization = self._policy.value
        if expire_after is not None and (
            isinstance(expire_after, bool) or not isinstance(expire_after, int) or expire_after <= 0
        ):
            raise DKIMError("expire_after must be a positive number of seconds", field="x")
        self.expire_after = expire_after
        if identity is not None:
            if not _IDENTITY_RE.fullmatch(identity):
                raise DKIMError(f"identity {identity!r} is not an i= value", field="i")
            idom = identity.rpartition("@")[2].lower()
            dom = self.domain.lower()
            if idom != dom and not idom.endswith("." + dom):
                raise DKIMError(
                    f"identity {identity!r} must be in {self.domain} or a subdomain", field="i"
                )
        self.identity = identity
        self._key: PrivateKey = load_private_key(
            key, algorithm=algorithm, domain=self.domain, selector=self.selector
        )
        self._ed25519: ed25519.Ed25519PrivateKey | None = None
        self._rsa: rsa.RSAPrivateKey | None = None
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            self._ed25519 = self._key
        else:
            self._rsa = self._key
        #: The signature of the header hash input that SigningPlan.prepare gives.
        self._sign_data: Callable[[bytes], bytes]
        #: The library that makes the signatures (libsodium or cryptography).
        self.sign_library = CRYPTOGRAPHY
        if self._ed25519 is not None:
            self._sign_data, self.sign_library = ed25519_signer(self._ed25519)
        else:
            rsa_key = self._rsa
            assert rsa_key is not None
            self._sign_data = lambda data: rsa_key.sign(data, _RSA_PADDING, _SHA256)
        self._header_relaxed = self._policy.header_relaxed
        self._body_relaxed = self._policy.body_relaxed

        if headers is None:
            self._default = True
            self.headers: tuple[str, ...] = DEFAULT_HEADERS
        else:
            if isinstance(headers, str | bytes):
                raise TypeError("headers must be a sequence of header names, not a string")
            names = tuple(headers)
            for name in names:
                if not isinstance(name, str) or not _FIELD_NAME_RE.fullmatch(name):
                    raise DKIMError(f"{name!r} is not a header field name", field="headers")
            if "from" not in (n.lower() for n in names):
                raise DKIMError("headers must include From (RFC 6376 section 5.4)", field="headers")
            self._default = False
            self.headers = names
        self._lnames = tuple(n.lower().encode("ascii") for n in self.headers)
        self._from_index = self._lnames.index(b"from")
        self._h_cache: dict[tuple[int, ...], tuple[tuple[bytes, ...], bytes]] = {}
        if not self._default:
            self._fixed = (self._lnames, self._fold_h(self.headers))

        tags = ["v=1", f"a={algorithm}", f"c={self.canonicalization}", f"d={self.domain}"]
        if identity is not None:
            tags.append(f"i={identity}")
        if self._query_tag:
            tags.append("q=dns/txt")
        tags.append(f"s={self.selector}")
        # Lay t= (and x=) out with 10-digit placeholders, then cut before the digits.
        tags.append("t=0000000000; x=0000000000" if expire_after else "t=0000000000")
        head = _fold_tags("DKIM-Signature:", tags)
        self._head = head[: head.rindex("t=") + 2].encode("ascii")
        self._plan = SigningPlan(
            self._lnames if self._default else None,
            self._from_index,
            self._h_for,
            self._h_cache,
            None if self._default else self._fixed,
            self._head,
            expire_after,
            self._header_relaxed,
            self._body_relaxed,
            self._ed25519 is not None,
        )

    # -- per message -----------------------------------------------------

    def _fold_h(self, names: Sequence[str]) -> bytes:
        sep = self._h_separator
        out = "h="
        col = 3  # " h="
        for i, name in enumerate(names):
            piece = name + (sep.rstrip() if i < len(names) - 1 else ";")
            lead = sep[len(sep.rstrip()) :] if i else ""
            if i and col + len(lead) + len(piece) > _MAX_LINE:
                out += "\r\n " + piece
                col = 1 + len(piece)
            else:
                out += lead + piece
                col += len(lead) + len(piece)
        return out[2:-1].encode("ascii")

    def _h_for(self, counts: tuple[int, ...]) -> tuple[tuple[bytes, ...], bytes]:
        entry = self._h_cache.get(counts)
        if entry is None:
            names: list[str] = []
            lnames: list[bytes] = []
            for name, lname, count in zip(self.headers, self._lnames, counts, strict=True):
                times = count + 1 if name.lower() in _OVERSIGNED_LOWER else count
                names.extend([name] * times)
                lnames.extend([lname] * times)
            entry = (tuple(lnames), self._fold_h(names))
            if len(self._h_cache) < 256:
                self._h_cache[counts] = entry
        return entry

    def _parts(self, msg: Message, timestamp: int | None) -> tuple[bytes, bytes]:
        """(the field up to ``b=``, the signature): everything but the b= layout."""
        # One compiled call: the h= choice, t=, the body hash, the unsigned
        # field and the header hash input (for Ed25519 its SHA-256, RFC 8463
        # section 3: PureEdDSA over the hash).
        prepared = self._plan.prepare(msg, timestamp)
        if prepared is None:
            raise _no_from()
        unsigned, data = prepared
        return unsigned, self._sign_data(data)

    def _signature(self, msg: Message, timestamp: int | None) -> bytes:
        unsigned, sig = self._parts(msg, timestamp)
        return dkim_field(unsigned, sig, _B_FIRST, _B_WIDTH, b"")

    def signature(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """The folded ``DKIM-Signature`` field for ``message``, ending in CRLF."""
        return self._signature(_message(message), timestamp)

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """``message`` (normalized to CRLF) with its ``DKIM-Signature`` field on top."""
        (signed,) = self.sign_many([(message, timestamp)])
        if isinstance(signed, DKIMError):
            raise signed
        return signed

    def sign_many(self, messages: Sequence[tuple[bytes, int | None]]) -> list[bytes | DKIMError]:
        """:meth:`sign` of each ``(message, timestamp)``, in order: the signed
        message, or the :class:`DKIMError` sign() would raise for it. One
        frame for a batch (the composer's), not two a message."""
        # The loop in compiled code: prepare, sign, the field on top, each message.
        return self._plan.sign_many(
            messages if isinstance(messages, list) else list(messages),
            self._sign_data,
            _B_FIRST,
            _B_WIDTH,
            _message,
            _no_from,
        )

    def __repr__(self) -> str:
        return (
            f"Signer(domain={self.domain!r}, selector={self.selector!r}, "
            f"algorithm={self.algorithm!r}, canonicalization={self.canonicalization!r})"
        )


def _message(message: bytes) -> Message:
    if type(message) is not bytes:
        if not isinstance(message, bytes | bytearray | memoryview):
            raise TypeError(f"message must be bytes, not {type(message).__name__}")
        message = bytes(message)
    return Message(message)


def _no_from() -> DKIMError:
    return DKIMError(
        "message has no From header field, which DKIM must sign (RFC 6376 section 5.4)",
        field="From",
    )


def signatures(
    message: bytes, signers: Iterable[Signer], *, timestamp: int | None = None
) -> tuple[list[bytes], bytes]:
    """One signature per signer over one parse; returns (fields, normalized message)."""
    msg = _message(message)
    t = int(time.time()) if timestamp is None else timestamp
    fields = [s._signature(msg, t) for s in signers]
    return fields, msg.data


def sign_all(message: bytes, signers: Iterable[Signer], *, timestamp: int | None = None) -> bytes:
    """Sign ``message`` with every signer (e.g. RSA and Ed25519); first signer on top."""
    fields, data = signatures(message, signers, timestamp=timestamp)
    if not fields:
        raise DKIMError("sign_all needs at least one signer")
    fields.append(data)
    return b"".join(fields)


class MultiSigner:
    """Several signers used like one: ``MultiSigner([rsa, ed]).sign(message)``.

    The message is parsed and each body canonicalization hashed once; the
    fields are written in the order of ``signers``, the first on top.  Same
    ``sign``/``signature`` methods as :class:`Signer`, so either can be passed
    where a signer is expected.
    """

    def __init__(self, signers: Iterable[Signer]) -> None:
        self.signers = tuple(signers)
        if not self.signers:
            raise DKIMError("MultiSigner needs at least one signer")

    def signature(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        fields, _ = signatures(message, self.signers, timestamp=timestamp)
        return b"".join(fields)

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        return sign_all(message, self.signers, timestamp=timestamp)

    def __repr__(self) -> str:
        return f"MultiSigner({list(self.signers)!r})"
