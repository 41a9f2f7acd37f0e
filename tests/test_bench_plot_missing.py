"""Without matplotlib, `--plot` is one clear line (exit 2) before any run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests._cli import run_cli


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed"
)
def test_bench_plot_without_matplotlib(tmp_path: Path) -> None:
    proc = run_cli(
        "bench", "smtp", "--target", "smtp://127.0.0.1:9", "--plot", str(tmp_path / "x.png")
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "mailsflux: error: charts need matplotlib: pip install 'mailsflux[bench]'"
    ]
