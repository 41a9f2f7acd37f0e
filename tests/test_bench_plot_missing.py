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


def test_bench_compare_charts_without_matplotlib(tmp_path: Path) -> None:
    # Said before either result is read: the files need not exist yet.
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED, "bench", "compare", str(tmp_path / "a.json"),
         str(tmp_path / "b.json"), "--html", str(tmp_path / "c.html")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "mailsflux: error: charts need matplotlib: pip install 'mailsflux[bench]'"
    ]
    assert not (tmp_path / "c.html").exists()
