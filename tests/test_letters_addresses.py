"""Bad postal addresses are one line each (file:line, the column, why) and
skipped; a letters command without the `letters` extra says so in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mailsflux.letters import LetterRecipient, read_recipients
from mailsflux.letters.jobfile import AddressColumns
from tests._cli import run_cli


def test_each_bad_address_is_one_problem(tmp_path: Path) -> None:
    f = tmp_path / "r.csv"
    f.write_text(
        "name,company,street,city,state,postal_code,country\n"
        "Erika,,Hauptstraße 5,Berlin,,10115,de\n"          # good (country any case)
        "John,,1 Main St,Springfield,IL,1234,US\n"         # ZIP too short
        "Ann,,1 Main St,,CA,94043,US\n"                     # no city
        ",,1 Main St,Springfield,IL,62701,US\n"             # nobody to address
        "Jo,,Rue 1,Paris,,75002,\n"                         # no country
        "Bo,,Street 1,Town,,12345,XX\n"                     # no such country
        "Li,,1 Main St,Springfield,ZZ,62701,US\n"           # no such state
        ",Acme Corp,1600 Amphitheatre Pkwy,Mountain View,CA,94043,US\n",  # a company will do
        "utf-8",
    )  # fmt: skip
    got = list(read_recipients(f, AddressColumns()))
    good = [r for r in got if isinstance(r, LetterRecipient)]
    assert [r.ref for r in good] == ["row-2", "row-9"]
    assert [str(p) for p in got if not isinstance(p, LetterRecipient)] == [
        f"{f}:3: error: field postal_code: invalid for US; row skipped",
        f"{f}:4: error: field city: missing; row skipped",
        f"{f}:5: error: field name: missing (a name or a company); row skipped",
        f"{f}:6: error: field country: missing (an ISO 3166 country code); row skipped",
        f"{f}:7: error: field country: invalid for XX; row skipped",
        f"{f}:8: error: field state: invalid for US; row skipped",
    ]


def test_a_repeated_fault_is_its_first_lines_and_a_count(tmp_path: Path) -> None:
    (tmp_path / "t.html").write_text("<p>{{name}}</p>", "utf-8")
    rows = "".join(f"P{i},Hauptstr. {i},Berlin,1011,DE\n" for i in range(25))
    (tmp_path / "r.csv").write_text("name,street,city,postal_code,country\n" + rows, "utf-8")
    job = tmp_path / "job.toml"
    job.write_text(
        '[letter]\nhtml = "t.html"\n[recipients]\nfile = "r.csv"\n'
        f'[carrier]\nkind = "file"\ndir = "{tmp_path / "drop"}"\n',
        "utf-8",
    )
    r = run_cli("letters", "send", str(job))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 21, r.stderr
    assert (
        lines[0] == f"{tmp_path / 'r.csv'}:2: error: field postal_code: invalid for DE; row skipped"
    )
    assert lines[-1] == (
        f"{job}: error: ... and 5 more rows with the same problem as {tmp_path / 'r.csv'}:2"
    )
    assert "0 letters submitted, 25 skipped" in r.stdout


def test_without_the_extra_one_line_and_exit_2(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['weasyprint'] = None\n"
        "from mailsflux.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "letters", "send", str(tmp_path / "job.toml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "mailsflux: error: letters need WeasyPrint, not installed: pip install 'mailsflux[letters]'"
    ]
