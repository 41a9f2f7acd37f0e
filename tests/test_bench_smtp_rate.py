"""`bench smtp --rate`: an open-loop schedule. Asserted on the schedule
itself (when each message is due), never on wall time: no message goes
out before it is due, and the result records the intended rate."""

from __future__ import annotations

import pytest

from mailsflux.benchmark import Settings, intended_offsets, run_smtp
from tests._scripted_smtp import ScriptedSMTP


def test_bench_smtp_rate_follows_the_schedule() -> None:
    assert intended_offsets(4, 200) == pytest.approx([0.0, 0.005, 0.010, 0.015])
    assert intended_offsets(3, 0) == [0.0, 0.0, 0.0]
    with ScriptedSMTP() as server:
        result = run_smtp(
            Settings("127.0.0.1", server.port, messages=12, connections=2, rate=200, timeout=20)
        )
        assert len(server.bodies) == 12
    m = result["metrics"]
    assert result["settings"]["rate"] == 200
    assert m["intended_rate_msg_s"] == 200
    assert m["intended_duration_s"] == pytest.approx(11 / 200)
    # Sent when due or later, never early; latency counts from the due time.
    assert m["min_send_lag_ns"] >= 0
    assert m["send_lag_ms"]["count"] == 12
    assert m["latency_ms"]["message"]["count"] == 12
