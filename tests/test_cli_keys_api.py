"""``mailsflux keys api|smtp create/list/revoke``: the secret shown once, stored hashed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from mailsflux.tenants import KeyStore
from tests._cli import run_cli

CONFIG = """
data_dir = "data"
[[tenants]]
name = "acme"
domains = ["acme.example"]
[[tenants]]
name = "globex"
domains = ["globex.example"]
"""


def test_keys_are_created_listed_and_revoked(tmp_path: Path) -> None:
    cfg = tmp_path / "server.toml"
    cfg.write_text(CONFIG)
    made = run_cli("keys", "api", "create", "--tenant", "acme", "--role", "send", "--role",
                   "read", "--label", "crm", "--config", str(cfg))  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("mfx.api_") and "shown only now" in made.stderr
    smtp = run_cli("keys", "smtp", "create", "--tenant", "globex", "--role", "send",
                   "--config", str(cfg))  # fmt: skip
    assert smtp.returncode == 0
    user = smtp.stdout.split("username: ")[1].split()[0]
    password = smtp.stdout.split("password: ")[1].split()[0]

    db = tmp_path / "data" / "keys.db"
    assert db.stat().st_mode & 0o777 == 0o600
    # Stored as Argon2id hashes: the secrets appear nowhere in the file.
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in db.parent.glob("keys.db-*"))
    assert token.split(".")[2].encode() not in raw and password.encode() not in raw
    hashes = [r[0] for r in sqlite3.connect(db).execute("SELECT hash FROM keys")]
    assert all(h.startswith("$argon2id$") for h in hashes) and len(hashes) == 2

    listed = json.loads(run_cli("keys", "api", "list", "--json", "--config", str(cfg)).stdout)
    assert [(k["tenant"], k["roles"], k["label"], k["revoked"]) for k in listed] == [
        ("acme", ["read", "send"], "crm", None)
    ]
    with KeyStore(db) as keys:
        who = keys.authenticate(token)
        assert who is not None and who.tenant == "acme" and who.roles == {"send", "read"}
        assert keys.login(user, password) is not None
        assert keys.login(user, password + "x") is None
        assert keys.authenticate(token + "x") is None
        assert (
            keys.login(token.split(".")[1], token.split(".")[2]) is None
        )  # an API key is no login

    key_id = token.split(".")[1]
    assert run_cli("keys", "api", "revoke", key_id, "--config", str(cfg)).returncode == 0
    with KeyStore(db) as keys:
        assert keys.authenticate(token) is None
    again = run_cli("keys", "api", "revoke", key_id, "--config", str(cfg))
    assert again.returncode == 1 and "no active key" in again.stderr

    bad = run_cli("keys", "api", "create", "--tenant", "nobody", "--role", "send",
                  "--config", str(cfg))  # fmt: skip
    assert bad.returncode == 2 and "nobody" in bad.stderr and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1
