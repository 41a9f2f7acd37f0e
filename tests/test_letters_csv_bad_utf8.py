"""A byte that is not UTF-8 in a letter job's recipient CSV costs its own
row, reported by line, and no other: every other row of the file is read."""

from __future__ import annotations

from pathlib import Path

from mailsflux.letters.jobfile import AddressColumns
from mailsflux.letters.recipients import LetterRecipient, read_recipients
from mailsflux.types import Problem


def test_bad_byte_is_one_problem_and_every_other_row_stays(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    lines = [b"id,name,street,city,postal_code,country\n"]
    for i in range(1, 2001):
        name = b"Max M\xfcller" if i == 1000 else "Max Müller".encode()
        lines.append(b"%d,%s,Hauptstr. 1,Berlin,10115,DE\n" % (i, name))
    path.write_bytes(b"".join(lines))
    out = list(read_recipients(path, AddressColumns(), id_column="id"))
    problems = [p for p in out if isinstance(p, Problem)]
    refs = [r.ref for r in out if isinstance(r, LetterRecipient)]
    assert [str(p) for p in problems] == [
        f"{path}:1001: error: row is not valid UTF-8; row skipped"
    ]
    assert refs == [str(i) for i in range(1, 2001) if i != 1000]
    assert {r.vars["name"] for r in out if isinstance(r, LetterRecipient)} == {"Max Müller"}
