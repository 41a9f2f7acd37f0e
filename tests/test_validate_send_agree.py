"""`validate` and `send` agree on tricky jobs: a job `validate` passes is one
whose rows `send` composes, and every row `send` would skip, `validate`
reports, and no more. (Composition is what decides a skip; it runs here as
`send` runs it, without the network.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.errors import MailsfluxError
from mailsflux.jobs import Prepared, compose_all, validate
from mailsflux.types import Problem
from tests._jobs import make_job, people

TRACKING = """
[tracking]
config = "tracking.toml"
generate = true
base_url = "https://t.sender.example"
"""
MAILTO = TRACKING + 'unsubscribe_mailto = "{mailto}"\n'
LONG_DOMAIN = ".".join(["a" * 58] * 4)  # 235 characters: a valid domain
# Addresses of many lengths, so a bound met by some rows is seen per row.
ROWS = (
    people(3)
    + [[f"{'x' * n}@example.com", "X", "X", "Pro"] for n in (1, 20, 40, 64)]
    + [["zo\u00eb@b\u00fccher.example", "Zo\u00eb", "Z", "Team"]]
)


def _job(tmp: Path, *, head: str = "", tail: str = "", domain: str | None = None) -> Path:
    job = make_job(tmp, ROWS)
    text = head + job.read_text()
    if domain is not None:
        text = text.replace('domain = "sender.example"', f'domain = "{domain}"')
    job.write_text(text + tail)
    return job


JOBS = {
    "plain": {},
    "tracked": {"tail": MAILTO.format(mailto="unsubscribe@sender.example")},
    "bad unsubscribe_mailto": {"tail": MAILTO.format(mailto="not an address")},
    "mailto with a header break": {"tail": MAILTO.format(mailto="u@x.example>, <https://e.vil")},
    "235-character DKIM domain": {"domain": LONG_DOMAIN},
    "235-character DKIM domain, tracked": {"domain": LONG_DOMAIN, "tail": TRACKING},
    "long job name, tracked": {"head": f'name = "{"n" * 560}"\n', "tail": TRACKING},
    "longer job name, tracked": {"head": f'name = "{"n" * 640}"\n', "tail": TRACKING},
    "job name too long for a token": {"head": f'name = "{"n" * 2000}"\n', "tail": TRACKING},
}


def _rows(problems: list[Problem], csv: Path) -> set[str]:
    return {p.where for p in problems if p.severity == "error" and p.where.startswith(f"{csv}:")}


@pytest.mark.parametrize("name", list(JOBS))
def test_validate_and_send_agree(tmp_path: Path, name: str) -> None:
    job = _job(tmp_path, **JOBS[name])
    csv = job.parent / "recipients.csv"
    found = validate(job)
    v_rows = _rows(found, csv)
    v_job = [p for p in found if p.severity == "error" and not p.where.startswith(f"{csv}:")]
    try:
        prepared = Prepared.load(job)
    except MailsfluxError as exc:
        # `send` refuses the job: `validate` must have said so, naming the field.
        assert [p.message for p in v_job] == [exc.message], (name, found)
        assert exc.field is not None and f"field {exc.field}:" in exc.message
        return
    try:
        skipped: list[Problem] = []
        sent = list(compose_all(prepared.composer, prepared.recipients, skipped.append))
    finally:
        prepared.close()
    assert not v_job, (name, v_job)
    assert v_rows == {p.where for p in skipped}, (name, found, skipped)
    assert len(sent) + len(skipped) == len(ROWS)
