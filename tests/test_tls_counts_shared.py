"""A job's TLS counts (tls/<job>.json) added to by several processes at once
(workers finishing together): each add is a locked read-modify-write, so no
process's sessions are lost, and the file is private (0600)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from mailsflux.jobs.tlsreport import add_counts, load_counts
from mailsflux.types import TLSCounts


def _add(directory: str) -> None:
    for _ in range(25):
        add_counts(Path(directory), "job1", {"example.com": TLSCounts(policy="sts", success=1)})


def test_concurrent_adds_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add, args=(str(tmp_path),)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert load_counts(tmp_path, "job1")["example.com"].success == 100
    assert (tmp_path / "tls" / "job1.json").stat().st_mode & 0o777 == 0o600
