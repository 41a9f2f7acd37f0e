"""Question: what does a VERP return path cost per message?

With ``[tracking] bounce_domain`` every message gets its own envelope sender,
``bounces+TOKEN@domain``: the token is made per message in Python
(msgpack, AES-SIV from ``cryptography``, base32).  Measured in the same run:
composing the example job's message (render, track, MIME, DKIM) with and
without VERP, interleaved round by round, in CPU time per message; the token
alone; and the envelope check the SMTP client then makes per message
(without VERP a job's one sender is checked once).  Both DKIM algorithms:
RSA-2048 hides the token in its cost, Ed25519 much less. Run:

    .venv/bin/python bench/bench_verp.py [N]

or ``.venv/bin/python -m pytest bench/bench_verp.py --benchmark-enable``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _example import EXAMPLE, VARS
from _machine import describe
from mailsflux.delivery.smtp import _address
from mailsflux.feedback import Verp
from mailsflux.feedback.verp import _b32, _unb32
from mailsflux.jobs import Prepared
from mailsflux.jobs.composer import Composer
from mailsflux.jobs.jobfile import load_job
from mailsflux.types import Recipient

BOUNCE = "bounce.northwind.example"
RCPT = Recipient(email=VARS["email"], vars=VARS, row=2)


def composers(algorithm: str) -> tuple[Composer, Composer]:
    """The example job's composer without and with VERP (same keys, same job)."""
    tmp = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    shutil.copytree(EXAMPLE, tmp / "job", ignore=shutil.ignore_patterns("dkim", "out", "*.py"))
    path = tmp / "job" / "job.toml"
    text = path.read_text().replace('algorithm = "rsa-sha256"', f'algorithm = "{algorithm}"')
    path.write_text(text)
    job = load_job(path)
    prepared = Prepared(job)
    assert prepared.tracking is not None and job.spec.tracking is not None
    job.spec.tracking.bounce_domain = BOUNCE
    with_verp = Composer(job, prepared.signer, tracker=prepared.tracking.tracker())
    assert with_verp.verp is not None and prepared.composer.verp is None
    return prepared.composer, with_verp


def cpu_per_call(fn: Callable[[], object], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def compare(algorithm: str, n: int, rounds: int = 7) -> tuple[float, float]:
    """Best CPU seconds per message (without, with VERP), rounds interleaved
    so a load change on the machine hits both alike."""
    plain, verp = composers(algorithm)
    plain.compose(RCPT), verp.compose(RCPT)
    best_plain = best_verp = float("inf")
    for _ in range(rounds):
        best_plain = min(best_plain, cpu_per_call(lambda: plain.compose(RCPT), n))
        best_verp = min(best_verp, cpu_per_call(lambda: verp.compose(RCPT), n))
    return best_plain, best_verp


def token_parts(n: int) -> tuple[float, float, float, str]:
    """CPU per token made; its base32 spelling alone; per envelope check of it; one token."""
    v = Verp({"k1": b"K" * 32}, "k1", BOUNCE)
    mid = "5f1c2a9e0b7d4c3a2b1f.1234@northwind.example"
    address = v.make(mid, VARS["email"], "welcome")
    make = min(cpu_per_call(lambda: v.make(mid, VARS["email"], "welcome"), n) for _ in range(5))
    check = min(cpu_per_call(lambda: _address(address), n) for _ in range(5))
    raw = _unb32(address[len("bounces+") : address.index("@")])
    assert raw is not None
    spell = min(cpu_per_call(lambda: _b32(raw), n) for _ in range(5))
    return make, spell, check, address


try:
    import pytest

    from conftest import RESULTS

    @pytest.fixture(scope="module")
    def pair() -> tuple[Composer, Composer]:
        return composers("ed25519-sha256")

    @pytest.mark.benchmark(group="verp")
    def test_compose_without_verp(benchmark: Any, pair: Any) -> None:
        m = benchmark(lambda: pair[0].compose(RCPT))
        assert m.mail_from == "hello@northwind.example"
        if benchmark.stats:
            RESULTS["compose_ed25519_without_verp"] = benchmark.stats.stats.mean

    @pytest.mark.benchmark(group="verp")
    def test_compose_with_verp(benchmark: Any, pair: Any) -> None:
        m = benchmark(lambda: pair[1].compose(RCPT))
        assert m.mail_from.startswith("bounces+") and m.mail_from.endswith("@" + BOUNCE)
        if benchmark.stats:
            RESULTS["compose_ed25519_with_verp"] = benchmark.stats.stats.mean

    @pytest.mark.benchmark(group="verp")
    def test_token_alone(benchmark: Any) -> None:
        v = Verp({"k1": b"K" * 32}, "k1", BOUNCE)
        out = benchmark(lambda: v.make("5f1c2a9e0b7d4c3a2b1f.1234@northwind.example", "z@x.org"))
        assert v.open(out) is not None
        if benchmark.stats:
            RESULTS["verp_token"] = benchmark.stats.stats.mean
except ImportError:  # run as a plain script without pytest
    pass


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(describe())
    make, spell, check, address = token_parts(n * 10)
    print(f"return path: {len(address)} characters, local part {address.index('@')}")
    print(f"token (Verp.make):                      {make * 1e6:8.2f} us CPU/message")
    print(f"  of which base32 (stdlib, pure Python): {spell * 1e6:7.2f} us")
    print(f"envelope check of it (SMTP client):     {check * 1e6:8.2f} us CPU/message")
    for algorithm in ("ed25519-sha256", "rsa-sha256"):
        without, with_ = compare(algorithm, n if algorithm.startswith("ed") else n // 4)
        extra = with_ - without
        print(
            f"compose, {algorithm:<15} without {without * 1e6:8.1f} us, with VERP"
            f" {with_ * 1e6:8.1f} us: {extra * 1e6:+.1f} us ({extra / without:+.1%})"
        )
