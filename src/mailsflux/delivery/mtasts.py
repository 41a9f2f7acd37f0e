"""MTA-STS (RFC 8461): the TXT record, the policy file, its fetch and its cache.

``_mta-sts.DOMAIN`` TXT says a policy exists and its ``id``; the policy is
fetched from ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` (3.3): the
certificate checked against that name, no redirect followed, at most 64 KiB,
``text/plain`` only. Policies are cached for their ``max_age`` in memory and
in a JSON file (the spool directory's ``mta-sts.json``), so a restart keeps
them; a changed ``id`` fetches again, and when a fetch fails an unexpired
cached policy stays in force (5.1). The host name is resolved through the
same DNS servers as MX lookups (tests point both at their own server).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from pathlib import Path
from typing import Literal

import h11
import msgspec

from mailsflux.errors import PolicyError

__all__ = ["Policy", "PolicyCache", "PolicyError", "fetch_policy", "parse_policy", "parse_txt"]

#: RFC 8461 3.3: senders may limit the policy body; 64 KiB is its example.
MAX_POLICY = 64 << 10
#: 3.2: max_age is at most 31557600 (a year).
MAX_AGE = 31_557_600

Mode = Literal["enforce", "testing", "none"]


class Policy(msgspec.Struct, frozen=True):
    id: str
    mode: Mode
    mx: tuple[str, ...]
    max_age: int
    #: Wall-clock seconds (time.time()) the policy was fetched at.
    fetched: float

    def expires(self) -> float:
        return self.fetched + self.max_age

    def allows(self, host: str) -> bool:
        """``host`` matches an ``mx`` pattern; ``*.`` covers one label (4.1)."""
        host = host.lower().rstrip(".")
        for pattern in self.mx:
            if pattern.startswith("*."):
                head, _, rest = host.partition(".")
                if head and rest == pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False


def parse_txt(strings: list[bytes]) -> str | None:
    """The ``id`` of a ``v=STSv1`` record, None when it is not one (3.1)."""
    text = b"".join(strings).decode("ascii", "replace")
    fields = [f.strip() for f in text.split(";")]
    if not fields or fields[0] != "v=STSv1":
        return None
    for f in fields[1:]:
        key, _, value = f.partition("=")
        if key.strip() == "id" and value.strip().isalnum() and len(value.strip()) <= 32:
            return value.strip()
    return None


def parse_policy(body: str, id: str, fetched: float) -> Policy:
    """The policy file (3.2): ``key: value`` lines; ``mx`` repeats."""
    values: dict[str, str] = {}
    mx: list[str] = []
    for line in body.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "mx":
            mx.append(value.lower().rstrip("."))
        else:
            values.setdefault(key, value)
    if values.get("version") != "STSv1":
        raise PolicyError("policy has no 'version: STSv1'")
    mode: Mode
    match values.get("mode"):
        case "enforce" | "testing" | "none" as known:
            mode = known
        case other:
            raise PolicyError(f"policy mode {other!r} is not enforce, testing or none")
    age = values.get("max_age", "")
    if not age.isdigit() or len(age) > 10:
        raise PolicyError(f"policy max_age {age!r} is not a number of seconds")
    if mode != "none" and not mx:
        raise PolicyError("policy lists no mx pattern")
    return Policy(id=id, mode=mode, mx=tuple(mx), max_age=min(int(age), MAX_AGE), fetched=fetched)


async def fetch_policy(
    domain: str, address: str, ctx: ssl.SSLContext, *, timeout: float, port: int = 443
) -> str:
    """The body of ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` at ``address``."""
    host = f"mta-sts.{domain}"
    try:
        return await asyncio.wait_for(_get(host, address, port, ctx), timeout)
    except TimeoutError:
        raise PolicyError(f"{host}: no answer within {timeout:g} s") from None
    except (OSError, ssl.SSLError, h11.ProtocolError, EOFError) as exc:
        raise PolicyError(f"{host}: {type(exc).__name__}: {exc}") from None


async def _get(host: str, address: str, port: int, ctx: ssl.SSLContext) -> str:
    reader, writer = await asyncio.open_connection(address, port, ssl=ctx, server_hostname=host)
    try:
        conn = h11.Connection(h11.CLIENT)
        request = h11.Request(
            method="GET",
            target="/.well-known/mta-sts.txt",
            headers=[("Host", host), ("Connection", "close"), ("Accept", "text/plain")],
        )
        writer.write(conn.send(request) + conn.send(h11.EndOfMessage()))
        body = b""
        response: h11.Response | None = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(16 << 10))
            elif isinstance(event, h11.Response):
                response = event
                if event.status_code != 200:
                    # 3.3: redirects are not followed; any non-200 is a failure.
                    raise PolicyError(f"{host}: HTTP {event.status_code}")
                ctype = dict(event.headers).get(b"content-type", b"").split(b";")[0].strip()
                if ctype.lower() != b"text/plain":
                    what = ctype.decode("latin-1")
                    raise PolicyError(f"{host}: policy served as {what!r}, not text/plain")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_POLICY:
                    raise PolicyError(f"{host}: policy larger than {MAX_POLICY} bytes")
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        if response is None:
            raise PolicyError(f"{host}: no HTTP response")
        return body.decode("utf-8", "replace")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


class PolicyCache:
    """Policies by domain, in memory and (when given a path) in a JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.policies: dict[str, Policy] = {}
        if path is not None and path.exists():
            try:
                self.policies = msgspec.json.decode(path.read_bytes(), type=dict[str, Policy])
            except (OSError, msgspec.DecodeError):
                self.policies = {}  # a damaged cache is only a cache: fetch again

    def get(self, domain: str, now: float) -> Policy | None:
        p = self.policies.get(domain)
        return p if p is not None and p.expires() > now else None

    def put(self, domain: str, policy: Policy) -> None:
        # Expired policies leave as a new one comes: the file stays the size
        # of the domains still covered.
        now = policy.fetched
        self.policies = {d: p for d, p in self.policies.items() if p.expires() > now}
        self.policies[domain] = policy
        if self.path is None:
            return
        # Written whole and renamed into place: a crash leaves the old file.
        tmp = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(msgspec.json.encode(self.policies))
            os.replace(tmp, self.path)
