"""DKIM key generation and the DNS TXT records that publish them.

- :func:`generate_private_key`: a new key as PKCS#8 PEM (RSA or Ed25519).
- :func:`dns_txt_record`: the ``v=DKIM1`` TXT record for a private key
  (RSA: ``p=`` is the base64 SubjectPublicKeyInfo, RFC 6376 section 3.6.1;
  Ed25519: ``p=`` is the base64 raw 32-byte public key, RFC 8463 section 4).
- :func:`write_key_pair`: both, written to ``<selector>.<domain>.pem``
  (mode 0600) and ``<selector>.<domain>.txt`` (a zone-file line), the domain
  as its IDNA A-label (``bücher.example`` -> ``xn--bcher-kva.example``).
"""

from __future__ import annotations

import base64
import os
import pathlib
import tempfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailsflux.dkim.keys import (
    ED25519_SHA256,
    RSA_MAX_BITS,
    RSA_MIN_BITS,
    RSA_SHA256,
    ascii_domain,
    check_algorithm,
    parse_private_key,
)
from mailsflux.errors import DKIMError, DKIMKeyError

_TXT_CHUNK = 255  # a DNS character-string holds at most 255 octets


def generate_private_key(algorithm: str = RSA_SHA256, bits: int = 2048) -> bytes:
    """A new private key for ``algorithm`` as unencrypted PKCS#8 PEM.

    ``bits`` (RSA only) must be 1024 to 4096; 2048 is the usual choice.
    """
    check_algorithm(algorithm)
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == RSA_SHA256:
        if (
            isinstance(bits, bool)
            or not isinstance(bits, int)
            or not (RSA_MIN_BITS <= bits <= RSA_MAX_BITS)
        ):
            raise DKIMError(
                f"RSA key of {bits} bits: need {RSA_MIN_BITS} to {RSA_MAX_BITS}", field="bits"
            )
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def dns_txt_record(private_pem: bytes, *, algorithm: str = RSA_SHA256) -> str:
    """The DKIM TXT record publishing the public half of ``private_pem``."""
    key = parse_private_key(private_pem, algorithm)
    if algorithm == ED25519_SHA256:
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode("ascii")
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode("ascii")


def zone_file_line(record: str, *, domain: str, selector: str) -> str:
    """``<selector>._domainkey.<domain>. IN TXT ( "v=DKIM1; k=...; " "p=..." )``.

    The tags before ``p=`` make the first string; the ``p=`` tag follows in
    strings of at most 255 characters.
    """
    head, sep, p = record.partition("p=")
    strings = [head] if sep else []
    rest = sep + p if sep else record
    strings += [rest[i : i + _TXT_CHUNK] for i in range(0, len(rest), _TXT_CHUNK)]
    quoted = " ".join(f'"{s}"' for s in strings if s)
    # The zone holds A-labels: the name verifiers look up is built from d= and s=.
    name = f"{ascii_domain(selector, 'selector')}._domainkey.{ascii_domain(domain, 'domain')}"
    return f"{name}. IN TXT ( {quoted} )"


def _write_atomic(path: pathlib.Path, data: bytes, mode: int, overwrite: bool) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path appeared meanwhile
            os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_key_pair(
    directory: str | os.PathLike[str],
    *,
    domain: str,
    selector: str,
    algorithm: str = RSA_SHA256,
    bits: int = 2048,
    overwrite: bool = False,
) -> tuple[pathlib.Path, pathlib.Path]:
    """Generate a key; write ``<selector>.<domain>.pem`` (0600) and ``.txt``.

    The domain and selector are written as A-labels (a U-label is converted).

    The ``.txt`` file holds the zone-file line to publish.  Existing files
    are kept unless ``overwrite`` (:class:`~mailsflux.errors.DKIMKeyError`
    naming the file otherwise).  Returns ``(pem_path, txt_path)``.
    """
    check_algorithm(algorithm)
    # A-labels in the file names too: they match the record and d=, and a
    # selector can never carry a path separator.
    domain = ascii_domain(domain, "domain")
    selector = ascii_domain(selector, "selector")
    folder = pathlib.Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    pem_path = folder / f"{selector}.{domain}.pem"
    txt_path = folder / f"{selector}.{domain}.txt"
    if not overwrite:
        for p in (pem_path, txt_path):
            if p.exists():
                raise DKIMKeyError(
                    "key file exists; pass overwrite=True to replace it", file=str(p)
                )
    pem = generate_private_key(algorithm, bits)
    line = zone_file_line(
        dns_txt_record(pem, algorithm=algorithm), domain=domain, selector=selector
    )
    try:
        _write_atomic(pem_path, pem, 0o600, overwrite)
        _write_atomic(txt_path, (line + "\n").encode("ascii"), 0o644, overwrite)
    except FileExistsError as exc:
        raise DKIMKeyError(
            "key file exists; pass overwrite=True to replace it", file=str(exc.filename)
        ) from None
    return pem_path, txt_path


__all__ = ["dns_txt_record", "generate_private_key", "write_key_pair", "zone_file_line"]
