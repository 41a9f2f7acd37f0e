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
