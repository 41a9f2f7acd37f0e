"""`mailsflux keys generate` makes a private key and the DNS record that verifies it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.dkim.keyfiles import txt_path_for
from tests._cli import run_cli
from tests._mail import dkim_verify, txt_record

MESSAGE = (
    b"From: A <a@mail.example.net>\r\nTo: b@example.com\r\nSubject: hello\r\n"
    b"Date: Fri, 27 Nov 2026 04:00:00 +0000\r\n"
    b"Message-ID: <1@mail.example.net>\r\n\r\nHi there.\r\n"
)


KEYGEN = ("keys", "generate", "--domain", "mail.example.net", "--selector", "s2026")


@pytest.mark.parametrize(
    ("algorithm", "k"), [("rsa-sha256", "k=rsa"), ("ed25519-sha256", "k=ed25519")]
)
def test_generate_then_sign_then_verify(tmp_path: Path, algorithm: str, k: str) -> None:
    proc = run_cli(
        *KEYGEN,
        "--algorithm",
        algorithm,
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    key = tmp_path / "s2026.mail.example.net.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    zone = txt_path_for(key).read_text()
    assert zone.startswith("s2026._domainkey.mail.example.net. IN TXT (")
    assert k in zone
    assert all(len(s) <= 255 for s in zone.split('"')[1::2])
    signed = run_cli(
        "sign",
        "--domain",
        "mail.example.net",
        "--selector",
        "s2026",
        "--key",
        str(key),
        "--algorithm",
        algorithm,
        stdin=MESSAGE,
    )
    assert signed.returncode == 0, signed.stderr
    data = signed.stdout.encode()
    assert data.startswith(b"DKIM-Signature:")
    assert dkim_verify(
        data, txt_record(txt_path_for(key)), selector="s2026", domain="mail.example.net"
    )
    again = run_cli(*KEYGEN, "--out", str(tmp_path))
    assert again.returncode == 2 and "exists" in again.stderr
    assert "--force" in again.stderr and "overwrite=True" not in again.stderr


def test_generate_for_a_unicode_domain_names_the_a_label(tmp_path: Path) -> None:
    proc = run_cli(
        "keys", "generate", "--domain", "bücher.example", "--selector", "s1", "--out", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr
    key = tmp_path / "s1.xn--bcher-kva.example.pem"
    zone = txt_path_for(key).read_text()
    assert zone.startswith("s1._domainkey.xn--bcher-kva.example. IN TXT (")
    assert "xn--bcher-kva.example" in proc.stdout
    signed = run_cli(
        "sign", "--domain", "bücher.example", "--selector", "s1", "--key", str(key), stdin=MESSAGE
    )
    assert signed.returncode == 0, signed.stderr
    assert dkim_verify(
        signed.stdout.encode(),
        txt_record(txt_path_for(key)),
        selector="s1",
        domain="xn--bcher-kva.example",
    )
