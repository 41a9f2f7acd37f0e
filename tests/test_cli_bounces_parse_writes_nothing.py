"""``bounces parse`` only reads: it makes no spool key file (it uses one to
open a quarantined report only when there is one)."""

from __future__ import annotations

import os
from pathlib import Path

from tests._bounces import DIR
from tests._cli import run_cli


def test_parse_makes_no_key_file() -> None:
    spool = Path(os.environ["MAILSFLUX_SPOOL"])
    assert not (spool / "keys").exists()
    r = run_cli("bounces", "parse", str(DIR / "postfix-two-recipients.eml"), "--json")
    assert r.returncode == 0, r.stderr
    assert not (spool / "keys").exists()
    assert not spool.exists() or list(spool.iterdir()) == []
