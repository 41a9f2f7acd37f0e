"""``mailsflux track-server``: the tracking server under uvicorn.

Reads the tracking config (:mod:`mailsflux.tracking.config`) and serves its
:class:`~mailsflux.tracking.server.TrackingApp`; kept apart from the app so
the config can build the app without importing the command line.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
from collections.abc import Sequence
from typing import Any

from mailsflux._tls import server_context
from mailsflux.errors import ConfigError, MailsfluxError
from mailsflux.tracking.config import load_config, write_new_config


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mailsflux track-server",
        description="Serve open pixels, click redirects and one-click unsubscribes.",
    )
    ap.add_argument("--config", metavar="FILE", help="tracking config (TOML)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    ap.add_argument("--port", type=int, default=8025, help="port to listen on (8025; 0 = any free)")
    ap.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For/-Proto from --forwarded-allow-ips (behind a proxy)",
    )
    ap.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        metavar="IPS",
        help="comma-separated proxy addresses whose X-Forwarded-* headers count (127.0.0.1)",
    )
    ap.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve HTTPS with this certificate chain (PEM; needs --tls-key); TLS 1.2 or newer",
    )
    ap.add_argument("--tls-key", metavar="FILE", help="the private key (PEM) for --tls-cert")
    ap.add_argument(
        "--log-level", default="warning", help="uvicorn log level (warning); paths are never logged"
    )
    ap.add_argument(
        "--new-config",
        metavar="FILE",
        help="write a new config with fresh keys to FILE (mode 0600) and exit",
    )
    ap.add_argument("--base-url", help="with --new-config: where this server will answer")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.new_config:
            if not args.base_url:
                print("track-server: --new-config needs --base-url", file=sys.stderr)
                return 2
            write_new_config(args.new_config, args.base_url)
            print(f"wrote {args.new_config}; keep it secret (it holds the tracking keys)")
            return 0
        if not args.config:
            print("track-server: --config FILE is required", file=sys.stderr)
            return 2
        if bool(args.tls_cert) != bool(args.tls_key):
            print("track-server: --tls-cert and --tls-key go together", file=sys.stderr)
            return 2
        tls = _tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
        cfg = load_config(args.config)
        app = cfg.app()
    except MailsfluxError as exc:
        print(f"mailsflux: error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # request paths hold tokens: never log them
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
        server_header=False,
        lifespan="on",
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )
    if tls is not None:
        # uvicorn's own context sets no protocol floor: ours replaces it once
        # the config is loaded (the ssl_* arguments above still make the
        # scheme the app sees "https").
        config.load()
        config.ssl = tls
    return _serve(config)


def _tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = server_context()
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"track-server: cannot load the certificate and key ({key}): {reason}", file=cert
        ) from None
    return ctx


def _serve(config: Any) -> int:
    """Run until SIGTERM or SIGINT, then exit 0: being told to stop is a clean stop.

    uvicorn stops on either signal, then raises it again against the handlers
    that were in place before it started; these only note that the stop came.
    """

    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and self.servers:
                line = _listening_line(self.servers[0].sockets, self.config.ssl is not None)
                print(line, file=sys.stderr, flush=True)

    server = Server(config)

    def asked_to_stop(signum: int, frame: object) -> None:
        server.should_exit = True  # also when it comes before uvicorn listens for it

    previous = {s: signal.signal(s, asked_to_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0 if server.started else 1


def _listening_line(sockets: Sequence[Any], https: bool) -> str:
    host, port = sockets[0].getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if https else "http"
    return f"mailsflux track-server: listening on {scheme}://{shown}:{port}"


__all__ = ["build_parser", "main"]
