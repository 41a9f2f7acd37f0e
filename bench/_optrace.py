"""Run ``mailsflux`` counting the bytecodes each function runs.

    python bench/_optrace.py OUT.json send JOB ...

Writes ``{"path:line:function": bytecodes}`` to OUT.json when the command
ends (the main thread only: the send's event loop runs there).
"""

from __future__ import annotations

import json
import runpy
import sys
from collections import Counter
from types import CodeType, FrameType
from typing import Any

_counts: Counter[CodeType] = Counter()


def _local(frame: FrameType, event: str, arg: Any) -> Any:
    if event == "opcode":
        _counts[frame.f_code] += 1
    return _local


def _call(frame: FrameType, event: str, arg: Any) -> Any:
    frame.f_trace_opcodes = True
    return _local


def _dump(out: str) -> None:
    sys.settrace(None)
    named: Counter[str] = Counter()
    for code, n in _counts.items():
        where = code.co_filename.rpartition("site-packages/")[2]
        named[f"{where}:{code.co_firstlineno}:{code.co_name}"] += n
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(named, fh)


def main() -> None:
    out = sys.argv[1]
    sys.argv = ["mailsflux", *sys.argv[2:]]
    sys.settrace(_call)
    try:
        runpy.run_module("mailsflux", run_name="__main__")
    except SystemExit as exc:
        _dump(out)
        raise SystemExit(exc.code) from None
    _dump(out)


if __name__ == "__main__":
    main()
