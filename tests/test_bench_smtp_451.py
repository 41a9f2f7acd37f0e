"""`bench smtp` with PIPELINING against a server that answers 451 to every
fourth RCPT: the refused messages are counted as failed, the rest arrive,
and every reply code is counted where it was given."""

from __future__ import annotations

import itertools

from mailsflux.benchmark import Settings, run_smtp
from tests._scripted_smtp import Conn, ScriptedSMTP


def test_bench_smtp_counts_451_refusals() -> None:
    rcpts = itertools.count(1)

    def script(line: str, conn: Conn) -> str | None:
        if line.startswith("RCPT") and next(rcpts) % 4 == 0:
            return "451 4.7.1 try again later"
        return None

    with ScriptedSMTP(script=script) as server:
        result = run_smtp(
            Settings("127.0.0.1", server.port, messages=40, connections=2, timeout=20)
        )
        bodies = len(server.bodies)
    m, codes = result["metrics"], result["codes"]
    assert bodies == 30
    assert (m["delivered"], m["failed"], m["not_sent"]) == (30, 10, 0)
    assert codes["rcpt"] == {"250": 30, "451": 10}
    assert codes["mail"] == {"250": 40}
    # With PIPELINING, DATA was already sent: the server refuses it.
    assert codes["data"] == {"354": 30, "554": 10}
    assert codes["eod"] == {"250": 30}
    assert sum(codes["rset"].values()) >= 9
    assert result["notes"] == []
    assert result["errors"] == {}
