"""Suppression asked a batch of rows at a time skips what a row at a time skipped (issue 17).

``compose_all`` asks the job's suppression (its list file and the event
store's list) about each batch of rows just before composing it. A job of
several batches with rows suppressed by the file (written in another case),
by the store, and bad rows in between: the same messages and the same
problems, in the rows' order, as the rows are. A suppression recorded while
the job runs stops every row not yet composed. With nothing suppressed the
store's keyed hash is never computed.
"""

from __future__ import annotations

from pathlib import Path

from mailsflux.jobs import Prepared, compose_all
from mailsflux.jobs.suppression import Suppression, suppressed_among
from mailsflux.types import Problem
from tests._jobs import TRACKING, make_job, people

N = 100


def _job(tmp_path: Path) -> tuple[Path, list[list[str]]]:
    rows = people(N)
    for i in (10, 50, 51):  # bad rows: reported by the reader, between batches
        rows[i] = ["not-an-address", "X", "X", "Team"]
    job = make_job(tmp_path, rows)
    (job.parent / "suppressed.txt").write_text(
        f"# the list file\n{rows[3][0].upper()}\n{rows[40][0]}\n{rows[99][0]}\n"
    )
    text = job.read_text().replace(
        'file = "recipients.csv"\n', 'file = "recipients.csv"\nsuppression = "suppressed.txt"\n'
    )
    job.write_text(text + TRACKING)
    return job, rows


def _events(prepared: Prepared, late: str | None = None) -> list[tuple[str, str]]:
    """What compose_all gives, in order: ("sent", recipient) and ("problem", text);
    ``late`` is suppressed once the first message has been taken."""
    events: list[tuple[str, str]] = []

    def problem(p: Problem) -> None:
        events.append(("problem", str(p)))

    for msg in compose_all(prepared.composer, prepared.recipients, problem, prepared.suppressed):
        if late is not None and not any(e[0] == "sent" for e in events):
            assert prepared.suppressed is not None
            prepared.suppressed.add(late)
        events.append(("sent", msg.rcpt_to))
    return events


def _expected(csv: Path, rows: list[list[str]], suppressed: set[str]) -> list[tuple[str, str]]:
    out = []
    for i, r in enumerate(rows):
        line = i + 2  # after the header
        if r[0] == "not-an-address":
            continue  # the reader's own wording, checked apart
        if r[0].lower() in suppressed:
            out.append(("problem", f"{csv}:{line}: warning: {r[0]}: suppressed; row skipped"))
        else:
            out.append(("sent", r[0]))
    return out


def test_batches_skip_what_rows_skipped_in_the_rows_order(tmp_path: Path) -> None:
    job, rows = _job(tmp_path)
    csv = job.parent / "recipients.csv"
    prepared = Prepared.load(job)
    try:
        assert prepared.store is not None
        prepared.store.suppress(rows[7][0], reason="unsubscribe")
        prepared.store.suppress(rows[70][0], reason="hard-bounce")
        late = rows[90][0]  # not yet composed when the first message comes
        events = _events(prepared, late=late)
    finally:
        prepared.close()
    bad = [e for e in events if "not-an-address" in e[1]]
    assert [e[1].split(": ")[0] for e in bad] == [f"{csv}:{i + 2}" for i in (10, 50, 51)]
    # Each bad row's problem in its place among the others.
    positions = [events.index(e) for e in bad]
    before = [len([e for e in events[:p] if e not in bad]) for p in positions]
    want = _expected(csv, rows, {rows[i][0].lower() for i in (3, 7, 40, 70, 90, 99)})
    assert [e for e in events if e not in bad] == want
    assert before == [len([w for w in want if _line(w, csv, rows) < i]) for i in (10, 50, 51)]


def _line(event: tuple[str, str], csv: Path, rows: list[list[str]]) -> int:
    if event[0] == "sent":
        return next(i for i, r in enumerate(rows) if r[0] == event[1])
    return int(event[1].removeprefix(f"{csv}:").split(":")[0]) - 2


def test_nothing_suppressed_computes_no_keyed_hash(tmp_path: Path) -> None:
    job, rows = _job(tmp_path)
    prepared = Prepared.load(job)
    try:
        assert prepared.store is not None and isinstance(prepared.suppressed, Suppression)
        calls: list[str] = []
        pii = prepared.store._pii

        class Counted:
            def lookup(self, address: str) -> bytes:
                calls.append(address)
                return pii.lookup(address)

            def __getattr__(self, name: str) -> object:
                return getattr(pii, name)

        prepared.store._pii = Counted()  # type: ignore[assignment]
        addresses = [r[0] for r in rows[:5]]
        # The file lists rows[3] (in upper case): only the store is empty.
        assert prepared.suppressed.among(addresses) == [False, False, False, True, False]
        assert calls == []
        prepared.store.suppress(rows[1][0])
        prepared.suppressed.add(rows[1][0])
        assert prepared.suppressed.among(addresses) == [False, True, False, True, False]
        assert calls[-5:] == addresses
    finally:
        prepared.close()


def test_any_container_is_asked_each_address() -> None:
    assert suppressed_among({"b@x.org"}, ["a@x.org", "b@x.org"]) == [False, True]
    assert suppressed_among({"c@x.org"}, ["a@x.org", "b@x.org"]) is None
    assert suppressed_among(set(), []) is None
