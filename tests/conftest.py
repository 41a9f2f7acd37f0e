from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests._redis import PrivateRedis, answers

HERE = Path(__file__).parent
EXAMPLE = HERE.parent / "examples" / "welcome"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis server URL: configured, local, or a private one we start."""
    url = os.environ.get("MAILSFLUX_TEST_REDIS_URL")
    if url:
        if not answers(url):
            pytest.fail(f"MAILSFLUX_TEST_REDIS_URL={url} does not answer PING")
        yield url
        return
    if answers("redis://127.0.0.1:6379/0"):
        yield "redis://127.0.0.1:6379/0"
        return
    try:
        server = PrivateRedis().start()
    except FileNotFoundError:
        pytest.skip("no Redis reachable and redis-server is not installed")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    p = f"mftest{uuid.uuid4().hex[:10]}"
    yield p
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{p}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


_skipped_redis: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "redis" in report.keywords:
        _skipped_redis.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # In CI a Redis test must run: a skip there hides a missing install step.
    if IN_CI and _skipped_redis:
        print("\nCI: these Redis tests were skipped, which CI does not allow:")
        for nodeid in _skipped_redis:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def welcome_job(tmp_path: Path) -> Path:
    """A private copy of the example job as a fresh clone has it: its key and
    tracking config are generated inside tmp_path, whatever a demo run left
    in the checkout."""
    dest = tmp_path / "welcome"
    ignore = shutil.ignore_patterns(
        "dkim", "out", "__pycache__", "tracking.toml", "tracking.sqlite*"
    )
    shutil.copytree(EXAMPLE, dest, ignore=ignore)
    return dest / "job.toml"


@pytest.fixture(autouse=True)
def private_spool(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test's jobs keep their spool in a folder of its own (subprocesses
    inherit the variable), never in the user's ~/.local/state; the same for
    the server's data directory."""
    where = tmp_path_factory.mktemp("spool")
    monkeypatch.setenv("MAILSFLUX_SPOOL", str(where))
    # The server's default data directory too (privacy audit, API keys):
    # one test's audit lines must not be another's retention work.
    monkeypatch.setenv("MAILSFLUX_HOME", str(tmp_path_factory.mktemp("home")))
    return where
