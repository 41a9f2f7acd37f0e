"""The recipient reader reports each bad row with its line and goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.errors import RecipientError
from mailsflux.jobs.recipients import RecipientFile
from mailsflux.types import Problem, Recipient


def write(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "r.csv"
    p.write_bytes(data)
    return p


def test_good_and_bad_rows_with_their_lines(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        b"email,first_name,plan\n"
        b"a@example.com,Ann,Team\n"  # line 2
        b"not-an-address,Bob,Team\n"  # line 3
        b'c@example.com,"Multi\nline",Team\n'  # lines 4-5
        b"d@example.com,Dee\n"  # line 6: short, plan absent
        b"e@example.com,Eve,Team,extra\n"  # line 7: too many fields
        b"\n"  # line 8: blank
        b"f@example.com,\xff\xfe,Team\n"  # line 9: bad UTF-8
        b"A@EXAMPLE.com,Ann again,Team\n"  # line 10: duplicate (domain case)
        b"g@example.com,Gus,Team",  # line 11, no final newline
    )
    items = list(RecipientFile(p))
    good = [i for i in items if isinstance(i, Recipient)]
    bad = [i for i in items if isinstance(i, Problem)]
    assert [(r.email, r.row) for r in good] == [
        ("a@example.com", 2),
        ("c@example.com", 4),
        ("d@example.com", 6),
        ("g@example.com", 11),
    ]
    assert good[1].vars["first_name"] == "Multi\nline"
    assert "plan" not in good[2].vars
    wheres = {b.where.rsplit(":", 1)[1]: b for b in bad}
    assert set(wheres) == {"3", "7", "9", "10"}
    assert "field email" in wheres["3"].message
    assert "4 fields but 3 columns" in wheres["7"].message
    assert "UTF-8" in wheres["9"].message
    assert wheres["10"].severity == "warning" and "duplicate" in wheres["10"].message
    assert all(b.where.startswith(str(p)) for b in bad)


def test_missing_email_column_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, b"mail,name\nx@example.com,X\n")
    with pytest.raises(RecipientError) as err:
        RecipientFile(p)
    assert err.value.file == str(p) and err.value.line == 1
    assert "'email'" in str(err.value)


@pytest.mark.parametrize(
    ("data", "why"),
    [(b"", "empty"), (b"email,email\n", "twice"), (b"email,,x\n", "empty column")],
)
def test_bad_header_rows(tmp_path: Path, data: bytes, why: str) -> None:
    with pytest.raises(RecipientError, match=why):
        RecipientFile(write(tmp_path, data))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecipientError, match="not found") as err:
        RecipientFile(tmp_path / "nope.csv")
    assert err.value.file == str(tmp_path / "nope.csv")
