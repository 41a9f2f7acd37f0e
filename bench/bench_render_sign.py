"""Question: what does one personalised, signed message cost to produce?

Mailsflux (compiled Mustache render + MIME + link tracking + compiled DKIM
canonicalization, RSA-2048 signature) against the plain-Python pipeline doing the same work:
``str`` substitution, stdlib ``email`` (EmailMessage, ``as_bytes``) and
``dkimpy`` signing with the same key. Run:

    .venv/bin/python -m pytest bench/bench_render_sign.py --benchmark-enable

or as a script for a quick table: ``.venv/bin/python bench/bench_render_sign.py``.
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

from _example import VARS
from _machine import describe
from mailsflux.benchmark import plain
from mailsflux.jobs import Prepared
from mailsflux.jobs.jobfile import load_job
from mailsflux.types import Recipient

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "welcome"


def setup() -> tuple[Callable[[], bytes], Callable[[], bytes]]:
    tmp = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    shutil.copytree(EXAMPLE, tmp / "job", ignore=shutil.ignore_patterns("dkim", "out"))
    job = load_job(tmp / "job" / "job.toml")
    # The example job as sent: templates, tracking and the signing key.
    composer = Prepared(job).composer
    recipient = Recipient(email=VARS["email"], vars=VARS, row=2)

    def mailsflux_one() -> bytes:
        return composer.compose(recipient).data

    key_pem = job.key_path.read_bytes()
    html_src = job.html_path.read_text()  # type: ignore[union-attr]
    text_src = job.text_path.read_text()  # type: ignore[union-attr]
    subject_src = job.spec.message.subject

    def plain_one() -> bytes:
        raw = plain.mime(
            sender=job.spec.message.sender,
            to=f"{VARS['name']} <{VARS['email']}>",
            subject=plain.subst(subject_src, VARS, False),
            text=plain.subst(text_src, VARS, False),
            html=plain.subst(html_src, VARS, True),
            domain="northwind.example",
        )
        return plain.dkim_sign(raw, key_pem=key_pem, selector="mf2026", domain="northwind.example")

    return mailsflux_one, plain_one


try:
    import pytest

    from conftest import RATIOS, RESULTS

    RATIOS.append(
        (
            "render+sign speed-up over stdlib email + dkimpy",
            "plain_render_sign",
            "mailsflux_render_sign",
        )
    )

    @pytest.fixture(scope="module")
    def pipelines() -> tuple[Callable[[], bytes], Callable[[], bytes]]:
        return setup()

    @pytest.mark.benchmark(group="render+sign")
    def test_mailsflux_render_sign(benchmark: Any, pipelines: Any) -> None:
        out = benchmark(pipelines[0])
        assert out.startswith(b"DKIM-Signature:")
        if benchmark.stats:
            RESULTS["mailsflux_render_sign"] = benchmark.stats.stats.mean

    @pytest.mark.benchmark(group="render+sign")
    def test_plain_render_sign(benchmark: Any, pipelines: Any) -> None:
        out = benchmark(pipelines[1])
        assert out.startswith(b"DKIM-Signature:")
        if benchmark.stats:
            RESULTS["plain_render_sign"] = benchmark.stats.stats.mean
except ImportError:  # run as a plain script without pytest
    pass


def _time(fn: Callable[[], bytes], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


if __name__ == "__main__":
    ours, plain = setup()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    t_ours, t_plain = _time(ours, n), _time(plain, n)
    print(describe())
    print(f"message size: {len(ours())} bytes (mailsflux), {len(plain())} bytes (plain)")
    print(f"mailsflux render+sign:            {t_ours * 1e6:9.1f} us/message")
    print(f"stdlib email + dkimpy:            {t_plain * 1e6:9.1f} us/message")
    print(f"ratio (plain / mailsflux):        {t_plain / t_ours:9.1f}x")
