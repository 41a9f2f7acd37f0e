"""Question: how many messages per second does ``mailsflux serve`` accept
durably over HTTP, next to the plain way, on the same cores in the same run?

Mailsflux: ``POST /v1/messages`` answered 202 only once the message is
rendered, DKIM-signed and committed to the tenant's spool (SQLite WAL), while
the same process delivers what it accepted into Postfix's ``smtp-sink``.
The plain way: a minimal ASGI app under the same uvicorn that appends each
request body to a file and answers 202 (no rendering, signing or delivery:
the floor of "an HTTP server that stores what it gets"). Both are driven by
``wrk`` (keep-alive, 32 connections). Prints requests/s, latency and the
server's CPU time per accepted message. Needs ``wrk`` and ``smtp-sink``.

    .venv/bin/python bench/bench_api_accept.py [--duration 10] [--connections 32]
        [--algorithm ed25519-sha256|rsa-sha256]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe
from mailsflux.benchmark.sinks import smtp_sink, smtp_sink_path

LUA = """
local i = 0
request = function()
  i = i + 1
  local body = '{"sender":"News <news@acme.example>","to":"r' .. i ..
    '@example.net","subject":"Hello {{first}}","text":"Hi {{first}}, your code is {{code}}.",' ..
    '"data":{"first":"Ann","code":"' .. i .. '"}}'
  return wrk.format("POST", "/v1/messages", {
    ["Authorization"] = "Bearer %s", ["Content-Type"] = "application/json"}, body)
end
"""

PLAIN = """
import sys, uvicorn
out = open(sys.argv[2], "ab")
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    out.write(body + b"\\n")
    out.flush()
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status":"queued"}'})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, lifespan="off")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(port: int, path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start")


def delivered(port: int) -> float:
    """Results so far, from the server's own /metrics."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("mailsflux_delivery_results_total{")
    )


def drive(
    port: int, lua: Path, args: argparse.Namespace, pid: int, drain: int = 0
) -> dict[str, float]:
    before = cpu(pid)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
         "-s", str(lua), f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    used = cpu(pid) - before
    total = int(re.search(r"^\s*(\d+) requests in", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    ok = total - (int(bad.group(1)) if bad else 0)
    result: dict[str, float] = {}
    if drain:  # CPU until every accepted message is also delivered
        deadline = time.monotonic() + 300
        while delivered(drain) < ok and time.monotonic() < deadline:
            time.sleep(0.1)
        result["delivered"] = delivered(drain)
        result["cpu_us_delivered"] = (cpu(pid) - before) / max(ok, 1) * 1e6
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return result | {
        "accepted": ok,
        "refused": total - ok,
        "per_second": ok / args.duration,
        "cpu_us": used / max(ok, 1) * 1e6,
        "p50": p50.group(1) if p50 else "?",  # type: ignore[dict-item]
        "p99": p99.group(1) if p99 else "?",  # type: ignore[dict-item]
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--algorithm", default="ed25519-sha256")
    args = ap.parse_args()
    if shutil.which("wrk") is None or smtp_sink_path() is None:
        print("needs wrk and smtp-sink (apt-get install wrk postfix)", file=sys.stderr)
        return 2
    with smtp_sink() as sink:
        return run(args, sink.port)


def run(args: argparse.Namespace, sink_port: int) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="mf-apibench-"))
    api_port, plain_port, metrics_port = free_port(), free_port(), free_port()
    cfg = tmp / "server.toml"
    cfg.write_text(f"""
data_dir = "data"
[http]
listen = "127.0.0.1:{api_port}"
metrics_listen = "127.0.0.1:{metrics_port}"
access_log = false
[delivery]
relay = "smtp+plain://127.0.0.1:{sink_port}"
ehlo_name = "bench.example"
[[tenants]]
name = "acme"
domains = ["acme.example"]
[[tenants.dkim]]
domain = "acme.example"
selector = "s1"
key = "acme.pem"
algorithm = "{args.algorithm}"
generate = true
""")
    mf = [sys.executable, "-m", "mailsflux"]
    key = subprocess.run(
        [*mf, "keys", "api", "create", "--tenant", "acme", "--role", "send", "--config", str(cfg)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    lua = tmp / "post.lua"
    lua.write_text(LUA % key)
    results = {}
    server = subprocess.Popen([*mf, "serve", "--config", str(cfg)], stderr=subprocess.DEVNULL)
    try:
        wait_ready(api_port, "/readyz")
        results["mailsflux"] = drive(api_port, lua, args, server.pid, drain=metrics_port)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    plain = subprocess.Popen([sys.executable, "-c", PLAIN, str(plain_port), str(tmp / "plain.out")])
    try:
        wait_ready(plain_port, "/")
        results["plain"] = drive(plain_port, lua, args, plain.pid)
    finally:
        plain.send_signal(signal.SIGTERM)
        plain.wait(30)
    print(describe())
    print(f"wrk -t1 -c{args.connections} -d{args.duration}s, loopback; DKIM {args.algorithm}")
    print(f"{'':<11}{'accepted/s':>12}{'CPU us/msg':>12}{'p50':>10}{'p99':>10}{'refused':>9}")
    for name, r in results.items():
        print(f"{name:<11}{r['per_second']:>12.0f}{r['cpu_us']:>12.1f}{r['p50']:>10}"
              f"{r['p99']:>10}{r['refused']:>9.0f}")  # fmt: skip
    ratio = results["mailsflux"]["cpu_us"] / max(results["plain"]["cpu_us"], 1e-9)
    print(f"CPU per accepted message, mailsflux / plain: {ratio:.1f}x (mailsflux also"
          " renders, signs and spools each one, and delivers some meanwhile)")  # fmt: skip
    m = results["mailsflux"]
    print(f"mailsflux, CPU until all {m['delivered']:.0f} were also delivered into smtp-sink: "
          f"{m['cpu_us_delivered']:.1f} us per message")  # fmt: skip
    print(json.dumps(results))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
