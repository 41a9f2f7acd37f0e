"""DKIM signing (RFC 6376 with RSA-SHA256, RFC 8463 with Ed25519-SHA256).

Build a :class:`Signer` once per domain/selector/key and call
:meth:`Signer.sign` per message::

    signer = Signer(domain="example.com", selector="mail", key="keys/mail.pem")
    signed = signer.sign(message_bytes)

Defaults: ``rsa-sha256``, ``c=relaxed/relaxed``, ``t=`` always, and the
header fields of :data:`DEFAULT_HEADERS`, each as often as the message has
it and those of :data:`OVERSIGNED` once more, also when absent, so none of
them can be added later (RFC 6376 section 8.15).  Any RFC 5322 message can be signed:
bare LF line ends are normalized to CRLF (the returned message is the
normalized one), folded headers, long lines and 8-bit bodies are fine.

Dual signing (e.g. RSA for reach plus Ed25519): ``sign_all(message,
[rsa_signer, ed_signer])`` or ``MultiSigner([rsa_signer, ed_signer]).sign(
message)``; the message is parsed and each body canonicalization hashed
once, and the fields are written in list order, the first on top.

Errors: :class:`mailsflux.errors.DKIMKeyError` for key problems (``file``
names the key file), :class:`mailsflux.errors.DKIMError` for everything
else (e.g. a message without From: ``field="From"``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from mailsflux.dkim import keys as _keys
from mailsflux.dkim.keyfiles import ensure_key, txt_path_for
from mailsflux.dkim.keygen import (
    dns_txt_record,
    generate_private_key,
    write_key_pair,
    zone_file_line,
)
from mailsflux.dkim.keys import PrivateKey, ascii_domain
from mailsflux.dkim.signer import DEFAULT_HEADERS, OVERSIGNED, MultiSigner, Signer, sign_all


def sign(
    message: bytes,
    *,
    domain: str,
    selector: str,
    key: bytes | str | os.PathLike[str],
    algorithm: str = "rsa-sha256",
    canonicalization: str = "relaxed/relaxed",
    headers: Sequence[str] | None = None,
    timestamp: int | None = None,
    expire_after: int | None = None,
) -> bytes:
    """Sign one message: ``DKIM-Signature`` field + the CRLF-normalized message.

    For many messages build a :class:`Signer` once instead (the key itself is
    cached either way).
    """
    signer = Signer(
        domain=domain,
        selector=selector,
        key=key,
        algorithm=algorithm,
        canonicalization=canonicalization,
        headers=headers,
        expire_after=expire_after,
    )
    return signer.sign(message, timestamp=timestamp)


def load_private_key(
    key: bytes | str | os.PathLike[str], *, algorithm: str = "rsa-sha256"
) -> PrivateKey:
    """Parse and check a DKIM private key (PEM bytes, or the path of a PEM file).

    RSA keys must have 1024 to 4096 bits.  Parsed keys are cached per key
    bytes, or per path and the file's mtime/size/inode.  Raises
    :class:`~mailsflux.errors.DKIMKeyError` with ``file`` set to the path.
    """
    return _keys.load_private_key(key, algorithm=algorithm)


__all__ = [
    "DEFAULT_HEADERS",
    "OVERSIGNED",
    "MultiSigner",
    "PrivateKey",
    "Signer",
    "ascii_domain",
    "dns_txt_record",
    "ensure_key",
    "generate_private_key",
    "load_private_key",
    "sign",
    "sign_all",
    "txt_path_for",
    "write_key_pair",
    "zone_file_line",
]
