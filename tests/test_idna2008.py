"""Unicode domains are encoded with IDNA 2008 (UTS 46 non-transitional), never
IDNA 2003, which sends ``straße.de`` mail to ``strasse.de``, another domain.
Every place a domain is encoded agrees: addresses, the comparison form, DKIM
``d=``/``s=``, the key's file names and its DNS record name."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.compose import idna_domain, normalize_address, parse_address
from mailsflux.dkim import Signer
from mailsflux.dkim.keyfiles import txt_path_for
from mailsflux.dkim.keygen import generate_private_key
from mailsflux.dkim.keys import ascii_domain
from mailsflux.errors import AddressError, DKIMError
from tests._cli import run_cli

# (U-label domain, its IDNA 2008 A-label form); IDNA 2003 gives another for each.
CASES = [
    ("straße.de", "xn--strae-oqa.de"),  # 2003: strasse.de
    ("Straße.DE", "xn--strae-oqa.de"),
    # Capital sigma maps to a medial one (str.lower() would make it final).
    ("\u039f\u0394\u039f\u03a3.gr", "xn--pxavbq.gr"),
    ("\u03bf\u03b4\u03bf\u03c2.gr", "xn--pxavbm.gr"),  # final sigma kept (2003: pxavbq)
    ("\u03bf\u03b4\u03cc\u03c2.gr", "xn--pxavk3b.gr"),  # 2003: xn--pxavn9a
    ("\u03c2.gr", "xn--3xa.gr"),  # 2003: xn--4xa
    ("\u0dc1\u0dca\u200d\u0dbb\u0dd3.lk", "xn--10cl1a0b660p.lk"),  # ZWJ kept (2003 drops it)
    ("bücher.example", "xn--bcher-kva.example"),
    ("bücher。example", "xn--bcher-kva.example"),  # ideographic full stop is a dot
]


@pytest.mark.parametrize(("domain", "a_label"), CASES)
def test_addresses_use_idna_2008(domain: str, a_label: str) -> None:
    assert str(parse_address(f"anna@{domain}")) == f"anna@{a_label}"
    assert idna_domain(domain) == a_label
    assert normalize_address(f"Anna@{domain}") == f"anna@{a_label}"
    assert normalize_address(f"anna@{a_label}") == normalize_address(f"anna@{domain}")


@pytest.mark.parametrize(("domain", "a_label"), CASES)
def test_dkim_domain_uses_idna_2008(domain: str, a_label: str) -> None:
    assert ascii_domain(domain, "domain") == a_label
    signer = Signer(
        domain=domain,
        selector="s1",
        key=generate_private_key("ed25519-sha256", 0),
        algorithm="ed25519-sha256",
    )
    signed = signer.sign(b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n")
    header = signed.partition(b"\r\n\r\n")[0].decode()
    assert f"d={a_label};" in header.replace("\r\n", "").replace(" ", "").replace("\t", "")


@pytest.mark.parametrize(
    "domain",
    [
        "a\u200db.de",  # ZWJ outside the context RFC 5892 allows
        "\u0661a.de",  # bidi rule broken
        "a\ufffe.de",  # a noncharacter
        "x\u00a0y.de",  # a no-break space maps to a space: not a label
        "-ü.de",
        "ü" * 60 + ".de",  # label longer than 63 octets once encoded
        "\ud800ü.de",  # lone surrogate
    ],
)
def test_invalid_idna_2008_domain_is_a_clear_error(domain: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_address(f"anna@{domain}")
    assert "anna@" in str(info.value)
    with pytest.raises(DKIMError) as dk:
        ascii_domain(domain, "domain")
    assert dk.value.field == "domain"
    # The comparison form never fails: it falls back to the text itself.
    assert normalize_address(f"anna@{domain}").startswith("anna@")


def test_cli_keys_and_sign_use_idna_2008(tmp_path: Path) -> None:
    proc = run_cli(
        "keys",
        "generate",
        "--domain",
        "straße.de",
        "--selector",
        "s1",
        "--algorithm",
        "ed25519-sha256",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    key = tmp_path / "s1.xn--strae-oqa.de.pem"
    assert key.exists(), sorted(p.name for p in tmp_path.iterdir())
    assert txt_path_for(key).read_text().startswith("s1._domainkey.xn--strae-oqa.de. IN TXT")
    assert not (tmp_path / "s1.strasse.de.pem").exists()
    bad = run_cli(
        "keys", "generate", "--domain", "a\u200db.de", "--selector", "s1", "--out", str(tmp_path)
    )
    assert bad.returncode == 2, bad.stderr
    assert "Traceback" not in bad.stderr and "IDNA 2008" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
