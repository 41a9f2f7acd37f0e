"""SMTP submission tests: the real listener in front of the real Gateway,
which delivers into a counting server; a certificate from a test CA the
clients verify."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib
import msgspec

from mailsflux.gateway import Gateway
from mailsflux.jobs.jobfile import DeliverySpec
from mailsflux.submission import SubmissionServer, SubmissionSpec, start_submission
from mailsflux.tenants import KeyStore, Tenants
from tests._gateway import delivery, two_tenants
from tests._tls import server_context

#: The first tenant of two_tenants() and a sender of its own.
TENANT = "acme"
SENDER = "news@acme.example"
FOREIGN_SENDER = "news@globex.example"


def message(subject: str = "Hello", *, sender: str = SENDER, to: str = "ann@x.test") -> bytes:
    return (
        f"From: Acme <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Hello from the submission test.\r\n"
    ).encode()


@dataclass
class Running:
    server: SubmissionServer
    gateway: Gateway
    keys: KeyStore
    tmp: Path
    username: str
    password: str

    @property
    def port(self) -> int:
        return self.server.ports["starttls"]

    @property
    def implicit_port(self) -> int:
        return self.server.ports["implicit_tls"]

    @property
    def ca_file(self) -> str:
        return str(self.tmp / "ca.pem")

    def tls(self) -> ssl.SSLContext:
        """A client context that verifies the listener's certificate."""
        return ssl.create_default_context(cafile=self.ca_file)

    def client(self, *, start_tls: bool = True, **kw: Any) -> aiosmtplib.SMTP:
        """An aiosmtplib client for the STARTTLS port (not connected yet)."""
        return aiosmtplib.SMTP(
            hostname="localhost",
            port=self.port,
            tls_context=self.tls(),
            start_tls=start_tls,
            timeout=30,
            **kw,
        )

    async def connected(self, **kw: Any) -> aiosmtplib.SMTP:
        """A client through STARTTLS, after its EHLO (no AUTH yet)."""
        c = self.client(**kw)
        await c.connect()
        await c.ehlo()
        return c

    async def logged_in(self, username: str = "", password: str = "") -> aiosmtplib.SMTP:
        """A client through STARTTLS and AUTH (this listener's credential by default)."""
        c = await self.connected()
        await c.login(username or self.username, password or self.password)
        return c

    def credential(self, tenant: str, roles: Iterable[str] = ("send",)) -> tuple[str, str]:
        info, secret = self.keys.create(tenant, roles, kind="smtp")
        return info.id, secret


@asynccontextmanager
async def submission(
    tmp: Path,
    relay: str,
    *,
    tenants: Tenants | None = None,
    retry: DeliverySpec | None = None,
    engine_options: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[Running]:
    """The listener on port 0 (STARTTLS and implicit TLS) for ``tenants``
    (default: acme and globex), relaying to ``relay`` (with ``retry``'s
    delivery settings when given; ``engine_options`` to each tenant's
    Engine, e.g. ``redis``); one SMTP credential of the first tenant with
    the send role."""
    tenants = tenants or two_tenants(tmp)
    server_context(tmp, ["localhost", "127.0.0.1"], ca_file=tmp / "ca.pem")
    listener = SubmissionSpec(
        **{
            "listen": "127.0.0.1:0",
            "implicit_tls_listen": "127.0.0.1:0",
            "cert_file": "server-cert.pem",
            "key_file": "server-key.pem",
            "hostname": "localhost",
            **settings,
        }
    )
    keys = KeyStore(tmp / "keys.db")
    first = next(iter(tenants)).name
    info, secret = keys.create(first, ("send",), kind="smtp")
    try:
        spec = delivery(relay) if retry is None else msgspec.structs.replace(retry, relay=relay)
        async with Gateway(
            tenants, data_dir=tmp / "data", delivery=spec, engine_options=engine_options
        ) as gw:
            server = await start_submission(gw, keys, listener, base=tmp)
            try:
                yield Running(server, gw, keys, tmp, info.id, secret)
            finally:
                server.close()
                await server.wait_closed()
    finally:
        keys.close()


async def until(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Wait until ``check()`` holds (True), or give up after ``timeout`` (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True
