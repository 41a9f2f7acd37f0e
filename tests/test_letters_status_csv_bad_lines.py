"""A print house's status.csv with a line that is not UTF-8, an unknown
status or a time that is no time: one problem naming file:line for each,
once, the line skipped; the other lines count (ISO 8601 and millisecond
times read as such) and tracking goes on."""

from __future__ import annotations

from pathlib import Path

from mailsflux.events import Event
from mailsflux.letters import LetterStore, PostalAddress
from mailsflux.letters.filedrop import FileDrop
from mailsflux.letters.run import track
from mailsflux.spool import SpoolKeys
from mailsflux.types import Problem

ADDRESS = PostalAddress(country_code="DE", name="Erika Mustermann", city="BERLIN")


def test_bad_status_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    drop = FileDrop(tmp_path / "drop")
    store = LetterStore(tmp_path / "state", SpoolKeys.generate())
    for n in (1, 2):
        store.add(f"ltr_{n}", "job", f"c{n}", ADDRESS, "file")
        store.submitted(f"ltr_{n}", f"ltr_{n}")
    (tmp_path / "drop" / "manifest.csv").write_text("letter_id\nltr_1\nltr_2\n")
    status = tmp_path / "drop" / "status.csv"
    status.write_bytes(
        b"letter_id,status,time,tracking_number\n"
        b"ltr_1,printed,2023-11-14T22:13:20+00:00,\n"
        b"ltr_2,printed,1700000000,TR\xff1\n"
        b"ltr_2,lost_in_space,1700000000,\n"
        b"ltr_1,in_transit,yesterday,\n"
        b"ltr_1,delivered,1700000100000,\n"
    )
    events: list[Event] = []
    problems: list[Problem] = []
    track(store, drop, events.append, problems.append)
    assert [(e.message_id, e.type, e.time) for e in events] == [
        ("ltr_1", "printed", 1_700_000_000.0),
        ("ltr_1", "delivered", 1_700_000_100.0),
    ]
    assert [str(p) for p in problems] == [
        f"{status}:3: warning: not valid UTF-8; line skipped",
        f"{status}:4: warning: field status: unknown 'lost_in_space'; line skipped",
        f"{status}:5: warning: field time: not Unix seconds, milliseconds or ISO 8601;"
        " line skipped",
    ]
    # Asked again with the file unchanged: no event twice, no problem twice.
    track(store, drop, events.append, problems.append)
    assert len(events) == 2 and len(problems) == 3
    store.close()
