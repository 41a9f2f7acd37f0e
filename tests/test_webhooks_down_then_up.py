"""An endpoint that is down, then fails, then comes up: every event arrives,
in order, with no gap, each batch signed; a tampered body does not verify."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from mailsflux.webhooks import sign
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config
from tests._webhooks import (
    SECRET,
    Receiver,
    all_events,
    delivered,
    free_port,
    hook,
    post_messages,
    readme_verify,
)

MESSAGES = 40


def test_events_wait_for_the_endpoint_and_all_arrive_signed(tmp_path: Path) -> None:
    verify = readme_verify()
    port = free_port()
    acme, globex = two_tenants(tmp_path)
    acme = msgspec.structs.replace(
        acme, webhooks=[hook(f"http://127.0.0.1:{port}/hooks?src=mfx", batch_size=7)]
    )
    with SMTPServer(RecordingHandler()) as smtp:
        config = server_config(tmp_path / "data", [acme, globex], delivery(smtp.url))
        key = new_key(config, "acme")
        with Running(config) as srv:
            mids = set(post_messages(srv, key, "a@acme.example", MESSAGES))
            # A job with a bad row: a rejected event goes out too.
            s, _, b = srv.call(
                "POST",
                "/v1/jobs",
                {"template": {"sender": "a@acme.example", "subject": "s", "text": "t"},
                 "recipients": ["j@example.net", {"name": "no address"}]},
                key=key,
            )  # fmt: skip
            assert s == 202, b
            # Everything is delivered while the endpoint is down (nothing listens).
            delivered(srv, key, MESSAGES + 1)
            time.sleep(0.3)  # a few refused connections and retries meanwhile
            events = all_events(srv, key)
            ids = {int(e["id"].removeprefix("evt_")) for e in events}
            assert ids == set(range(1, len(ids) + 1))  # the log itself has no gaps

            # Up, but failing its first three answers: the same batch comes again.
            with Receiver(port, answer=lambda n, p: 503 if n < 3 else 200) as rx:
                rx.wait_for_ids(ids)
                posts = list(rx.posts)
    got = rx.acked_ids()
    assert sorted(got) == got, "out of order"
    assert set(got) == ids and len(got) == len(ids), "lost or repeated"
    assert [p.status for p in posts[:3]] == [503, 503, 503]
    assert posts[0].ids == posts[1].ids == posts[2].ids == posts[3].ids
    assert max(len(p.ids) for p in posts) == 7
    assert {p.path for p in posts} == {"/hooks"}
    # What a receiver gets is what the API shows: one schema.
    by_id = {e["id"]: e for e in events}
    for p in rx.acked():
        for e in p.events:
            assert e == by_id[e["id"]]
            assert e["tenant"] == "acme"
    types = {e["type"] for e in events}
    assert {"queued", "delivered", "rejected"} <= types
    assert {e["message_id"] for e in events if e["type"] == "delivered"} >= mids

    # Each POST is signed; the README's helper checks it; anything changed fails.
    for p in posts:
        header = p.headers["mailsflux-signature"]
        assert verify(SECRET, header, p.body)
        assert p.headers["content-type"] == "application/json"
        assert p.headers["mailsflux-tenant"] == "acme"
    p = posts[-1]
    header = p.headers["mailsflux-signature"]
    tampered = p.body.replace(b'"delivered"', b'"bounced"', 1)
    assert tampered != p.body
    assert not verify(SECRET, header, tampered)
    assert not verify("another-secret-0123", header, p.body)
    t = int(header.split(",")[0].removeprefix("t="))
    assert verify(SECRET, header, p.body, now=t + 299)
    assert not verify(SECRET, header, p.body, now=t + 301)  # a replay, later
    assert verify(SECRET, sign(SECRET, b"{}", t), b"{}", now=t)
    assert not verify(SECRET, "t=x,v1=00", p.body)
