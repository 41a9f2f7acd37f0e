"""A send through a relay never loads the outbound TLS policy code (DANE's
x509, MTA-STS's HTTP client) nor dnspython: only direct MX delivery (with
MTA-STS or DANE) needs them, and every job paid for importing them at start
(dnspython about 30 ms a process, with the importlib.metadata it reads)."""

from __future__ import annotations

from pathlib import Path

from tests._jobs import make_job, people
from tests._procs import imported

_POLICY = {"mailsflux.delivery.tlspolicy", "mailsflux.delivery.dane", "mailsflux.delivery.mtasts"}


def test_a_relay_send_imports_no_tls_policy(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(3))
    proc, mods = imported("send", str(job), "--local-sink", "-q", "--workers", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mailsflux.delivery.scheduler" in mods  # the observation works
    assert not mods & _POLICY, sorted(mods & _POLICY)
    assert not {m for m in mods if m == "h11" or m.startswith("h11.")}
    assert not {m for m in mods if m == "dns" or m.startswith("dns.")}
    assert "importlib.metadata" not in mods


def test_the_package_still_exports_the_policy_types() -> None:
    from mailsflux import delivery
    from mailsflux.delivery.tlspolicy import DomainTLS, TLSPolicies

    assert (delivery.TLSPolicies, delivery.DomainTLS) == (TLSPolicies, DomainTLS)
