"""Question: how many click redirects per second does the tracking server
answer, each with its event recorded?

Starts ``mailsflux track-server`` (uvicorn, httptools, uvloop; one process)
on loopback with a fresh config, makes 1,000 distinct valid click tokens,
drives it with ``wrk`` (a Lua script cycling through the tokens), then stops
the server (which flushes the event writer) and counts the click events in
the store. Needs ``wrk`` (``apt-get install wrk``). Run:

    .venv/bin/python bench/bench_trackserver.py [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import http.client
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
from mailsflux.tracking import load_config, write_new_config

LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i %% #paths + 1
  local ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
  return wrk.format("GET", paths[i], {["User-Agent"] = ua})
end
local redirects = 0
response = function(status, headers, body)
  if status == 302 then redirects = redirects + 1 end
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="mf-trackbench-"))
    cfg_path = tmp / "tracking.toml"
    write_new_config(cfg_path, "https://t.example.com")
    cfg = load_config(cfg_path)
    tracker = cfg.tracker()
    sent = time.time() - 3600
    paths = tmp / "paths.txt"
    with paths.open("w") as fh:
        for i in range(1000):
            url = f"https://shop.example/p/{i}?utm_source=mail&u=user{i}%40example.org"
            link = tracker.click_url(
                url,
                message_id=f"{i:08x}.{i}@bench.example",
                recipient=f"user{i}@example.org",
                job="bench",
                sent_at=sent,
            )
            fh.write(link[len("https://t.example.com") :] + "\n")
    lua = tmp / "cycle.lua"
    lua.write_text(LUA % paths)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from mailsflux.tracking import main; sys.exit(main())",
            "--config",
            str(cfg_path),
            "--port",
            str(port),
        ],
    )
    try:
        first = paths.read_text().splitlines()[0]
        deadline = time.monotonic() + 15
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", first)
                r = c.getresponse()
                assert r.status == 302, r.status
                c.close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        out = subprocess.run(
            [
                "wrk",
                f"-t{args.threads}",
                f"-c{args.connections}",
                f"-d{args.duration}s",
                "--latency",
                "-s",
                str(lua),
                f"http://127.0.0.1:{port}/",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        server.send_signal(signal.SIGINT)  # lifespan shutdown flushes the writer
        server.wait(30)
    m = re.search(r"^\s*(\d+) requests in", out, re.M)
    total = int(m.group(1)) if m else -1
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    with cfg.open_store() as store:
        clicks = store.count("click")
        machine = store.count("click", machine=True)
    print(describe())
    print(out.rstrip())
    print(
        f"\nclick redirects/s: {rps.group(1) if rps else '?'}  "
        f"(wrk -t{args.threads} -c{args.connections} -d{args.duration}s, loopback, "
        "1 server process)"
    )
    print(f"requests completed: {total}; non-3xx answers: {non2xx.group(1) if non2xx else 0}")
    print(
        f"click events in the store after shutdown: {clicks} (+1 warm-up), "
        f"machine-flagged: {machine}"
    )
    ok = clicks >= total  # every answered request recorded (wrk may count a few unanswered)
    print("every redirect recorded:", "yes" if ok else "NO")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
