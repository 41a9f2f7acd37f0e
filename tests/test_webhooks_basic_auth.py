"""Credentials in a webhook url go as HTTP Basic auth and never into the log;
the top-level ``[[webhooks]]`` serve the one tenant of a setup without tenants."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mailsflux.jobs.jobfile import DKIMSpec
from mailsflux.server import HTTPSpec, ServerConfig
from tests._gateway import delivery
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key
from tests._webhooks import Post, Receiver, delivered, hook, post_messages

PASSWORD = "p@ss word"
AUTH = "Basic " + base64.b64encode(f"hooks:{PASSWORD}".encode()).decode()


def test_basic_auth_from_the_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def answer(n: int, post: Post) -> int:
        if n == 0:
            return 503  # one failure: the log line it makes must not hold the password
        return 200 if post.headers.get("authorization") == AUTH else 401

    with Receiver(answer=answer) as rx, SMTPServer(RecordingHandler()) as smtp:
        url = f"http://hooks:p%40ss%20word@127.0.0.1:{rx.port}/in?token=s3cr3t"
        config = ServerConfig(
            data_dir=str(tmp_path / "data"),
            http=HTTPSpec(listen="127.0.0.1:0", access_log=False),
            delivery=delivery(smtp.url),
            dkim=[
                DKIMSpec(
                    domain="any.example",
                    selector="s1",
                    key=str(tmp_path / "k.pem"),
                    generate=True,
                    bits=1024,
                )
            ],
            webhooks=[hook(url)],
        )
        key = new_key(config, "default")
        with Running(config) as srv:
            post_messages(srv, key, "a@any.example", 1)
            events = delivered(srv, key, 1)
            rx.wait_for_ids({int(e["id"][4:]) for e in events})
    err = capsys.readouterr().err
    assert "HTTP 503" in err
    assert "ss word" not in err and "ss%20word" not in err and "s3cr3t" not in err
    assert rx.posts[0].status == 503 and rx.posts[1].status == 200
    assert {e["tenant"] for p in rx.acked() for e in p.events} == {"default"}
