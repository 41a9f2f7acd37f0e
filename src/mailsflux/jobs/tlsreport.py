"""A job's TLS-RPT-style counts kept beside its spool, for ``mailsflux report``.

Each run of a job (the first, resumes, queue runs) adds its per-domain counts
(:class:`mailsflux.types.TLSCounts`) to ``tls/<job id>.json`` in the spool
directory. Only domain names and numbers: nothing personal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

import msgspec

from mailsflux._files import locked, replace_whole
from mailsflux.types import TLSCounts

__all__ = ["add_counts", "count_lines", "load_counts", "merge_counts"]


def merge_counts(into: dict[str, TLSCounts], counts: Mapping[str, TLSCounts]) -> None:
    """Add ``counts`` to ``into``, domain by domain."""
    for domain, c in counts.items():
        m = into.get(domain)
        if m is None:
            m = into[domain] = TLSCounts(policy=c.policy)
        elif c.policy != "no-policy-found":
            m.policy = c.policy
        m.success += c.success
        m.failure += c.failure
        for kind, n in c.failures.items():
            m.failures[kind] = m.failures.get(kind, 0) + n


def _path(directory: Path, job_id: str) -> Path:
    return directory / "tls" / f"{job_id}.json"


def load_counts(directory: Path, job_id: str) -> dict[str, TLSCounts]:
    try:
        data = _path(directory, job_id).read_bytes()
        return msgspec.json.decode(data, type=dict[str, TLSCounts])
    except (OSError, msgspec.DecodeError):
        return {}


def add_counts(directory: Path, job_id: str, counts: Mapping[str, TLSCounts]) -> None:
    """Add this run's counts to the job's file (best effort: only a report reads it)."""
    if not counts:
        return
    path = _path(directory, job_id)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Read, add and write under an exclusive lock: two processes adding
        # to one job's counts would otherwise lose one's sessions.
        with locked(path):
            total = load_counts(directory, job_id)
            merge_counts(total, counts)
            replace_whole(path, msgspec.json.encode(dict(sorted(total.items()))))


def count_lines(counts: Mapping[str, TLSCounts]) -> list[str]:
    """The counts as text lines: domain, policy, sessions ok / failed, failures by kind."""
    if not counts:
        return []
    width = max(len(d) for d in counts)
    out = ["TLS policy (sessions ok / failed):"]
    for d, c in counts.items():
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(c.failures.items()))
        out.append(
            f"  {d:<{width}}  {c.policy:<15} {c.success} / {c.failure}"
            + (f"  ({kinds})" if kinds else "")
        )
    return out
