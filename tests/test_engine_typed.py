"""The public API is typed: a usage example passes ``mypy --strict`` against the
installed package, and a misuse of it fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

USAGE = Path(__file__).parent / "data" / "engine_usage.py"


def mypy(tmp_path: Path, source: Path) -> subprocess.CompletedProcess[str]:
    ini = tmp_path / "mypy.ini"
    ini.write_text("[mypy]\n")
    cmd = [sys.executable, "-m", "mypy", "--strict", "--config-file", str(ini)]
    return subprocess.run(
        [*cmd, "--cache-dir", str(tmp_path / "cache"), str(source)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_usage_example_is_clean_under_mypy_strict(tmp_path: Path) -> None:
    done = mypy(tmp_path, USAGE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_misuse_is_a_type_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        USAGE.read_text()
        + "\n\nasync def wrong(engine: Engine) -> str:\n"
        + "    return (await engine.send('not a message')).code\n"
    )
    done = mypy(tmp_path, bad)
    assert done.returncode == 1
    assert 'incompatible type "str"; expected "Message"' in done.stdout
    assert 'Incompatible return value type (got "int | None", expected "str")' in done.stdout
