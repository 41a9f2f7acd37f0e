"""The MTA-STS cache file shared by two processes (two PolicyCache objects
on one mta-sts.json, as two workers have): neither's policy is lost, the
file is private (0600), no fixed-name temp file is left, and the cache
never grows past its limit (the policies expiring first leave)."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

from mailsflux.delivery.mtasts import Policy, PolicyCache


def _policy(domain: str, now: float, max_age: int = 86400) -> Policy:
    return Policy("1", "enforce", (f"mx.{domain}",), max_age, now)


def test_two_caches_on_one_file_keep_both(tmp_path: Path) -> None:
    f = tmp_path / "mta-sts.json"
    a, b = PolicyCache(f), PolicyCache(f)
    now = time.time()
    a.put("a.example", _policy("a.example", now))
    b.put("b.example", _policy("b.example", now))
    assert sorted(json.loads(f.read_text())) == ["a.example", "b.example"]
    assert f.stat().st_mode & 0o777 == 0o600
    assert sorted(PolicyCache(f).policies) == ["a.example", "b.example"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mta-sts.json", "mta-sts.json.lock"]


def _put_many(path: str, who: int) -> None:
    cache = PolicyCache(Path(path))
    for i in range(20):
        cache.put(f"p{who}-{i}.example", _policy(f"p{who}-{i}.example", time.time()))


def test_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    f = tmp_path / "mta-sts.json"
    procs = [multiprocessing.get_context("fork").Process(target=_put_many, args=(str(f), w))
             for w in range(3)]  # fmt: skip
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert len(json.loads(f.read_text())) == 60


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    cache = PolicyCache(tmp_path / "mta-sts.json", limit=3)
    now = time.time()
    for i in range(5):
        cache.put(f"d{i}.example", _policy(f"d{i}.example", now, max_age=1000 + i))
    assert sorted(cache.policies) == ["d2.example", "d3.example", "d4.example"]
