"""Two rewriters of one events file at once (serve's sweep and a ``keys
rotate-store``, say) and a writer that opens the file between them: the second
rewriter waited on the lock of the file the first one replaced, so it must take
the new file's lock before reading, or a line appended to the new file
meanwhile is lost when it replaces it. (The seam: ``rewrite`` is wrapped to
run the interleaving at the moment that matters.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mailsflux import sealedlines
from mailsflux.spool import SpoolKeys


def _line(n: int) -> bytes:
    return (
        b'{"id":"evt_%d","type":"delivered","time":%f,"tenant":"","message_id":"m%d@x",'
        b'"recipient":"p%d@x.example"}\n' % (n, time.time(), n, n)
    )


def test_second_rewriter_loses_no_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = SpoolKeys.load(tmp_path / "keys")
    path = tmp_path / "ev.jsonl"
    with sealedlines.open_append(path, keys) as w:
        w.write(_line(1))
    real = sealedlines.rewrite
    a_may_replace = threading.Event()
    writers: list[threading.Thread] = []

    def rewrite(p: Path, docs: list[Any]) -> None:
        if threading.current_thread().name == "A":
            a_may_replace.wait()  # B waits on the lock of the file A replaces
        else:  # B, having read: a new writer appends meanwhile

            def append() -> None:
                with sealedlines.open_append(path, keys) as w2:
                    w2.write(_line(2))

            t = threading.Thread(target=append)
            t.start()
            writers.append(t)
            t.join(0.5)  # blocks on B's lock when B holds the file's own
        real(p, docs)

    monkeypatch.setattr(sealedlines, "rewrite", rewrite)
    a = threading.Thread(name="A", target=sealedlines.reseal, args=(path, keys))
    a.start()
    time.sleep(0.2)
    b = threading.Thread(name="B", target=sealedlines.reseal, args=(path, keys))
    b.start()
    time.sleep(0.2)
    a_may_replace.set()
    a.join()
    b.join()
    for t in writers:
        t.join()
    assert [e["id"] for e in sealedlines.read(path, keys)] == ["evt_1", "evt_2"]
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".ev.jsonl")]
