"""``mailsflux serve`` with ``[redis]``: messages and jobs accepted over HTTP
go into Redis, a real ``mailsflux worker`` process (without the tenants'
DKIM keys) delivers them, and the API reports their results: the message's
events and the job's counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec
import pytest

from mailsflux.server import RedisSpec
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._redis import outbox_counts
from tests._serve import Running, job_finished, new_key, server_config
from tests._workers import Workers

pytestmark = pytest.mark.redis

TEMPLATE = {"sender": "News <news@acme.example>", "subject": "Hi {{first}}", "text": "{{first}}"}
ROWS = 30


def test_serve_hands_messages_and_jobs_to_redis_workers(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    handler = RecordingHandler()
    rows = [{"email": f"r{i}@example.net", "first": f"R{i}"} for i in range(ROWS)]
    with SMTPServer(handler) as smtp:
        config = server_config(tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url))
        config = msgspec.structs.replace(config, redis=RedisSpec(url=redis_url, prefix=prefix))
        key = new_key(config, "acme")
        with Workers(1, redis_url, prefix, tmp_path) as workers, Running(config) as srv:
            one = {"sender": "news@acme.example", "to": "one@example.org", "subject": "Hi",
                   "text": "Hello"}  # fmt: skip
            s, _, b = srv.call("POST", "/v1/messages", one, key=key)
            assert s == 202, b
            s, _, b = srv.call(
                "POST", "/v1/jobs", {"template": TEMPLATE, "recipients": rows, "name": "w"}, key=key
            )
            assert s == 202, b
            job = job_finished(srv, b["id"], key)
        logs = workers.log(0)
    assert job["rows"] == ROWS and job["handed_on"] == ROWS, logs
    assert job["counts"] == {"queued": ROWS, "delivered": ROWS}, logs
    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert arrived == Counter([f"r{i}@example.net" for i in range(ROWS)] + ["one@example.org"])
    assert all(b"DKIM-Signature:" in m.data for m in handler.received)
    # The worker sent them: the tenant's outbox job in Redis counts them.
    assert outbox_counts(redis_url, prefix) == {"delivered": ROWS + 1}
