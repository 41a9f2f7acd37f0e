"""The progress total is the number of rows from the first line drawn to the last.

It once counted line ends: a quoted field spanning two lines made the demo's
bar say 1201 and then 1200; a last row without a newline or blank lines
miscounted too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people


def test_total_counts_rows_not_line_ends(tmp_path: Path) -> None:
    rows = [",".join(r) for r in people(30)]
    rows[4] = 'user4@example.com,"User\nFour",Name4,Team'  # one row, two lines (skipped: To)
    rows[9] = '"user9@example.org",User 9,"Name\n\n9",Pro'  # three lines (skipped: Subject)
    rows.insert(15, "")  # a blank line is not a row
    job = make_job(tmp_path, [])
    csv_path = job.parent / "recipients.csv"
    csv_path.write_text("email,name,first_name,plan\n" + "\n".join(rows), encoding="utf-8")
    proc = run_cli("send", str(job), "--local-sink")
    assert proc.returncode == 0, proc.stderr
    totals = {int(m) for m in re.findall(r"\] \d+/(\d+) ", proc.stderr)}
    assert totals == {30}, proc.stderr
    assert "sent      28" in proc.stdout and "skipped   2" in proc.stdout

    proc = run_cli("send", str(job), "--local-sink", "--json", "--restart")
    assert json.loads(proc.stdout.splitlines()[-1])["total"] == 30
