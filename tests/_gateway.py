"""Two tenants with their own domains and generated DKIM keys, for the front-door tests."""

from __future__ import annotations

from pathlib import Path

from mailsflux.jobs.jobfile import DeliverySpec, DKIMSpec
from mailsflux.tenants import Tenant, Tenants


def two_tenants(tmp_path: Path) -> Tenants:
    def tenant(name: str, domain: str) -> Tenant:
        key = DKIMSpec(
            domain=domain,
            selector="s1",
            key=str(tmp_path / "dkim" / f"{name}.pem"),
            generate=True,
            bits=1024,
        )
        return Tenant(name=name, domains=[domain], dkim=[key])

    return Tenants([tenant("acme", "acme.example"), tenant("globex", "globex.example")])


def delivery(relay: str) -> DeliverySpec:
    return DeliverySpec(relay=relay, ehlo_name="mta.test", timeout=10.0, retry_initial=0.05)


def server_toml(tmp_path: Path, data_dir: Path) -> Path:
    """A server config naming :func:`two_tenants` and ``data_dir``."""
    path = tmp_path / "server.toml"
    body = f'data_dir = "{data_dir}"\n'
    for name in ("acme", "globex"):
        body += (
            f'[[tenants]]\nname = "{name}"\ndomains = ["{name}.example"]\n'
            f'[[tenants.dkim]]\ndomain = "{name}.example"\nselector = "s1"\n'
            f'key = "{tmp_path / "dkim" / f"{name}.pem"}"\nbits = 1024\n'
        )
    path.write_text(body)
    return path


def sealed_key_ids(directory: Path) -> dict[str, list[str]]:
    """The key id of every sealed value a tenant stores, read from the raw
    columns (byte 1 to 5 of each), by store."""
    import sqlite3

    out: dict[str, list[str]] = {}
    for name, db, sql in (
        (
            "spool",
            directory / "spool" / "spool.db",
            "SELECT meta FROM rcpt UNION ALL SELECT data FROM body",
        ),
        (
            "log",
            directory / "log.db",
            "SELECT recipient FROM events UNION ALL SELECT details FROM events",
        ),
    ):
        con = sqlite3.connect(db)
        try:
            out[name] = [bytes(v[1:5]).hex() for (v,) in con.execute(sql) if v]
        finally:
            con.close()
    return out
