"""The test harness hands Redis tests a real server, starting one if it must."""

from __future__ import annotations

import socket
import uuid

import pytest
import redis

from tests._redis import PrivateRedis

pytestmark = pytest.mark.redis


def test_harness_server_round_trips(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    key = f"mailsflux:test:{uuid.uuid4().hex}"
    try:
        assert client.set(key, b"v", ex=30)
        assert client.get(key) == b"v"
    finally:
        client.delete(key)
        client.close()


def test_private_server_starts_on_a_free_port_and_stops() -> None:
    try:
        server = PrivateRedis()
    except FileNotFoundError:
        pytest.skip("redis-server is not installed")
    server.start()
    port = server.port
    try:
        assert port != 6379
        client = redis.Redis(host="127.0.0.1", port=port)
        assert client.ping()
        assert client.config_get("save")["save"] == ""
        client.close()
    finally:
        server.stop()
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(1)
        s.connect(("127.0.0.1", port))
