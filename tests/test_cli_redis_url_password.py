"""A ``--redis`` URL whose password redis-py cannot parse (an unencoded ``#``,
``/`` or ``?``, a bad port after it) is one line and exit 2, with the
password masked: no part of it is quoted back."""

from __future__ import annotations

import pytest

from tests._cli import run_cli

SECRET = "S3cretPW"


@pytest.mark.parametrize(
    "url",
    [
        "redis://:S3cret#PW@127.0.0.1:1/0",
        "redis://:S3cret/PW@127.0.0.1:1/0",
        "redis://user:S3cret?PW@127.0.0.1:1/0",
        "redis+cluster://:S3cret/PW@127.0.0.1:1",
        "redis+sentinel://:S3cret#PW@127.0.0.1:1/mymaster",
        "redis+sentinel://user:S3cretPW@127.0.0.1:notaport/mymaster",
        "redis://:S3cretPW@127.0.0.1:notaport/0",
    ],
)
def test_a_bad_url_never_shows_its_password(url: str) -> None:
    got = run_cli("status", "--redis", url)
    assert got.returncode == 2, got.stderr
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in got.stderr, got.stderr
    assert "S3cret" not in got.stderr and "PW@" not in got.stderr, got.stderr
    assert "***@127.0.0.1" in got.stderr, got.stderr
