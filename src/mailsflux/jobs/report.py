"""``mailsflux report JOB``: what became of a job's mail, per domain.

Delivery outcomes come from the spool (states per domain, bounce and
deferral categories, when each settled); engagement from the tracking
store when given (opens and clicks by people, not machines; unsubscribes;
complaints from the suppression list). ``--html`` writes one self-contained
page: the tables and three charts (matplotlib, embedded as PNG).
"""

from __future__ import annotations

import base64
import html
import io
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import msgspec

from mailsflux.errors import ConfigError
from mailsflux.jobs.tlsreport import count_lines, load_counts
from mailsflux.spool import JobInfo, SQLiteSpool
from mailsflux.tracking.events import EventStore
from mailsflux.types import TLSCounts

OUTCOMES = ("delivered", "deferred", "bounced", "failed", "suppressed", "skipped", "pending")
ENGAGEMENT = ("complained", "opened", "clicked", "unsubscribed")


def build(spool: SQLiteSpool, info: JobInfo, store: EventStore | None = None) -> dict[str, Any]:
    """The report as JSON-ready builtins."""
    per_domain: dict[str, dict[str, int]] = {
        d: dict(c) for d, c in spool.per_domain(info.id).items()
    }
    if store is not None:
        for kind, domain in _engagement(store, info.name):
            per_domain.setdefault(domain, {})[kind] = per_domain[domain].get(kind, 0) + 1
    rows = []
    for domain, c in sorted(per_domain.items(), key=lambda kv: -sum(
            kv[1].get(k, 0) for k in OUTCOMES)):  # fmt: skip
        sent = sum(c.get(k, 0) for k in OUTCOMES if k not in ("pending", "skipped", "suppressed"))
        row: dict[str, Any] = {"domain": domain, "messages": sent}
        for k in OUTCOMES + ENGAGEMENT:
            row[k] = c.get(k, 0)
        delivered = max(row["delivered"], 1)
        row["delivered_rate"] = row["delivered"] / sent if sent else 0.0
        row["bounce_rate"] = row["bounced"] / sent if sent else 0.0
        row["open_rate"] = row["opened"] / delivered if store is not None else None
        row["click_rate"] = row["clicked"] / delivered if store is not None else None
        rows.append(row)
    totals: dict[str, Any] = {k: sum(r[k] for r in rows) for k in ("messages", *OUTCOMES)}
    if store is not None:
        totals |= {k: sum(r[k] for r in rows) for k in ENGAGEMENT}
    reasons = spool.reasons(info.id)
    return {
        "job": info.name,
        "id": info.id,
        "generated_at": time.time(),
        "totals": totals,
        "domains": rows,
        "bounce_reasons": sorted(reasons.get("bounced", {}).items(), key=lambda kv: -kv[1]),
        "failure_reasons": sorted(reasons.get("failed", {}).items(), key=lambda kv: -kv[1]),
        "deferral_reasons": sorted(reasons.get("deferred", {}).items(), key=lambda kv: -kv[1]),
        "timeline": _timeline(spool.settled_times(info.id)),
        "engagement": store is not None,
        # DANE / MTA-STS sessions per domain, TLS-RPT style (direct MX delivery).
        "tls": msgspec.to_builtins(
            load_counts(spool.directory, info.id) if isinstance(spool.directory, Path) else {}
        ),
    }


def _engagement(store: EventStore, job: str) -> list[tuple[str, str]]:
    """(kind, recipient domain) per person: each kind counted once per message."""
    seen: set[tuple[str, str]] = set()
    out = []
    names = {"open": "opened", "click": "clicked", "unsubscribe": "unsubscribed",
             "unsubscribe-list": "unsubscribed"}  # fmt: skip
    for e in store.events():
        kind = names.get(e.kind)
        if kind is None or e.job != job or e.machine or not e.recipient:
            continue
        if (kind, e.message_id) in seen:
            continue
        seen.add((kind, e.message_id))
        out.append((kind, e.recipient.rpartition("@")[2].lower()))
    for s in store.suppression_records():
        if s.reason == "complaint" and s.job == job:
            domain = (s.address or "").rpartition("@")[2].lower() or "(erased)"
            out.append(("complained", domain))
    return out


def _timeline(times: list[tuple[float, str]]) -> list[dict[str, Any]]:
    """Outcomes per time bucket (about 40 buckets over the job's span)."""
    if not times:
        return []
    start, end = times[0][0], times[-1][0]
    step = max((end - start) / 40, 1.0)
    buckets: dict[int, Counter[str]] = defaultdict(Counter)
    for t, state in times:
        buckets[int((t - start) // step)][state] += 1
    return [{"at": start + i * step, **buckets[i]} for i in range(max(buckets) + 1)]


def text(doc: dict[str, Any]) -> str:
    """The terminal table."""
    engaged = doc["engagement"]
    cols = ["messages", "delivered", "deferred", "bounced", "failed", "suppressed"]
    if engaged:
        cols += ["complained", "opened", "clicked"]
    width = max([len(r["domain"]) for r in doc["domains"]] + [6])
    out = [f"report for job {doc['job']} ({doc['id']})", ""]
    out.append(
        f"{'domain':<{width}} " + " ".join(f"{c:>10}" for c in cols) + "  delivered  bounced"
    )
    for r in [*doc["domains"][:50], {"domain": "all", **doc["totals"]}]:
        sent = r["messages"] or 0
        rate = (r["delivered"] / sent * 100) if sent else 0.0
        brate = (r["bounced"] / sent * 100) if sent else 0.0
        cells = " ".join(f"{r.get(c, 0):>10}" for c in cols)
        out.append(f"{r['domain']:<{width}} {cells}  {rate:8.1f}%  {brate:6.1f}%")
    if len(doc["domains"]) > 50:
        out.append(f"... and {len(doc['domains']) - 50} more domains")
    for title, key in (("bounce reasons", "bounce_reasons"), ("deferrals", "deferral_reasons")):
        if doc[key]:
            out += ["", f"top {title}:"]
            out += [f"  {n:>8}  {why}" for why, n in doc[key][:10]]
    tls = msgspec.convert(doc.get("tls", {}), dict[str, TLSCounts])
    if tls:
        out += ["", *count_lines(tls)]
    return "\n".join(out)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(
            "--html charts need matplotlib: pip install 'mailsflux[bench]'", field="--html"
        ) from None
    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def charts(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, base64 PNG) of each chart."""
    plt = _pyplot()
    out = []
    fig, ax = plt.subplots(figsize=(9, 3.5))
    tl = doc["timeline"]
    if tl:
        t0 = tl[0]["at"]
        xs = [(b["at"] - t0) / 60 for b in tl]
        for state in ("delivered", "deferred", "bounced", "failed"):
            ax.plot(xs, [b.get(state, 0) for b in tl], label=state)
        ax.set_xlabel("minutes since the first result")
        ax.set_ylabel("messages")
        ax.legend()
    out.append(("Outcomes over time", _png(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4))
    top = doc["domains"][:15]
    names = [r["domain"] for r in top]
    left = [0] * len(top)
    for state in ("delivered", "deferred", "bounced", "failed"):
        vals = [r[state] for r in top]
        ax.barh(names, vals, left=left, label=state)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("messages")
    ax.legend()
    out.append(("Per domain", _png(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 3.5))
    reasons = doc["bounce_reasons"][:10]
    ax.barh([r for r, _ in reasons] or ["(no bounces)"], [n for _, n in reasons] or [0])
    ax.invert_yaxis()
    ax.set_xlabel("bounces")
    out.append(("Bounce reasons", _png(fig)))
    plt.close(fig)
    return out


def write_html(doc: dict[str, Any], path: Path) -> None:
    """One self-contained page: tables and charts, no outside resources."""
    e = html.escape
    images = "".join(
        f'<figure><img alt="{e(t)}" src="data:image/png;base64,{b}"><figcaption>{e(t)}'
        "</figcaption></figure>"
        for t, b in charts(doc)
    )
    head = ["domain", "messages", "delivered", "deferred", "bounced", "failed", "suppressed"]
    if doc["engagement"]:
        head += ["complained", "opened", "clicked"]
    rows = "".join(
        "<tr>" + "".join(f"<td>{e(str(r.get(h, 0)))}</td>" for h in head) + "</tr>"
        for r in [*doc["domains"], {"domain": "all", **doc["totals"]}]
    )
    reasons = "".join(
        f"<tr><td>{e(why)}</td><td>{n}</td></tr>" for why, n in doc["bounce_reasons"][:20]
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mailsflux report: {e(doc["job"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #111; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
td, th {{ border: 1px solid #999; padding: .25rem .6rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Report for job {e(doc["job"])}</h1>
<p>Generated {e(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(doc["generated_at"])))}</p>
<h2>Per domain</h2>
<table><thead><tr>{"".join(f"<th>{e(h)}</th>" for h in head)}</tr></thead>
<tbody>{rows}</tbody></table>
<h2>Top bounce reasons</h2>
<table><thead><tr><th>reason</th><th>bounces</th></tr></thead><tbody>{reasons}</tbody></table>
<h2>Charts</h2>
{images}
</body></html>
"""
    path.write_text(page, "utf-8")
