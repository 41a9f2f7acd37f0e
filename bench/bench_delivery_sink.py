"""Question: how fast does pure delivery go, and what does it cost the client?

Delivering N pre-rendered ~6.6 KB messages (headers, quoted-printable text
and HTML parts, one recipient each) into Postfix's ``smtp-sink`` on
loopback over C reused connections, under uvloop:

* Mailsflux: :class:`mailsflux.delivery.scheduler.Scheduler` with the sink as
  smarthost, fed with ``submit()`` then ``close()``, exactly as the job
  runner does;
* Mailsflux, raw: :meth:`SMTPSession.send` in batches, no queue (for scale);
* plain: aiosmtplib, C clients reused, ``sendmail()`` in a loop.

Reports messages per second and client CPU per message
(``time.process_time()``; the sink runs in its own process). Every message
must be answered 250 by the sink, else the run fails.

    .venv/bin/python bench/bench_delivery_sink.py [N] [C]
    .venv/bin/python -m pytest bench/bench_delivery_sink.py --benchmark-enable

Needs ``smtp-sink`` (Debian package postfix; scripts/test.sh installs it).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiosmtplib
import uvloop

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe
from bench_pipeline_sink import smtp_sink, smtp_sink_path
from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import Scheduler, SiteLimits
from mailsflux.delivery.smtp import SMTPSession
from mailsflux.types import DeliveryResult, RenderedMessage

N = 50_000
CONNECTIONS = 8
SENDER = "news@northwind.example"

_TEXT_PARA = (
    "Hallo {name}, willkommen bei Northwind! Ihr Konto für {company} ist jetzt "
    "bereit. Die wichtigsten Schritte im Überblick: Profil "
    "vervollständigen, Team einladen, erste Kampagne anlegen — das dauert "
    "keine zehn Minuten. Fragen? Antworten Sie einfach.\n\n"
)
_HTML_PARA = (
    '<tr><td style="padding:12px 24px;font-family:Helvetica,Arial,sans-serif;'
    'font-size:15px;line-height:22px;color:#333333;">Hallo <b>{name}</b>, '
    "willkommen bei Northwind! Ihr Konto f&uuml;r {company} ist jetzt bereit. "
    'Profil vervollst&auml;ndigen, Team einladen, <a href="https://northwind.example/'
    'start?utm_source=mail&amp;utm_campaign=welcome" style="color:#0a66c2;">erste '
    "Kampagne anlegen</a> — das dauert keine zehn Minuten. Grüße aus Köln.</td></tr>\n"
)
_DKIM = (
    "v=1; a=rsa-sha256; c=relaxed/relaxed; d=northwind.example; s=mf2026;\r\n"
    " t=1767225600; h=from:to:subject:date:message-id:mime-version:content-type;\r\n"
    " bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
    " b=" + ("Qm9keUhhc2hQbGFjZWhvbGRlclNpZ25hdHVyZUJ5dGVz" * 8)[:342] + "=="
)


def template() -> tuple[bytes, int]:
    """One rendered message with a recipient placeholder, and its size."""
    msg = EmailMessage()
    msg["From"] = f"Northwind <{SENDER}>"
    msg["To"] = "Recipient <xrcptx@example.org>"
    msg["Subject"] = "Willkommen bei Northwind, Ihr Konto ist bereit"
    msg["Date"] = formatdate(1767225600)
    msg["Message-ID"] = "<xmidx@northwind.example>"
    msg["List-Unsubscribe"] = "<https://t.northwind.example/u/xmidx>"
    text = "".join(_TEXT_PARA.format(name="Zoë", company=f"Firma {i}") for i in range(6))
    html = (
        "<!doctype html><html><body><table>\n"
        + "".join(_HTML_PARA.format(name="Zoë", company=f"Firma {i}") for i in range(7))
        + "</table></body></html>\n"
    )
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    raw = (
        b"DKIM-Signature: "
        + _DKIM.encode()
        + b"\r\n"
        + msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    )
    return raw, len(raw)


def build_messages(n: int) -> list[RenderedMessage]:
    """``n`` distinct pre-rendered messages, built before any clock starts."""
    raw, _ = template()
    head, _, tail = raw.partition(b"xrcptx@example.org")
    out = []
    for i in range(n):
        rcpt = f"user.{i}@example.org"
        mid = b"%08x.%d" % (i * 2654435761 & 0xFFFFFFFF, i)
        data = head + rcpt.encode() + tail.replace(b"xmidx", mid)
        out.append(RenderedMessage(SENDER, rcpt, data, mid.decode(), row=i + 2))
    return out


def _children_cpu() -> float:
    """CPU seconds used so far by this process's live children (the sink), from /proc."""
    me, total = str(os.getpid()), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[1] == me:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime in ticks
    return total / os.sysconf("SC_CLK_TCK")


def _timed(fn: Callable[[], Coroutine[Any, Any, int]]) -> dict[str, float]:
    gc.collect()
    sink = _children_cpu()
    wall, cpu = time.perf_counter(), time.process_time()
    sent: int = uvloop.run(fn())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"sent": sent, "wall": wall, "cpu": cpu, "sink_cpu": _children_cpu() - sink}


def run_delivery(messages: list[RenderedMessage], port: int, connections: int) -> dict[str, float]:
    """Mailsflux as the job runner drives it: Scheduler.submit() then close()."""

    async def go() -> int:
        delivered = 0

        def on_result(r: DeliveryResult) -> None:
            nonlocal delivered
            delivered += r.status == "delivered" and r.code == 250

        scheduler = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            on_result,
            default_limits=SiteLimits(connections=connections, tls="none"),
        )
        submit = scheduler.submit
        for m in messages:
            await submit(m)
        await scheduler.close()
        return delivered

    return _timed(go)


def run_session(
    messages: list[RenderedMessage], port: int, connections: int, batch: int = 32
) -> dict[str, float]:
    """Mailsflux's SMTPSession.send alone: no queue, no result records."""

    async def go() -> int:
        chunks: Iterator[list[RenderedMessage]] = (
            messages[i : i + batch] for i in range(0, len(messages), batch)
        )
        delivered = 0

        async def worker() -> None:
            nonlocal delivered
            s = await SMTPSession.open("127.0.0.1", port, tls="none")
            for chunk in chunks:
                out = await s.send(chunk)
                delivered += sum(o.code == 250 for o in out)
            await s.quit()

        await asyncio.gather(*(worker() for _ in range(connections)))
        return delivered

    return _timed(go)


def run_plain(messages: list[RenderedMessage], port: int, connections: int) -> dict[str, float]:
    """aiosmtplib, ``connections`` clients reused, sendmail() in a loop."""

    async def go() -> int:
        it = iter(messages)
        delivered = 0

        async def worker() -> None:
            nonlocal delivered
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as c:
                for m in it:
                    errors, reply = await c.sendmail(m.mail_from, [m.rcpt_to], m.data)
                    delivered += not errors and reply.startswith("2")

        await asyncio.gather(*(worker() for _ in range(connections)))
        return delivered

    return _timed(go)


def measure(n: int, connections: int = CONNECTIONS, raw: bool = True) -> dict[str, Any]:
    messages = build_messages(n)
    size = sum(len(m.data) for m in messages) / n
    r: dict[str, Any] = {"n": n, "connections": connections, "size": size}
    with smtp_sink() as port:
        # A short warm-up of each path: imports, first connections.
        warm = messages[: min(200, n)]
        run_plain(warm, port, connections)
        run_delivery(warm, port, connections)
        r["mailsflux"] = run_delivery(messages, port, connections)
        if raw:
            r["session"] = run_session(messages, port, connections)
        r["plain"] = run_plain(messages, port, connections)
    return r


def report(r: dict[str, Any]) -> None:
    n = r["n"]
    print(describe())
    print(
        f"{n} messages of {r['size'] / 1000:.1f} KB, {r['connections']} connections,"
        " smtp-sink on loopback, uvloop"
    )
    rows = [("mailsflux Scheduler", "mailsflux")]
    if "session" in r:
        rows.append(("mailsflux SMTPSession.send", "session"))
    rows.append(("aiosmtplib sendmail loop", "plain"))
    for label, key in rows:
        x = r[key]
        print(
            f"  {label:<28} {x['sent'] / x['wall']:9.0f} messages/s"
            f"   {x['cpu'] / n * 1e6:6.1f} us CPU/message"
            f" (sink {x['sink_cpu'] / n * 1e6:4.0f})"
            f"   ({int(x['sent'])} delivered in {x['wall']:.2f} s)"
        )
    sink = r["mailsflux"]["sink_cpu"] / n
    if sink > 0:
        print(
            f"  smtp-sink (one process) used {sink * 1e6:.0f} us CPU/message for Mailsflux:"
            f" it tops out near {1 / sink:.0f} messages/s on one core"
        )
    m, p = r["mailsflux"], r["plain"]
    print(
        f"  ratio Scheduler / aiosmtplib: {(m['sent'] / m['wall']) / (p['sent'] / p['wall']):.2f}x"
        f" messages/s, {(p['cpu'] / p['sent']) / (m['cpu'] / m['sent']):.2f}x less CPU/message"
    )


def check(r: dict[str, Any]) -> None:
    for key in ("mailsflux", "session", "plain"):
        if key in r:
            assert r[key]["sent"] == r["n"], f"{key}: {r[key]['sent']} of {r['n']} delivered"


try:
    import pytest

    @pytest.mark.skipif(smtp_sink_path() is None, reason="smtp-sink not installed")
    def test_delivery_into_smtp_sink(benchmark: Any) -> None:
        result = benchmark.pedantic(measure, args=(5000,), rounds=1, iterations=1)
        report(result)
        check(result)
except ImportError:
    pass


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N
    c = int(sys.argv[2]) if len(sys.argv) > 2 else CONNECTIONS
    result = measure(n, c)
    report(result)
    check(result)
