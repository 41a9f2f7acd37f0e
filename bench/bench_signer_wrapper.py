"""CPU per ``Signer.sign`` minus the bare private-key operation (the "wrapper").

Composes real messages from a bench job (unsigned), then per algorithm times
``signer.sign(m, timestamp=1)`` over all of them and the bare key operation
over equivalent inputs (Ed25519: a 32-byte digest; RSA: ``sign(data)`` of the
same header-hash input size with PKCS#1 v1.5/SHA-256), and ``wrapper_us``:
``sign`` with the key operation stubbed out (the less noisy figure).  CPU time only
(``time.process_time``); best-of-``rounds`` per figure.  Prints one JSON line.

Interleave two builds (old on PYTHONPATH, new installed)::

    for i in 1 2 3; do
      PYTHONPATH=/tmp/signer-base .venv/bin/python bench/bench_signer_wrapper.py old
      .venv/bin/python bench/bench_signer_wrapper.py new
    done
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mailsflux.benchmark.sample import write_job
from mailsflux.jobs import Prepared


def _cpu_per_call(fn: Callable[[Any], object], items: list[Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        for m in items:
            fn(m)
        best = min(best, (time.process_time() - t0) / len(items))
    return best * 1e6


def run(algorithm: str, n: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        p = Prepared.load(write_job(Path(tmp), n, algorithm=algorithm))
        c = p.composer
        s: Any = c.signer
        c.signer = None
        rows: list[Any] = list(p.recipients.rows((0, 1)))  # all valid in a bench job
        msgs = [c.compose(r).data for r in rows]
    assert s is not None
    key: Any = s._key
    if algorithm.startswith("ed25519"):
        digests = [hashlib.sha256(m).digest() for m in msgs]
        bare = _cpu_per_call(key.sign, digests, rounds)
    else:
        pad, sha = padding.PKCS1v15(), hashes.SHA256()
        # the header-hash input is ~ the header section plus the DKIM field
        inputs = [m[: m.index(b"\r\n\r\n")] + b"x" * 400 for m in msgs]
        bare = _cpu_per_call(lambda d: key.sign(d, pad, sha), inputs, rounds)
    full = _cpu_per_call(lambda m: s.sign(m, timestamp=1), msgs, rounds)
    # The wrapper on its own: the same signer with the key operation replaced
    # by a stub returning a signature of the right size.
    sig = key.sign(digests[0]) if algorithm.startswith("ed25519") else key.sign(b"", pad, sha)
    stub = _Stub(sig)
    if algorithm.startswith("ed25519"):
        s._ed25519 = stub
    else:
        s._rsa = stub
    direct = _cpu_per_call(lambda m: s.sign(m, timestamp=1), msgs, rounds)
    size = sum(map(len, msgs)) / len(msgs)
    return {
        "sign_us": round(full, 2),
        "bare_us": round(bare, 2),
        "sign_minus_bare_us": round(full - bare, 2),
        "wrapper_us": round(direct, 2),
        "msg_bytes": size,
    }


class _Stub:
    def __init__(self, sig: bytes) -> None:
        self.sig = sig

    def sign(self, *args: object) -> bytes:
        return self.sig


if __name__ == "__main__":
    label = sys.argv[1] if len(sys.argv) > 1 else "run"
    algs = sys.argv[2].split(",") if len(sys.argv) > 2 else ["ed25519-sha256", "rsa-sha256"]
    out: dict[str, object] = {"label": label}
    for alg in algs:
        out[alg] = run(alg, 2000 if alg.startswith("ed") else 500, 5)
    print(json.dumps(out))
