"""``mailsflux serve``: the HTTP API and SMTP submission over the gateway."""

from mailsflux.server.config import HTTPSpec, RedisSpec, ServerConfig, parse_listen
from mailsflux.server.server import Server, cursor_key, key_store

__all__ = [
    "HTTPSpec",
    "RedisSpec",
    "Server",
    "ServerConfig",
    "cursor_key",
    "key_store",
    "parse_listen",
]
