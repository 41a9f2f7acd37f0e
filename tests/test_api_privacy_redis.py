"""``POST /v1/privacy/*`` on ``serve`` with ``[redis]``: a person's rows
waiting in Redis for the workers are found, exported and erased, in the
asking tenant's jobs only. An erased row is never sent; the other tenant's
job to the same person still is. A message already signed for an address
cannot be corrected to another: the answer names it and does not count it."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from mailsflux.server import RedisSpec
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, job_finished, new_key, server_config
from tests._workers import Workers

pytestmark = pytest.mark.redis

TEMPLATE_ACME = {
    "sender": "News <news@acme.example>",
    "subject": "Hi {{first}}",
    "text": "{{first}}",
}
TEMPLATE_GLOBEX = {**TEMPLATE_ACME, "sender": "News <news@globex.example>"}


def test_privacy_reaches_the_tenants_rows_in_redis(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    handler = RecordingHandler()
    acme_rows = [{"email": e, "first": e[:3]} for e in ("ann@example.net", "bo@example.net")]
    globex_rows = [{"email": e, "first": e[:3]} for e in ("ann@example.net", "dee@example.net")]
    with SMTPServer(handler) as smtp:
        config = server_config(tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url))
        config = msgspec.structs.replace(config, redis=RedisSpec(url=redis_url, prefix=prefix))
        admin = new_key(config, "acme", "admin")
        acme = new_key(config, "acme")
        globex = new_key(config, "globex")
        with Running(config) as srv:
            ids = {}
            for key, template, rows in ((acme, TEMPLATE_ACME, acme_rows),
                                        (globex, TEMPLATE_GLOBEX, globex_rows)):  # fmt: skip
                body = {"template": template, "recipients": rows, "name": "j"}
                s, _, b = srv.call("POST", "/v1/jobs", body, key=key)
                assert s == 202, b
                ids[key] = b["id"]
            # No worker runs yet: every row waits in Redis.
            deadline = time.monotonic() + 30
            for key, jid in ids.items():
                while srv.call("GET", f"/v1/jobs/{jid}", key=key)[2]["handed_on"] < 2:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)

            def ask(action: str) -> dict:  # type: ignore[type-arg]
                s, _, b = srv.call(
                    "POST", f"/v1/privacy/{action}", {"address": "ann@example.net"}, key=admin
                )
                assert s == 200, b
                return dict(b)

            doc = ask("export")
            assert doc["counts"]["redis"] == 1, doc
            assert [r["recipient"] for r in doc["redis"]] == ["ann@example.net"]
            text = json.dumps(doc)
            assert "bo@example.net" not in text and "globex" not in text
            assert ask("erase")["counts"]["redis"] == 1
            # A message already signed for bo cannot be readdressed: named, not counted.
            s, _, fixed = srv.call(
                "POST",
                "/v1/privacy/correct",
                {"address": "bo@example.net", "to": "bob@example.net"},
                key=admin,
            )
            assert s == 200, fixed
            assert fixed["counts"]["redis"] == 0
            assert [r["corrected"] for r in fixed["redis"]] == [False]

            with Workers(1, redis_url, prefix, tmp_path) as workers:
                done = {key: job_finished(srv, jid, key) for key, jid in ids.items()}
            log = workers.log(0)
    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    # acme's row for ann was erased before any worker took it; globex's was not.
    assert arrived == Counter(["bo@example.net", "ann@example.net", "dee@example.net"]), log
    assert [m.mail_from for m in handler.received if "ann@example.net" in m.rcpt_tos] == [
        "news@globex.example"
    ]
    assert done[acme]["counts"].get("delivered") == 1, done[acme]
    assert done[globex]["counts"].get("delivered") == 2, done[globex]
