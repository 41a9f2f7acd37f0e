"""The example job (examples/welcome), copied into a temp dir with N rows."""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "welcome"
#: One row of the example job, for benchmarks composing a single message.
VARS = {
    "email": "zoe.haddad@example.org",
    "name": "Zoë Haddad",
    "first_name": "Zoë",
    "company": "Dunmore Freight",
    "plan": "Enterprise",
    "city": "Pune",
    "trial": "yes",
    "trial_end": "2026-12-15",
}


def make_job(rows: int, *, connections: int | None = None, algorithm: str | None = None) -> Path:
    """The example job with ``rows`` good, distinct recipients (its own rows,
    cycled, each address made unique); returns the job file's path."""
    tmp = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    job = tmp / "job"
    shutil.copytree(EXAMPLE, job, ignore=shutil.ignore_patterns("dkim", "out", "*.py"))
    src = list(csv.reader((EXAMPLE / "recipients.csv").open(encoding="utf-8")))
    header = src[0]
    body = [r for r in src[1:] if len(r) == len(header) and "@" in r[0]]
    body = [r for r in body if "\n" not in r[1]]
    with (job / "recipients.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        for i in range(rows):
            r = list(body[i % len(body)])
            local, _, domain = r[0].partition("@")
            r[0] = f"{local}.{i}@{domain}"
            w.writerow(r)
    text = (job / "job.toml").read_text()
    if connections is not None:
        text = text.replace("connections = 4", f"connections = {connections}")
    if algorithm is not None:
        text = text.replace('algorithm = "rsa-sha256"', f'algorithm = "{algorithm}"')
    (job / "job.toml").write_text(text)
    return job / "job.toml"
