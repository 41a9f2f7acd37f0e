"""Charts of a result: a PNG (``--plot``) and an HTML page (``--html``).

matplotlib is optional (``pip install 'mailsflux[bench]'``); without it
these raise one clear :class:`BenchError` line.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from mailsflux.benchmark.result import BenchError, header_line


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError("charts need matplotlib: pip install 'mailsflux[bench]'") from None
    return plt


def _bars(ax: Any, labels: list[str], series: dict[str, list[float]], ylabel: str) -> None:
    n = max(len(series), 1)
    width = 0.8 / n
    for k, (name, values) in enumerate(series.items()):
        xs = [i + k * width for i in range(len(labels))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))])
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.legend()


def figure(result: dict[str, Any]) -> Any:
    plt = pyplot()
    m = result["metrics"]
    fig, ax = plt.subplots(figsize=(9, 5))
    kind = result["kind"]
    if kind == "smtp":
        phases = list(m["latency_ms"])
        pcts = ("p50", "p90", "p99", "p99.9", "max")
        _bars(
            ax,
            phases,
            {p: [m["latency_ms"][ph].get(p, 0.0) for ph in phases] for p in pcts},
            "latency (ms)",
        )
        ax.set_yscale("log")
        ax.set_title(f"SMTP latency per phase; {m['throughput_msg_s']:,.0f} messages/s")
    elif kind == "pipeline":
        stages = list(m["mailsflux_us"])
        _bars(
            ax,
            stages,
            {
                "mailsflux": [m["mailsflux_us"][s] for s in stages],
                "plain Python": [m["plain_us"].get(s, 0.0) for s in stages],
                "floor": [result.get("floor_by_stage", {}).get(s, 0.0) for s in stages],
            },
            "CPU us per message",
        )
        ax.set_yscale("log")
        ax.set_title("Per-stage cost")
    else:
        f = m["floor_us"]
        labels = ["mailsflux send", "bare RSA-2048 sign", "bare Ed25519 sign", "SHA-256"]
        values = [m["cpu_us_per_msg"], f["rsa2048_sign"], f["ed25519_sign"], f["sha256"]]
        if "exchange_us_per_msg" in m:  # results saved before it was measured lack it
            labels.append("SMTP exchange alone")
            values.append(m["exchange_us_per_msg"])
        ax.bar(labels, values)
        ax.set_ylabel("CPU us per message")
        ax.set_title(f"Whole job: {m['throughput_msg_s']:,.0f} messages/s")
    fig.text(0.01, 0.01, header_line(result), fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def png(result: dict[str, Any], path: Path) -> None:
    fig = figure(result)
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise BenchError(f"{path}: cannot write the chart: {exc.strerror or exc}") from None


def html_page(result: dict[str, Any], path: Path, text: str = "") -> None:
    fig = figure(result)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    img = base64.b64encode(buf.getvalue()).decode()
    page = (
        "<!doctype html><meta charset=utf-8>"
        f"<title>mailsflux bench {html.escape(result['kind'])}</title>"
        "<body style='font-family: sans-serif'>"
        f"<h1>mailsflux bench {html.escape(result['kind'])}</h1>"
        f"<p>{html.escape(header_line(result))}</p>"
        f"<img alt='chart' src='data:image/png;base64,{img}'>"
        f"<pre>{html.escape(text)}</pre></body>\n"
    )
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"{path}: cannot write the page: {exc.strerror or exc}") from None
