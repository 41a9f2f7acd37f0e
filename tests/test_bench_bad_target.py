"""A bad `--target` is one clear error line and exit 2, never a traceback."""

from __future__ import annotations

import socket

from tests._cli import run_cli


def test_bench_smtp_bad_target_is_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once the socket is closed
    for target, want in (
        ("http://127.0.0.1:25", "expected smtp://HOST:PORT"),
        ("smtp://127.0.0.1:99999", "out of range"),
        ("smtp://", "expected smtp://HOST:PORT"),
        (f"smtp://127.0.0.1:{closed}", "connect:"),
    ):
        proc = run_cli("bench", "smtp", "--target", target, "--messages", "3")
        assert proc.returncode == 2, (target, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, (target, proc.stderr)
        assert lines[0].startswith("mailsflux: error: ") and want in lines[0], lines
        assert "Traceback" not in proc.stderr
