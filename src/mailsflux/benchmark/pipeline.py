"""``mailsflux bench pipeline``: what each stage costs per message.

Each stage runs alone over the same rows, timed as CPU per message
(``time.process_time``): Mailsflux's compiled stages against the
plain-Python way (:mod:`mailsflux.benchmark.plain`), next to the floor (a
bare RSA-2048 / Ed25519 sign, a SHA-256 of the message). ``deliver`` is
client CPU per message into a sink on loopback (pipelined load generator
against aiosmtplib), and its floor the same exchange by a client in C that
does nothing else (:func:`~mailsflux.benchmark.floors.exchange_floor`);
the sink's own CPU is not counted.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from email.utils import formatdate
from pathlib import Path
from typing import Any

import mailsflux.benchmark.plain as plain
from mailsflux.benchmark.floors import exchange_floor, floor
from mailsflux.benchmark.loadgen import Settings, run_smtp
from mailsflux.benchmark.result import BenchError, new_result, table
from mailsflux.benchmark.sample import (
    DOMAIN,
    HTML,
    SELECTOR,
    SENDER,
    SENDER_ADDRESS,
    SUBJECT,
    TEXT,
    Prerendered,
    row,
    write_job,
)
from mailsflux.benchmark.sinks import sink
from mailsflux.compose import MessageBuilder, Template
from mailsflux.dkim import Signer, generate_private_key
from mailsflux.jobs import Prepared, RecipientFile
from mailsflux.jobs.journal import pending_record
from mailsflux.spool import Record, SpoolKeys, SQLiteSpool
from mailsflux.tracking import Tracker
from mailsflux.types import Recipient, RenderedMessage

STAGES = (
    "read row",
    "render",
    "MIME",
    "rewrite",
    "sign RSA-2048",
    "sign Ed25519",
    "spool result",
    "spool hold",
    "deliver",
    "whole message (RSA)",
)
BASE = "https://t.northwind.example"
#: Results committed together: a job's journal commits once per SMTP batch
#: (a connection pipelines up to 32 messages).
SPOOL_BATCH = 32


def _cpu_per_item(fn: Callable[[Any], object], items: Sequence[Any]) -> float:
    """Microseconds of CPU per item (one warm-up call first)."""
    fn(items[0])
    cpu = time.process_time()
    for it in items:
        fn(it)
    return (time.process_time() - cpu) / len(items) * 1e6


def _cpu_total(fn: Callable[[], int]) -> float:
    """Microseconds of CPU per unit of what ``fn`` returns (a count)."""
    cpu = time.process_time()
    n = fn()
    return (time.process_time() - cpu) / max(n, 1) * 1e6


def run_pipeline(
    rows: int = 1000, *, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    if rows < 10:
        raise BenchError("--rows must be at least 10")
    sign_rows = max(rows // 5, 20)
    data = [dict(row(i), filler="") for i in range(rows)]
    rsa_pem = generate_private_key("rsa-sha256")
    ed_pem = generate_private_key("ed25519-sha256")
    track_key = secrets.token_bytes(32)
    ours: dict[str, float] = {}
    theirs: dict[str, float] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mf-bench-pipeline-") as tmp:
        job = write_job(Path(tmp) / "job", rows)
        csv_path = job.parent / "recipients.csv"

        # read row
        ours["read row"] = _cpu_total(lambda: sum(1 for _ in RecipientFile(csv_path)))

        def read_plain() -> int:
            with csv_path.open(newline="", encoding="utf-8") as fh:
                return sum(1 for _ in csv.DictReader(fh))

        theirs["read row"] = _cpu_total(read_plain)

        # render
        subject_t, text_t, html_t = (
            Template(SUBJECT, escape=False),
            Template(TEXT, escape=False),
            Template(HTML),
        )
        ours["render"] = _cpu_per_item(
            lambda r: (subject_t.render(r), text_t.render_bytes(r), html_t.render_bytes(r)), data
        )
        theirs["render"] = _cpu_per_item(
            lambda r: (
                plain.subst(SUBJECT, r, False),
                plain.subst(TEXT, r, False),
                plain.subst(HTML, r, True),
            ),
            data,
        )
        rendered = [
            (subject_t.render(r), text_t.render_bytes(r), html_t.render_bytes(r)) for r in data
        ]

        # MIME
        builder = MessageBuilder(sender=SENDER)
        date = formatdate()

        def build(i: int) -> bytes:
            r, (s, t, h) = data[i], rendered[i]
            return builder.build(
                to=r["email"],
                to_name=r["name"],
                subject=s,
                date=date,
                message_id=f"bench.{i}@{DOMAIN}",
                text=t,
                html=h,
            )[0]

        idx = list(range(rows))
        ours["MIME"] = _cpu_per_item(build, idx)
        theirs["MIME"] = _cpu_per_item(
            lambda i: plain.mime(
                sender=SENDER,
                to=f"{data[i]['name']} <{data[i]['email']}>",
                subject=rendered[i][0],
                text=rendered[i][1].decode(),
                html=rendered[i][2].decode(),
                domain=DOMAIN,
            ),
            idx,
        )
        raws = [build(i) for i in idx]

        # rewrite (link tracking)
        tracker = Tracker(BASE, {"k1": track_key}, "k1")
        ours["rewrite"] = _cpu_per_item(
            lambda i: (
                tracker.rewrite_html(
                    rendered[i][2], message_id=f"m{i}", recipient=data[i]["email"]
                ),
                tracker.rewrite_text(
                    rendered[i][1], message_id=f"m{i}", recipient=data[i]["email"]
                ),
            ),
            idx,
        )
        html_s = [r[2].decode() for r in rendered]
        text_s = [r[1].decode() for r in rendered]
        theirs["rewrite"] = _cpu_per_item(
            lambda i: (
                plain.rewrite(
                    html_s[i], key=track_key, base=BASE, message_id=f"m{i}", recipient="x"
                ),
                plain.rewrite(
                    text_s[i], key=track_key, base=BASE, message_id=f"m{i}", recipient="x"
                ),
            ),
            idx,
        )
        if progress is not None:
            progress(0)

        # sign
        few = raws[:sign_rows]
        for label, alg, pem in (
            ("sign RSA-2048", "rsa-sha256", rsa_pem),
            ("sign Ed25519", "ed25519-sha256", ed_pem),
        ):
            signer = Signer(domain=DOMAIN, selector=SELECTOR, key=pem, algorithm=alg)
            ours[label] = _cpu_per_item(signer.sign, few)
            if plain.have_dkimpy():
                try:
                    theirs[label] = _cpu_per_item(
                        functools.partial(
                            plain.dkim_sign,
                            key_pem=pem,
                            selector=SELECTOR,
                            domain=DOMAIN,
                            algorithm=alg,
                        ),
                        few,
                    )
                except ImportError as exc:  # dkimpy's Ed25519 needs PyNaCl
                    notes.append(f"{label}: dkimpy cannot sign ({exc})")
        if not plain.have_dkimpy():
            notes.append("dkimpy not installed (pip install dkimpy): no plain-Python sign column")

        # spool: a job records each result (one commit per SMTP batch); the
        # engine holds each message whole before it is tried (one commit each).
        spool_dir = Path(tmp) / "spool"
        spool = SQLiteSpool(spool_dir, keys=SpoolKeys.generate())
        pspool = plain.PlainSpool(str(Path(tmp) / "plain-spool.db"))
        try:
            now = time.time()
            results = [
                Record(
                    row=i + 2,
                    state="delivered",
                    recipient=data[i]["email"],
                    message_id=f"bench.{i}@{DOMAIN}",
                    domain=data[i]["email"].rpartition("@")[2],
                    attempts=1,
                    first_at=now,
                    code=250,
                    enhanced_status="2.0.0",
                    reply="Ok: queued as 4Bx2kQ1b3Lz9",
                    updated=now,
                )
                for i in idx
            ]
            batches = [results[i : i + SPOOL_BATCH] for i in range(0, rows, SPOOL_BATCH)]

            def store(batch: list[Record]) -> int:
                spool.store("bench-results", batch)
                return len(batch)

            ours["spool result"] = _cpu_total(lambda: sum(store(b) for b in batches))

            def plain_store(batch: list[Record]) -> int:
                pspool.store(
                    "bench-results",
                    [
                        (
                            r.row,
                            r.state,
                            {
                                "recipient": r.recipient,
                                "message_id": r.message_id,
                                "domain": r.domain,
                                "attempts": r.attempts,
                                "code": r.code,
                                "enhanced_status": r.enhanced_status,
                                "reply": r.reply,
                                "at": r.updated,
                            },
                        )
                        for r in batch
                    ],
                )
                return len(batch)

            theirs["spool result"] = _cpu_total(lambda: sum(plain_store(b) for b in batches))

            def hold(i: int) -> int:
                msg = RenderedMessage(
                    mail_from=SENDER_ADDRESS,
                    rcpt_to=data[i]["email"],
                    data=raws[i],
                    message_id=f"bench.{i}@{DOMAIN}",
                )
                return spool.append("bench-held", pending_record(msg, now))

            ours["spool hold"] = _cpu_per_item(hold, idx)
            theirs["spool hold"] = _cpu_per_item(lambda i: pspool.hold("bench-held", raws[i]), idx)
        finally:
            spool.close()
            pspool.close()
        if progress is not None:
            progress(0)

        # whole message through the job's own composer (render, MIME, tracking, RSA sign)
        prepared = Prepared.load(job)
        try:
            composer = prepared.composer
            recips = [
                Recipient(
                    email=r["email"], vars={k: v for k, v in r.items() if k != "filler"}, row=i + 2
                )
                for i, r in enumerate(data[:sign_rows])
            ]
            ours["whole message (RSA)"] = _cpu_per_item(composer.compose, recips)
        finally:
            prepared.close()
        if plain.have_dkimpy():
            theirs["whole message (RSA)"] = (
                theirs["render"] + theirs["MIME"] + theirs["rewrite"] + theirs["sign RSA-2048"]
            )
            notes.append("plain whole message: the sum of its stages")

        # deliver
        rsa_signer = Signer(domain=DOMAIN, selector=SELECTOR, key=rsa_pem)
        signed = [Prerendered(data[i]["email"], rsa_signer.sign(raws[i])) for i in idx[:200]]
        deliver_n = max(2 * rows, 200)
        with sink("auto") as server:
            res = run_smtp(
                Settings("127.0.0.1", server.port, messages=deliver_n, connections=8),
                messages=signed,
            )
            ours["deliver"] = res["metrics"]["client_cpu_us_per_msg"]
            plain_n = min(rows, 1000)
            items = [
                (SENDER_ADDRESS, signed[i % len(signed)].recipient, signed[i % len(signed)].data)
                for i in range(plain_n)
            ]
            theirs["deliver"] = _cpu_total(
                lambda: asyncio.run(plain.aiosmtplib_send("127.0.0.1", server.port, items))
            )
            # The floor of delivering: the same exchange by a client that does nothing else.
            exchange = exchange_floor(
                server.port, SENDER_ADDRESS, signed[0].recipient, signed[0].data,
                count=deliver_n, connections=8,
            )  # fmt: skip
            sink_kind = server.kind
    if progress is not None:
        progress(1)
    f = floor(raws[0] if raws else b"")
    floors = {
        "sign RSA-2048": f["rsa2048_sign"],
        "sign Ed25519": f["ed25519_sign"],
        "whole message (RSA)": f["rsa2048_sign"],
        "deliver": exchange["exchange_us"],
    }
    result = new_result(
        "pipeline",
        {
            "rows": rows,
            "sign_rows": sign_rows,
            "deliver_messages": deliver_n,
            "sink": sink_kind,
            "message_bytes": len(raws[0]),
        },
    )
    result["metrics"] = {
        "mailsflux_us": {k: round(v, 2) for k, v in ours.items()},
        "plain_us": {k: round(v, 2) for k, v in theirs.items()},
        "floor_us": {k: round(v, 2) for k, v in f.items()},
    }
    result["notes"] = notes
    result["floor_by_stage"] = floors
    return result


def pipeline_text(result: dict[str, Any]) -> str:
    m = result["metrics"]
    ours, theirs, floors = m["mailsflux_us"], m["plain_us"], result["floor_by_stage"]
    rows: list[list[object]] = []
    for stage in STAGES:
        if stage not in ours:
            continue
        o, p, fl = ours[stage], theirs.get(stage), floors.get(stage)
        rows.append(
            [
                stage,
                o,
                "-" if p is None else p,
                "-" if p is None or not o else f"{p / o:.1f}x",
                "-" if fl is None else fl,
                "-" if fl is None or not fl else f"{o / fl:.2f}x",
            ]
        )
    rows.append(["SHA-256 of the message", "", "", "", m["floor_us"]["sha256"], ""])
    s = result["settings"]
    return (
        f"CPU microseconds per message ({s['message_bytes']} bytes; {s['rows']} rows,"
        f" signing {s['sign_rows']}; deliver into {s['sink']})\n"
        + table(
            ["stage", "mailsflux", "plain Python", "plain/mailsflux", "floor", "mailsflux/floor"],
            rows,
        )
    )
