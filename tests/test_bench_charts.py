"""`--plot` and `--html` draw a saved result, and `bench compare A B` draws
two of them side by side on one y axis, the table under the page's chart.

Two real `bench smtp` runs into a scripted server (1 and 4 connections);
the charts are read back as images, not only found on disk."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest

from mailsflux.benchmark.plot import compare_figure, figure, pyplot
from tests._cli import run_cli
from tests._scripted_smtp import ScriptedSMTP


def _image_size(png: bytes | Path) -> tuple[int, int]:
    """(width, height) of a PNG, decoded by matplotlib."""
    if isinstance(png, bytes):
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        import io

        png = io.BytesIO(png)  # type: ignore[assignment]
    rows = matplotlib.image.imread(png, format="png")
    return rows.shape[1], rows.shape[0]


def _embedded_png(page: str) -> bytes:
    m = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert m is not None, page[:300]
    return base64.b64decode(m.group(1))


def _latencies(doc: dict[str, Any]) -> list[float]:
    drawn = ("p50", "p90", "p99", "p99.9", "max")  # not the count beside them
    return [ph[p] for ph in doc["metrics"]["latency_ms"].values() for p in drawn if ph.get(p)]


def test_bench_charts_draw_one_result_and_two_side_by_side(tmp_path: Path) -> None:
    a, b = tmp_path / "one.json", tmp_path / "four.json"
    png, page = tmp_path / "four.png", tmp_path / "four.html"
    with ScriptedSMTP() as server:
        for path, conns, charts in (
            (a, "1", ()),
            (b, "4", ("--plot", str(png), "--html", str(page))),
        ):
            proc = run_cli(
                "bench", "smtp", "--target", f"smtp://127.0.0.1:{server.port}",
                "--messages", "40", "--connections", conns, "--json", str(path), *charts,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
    # One result: 9 x 5 inches at 110 dpi, and the same chart in the page.
    assert _image_size(png) == (990, 550)
    text = page.read_text()
    assert _image_size(_embedded_png(text)) == (990, 550)
    assert "<h1>mailsflux bench smtp</h1>" in text
    assert "40 delivered, 0 failed" in text  # the terminal table under the chart

    c_png, c_page = tmp_path / "c.png", tmp_path / "c.html"
    proc = run_cli("bench", "compare", str(a), str(b), "--plot", str(c_png), "--html", str(c_page))
    assert proc.returncode == 0, proc.stderr
    assert _image_size(c_png) == (1650, 605)
    text = c_page.read_text()
    assert _image_size(_embedded_png(text)) == (1650, 605)
    assert "<h1>mailsflux bench compare: one.json and four.json</h1>" in text
    delivered = next(ln for ln in text.splitlines() if ln.startswith("delivered "))
    assert delivered.split()[1:] == ["40", "40", "1.00x"]  # the compare table, as printed

    # What is drawn: each side titled by its file, one y axis from below the
    # least latency of either, the legend once and beside the bars.
    docs = json.loads(a.read_text()), json.loads(b.read_text())
    plt = pyplot()
    fig = compare_figure(*docs, ("one.json", "four.json"))
    try:
        left, right = fig.axes
        assert left.get_title().startswith("one.json: SMTP latency per phase")
        assert right.get_title().startswith("four.json: SMTP latency per phase")
        assert left.get_ylim() == right.get_ylim()
        low, high = left.get_ylim()
        values = _latencies(docs[0]) + _latencies(docs[1])
        # Half the least below, half as much again above the greatest: of both.
        assert (low, high) == pytest.approx((min(values) / 2, max(values) * 1.5))
        assert left.get_legend() is None and right.get_legend() is not None
        fig.canvas.draw()
        legend = right.get_legend().get_window_extent()
        assert legend.x0 >= right.get_window_extent().x1
    finally:
        plt.close(fig)

    fig = figure(docs[1])
    try:
        (ax,) = fig.axes
        fig.canvas.draw()
        assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
        assert ax.get_ylim()[0] < min(_latencies(docs[1]))
    finally:
        plt.close(fig)


def test_bench_compare_charts_tell_same_named_files_apart(tmp_path: Path) -> None:
    """Two runs saved as result.json in their own folders: the table, the
    chart and the page name each by its path; a side with no latency above
    0 (every message failed) still gets the other side's span; a result of
    a kind with no chart is one error line, after the table."""
    one, two = tmp_path / "run-1" / "result.json", tmp_path / "run-2" / "result.json"
    with ScriptedSMTP() as server:
        for path in (one, two):
            path.parent.mkdir()
            proc = run_cli(
                "bench", "smtp", "--target", f"smtp://127.0.0.1:{server.port}",
                "--messages", "10", "--json", str(path),
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
    page = tmp_path / "c.html"
    proc = run_cli("bench", "compare", str(one), str(two), "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    assert f"{one}: smtp |" in proc.stdout and f"{two}: smtp |" in proc.stdout
    text = page.read_text()
    assert f"<h1>mailsflux bench compare: {one} and {two}</h1>" in text
    assert text.count(f"{one}: smtp |") == 1  # the table's line, not again above the chart

    failed = json.loads(two.read_text())
    for phase in failed["metrics"]["latency_ms"].values():
        for p in phase:
            phase[p] = 0.0
    plt = pyplot()
    fig = compare_figure(json.loads(one.read_text()), failed, ("ok", "failed"))
    try:
        values = _latencies(json.loads(one.read_text()))
        assert fig.axes[0].get_ylim() == pytest.approx((min(values) / 2, max(values) * 1.5))
    finally:
        plt.close(fig)

    odd = tmp_path / "odd.json"
    doc = json.loads(one.read_text())
    doc["kind"] = "letters"
    odd.write_text(json.dumps(doc))
    proc = run_cli("bench", "compare", str(one), str(odd), "--plot", str(tmp_path / "x.png"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "mailsflux: error: odd.json: no chart for a 'letters' result"
    ]
