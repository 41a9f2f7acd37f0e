"""A ``--redis`` URL of the new forms that cannot work is one line and exit 2:
a Sentinel URL without the master's name, a Cluster nobody answers."""

from __future__ import annotations

import pytest

from mailsflux._redis import kind
from tests._cli import run_cli
from tests._redis import free_port


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("redis+sentinel://127.0.0.1:26379", "names the master"),
        (f"redis+cluster://127.0.0.1:{free_port()}", "cannot reach Redis"),
    ],
)
def test_bad_redis_url_is_one_line(url: str, said: str) -> None:
    got = run_cli("status", "--redis", url)
    assert got.returncode == 2
    assert said in got.stderr
    assert "Traceback" not in got.stderr and len(got.stderr.strip().splitlines()) == 1


def test_the_url_says_which_client() -> None:
    assert kind("redis://h:6379/0") == "single"
    assert kind("rediss+cluster://h:7000") == "cluster"
    assert kind("redis://h:7000/0?cluster=yes") == "cluster"
    assert kind("redis+sentinel://h1:26379,h2:26379/mymaster/0") == "sentinel"
