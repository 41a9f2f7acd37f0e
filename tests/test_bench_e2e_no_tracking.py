"""`bench e2e --no-tracking` sends the job without link tracking, open
pixel and unsubscribe token (as an MTA that does not track would), says so
in its settings and its table, and the sink gets shorter messages than the
tracked job's (each tracked link becomes a sealed token URL). The floors
take the message the job sends, and the size reported follows the job's."""

from __future__ import annotations

import json
from pathlib import Path

from tests._cli import run_cli


def _e2e(tmp_path: Path, *flags: str) -> tuple[dict[str, object], str]:
    out = tmp_path / f"e2e{'-'.join(flags)}.json"
    proc = run_cli(
        "bench", "e2e", "--messages", "4", "--sink", "builtin", "--workers", "1",
        "--algorithm", "ed25519-sha256", "--json", str(out), *flags,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc.stdout


def test_no_tracking_sends_plain_messages(tmp_path: Path) -> None:
    plain, text = _e2e(tmp_path, "--no-tracking")
    tracked, tracked_text = _e2e(tmp_path)
    assert plain["settings"]["tracking"] is False  # type: ignore[index]
    assert tracked["settings"]["tracking"] is True  # type: ignore[index]
    assert ", no tracking)" in text and ", no tracking)" not in tracked_text
    pm, tm = plain["metrics"], tracked["metrics"]
    # The job's four messages and its one-row start-up send, each way.
    assert pm["sink_messages"] == tm["sink_messages"] == 5  # type: ignore[index]
    # The same rows and templates: only the tracking makes the difference.
    per_plain = pm["sink_octets"] / 5  # type: ignore[index,operator]
    per_tracked = tm["sink_octets"] / 5  # type: ignore[index,operator]
    assert per_plain < per_tracked - 200, (per_plain, per_tracked)
    # message_bytes, the size of the message both floors take (the job's
    # own first, tracked or not), differs as the sink's mean messages do (a
    # row's tokens vary in length with its address, so not to the byte).
    floors_differ = tm["message_bytes"] - pm["message_bytes"]  # type: ignore[index,operator]
    assert floors_differ > 0.8 * (per_tracked - per_plain), (floors_differ, per_plain, per_tracked)
