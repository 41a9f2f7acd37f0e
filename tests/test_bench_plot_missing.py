"""Without matplotlib, `--plot` is one clear line (exit 2) before any run.

The test extras install matplotlib (the report's charts are tested with it),
so here the CLI runs with matplotlib made unimportable, as in an install
without the ``bench`` extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOCKED = (
    "import sys; sys.modules['matplotlib'] = None; from mailsflux.cli import main;"
    " sys.exit(main(sys.argv[1:]))"
)


def test_bench_plot_without_matplotlib(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED, "bench", "smtp", "--target", "smtp://127.0.0.1:9",
         "--plot", str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "mailsflux: error: charts need matplotlib: pip install 'mailsflux[bench]'"
    ]
