"""``mailsflux bench``: the command line of the benchmark harness."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mailsflux.benchmark.result import (
    BenchError,
    Progress,
    compare_table,
    ed25519_library,
    header_line,
    load,
    save,
    table,
)

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bench", help="benchmark harness: SMTP load, whole jobs, per-stage costs")
    bench = p.add_subparsers(dest="bench_command", required=True, metavar="KIND")

    def outputs(q: argparse.ArgumentParser, json: bool = True) -> None:
        if json:
            q.add_argument("--json", type=Path, metavar="FILE", help="save the result as JSON")
        q.add_argument(
            "--plot", type=Path, metavar="FILE.png", help="draw charts (needs matplotlib)"
        )
        q.add_argument("--html", type=Path, metavar="FILE", help="an HTML page with the charts")

    q = bench.add_parser("smtp", help="load-test any SMTP server with signed, personalised mail")
    q.add_argument(
        "--target",
        required=True,
        metavar="smtp://HOST:PORT",
        help="the server (port 25 if left out)",
    )
    q.add_argument("--messages", type=int, default=10_000, metavar="N", help="how many (10,000)")
    q.add_argument("--connections", type=int, default=8, metavar="C", help="connections (8)")
    q.add_argument(
        "--rate",
        type=float,
        default=0.0,
        metavar="R",
        help="messages per second, open loop (latency counts from each message's due time);"
        " 0: as fast as the server answers",
    )
    q.add_argument("--size", type=int, default=0, metavar="BYTES", help="about this big (0: ~3 kB)")
    q.add_argument(
        "--pipelining",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="use PIPELINING when the server offers it",
    )
    q.add_argument("--tls", action="store_true", help="STARTTLS (the certificate is not verified)")
    q.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        default="rsa-sha256",
        help="DKIM algorithm of the throwaway signing key (rsa-sha256)",
    )
    q.add_argument("--timeout", type=float, default=30.0, metavar="S", help="reply timeout")
    outputs(q)
    q.set_defaults(func=cmd_smtp)

    q = bench.add_parser("e2e", help="a whole job through `mailsflux send` (all cores) into a sink")
    q.add_argument("--messages", type=int, default=20_000, metavar="N", help="rows (20,000)")
    q.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        default="rsa-sha256",
        help="DKIM algorithm of the job (rsa-sha256)",
    )
    q.add_argument("--workers", type=int, default=0, metavar="N", help="0: one per core")
    q.add_argument("--connections", type=int, default=8, metavar="C", help="connections (8)")
    q.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="run the job N times, each with its own floor; report the medians (1)",
    )
    q.add_argument(
        "--sink",
        choices=("auto", "smtp-sink", "builtin"),
        default="auto",
        help="auto: Postfix's smtp-sink when installed, else the built-in sink",
    )
    q.add_argument(
        "--tracking",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="track links and opens and give each message its one-click unsubscribe token,"
        " as the sample job does (on); --no-tracking: messages as an MTA that does not track"
        " sends them",
    )
    q.add_argument(
        "--profile",
        action="store_true",
        help="one more send under Linux perf: the CPU a message split by the part of the stack"
        " that spent it (the sign, the interpreter, the compiled core, the kernel, ...)",
    )
    outputs(q)
    q.set_defaults(func=cmd_e2e)

    q = bench.add_parser("pipeline", help="per-message cost of each stage, against plain Python")
    q.add_argument("--rows", type=int, default=1000, metavar="N", help="messages per stage")
    outputs(q)
    q.set_defaults(func=cmd_pipeline)

    q = bench.add_parser("compare", help="two saved results side by side, with ratios")
    q.add_argument("a", type=Path, metavar="A.json", help="the baseline result")
    q.add_argument("b", type=Path, metavar="B.json", help="the result to compare (ratios are B/A)")
    outputs(q, json=False)
    q.set_defaults(func=cmd_compare)


def _check_charts(args: argparse.Namespace) -> None:
    """Fail before a long run, not after it, when charts cannot be drawn."""
    if getattr(args, "plot", None) is not None or getattr(args, "html", None) is not None:
        from mailsflux.benchmark.plot import pyplot

        pyplot()


def _finish(result: dict[str, Any], args: argparse.Namespace, text: str) -> int:
    print(header_line(result))
    print(text)
    for note in result.get("notes", []):
        print(f"note: {note}")
    if args.json is not None:
        save(result, args.json)
    if args.plot is not None or args.html is not None:
        from mailsflux.benchmark.plot import html_page, png

        if args.plot is not None:
            png(result, args.plot)
        if args.html is not None:
            html_page(result, args.html, text)
    return 0


def smtp_text(result: dict[str, Any]) -> str:
    m = result["metrics"]
    lines = [
        f"{m['delivered']} delivered, {m['failed']} failed, {m['not_sent']} not completed"
        f" in {m['elapsed_s']:.3f} s: {m['throughput_msg_s']:,.0f} messages/s"
        f" ({m['mean_message_bytes']:,.0f} bytes each;"
        f" client CPU {m['client_cpu_us_per_msg']:.1f} us/message)",
    ]
    if "intended_rate_msg_s" in m:
        lag = m["send_lag_ms"]
        lines.append(
            f"open loop at {m['intended_rate_msg_s']:g}/s: sent behind schedule by"
            f" p50 {lag.get('p50', 0):.3f} ms, p99 {lag.get('p99', 0):.3f} ms,"
            f" max {lag.get('max', 0):.3f} ms"
        )
    rows = []
    for phase, s in m["latency_ms"].items():
        rows.append(
            [phase, int(s["count"])]
            + [s.get(k, 0.0) for k in ("p50", "p90", "p99", "p99.9", "max")]
        )
    lines.append(table(["latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"], rows))
    codes = ", ".join(
        f"{phase} " + " ".join(f"{code}x{n}" for code, n in c.items())
        for phase, c in result["codes"].items()
    )
    lines.append(f"reply codes: {codes}")
    for err, n in result.get("errors", {}).items():
        lines.append(f"connection errors: {n}x {err}")
    return "\n".join(lines)


def cmd_smtp(args: argparse.Namespace) -> int:
    _check_charts(args)
    from mailsflux.benchmark.loadgen import Settings, parse_target, run_smtp

    host, port = parse_target(args.target)
    settings = Settings(
        host=host,
        port=port,
        messages=args.messages,
        connections=args.connections,
        rate=args.rate,
        size=args.size,
        pipelining=args.pipelining,
        tls=args.tls,
        algorithm=args.algorithm,
        timeout=args.timeout,
    )
    progress = Progress(args.messages, "smtp")
    try:
        result = run_smtp(settings, progress=progress.update)
    finally:
        progress.close()
    if result["metrics"]["delivered"] + result["metrics"]["failed"] == 0 and result["errors"]:
        raise BenchError(f"{args.target}: {next(iter(result['errors']))}")
    return _finish(result, args, smtp_text(result))


def e2e_text(result: dict[str, Any]) -> str:
    from mailsflux.benchmark.floors import sign_floor
    from mailsflux.dkim.sodium import CRYPTOGRAPHY

    m, s = result["metrics"], result["settings"]
    f = m["floor_us"]
    own = sign_floor(s["algorithm"])
    ed_lib = ed25519_library(result)
    rows = [
        [
            f"mailsflux send ({s['algorithm']}, {s['workers']}"
            f"{'' if s.get('tracking', True) else ', no tracking'})",
            m["cpu_us_per_msg"],
            m["throughput_msg_s"],
            "",
        ],
        ["floor: bare RSA-2048 sign", f["rsa2048_sign"], "", ""],
        [f"floor: bare Ed25519 sign ({ed_lib})", f["ed25519_sign"], "", ""],
    ]
    # The job signs Ed25519 through libsodium where it can: cryptography's
    # sign (the floor before it did) is shown beside it.
    if ed_lib != CRYPTOGRAPHY and "ed25519_sign_cryptography" in f:
        rows.append(["  the same through cryptography", f["ed25519_sign_cryptography"], "", ""])
    rows.append(["floor: SHA-256 of the message", f["sha256"], "", ""])
    if "exchange_us_per_msg" in m:  # results saved before it was measured lack it
        n_conns = m.get("exchange_connections", s["connections"])
        plural = "s" if n_conns != 1 else ""
        rows.append(
            [
                f"floor: the SMTP exchange alone (C, {n_conns} connection{plural})",
                m["exchange_us_per_msg"],
                m["exchange_msg_s"],
                "",
            ]
        )
    rows[0][3] = f"{m['over_floor_x']:.2f}x the {own.replace('_', ' ')}"
    out = table(["", "CPU us/message", "messages/s", "vs floor"], rows)
    text = (
        f"{m['sent']} messages ({m['message_bytes']} bytes) into {s['sink']} in"
        f" {m['elapsed_s']:.2f} s; CPU of every process of the send\n{out}\n"
        f"beyond the floor: {m['beyond_floor_us_per_msg']:.1f} us CPU per message"
    )
    if "system_us_per_msg" in m:  # results saved before it was measured lack it
        text += (
            f"\nof the CPU per message: {m['user_us_per_msg']:.1f} us in the processes,"
            f" {m['system_us_per_msg']:.1f} us in the kernel (system calls; on loopback"
            " also the sink's side of TCP)"
        )
    if "exchange_us_per_msg" in m:
        text += (
            f"\nbeyond the sign and the exchange: {m['beyond_floors_us_per_msg']:.1f} us CPU per"
            f" message, the engine's own work (the exchange alone: {m['exchange_us_per_msg']:.1f}"
            f" us, {m['exchange_system_us_per_msg']:.1f} of them in the kernel)"
        )
    if "startup_cpu_ms" in m:  # results saved before it was measured lack it
        text += (
            f"\nstart-up (a one-row send of the job): {m['startup_cpu_ms']:.1f} ms CPU,"
            f" {m['startup_cpu_ms'] * 1e3 / max(m['sent'], 1):.1f} us a message of this job;"
            f" after it: {m['after_startup_us_per_msg']:.1f} us a message,"
            f" {m['after_startup_beyond_floor_us']:.1f} beyond the floor"
        )
        if "after_startup_beyond_floors_us" in m:
            text += f", {m['after_startup_beyond_floors_us']:.1f} beyond the sign and the exchange"
    each = result.get("rounds", [])
    if len(each) > 1:
        text = f"median of {len(each)} rounds: " + text
        text += "\n" + table(
            ["round", "CPU us/message", "floor us", "vs floor", "beyond floor us",
             "start-up ms", "after start-up us", "kernel us", "exchange us",
             "beyond both us"],
            [
                [
                    str(i),
                    r["cpu_us_per_msg"],
                    r["floor_us"][own],
                    f"{r['over_floor_x']:.2f}x",
                    r["beyond_floor_us_per_msg"],
                    r.get("startup_cpu_ms", ""),
                    r.get("after_startup_us_per_msg", ""),
                    r.get("system_us_per_msg", ""),
                    r.get("exchange_us_per_msg", ""),
                    r.get("beyond_floors_us_per_msg", ""),
                ]
                for i, r in enumerate(each, 1)
            ],
        )  # fmt: skip
    if "profile_us_per_msg" in m:
        text += "\n" + profile_text(m["profile_share"], m["profile_us_per_msg"])
    return text


def profile_text(share: dict[str, float], us: dict[str, float]) -> str:
    """The ``--profile`` table: each part that ran, its share and its us a message."""
    from mailsflux.benchmark.profile import PARTS

    rows = [
        [PARTS.get(k, k), f"{100 * v:.1f} %", f"{us.get(k, 0.0):.1f}"]
        for k, v in share.items()
        if v > 0
    ]
    head = "where the CPU goes (perf, every process of one more send of the job):\n"
    return head + table(["part", "samples", "CPU us/message"], rows)


def cmd_e2e(args: argparse.Namespace) -> int:
    _check_charts(args)
    from mailsflux.benchmark.e2e import run_e2e

    progress = Progress(args.messages * max(args.rounds, 1), "e2e")
    progress.update(0, force=True)
    try:
        result = run_e2e(
            args.messages,
            algorithm=args.algorithm,
            workers=args.workers,
            connections=args.connections,
            sink_kind=args.sink,
            rounds=args.rounds,
            tracking=args.tracking,
            profile=args.profile,
            progress=progress.update,
        )
    finally:
        progress.close()
    return _finish(result, args, e2e_text(result))


def cmd_pipeline(args: argparse.Namespace) -> int:
    _check_charts(args)
    from mailsflux.benchmark.pipeline import pipeline_text, run_pipeline

    progress = Progress(1, "pipeline")
    try:
        result = run_pipeline(args.rows, progress=progress.update)
    finally:
        progress.close()
    return _finish(result, args, pipeline_text(result))


def cmd_compare(args: argparse.Namespace) -> int:
    _check_charts(args)
    a, b = load(args.a), load(args.b)
    names = (args.a.name, args.b.name)
    if names[0] == names[1]:  # run-1/result.json and run-2/result.json
        names = (str(args.a), str(args.b))
    if names[0] == names[1]:  # one file twice
        names = (f"A {names[0]}", f"B {names[1]}")
    text = compare_table(a, b, names)
    print(text)
    if args.plot is not None or args.html is not None:
        from mailsflux.benchmark.plot import compare_html, compare_png

        if args.plot is not None:
            compare_png(a, b, names, args.plot)
        if args.html is not None:
            compare_html(a, b, names, args.html, text)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mailsflux")
    add_parser(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(argv)
    try:
        return int(args.func(args))
    except BenchError as exc:
        print(f"mailsflux: error: {exc}", file=sys.stderr)
        return 2
