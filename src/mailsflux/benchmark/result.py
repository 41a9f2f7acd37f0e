"""A benchmark result: what was measured, on what, with which settings.

One shape for every kind (``smtp``, ``e2e``, ``pipeline``), so any two
saved results compare the same way: :func:`flatten` turns the numeric
``metrics`` into ``dotted.name -> number``, and :func:`compare_table`
lines two of them up with the ratio B / A.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from mailsflux.benchmark.machine import machine, machine_differences, versions
from mailsflux.dkim.sodium import CRYPTOGRAPHY
from mailsflux.errors import MailsfluxError

FORMAT = 1
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class BenchError(MailsfluxError):
    """A benchmark could not run or a result file is unusable (one line, exit 2)."""


def new_result(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "mailsflux_bench": FORMAT,
        "kind": kind,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "settings": settings,
        "metrics": {},
        "notes": [],
    }


def ed25519_library(result: dict[str, Any]) -> str:
    """The library the result's Ed25519 sign (the job's and its floor) went
    through; results saved before it was recorded signed with cryptography."""
    return str(result.get("versions", {}).get("ed25519_signs_with", CRYPTOGRAPHY))


def latency_summary(samples_ns: Iterable[int]) -> dict[str, float]:
    """Count, percentiles and max in milliseconds, from an HDR histogram
    (1 us to 1 h at 3 significant digits)."""
    from hdrh.histogram import HdrHistogram

    h = HdrHistogram(1, 3_600_000_000, 3)  # microseconds
    # Equal values recorded once with their count: recording one by one
    # costs microseconds each, longer than the run for a million messages.
    counts = Counter(max(1, ns // 1000) for ns in samples_ns)
    for us, k in counts.items():
        h.record_value(min(us, 3_600_000_000), k)
    n = sum(counts.values())
    out: dict[str, float] = {"count": n}
    if n == 0:
        return out
    for p in PERCENTILES:
        out[f"p{p:g}"] = h.get_value_at_percentile(p) / 1000
    out["max"] = h.get_max_value() / 1000
    return out


def save(result: dict[str, Any], path: Path) -> None:
    try:
        path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"{path}: cannot write the result: {exc.strerror or exc}") from None


def load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BenchError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path}: not a JSON file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("mailsflux_bench") != FORMAT:
        raise BenchError(f"{path}: not a mailsflux bench result (no mailsflux_bench: {FORMAT})")
    if not isinstance(doc.get("metrics"), dict):
        raise BenchError(f"{path}: field metrics: missing or not an object")
    return doc


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def _num(x: float) -> str:
    if x.is_integer():
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.1:
        return f"{x:.3f}"
    return f"{x:.4f}"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain text table: first column left, the others right aligned."""
    cells = [[str(h) for h in header]] + [
        [_num(c) if isinstance(c, float) else str(c) for c in r] for r in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for n, r in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def header_line(result: dict[str, Any]) -> str:
    m, v = result["machine"], result["versions"]
    return (
        f"{result['kind']} | {m.get('cpu')}, {m.get('cores')} cores, load {m.get('load_average')}"
        f" | Python {v.get('python')}, mailsflux {v.get('mailsflux')}"
        f" ({'compiled' if v.get('compiled') else 'not compiled'}), {v.get('openssl')}"
    )


def compare_table(a: dict[str, Any], b: dict[str, Any], names: Sequence[str] = ("A", "B")) -> str:
    fa, fb = flatten(a["metrics"]), flatten(b["metrics"])
    keys = list(fa) + [k for k in fb if k not in fa]
    rows: list[list[object]] = []
    for k in keys:
        va, vb = fa.get(k), fb.get(k)
        ratio = f"{vb / va:.2f}x" if va and vb is not None else "-"
        rows.append([k, "-" if va is None else va, "-" if vb is None else vb, ratio])
    out = [f"{names[0]}: {header_line(a)}", f"{names[1]}: {header_line(b)}"]
    for label, doc in zip(names, (a, b), strict=True):
        out.append(f"{label} settings: {json.dumps(doc.get('settings', {}), sort_keys=True)}")
    if a["kind"] != b["kind"]:
        out.append(f"note: comparing a {a['kind']} result with a {b['kind']} result")
    ma, mb = a.get("machine", {}), b.get("machine", {})
    differ = machine_differences(ma, mb)
    if differ:
        what = "; ".join(f"{k}: {ma.get(k, '-')} / {mb.get(k, '-')}" for k in differ)
        out.append(
            f"note: measured on different machines ({what}): the floors differ too,"
            " so compare each result against its own floor, not microseconds"
        )
    out.append(table(["metric", names[0], names[1], f"{names[1]}/{names[0]}"], rows))
    return "\n".join(out)


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, done: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        frac = min(done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        rate = done / max(now - self.start, 1e-9)
        self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{self.total} {rate:,.0f}/s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()
