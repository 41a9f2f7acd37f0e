"""`bench smtp --tls` says STARTTLS (a self-signed certificate is fine for a
load test), times it as its own phase, and delivers over TLS."""

from __future__ import annotations

from pathlib import Path

from mailsflux.benchmark import Settings, run_smtp
from tests._mail import RecordingHandler
from tests._tls import TLSServer, self_signed


def test_bench_smtp_over_starttls(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with TLSServer(handler, self_signed(tmp_path)) as server:
        result = run_smtp(
            Settings("127.0.0.1", server.port, messages=6, connections=2, tls=True, timeout=20)
        )
    assert len(handler.received) == 6
    m = result["metrics"]
    assert m["delivered"] == 6
    assert m["latency_ms"]["starttls"]["count"] == 2
    # EHLO twice a connection: before STARTTLS and after it.
    assert result["codes"]["ehlo"] == {"250": 4}
    assert result["codes"]["starttls"] == {"220": 2}
    assert result["errors"] == {}
