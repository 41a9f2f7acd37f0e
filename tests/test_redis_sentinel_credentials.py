"""``rediss+sentinel://user:pw@...``: the Sentinels are asked over TLS with the
same credentials as the master, unless the query gives theirs."""

from __future__ import annotations

from typing import Any

from mailsflux._redis import sync_client


def _options(url: str) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    client = sync_client(url, socket_timeout=0.2)
    pool = client.connection_pool
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool
    return (
        pool.connection_kwargs,
        sentinel.connection_kwargs,
        pool.connection_class.__name__,
        sentinel.connection_class.__name__,
    )


def test_sentinels_get_the_urls_tls_and_credentials() -> None:
    master, sentinel, mcls, scls = _options(
        "rediss+sentinel://alice:pw@s1.example:26379,s2.example:26379/mymaster/0"
    )
    assert "SSL" in mcls and "SSL" in scls
    assert (master["username"], master["password"]) == ("alice", "pw")
    assert (sentinel["username"], sentinel["password"]) == ("alice", "pw")


def test_sentinel_credentials_given_separately() -> None:
    master, sentinel, _, scls = _options(
        "redis+sentinel://alice:pw@s1.example/mymaster?sentinel_username=sen&sentinel_password=spw"
    )
    assert "SSL" not in scls
    assert (master["username"], master["password"]) == ("alice", "pw")
    assert (sentinel["username"], sentinel["password"]) == ("sen", "spw")
