"""Which Redis client a URL asks for: one server, a Cluster, or Sentinel's master.

Shared by the spool (sync client) and the throttles (asyncio client), which
are stages that may not import each other.

- ``redis://``, ``rediss://``, ``unix://``: one server (redis-py's own URL form).
- ``redis+cluster://[:password@]host:port`` (``rediss+cluster://`` for TLS),
  or any ``redis://`` URL with ``?cluster=1``: a Redis Cluster, found from
  that one node (``redis.cluster.RedisCluster``).
- ``redis+sentinel://[:password@]host:port[,host:port...]/MASTER[/DB]``
  (``rediss+sentinel://``): the master Sentinel names ``MASTER``, found again
  after a failover (``redis.sentinel.Sentinel``). The Sentinels get the
  URL's TLS, username and password too, unless the query gives theirs:
  ``?sentinel_username=U&sentinel_password=P``.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

_TRUE: Final = {"1", "yes", "true", "on"}


def kind(url: str) -> str:
    """``cluster``, ``sentinel`` or ``single``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme.endswith("+cluster"):
        return "cluster"
    if scheme.endswith("+sentinel"):
        return "sentinel"
    if parse_qs(parts.query).get("cluster", [""])[0].lower() in _TRUE:
        return "cluster"
    return "single"


def _plain(url: str) -> str:
    """The URL redis-py parses: the ``+cluster`` suffix and ``cluster=`` gone."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower().partition("+")[0]
    query = {k: v for k, v in parse_qs(parts.query).items() if k != "cluster"}
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query, doseq=True), ""))


def _sentinel_parts(
    url: str,
) -> tuple[list[tuple[str, int]], str, int, dict[str, Any], dict[str, Any]]:
    """Sentinel hosts, master, db, the master's and the Sentinels' connection options."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    hosts = []
    for hp in netloc.split(","):
        host, _, port = hp.rpartition(":")
        hosts.append((host or hp, int(port) if port and host else 26379))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("a redis+sentinel:// URL names the master: .../MASTER[/DB]")
    db = int(path[1]) if len(path) > 1 else 0
    kw: dict[str, Any] = {}
    if parts.password:
        kw["password"] = unquote(parts.password)
    if parts.username:
        kw["username"] = unquote(parts.username)
    if parts.scheme.lower().startswith("rediss"):
        kw["ssl"] = True
    # The Sentinels: the same credentials and TLS, unless given separately.
    skw = dict(kw)
    query = parse_qs(parts.query)
    for name in ("username", "password"):
        if given := query.get(f"sentinel_{name}"):
            skw[name] = given[0]
    return hosts, path[0], db, kw, skw


def masked(url: str) -> str:
    """``url`` with whatever stands where a password would (``user:***@``),
    even when an unencoded ``/``, ``#`` or ``?`` in it broke the URL's parse."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{head}://{user + ':' if colon else ''}***@{host}"


def _secret_bits(url: str) -> list[str]:
    """Pieces of the URL's password an error message could quote."""
    rest = url.partition("://")[2]
    if "@" not in rest:
        return []
    userinfo = rest.rpartition("@")[0]
    secret = userinfo.partition(":")[2] or userinfo
    return [b for b in re.split(r"[:/#?@]", secret) if len(b) >= 3]


def scrubbed(url: str, exc: Exception) -> str:
    """``exc``'s text, unless it quotes a part of the URL's password."""
    text = str(exc) or type(exc).__name__
    if any(b in text for b in _secret_bits(url)):
        return f"{type(exc).__name__} (its text quotes the password: withheld)"
    return text


def url_problem(url: str, exc: Exception) -> str:
    """One line about a URL redis-py refused, its password masked."""
    return f"not a Redis URL: {masked(url)}: {scrubbed(url, exc)}"


def check_url(url: str) -> None:
    """ValueError (password masked) for a URL whose password holds an
    unencoded ``/``, ``#`` or ``?``: redis-py would read part of it as the
    host or path and quote it back, or connect somewhere else."""
    parts = urlsplit(url)
    # What follows a '?' in a password reads as a query whose first name holds the '@'.
    first_name = parts.query.partition("&")[0].partition("=")[0]
    if "@" in parts.path or "@" in first_name or parts.fragment:
        raise ValueError(
            "a '/', '#' or '?' in the password must be percent-encoded (%2F, %23, %3F)"
        )


def _client(url: str, single: Any, cluster: Any, sentinel: Any, options: dict[str, Any]) -> Any:
    check_url(url)
    how = kind(url)
    if how == "cluster":
        return cluster.from_url(_plain(url), **options)
    if how == "sentinel":
        hosts, master, db, kw, skw = _sentinel_parts(url)
        watcher = sentinel(hosts, sentinel_kwargs={**options, **skw}, **options, **kw)
        return watcher.master_for(master, db=db)
    return single.from_url(url, **options)


def sync_client(url: str, **options: Any) -> Any:
    """A blocking client for ``url`` (``options``: timeouts, retry)."""
    import redis
    from redis.cluster import RedisCluster
    from redis.sentinel import Sentinel

    return _client(url, redis.Redis, RedisCluster, Sentinel, options)


def async_client(url: str, **options: Any) -> Any:
    """An asyncio client for ``url`` (``options``: timeouts, retry)."""
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import Sentinel

    return _client(url, aioredis.Redis, RedisCluster, Sentinel, options)
