"""A wrong server config is one line naming the file or field, exit 2, nothing started."""

from __future__ import annotations

from pathlib import Path

from tests._cli import run_cli

CASES = {
    "unknown table": ("[htp]\nlisten = '127.0.0.1:0'\n", "unknown field `htp`"),
    "bad listen": ("[http]\nlisten = 'nowhere'\n", "expected HOST:PORT"),
    "two tenants, no domains": (
        "[[tenants]]\nname = 'a'\ndomains = ['a.example']\n[[tenants]]\nname = 'b'\n",
        "tenant 'b' has no domains",
    ),
    "bad tenant name": ("[[tenants]]\nname = 'A B'\n", "tenant name 'A B'"),
    "unknown region": (
        "[[tenants]]\nname = 'a'\ndomains = ['a.example']\nregion = 'mars'\n",
        "region 'mars' is not in [regions]",
    ),
    "redis beside regions": (
        "[regions]\neu = 'eu'\n[redis]\nurl = 'redis://127.0.0.1:6379/0'\n"
        "[[tenants]]\nname = 'a'\ndomains = ['a.example']\nregion = 'eu'\n",
        "[redis] beside tenants in [regions]",
    ),
    "not toml": ("[http\n", "invalid config"),
    "webhook in clear text": (
        "[[tenants]]\nname = 'a'\n[[tenants.webhooks]]\nurl = 'http://hooks.example/x'\n"
        "secret = '0123456789abcdef'\n",
        "would send recipients' addresses unencrypted",
    ),
    "webhook event type": (
        "[[tenants]]\nname = 'a'\n[[tenants.webhooks]]\nurl = 'https://hooks.example/x'\n"
        "secret = '0123456789abcdef'\nevents = ['delivred']\n",
        "unknown type 'delivred'",
    ),
    "webhooks beside tenants": (
        "[[webhooks]]\nurl = 'https://hooks.example/x'\nsecret = '0123456789abcdef'\n"
        "[[tenants]]\nname = 'a'\n",
        "[[webhooks]] is for a setup without [[tenants]]",
    ),
    "webhook secret": (
        "[[tenants]]\nname = 'a'\n[[tenants.webhooks]]\nurl = 'https://hooks.example/x'\n"
        "secret = 'short'\n",
        "webhook secret: at least 16 characters",
    ),
}


def test_each_bad_config_is_one_line(tmp_path: Path) -> None:
    for name, (text, expected) in CASES.items():
        cfg = tmp_path / f"{name.replace(' ', '_').replace(',', '')}.toml"
        cfg.write_text(f"data_dir = 'data'\n{text}")
        got = run_cli("serve", "--config", str(cfg), timeout=60)
        assert got.returncode == 2, (name, got.stderr)
        assert expected in got.stderr, (name, got.stderr)
        assert "Traceback" not in got.stderr and got.stderr.count("\n") == 1, (name, got.stderr)
