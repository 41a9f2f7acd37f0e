"""`mailsflux domains check`: bad input is one line and exit 2; a reserved domain
is exempt (exit 0, no DNS); DNS that does not answer is exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.cli import main
from tests._auth import DOMAIN, cli_args, write_key
from tests._dns import REFUSED, DNSServer


def test_without_key_or_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["domains", "check", DOMAIN]) == 2
    assert capsys.readouterr().err == (
        "mailsflux: error: give --job JOB.toml, or --key FILE with --selector S\n"
    )


def test_not_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "k.pem").write_text("hello\n")
    args = ["domains", "check", DOMAIN, "--key", str(tmp_path / "k.pem"), "--selector", "s1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a PEM private key" in err


def test_reserved_domain_is_exempt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, _ = write_key(tmp_path)
    with DNSServer({}) as dns:
        args = cli_args(dns.port, key)
        args[2] = "shop.example"
        assert main(args) == 0
        assert dns.count() == 0
    assert "shop.example is a reserved domain" in capsys.readouterr().out


def test_dns_refusing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, _ = write_key(tmp_path)
    with DNSServer({DOMAIN: REFUSED, f"_dmarc.{DOMAIN}": REFUSED}) as dns:
        assert main(cli_args(dns.port, key)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot check {DOMAIN}" in err
