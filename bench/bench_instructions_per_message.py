"""Question: how many CPU instructions does one message of a whole send cost,
and in which library?

CPU time on a shared virtual machine moves by a tenth from run to run (on
2026-12-01 the same build's whole job gave 220 to 264 us a message in six
rounds), so a change worth 2 % of a message cannot be seen in it.
Instructions can: ``valgrind --tool=callgrind`` counts them, whatever the
machine's speed or load. This sends the benchmark job
(:mod:`mailsflux.benchmark.sample`: tracking on, Ed25519, the spool on)
with ``mailsflux send --workers 1`` into a sink under callgrind, with N and
3N rows; the difference over 2N is what one more message costs, start-up
left out. Next to it, the floor in the same run: a bare Ed25519 sign
(:func:`mailsflux.dkim.sodium.ed25519_signer`, as the job signs: libsodium
where PyNaCl is installed) and SHA-256 of the job's message size.
It prints thousands of instructions a message by shared object (the
interpreter, the sign's library, each compiled module of ``core/``) and
the functions that cost the most.

    .venv/bin/python bench/bench_instructions_per_message.py [N] [top]

Callgrind runs the program some 50 times slower. It counts user-space
instructions only: the kernel's (system calls, on loopback the sink's TCP)
are not in it, nor the sink's. Under valgrind OpenSSL finds no SHA
extensions, so SHA-256 costs more instructions here than on the CPU.
To compare two builds, run it under each (``PYTHONPATH=/tmp/base-site``).

Each program runs with ``PYTHONHASHSEED=0``: Python seeds its string
hashing per process, and the dict lookups' instructions moved by about
1.5k a message between runs of one build. With one seed two runs agree
within about 0.5k (161.8k and 162.3k beyond the floor): the rest moves
with how the messages fall into batches, which timing decides.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from _machine import describe
from mailsflux.benchmark.e2e import _first_message
from mailsflux.benchmark.sample import write_job
from mailsflux.benchmark.sinks import sink

#: ``  1,234 (12.34%)  file:function [/path/object.so]`` in callgrind_annotate's output.
_LINE = re.compile(r"^\s*([0-9,]+) \(\s*[0-9.]+%\)\s+(.*?)\s+\[(.*)\]\s*$")

#: The sign a job's signer makes (libsodium where PyNaCl is installed).
_FLOOR = """
import hashlib, os, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mailsflux.dkim.sodium import ed25519_signer
n, size = int(sys.argv[1]), int(sys.argv[2])
sign, _ = ed25519_signer(Ed25519PrivateKey.generate())
body = os.urandom(size)
for _ in range(n):
    sign(hashlib.sha256(body).digest())
"""
_SHA_ONLY = _FLOOR.replace("sign(hashlib.sha256(body).digest())", "hashlib.sha256(body).digest()")


def _callgrind(cmd: list[str], out: Path) -> tuple[Counter[str], Counter[str], str]:
    """Instructions of ``cmd`` by shared object and by function, and its output."""
    run = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict probes each run
    done = subprocess.run(run, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed under callgrind: {done.stderr[-800:]}")
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    objects: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None or "PROGRAM TOTALS" in line:
            continue
        n, where, obj = int(m.group(1).replace(",", "")), m.group(2), Path(m.group(3)).name
        objects[obj] += n
        functions[f"{where.rpartition(':')[2]} ({obj})"] += n
    out.unlink()
    return objects, functions, done.stdout


def _send(rows: int, port: int, tmp: Path) -> tuple[Counter[str], Counter[str], int]:
    job = write_job(tmp / f"job-{rows}", rows, algorithm="ed25519-sha256", spool="spool")
    # Keys and tracking secrets are made here, before counting.
    size = len(_first_message(job).data)
    cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "--json", "-q", "--workers", "1"]
    cmd += ["--relay", f"smtp+plain://127.0.0.1:{port}"]
    objects, functions, stdout = _callgrind(cmd, tmp / f"send-{rows}.out")
    # A message deferred or failed is not sent, maybe not signed: the
    # difference between the two sends would not be N messages' work.
    result = json.loads(stdout)
    if result["sent"] != rows:
        raise SystemExit(f"the send of {rows} rows under callgrind sent {result['sent']}: {stdout}")
    return objects, functions, size


def _per(one: Counter[str], three: Counter[str], n: int) -> dict[str, float]:
    return {k: (three[k] - one[k]) / (2 * n) for k in one.keys() | three.keys()}


def per_message(
    n: int,
) -> tuple[dict[str, float], dict[str, float], dict[str, float], int, set[str]]:
    """Instructions a message by object and by function, the floor's by
    part (``sign`` with its SHA-256, ``sha256`` alone), the message size,
    and the shared objects the sign runs in (the floor's beyond its SHA-256)."""
    with tempfile.TemporaryDirectory(prefix="mf-bench-ir-") as tmp, sink("auto") as server:
        t = Path(tmp)
        o1, f1, size = _send(n, server.port, t)
        o3, f3, _ = _send(3 * n, server.port, t)
        floor, by_object = {}, {}
        for name, code in (("sign", _FLOOR), ("sha256", _SHA_ONLY)):
            a, _, _ = _callgrind([sys.executable, "-c", code, str(n), str(size)], t / "f1.out")
            b, _, _ = _callgrind([sys.executable, "-c", code, str(3 * n), str(size)], t / "f3.out")
            by_object[name] = _per(a, b, n)
            floor[name] = sum(by_object[name].values())
    # Where the sign's own instructions are: PyNaCl's _sodium with libsodium
    # built in, a system libsodium it links, or cryptography's _rust or a
    # system libcrypto; found by measuring, not by the wheel's layout.
    beyond = floor["sign"] - floor["sha256"]
    signs_in = {
        k
        for k, v in by_object["sign"].items()
        if v - by_object["sha256"].get(k, 0.0) > 0.1 * beyond
    }
    return _per(o1, o3, n), _per(f1, f3, n), floor, size, signs_in


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_a_message_costs_instructions_in_the_sign_the_interpreter_and_the_core() -> None:
    objects, _, floor, _, signs_in = per_message(10)
    sign = sum(objects.get(k, 0.0) for k in signs_in)
    python = sum(v for k, v in objects.items() if k.startswith("libpython"))
    core = sum(v for k, v in objects.items() if k.startswith(("_canon", "_mimebuild", "_smtpfast")))
    # The sign is in the signing library's object; the job adds the interpreter's
    # and the compiled core's work around it.
    # The floor's two programs differ by the sign alone, and it is most of the first.
    beyond = floor["sign"] - floor["sha256"]
    assert floor["sha256"] > 0 and beyond > 0.3 * floor["sign"], floor
    assert signs_in, floor
    assert sign > 0.5 * beyond, (sign, floor, signs_in, objects)
    assert python > 1000 and core > 1000, objects
    assert sum(objects.values()) > floor["sign"]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    print(describe())
    objects, functions, floor, size, signs_in = per_message(n)
    total = sum(objects.values())
    print(
        f"{n} and {3 * n} messages of {size} bytes (Ed25519, tracked, spool on), one process,"
        " user-space instructions a message (callgrind):"
    )
    print(f"{total / 1000:9.1f} k  the whole message")
    print(f"{floor['sign'] / 1000:9.1f} k  floor: a bare Ed25519 sign of its SHA-256")
    print(f"{floor['sha256'] / 1000:9.1f} k  floor: SHA-256 of {size} bytes alone")
    print(f"{(total - floor['sign']) / 1000:9.1f} k  beyond the floor")
    print(f"the sign runs in: {', '.join(sorted(signs_in))}")
    print("by shared object:")
    for k, v in sorted(objects.items(), key=lambda kv: -kv[1]):
        if v >= 500:
            print(f"{v / 1000:9.1f} k  {k}")
    print("by function:")
    for k, v in sorted(functions.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{v / 1000:9.1f} k  {k}")


if __name__ == "__main__":
    main()
