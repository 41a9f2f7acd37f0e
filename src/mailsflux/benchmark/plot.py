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

from mailsflux.benchmark.result import BenchError, ed25519_library, header_line


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError("charts need matplotlib: pip install 'mailsflux[bench]'") from None
    return plt


def _bars(
    ax: Any, labels: list[str], series: dict[str, list[float]], ylabel: str, legend: bool
) -> None:
    n = max(len(series), 1)
    width = 0.8 / n
    for k, (name, values) in enumerate(series.items()):
        xs = [i + k * width for i in range(len(labels))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))])
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    if legend:
        # Beside the axes: inside, "best" still covers a phase's tallest bars.
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def _log_y(ax: Any, values: list[float]) -> tuple[float, float] | None:
    """A log y axis labelled in plain numbers, spanning ``values`` with
    room below the least (else the least bar starts where the axis does and
    cannot be seen). Returns that span, or None when no value is above 0."""
    from matplotlib.ticker import LogLocator, ScalarFormatter

    ax.set_yscale("log")
    positive = [v for v in values if v > 0]
    span = (min(positive) / 2, max(positive) * 1.5) if positive else None
    if span is not None:
        ax.set_ylim(*span)
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    return span


def _draw(
    ax: Any, result: dict[str, Any], *, name: str = "", legend: bool = True
) -> tuple[float, float] | None:
    """The chart of ``result``'s kind on ``ax``; the span of its log axis, if any."""
    m = result["metrics"]
    kind = result["kind"]
    if kind not in ("smtp", "pipeline", "e2e"):
        raise BenchError(f"{name or 'the result'}: no chart for a {kind!r} result")
    prefix = f"{name}: " if name else ""
    span = None
    if kind == "smtp":
        phases = list(m["latency_ms"])
        pcts = ("p50", "p90", "p99", "p99.9", "max")
        series = {p: [m["latency_ms"][ph].get(p, 0.0) for ph in phases] for p in pcts}
        _bars(ax, phases, series, "latency (ms)", legend)
        span = _log_y(ax, [v for vs in series.values() for v in vs])
        ax.set_title(f"{prefix}SMTP latency per phase; {m['throughput_msg_s']:,.0f} messages/s")
    elif kind == "pipeline":
        stages = list(m["mailsflux_us"])
        series = {
            "mailsflux": [m["mailsflux_us"][s] for s in stages],
            "plain Python": [m["plain_us"].get(s, 0.0) for s in stages],
            "floor": [result.get("floor_by_stage", {}).get(s, 0.0) for s in stages],
        }
        _bars(ax, stages, series, "CPU us per message", legend)
        span = _log_y(ax, [v for vs in series.values() for v in vs])
        ax.set_title(f"{prefix}Per-stage cost")
    else:
        f = m["floor_us"]
        ed_label = f"bare Ed25519 sign ({ed25519_library(result)})"
        labels = ["mailsflux send", "bare RSA-2048 sign", ed_label, "SHA-256"]
        values = [m["cpu_us_per_msg"], f["rsa2048_sign"], f["ed25519_sign"], f["sha256"]]
        if "exchange_us_per_msg" in m:  # results saved before it was measured lack it
            labels.append("SMTP exchange alone")
            values.append(m["exchange_us_per_msg"])
        parts = m.get("profile_us_per_msg")
        if parts:
            # --profile: the job's bar in the parts of the stack that spent
            # it, stacked, beside the floors they can be held against.
            from mailsflux.benchmark.profile import PARTS

            ax.bar(range(1, len(labels)), values[1:], color="grey")
            bottom = 0.0
            for key, us in parts.items():
                if us > 0:
                    ax.bar([0], [us], bottom=bottom, label=PARTS.get(key, key))
                    bottom += us
            if legend:
                ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=7)
        else:
            ax.bar(range(len(labels)), values)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=30, ha="right")
        ax.set_ylabel("CPU us per message")
        ax.set_title(f"{prefix}Whole job: {m['throughput_msg_s']:,.0f} messages/s")
    return span


def figure(result: dict[str, Any]) -> Any:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    _draw(ax, result)
    fig.text(0.01, 0.01, header_line(result), fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def compare_figure(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]) -> Any:
    """``a`` and ``b`` side by side, each its own kind's chart; results of
    one kind share the y axis, so a bar's height compares across them."""
    plt = pyplot()
    same = a["kind"] == b["kind"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5.5), sharey=same)
    spans = [
        _draw(left, a, name=names[0], legend=not same),
        _draw(right, b, name=names[1]),
    ]
    if same:
        # One axis for both: the span of both sides' values (log), or of both
        # sides' bars (linear, or neither side with a value above 0).
        known = [x for x in spans if x is not None]
        if known:
            left.set_ylim(min(x[0] for x in known), max(x[1] for x in known))
        else:
            left.autoscale(axis="y")
        right.tick_params(which="both", labelleft=True)  # sharey hides them on the right
    fig.text(0.01, 0.035, f"{names[0]}: {header_line(a)}", fontsize=6)
    fig.text(0.01, 0.01, f"{names[1]}: {header_line(b)}", fontsize=6)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def _save(fig: Any, path: Path) -> None:
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise BenchError(f"{path}: cannot write the chart: {exc.strerror or exc}") from None
    finally:
        pyplot().close(fig)


def _page(fig: Any, path: Path, title: str, headers: list[str], text: str) -> None:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110)
    finally:
        pyplot().close(fig)
    img = base64.b64encode(buf.getvalue()).decode()
    page = (
        "<!doctype html><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        "<body style='font-family: sans-serif'>"
        f"<h1>{html.escape(title)}</h1>"
        + "".join(f"<p>{html.escape(h)}</p>" for h in headers)
        + f"<img alt='chart' src='data:image/png;base64,{img}'>"
        f"<pre>{html.escape(text)}</pre></body>\n"
    )
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"{path}: cannot write the page: {exc.strerror or exc}") from None


def png(result: dict[str, Any], path: Path) -> None:
    _save(figure(result), path)


def html_page(result: dict[str, Any], path: Path, text: str = "") -> None:
    title = f"mailsflux bench {result['kind']}"
    _page(figure(result), path, title, [header_line(result)], text)


def compare_png(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str], path: Path) -> None:
    _save(compare_figure(a, b, names), path)


def compare_html(
    a: dict[str, Any], b: dict[str, Any], names: tuple[str, str], path: Path, text: str = ""
) -> None:
    title = f"mailsflux bench compare: {names[0]} and {names[1]}"
    # No header lines above the chart: the table under it opens with them.
    _page(compare_figure(a, b, names), path, title, [], text)
