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
import ssl
import threading
from pathlib import Path
from typing import Literal

import h11
import msgspec

from mailsflux._aio import within
from mailsflux._files import locked, replace_whole
from mailsflux.errors import PolicyError

__all__ = [
    "Policy",
    "PolicyCache",
    "PolicyError",
    "fetch_policy",
    "parse_policy",
    "parse_txt",
    "sts_id",
]

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


def is_sts(strings: list[bytes]) -> bool:
    """The TXT record is an MTA-STS one: it starts with ``v=STSv1`` (3.1;
    the grammar allows no space around the ``=``)."""
    text = b"".join(strings)
    return text.startswith(b"v=STSv1") and text[7:8] in (b"", b";", b" ", b"\t")


def parse_txt(strings: list[bytes]) -> str | None:
    """The ``id`` of a ``v=STSv1`` record, None when it is not one or has none (3.1)."""
    if not is_sts(strings):
        return None
    text = b"".join(strings).decode("ascii", "replace")
    for f in text.split(";")[1:]:
        key, _, value = f.strip().partition("=")
        if key == "id" and value.isascii() and value.isalnum() and len(value) <= 32:
            return value
    return None


def sts_id(records: list[list[bytes]]) -> str | None:
    """The policy id of a ``_mta-sts`` TXT RRset: records not starting with
    ``v=STSv1`` are discarded, and unless exactly one remains (with a valid
    id) there is no policy (3.1)."""
    sts = [r for r in records if is_sts(r)]
    return parse_txt(sts[0]) if len(sts) == 1 else None


def parse_policy(body: str, id: str, fetched: float) -> Policy:
    """The policy file (3.2): ``key: value`` lines; ``mx`` repeats."""
    values: dict[str, str] = {}
    mx: list[str] = []
    # 3.2: lines end in LF or CRLF only (str.splitlines() would also split
    # on U+0085 and others, letting a value smuggle in another key).
    for line in body.split("\n"):
        line = line.removesuffix("\r")
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
    if not (age.isascii() and age.isdigit()) or len(age) > 10:  # isdigit() alone takes '²'
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
        return await within(_get(host, address, port, ctx), timeout)
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
    """Policies by domain, in memory and (when given a path) in a JSON file.

    Several processes (workers, jobs) may share the file: each write takes
    an exclusive ``flock`` on ``PATH.lock``, merges in what the others wrote
    since (the later fetch of a domain wins), and renames a private temp file
    into place, mode 0600. At most ``limit`` policies are kept: the ones that
    expire first leave.
    """

    def __init__(self, path: Path | None = None, limit: int = 10_000) -> None:
        self.path = path
        self.limit = limit
        self._lock = threading.Lock()
        #: The file's identity after our last write (inode, size, mtime).
        self._written: tuple[int, int, int] | None = None
        self.policies: dict[str, Policy] = self._read() if path is not None else {}

    def _read(self) -> dict[str, Policy]:
        assert self.path is not None
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=dict[str, Policy])
        except (OSError, msgspec.DecodeError, ValueError):
            return {}  # missing or damaged: it is only a cache, fetch again

    def get(self, domain: str, now: float) -> Policy | None:
        p = self.policies.get(domain)
        return p if p is not None and p.expires() > now else None

    def put(self, domain: str, policy: Policy) -> None:
        """Keep ``policy``; may run in a worker thread (``asyncio.to_thread``)
        while the loop reads with :meth:`get`: puts are serialised, and the
        dict the loop reads is replaced whole, never changed in place."""
        with self._lock:
            policies = dict(self.policies)
            policies[domain] = policy
            if self.path is None:
                self.policies = self._pruned(policies, policy.fetched)
                return
            self.policies = policies
            with contextlib.suppress(OSError):
                self._write(domain, policy)

    def _stamp(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _pruned(self, policies: dict[str, Policy], now: float) -> dict[str, Policy]:
        # Expired policies leave as a new one comes: the file stays the size
        # of the domains still covered, and never grows past the limit.
        live = {d: p for d, p in policies.items() if p.expires() > now}
        if len(live) > self.limit:
            keep = sorted(live.items(), key=lambda kv: kv[1].expires())[-self.limit :]
            live = dict(keep)
        return live

    def _write(self, domain: str, policy: Policy) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.path):
            # Re-read only if another process wrote since our last write.
            merged = self._read() if self._stamp() != self._written else {}
            for d, p in self.policies.items():
                theirs = merged.get(d)
                if theirs is None or theirs.fetched <= p.fetched:
                    merged[d] = p
            merged[domain] = policy
            self.policies = self._pruned(merged, policy.fetched)
            replace_whole(self.path, msgspec.json.encode(self.policies))
            self._written = self._stamp()
