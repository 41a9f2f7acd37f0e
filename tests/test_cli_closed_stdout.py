"""A reader that closes stdout early (`mailsflux ... | head`) ends the command
quietly with 141 (128 + SIGPIPE, as for a tool SIGPIPE ended), not with a
traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mailsflux.benchmark.result import new_result


def test_a_closed_stdout_is_no_traceback(tmp_path: Path) -> None:
    doc = new_result("e2e", {"messages": 1})
    doc["metrics"] = {f"metric_{i}": float(i) for i in range(2000)}  # more than a pipe holds
    path = tmp_path / "a.json"
    path.write_text(json.dumps(doc))
    read, write = os.pipe()
    os.close(read)  # nobody will read: the first write fails (EPIPE)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mailsflux", "bench", "compare", str(path), str(path)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert proc.returncode == 141
    assert proc.stderr == ""
