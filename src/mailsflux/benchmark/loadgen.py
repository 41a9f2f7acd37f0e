"""``mailsflux bench smtp``: an SMTP load generator for any server.

A lean client of its own rather than :class:`mailsflux.delivery.SMTPSession`:
the session does routing-grade bookkeeping per message, while a load
generator must cost less than the server it measures. Messages are rendered
and signed before the clock starts; the timed loop only writes prepared
bytes and reads reply codes.

Open loop: with ``rate``, message *i* is due at ``start + i / rate`` and
its latency counts from that intended time, not from when a connection got
round to it, so a server that stalls cannot hide its stall by slowing the
client down (coordinated omission). Without ``rate`` every connection sends
as fast as the server answers, and latency counts from the actual send.

With PIPELINING (RFC 2920) MAIL, RCPT and DATA go out in one write, and the
next message's envelope rides along with the current message's data: one
round trip per message. The MAIL, RCPT and DATA latencies then count from
that shared write, so they include the server's work on the previous
message's data: that is what a pipelining client sees.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from mailsflux._aio import within
from mailsflux._tls import client_context
from mailsflux.benchmark.result import BenchError, latency_summary, new_result
from mailsflux.benchmark.sample import SENDER_ADDRESS, Prerendered, signed_messages
from mailsflux.delivery import data_payload

PHASES = ("connect", "ehlo", "starttls", "mail", "rcpt", "data", "eod", "message")
#: How many distinct messages are pre-rendered at most; longer runs cycle them
#: (every one is a personalised, signed message; signing a million up front
#: would take minutes of RSA before the first byte is sent).
POOL = 2000


@dataclass
class Settings:
    host: str
    port: int
    messages: int = 10_000
    connections: int = 8
    rate: float = 0.0
    size: int = 0
    pipelining: bool = True
    tls: bool = False
    algorithm: str = "rsa-sha256"
    timeout: float = 30.0
    ehlo_name: str = "bench.mailsflux.invalid"


def parse_target(url: str) -> tuple[str, int]:
    """``smtp://HOST:PORT`` (port 25 if left out) -> (host, port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BenchError(f"--target {url!r}: {exc}") from None
    if parts.scheme != "smtp" or not parts.hostname:
        raise BenchError(f"--target {url!r}: expected smtp://HOST:PORT")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise BenchError(f"--target {url!r}: expected smtp://HOST:PORT, nothing more")
    return parts.hostname, 25 if port is None else port


def intended_offsets(count: int, rate: float) -> list[float]:
    """When each message is due, in seconds from the start (open loop)."""
    return [i / rate for i in range(count)] if rate > 0 else [0.0] * count


class _Protocol(asyncio.Protocol):
    """Reads replies into a list of (code, arrival ns, text) and wakes one
    waiter when as many replies as it wants have arrived."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.replies: list[tuple[int, int, bytes]] = []
        self._buf = b""
        self._lines: list[bytes] = []
        self._want = 0
        self._waiter: asyncio.Future[None] | None = None
        self.lost: Exception | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._timeout = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        buf = self._buf + data if self._buf else data
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        replies = self.replies
        for line in lines:
            if len(line) < 3 or not line[:3].isdigit():
                self._fail(BenchError(f"malformed reply line {line[:80]!r}"))
                return
            if line[3:4] == b"-":
                self._lines.append(line[4:].rstrip(b"\r"))
                continue
            # Text stays bytes: only EHLO and refusals are ever read.
            text = line[4:]
            if self._lines:
                text = b"\n".join([*self._lines, text.rstrip(b"\r")])
                self._lines.clear()
            replies.append((int(line[:3]), now, text))
        w = self._waiter
        if w is not None and len(replies) >= self._want and not w.done():
            w.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self.lost is None:
            self.lost = exc
        w = self._waiter
        if w is not None and not w.done():
            w.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(BenchError(f"connection lost: {exc or 'closed by the server'}"))

    def eof_received(self) -> bool:
        self._fail(BenchError("connection closed by the server"))
        return False

    async def read(self, n: int, timeout: float) -> list[tuple[int, int, bytes]]:
        """The next ``n`` replies."""
        if len(self.replies) < n:
            if self.lost is not None:
                raise self.lost
            loop = asyncio.get_running_loop()
            self._want = n
            self._waiter = loop.create_future()
            # One timer per connection, re-armed only when it fires: a
            # wait_for per read would cost more than the read itself.
            self._deadline = time.monotonic() + timeout
            self._timeout = timeout
            if self._timer is None:
                self._timer = loop.call_later(timeout, self._watchdog)
            try:
                await self._waiter
            finally:
                self._waiter = None
        got = self.replies[:n]
        del self.replies[:n]
        return got

    def _watchdog(self) -> None:
        self._timer = None
        w = self._waiter
        if w is None or w.done() or self.lost is not None:
            return
        left = self._deadline - time.monotonic()
        if left <= 0:
            self._fail(BenchError(f"no reply within {self._timeout:g} s"))
        else:
            self._timer = asyncio.get_running_loop().call_later(left, self._watchdog)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()


@dataclass
class _Run:
    settings: Settings
    pool: list[tuple[bytes, bytes]]  # (envelope, dot-stuffed payload)
    start_ns: int = 0
    next_index: int = 0
    delivered: int = 0
    failed: int = 0
    samples: dict[str, array[int]] = field(default_factory=lambda: {p: array("q") for p in PHASES})
    send_lag: array[int] = field(default_factory=lambda: array("q"))
    #: Reply codes per phase, counted after the run (an append is cheaper
    #: than a count in the timed loop).
    codes: dict[str, array[int]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    pipelining_offered: bool = True
    last_ns: int = 0

    def codes_of(self, phase: str) -> array[int]:
        a = self.codes.get(phase)
        if a is None:
            a = self.codes[phase] = array("H")
        return a

    def code(self, phase: str, code: int) -> None:
        self.codes_of(phase).append(code)

    def claim(self, only_due: bool) -> tuple[int, int] | None:
        """The next message's index and intended send time (ns), or None when
        all are taken (or, with ``only_due``, the next is not due yet)."""
        i = self.next_index
        if i >= self.settings.messages:
            return None
        rate = self.settings.rate
        due = self.start_ns + int(i * 1e9 / rate) if rate > 0 else time.perf_counter_ns()
        if only_due and rate > 0 and due > time.perf_counter_ns():
            return None
        self.next_index = i + 1
        return i, due


def _prepare(messages: list[Prerendered]) -> list[tuple[bytes, bytes]]:
    out = []
    mail = f"MAIL FROM:<{SENDER_ADDRESS}> BODY=8BITMIME\r\n".encode()
    for m in messages:
        envelope = mail + f"RCPT TO:<{m.recipient}>\r\nDATA\r\n".encode()
        out.append((envelope, data_payload(m.data)))
    return out


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode("utf-8", "replace")


async def _sleep_until(ns: int) -> None:
    # Never early: the schedule is a promise. uvloop's timers count whole
    # milliseconds, and a shorter sleep would spin, so round up: a message
    # may go out up to a millisecond late, and its latency counts that.
    while (left := ns - time.perf_counter_ns()) > 0:
        await asyncio.sleep(-(-left // 1_000_000) / 1000)


async def _connection(run: _Run) -> None:
    s = run.settings
    loop = asyncio.get_running_loop()
    samples = run.samples
    t0 = time.perf_counter_ns()
    transport, proto = await within(loop.create_connection(_Protocol, s.host, s.port), s.timeout)
    try:
        (greet,) = await proto.read(1, s.timeout)
        samples["connect"].append(greet[1] - t0)
        run.code("connect", greet[0])
        if greet[0] != 220:
            raise BenchError(f"greeting: {greet[0]} {_text(greet[2])}")
        ehlo = f"EHLO {s.ehlo_name}\r\n".encode()

        async def hello() -> str:
            t = time.perf_counter_ns()
            transport.write(ehlo)
            (r,) = await proto.read(1, s.timeout)
            samples["ehlo"].append(r[1] - t)
            run.code("ehlo", r[0])
            if r[0] != 250:
                raise BenchError(f"EHLO: {r[0]} {_text(r[2])}")
            return _text(r[2]).upper()

        ext = await hello()
        if s.tls:
            if "STARTTLS" not in ext.split("\n"):
                raise BenchError("--tls: the server does not offer STARTTLS")
            t = time.perf_counter_ns()
            transport.write(b"STARTTLS\r\n")
            (r,) = await proto.read(1, s.timeout)
            run.code("starttls", r[0])
            if r[0] != 220:
                raise BenchError(f"STARTTLS: {r[0]} {_text(r[2])}")
            # A benchmark target is often a test box with a self-signed
            # certificate: encrypt, but do not verify.
            ctx = client_context(verify=False)
            new = await loop.start_tls(transport, proto, ctx, server_hostname=s.host)
            if new is None:
                raise BenchError("STARTTLS: the TLS handshake failed")
            transport = new
            proto.transport = transport
            samples["starttls"].append(time.perf_counter_ns() - t)
            ext = await hello()
        pipelining = s.pipelining and "PIPELINING" in ext.split("\n")
        if s.pipelining and not pipelining:
            run.pipelining_offered = False
        if pipelining:
            await _pipelined(run, proto, transport)
        else:
            await _lockstep(run, proto, transport)
        transport.write(b"QUIT\r\n")
        try:
            await proto.read(1, 5)
        except BenchError:
            pass
    finally:
        proto.close()


def _finish(run: _Run, i_due: int, eod: tuple[int, int, bytes]) -> None:
    run.code("eod", eod[0])
    run.samples["message"].append(eod[1] - i_due)
    run.last_ns = eod[1]
    if 200 <= eod[0] < 300:
        run.delivered += 1
    else:
        run.failed += 1


async def _send_envelope(run: _Run, transport: asyncio.Transport, due: int, envelope: bytes) -> int:
    """Write ``envelope`` once it is due; returns when it went out (ns)."""
    await _sleep_until(due)
    t = time.perf_counter_ns()
    run.send_lag.append(t - due)
    transport.write(envelope)
    return t


async def _pipelined(run: _Run, proto: _Protocol, transport: asyncio.Transport) -> None:
    s, pool, samples = run.settings, run.pool, run.samples
    mail_s, rcpt_s, data_s, eod_s = (samples[p] for p in ("mail", "rcpt", "data", "eod"))
    mail_c, rcpt_c, data_c = (run.codes_of(p) for p in ("mail", "rcpt", "data"))
    n_pool, timeout, now = len(pool), s.timeout, time.perf_counter_ns
    if (claimed := run.claim(False)) is None:
        return
    i, due = claimed
    sent_env = await _send_envelope(run, transport, due, pool[i % n_pool][0])
    got = await proto.read(3, timeout)
    while True:
        # got: the current message's MAIL, RCPT and DATA replies (after RSET's).
        if len(got) == 4:
            run.code("rset", got[0][0])
            got = got[1:]
        mail, rcpt, data = got
        mail_s.append(mail[1] - sent_env)
        rcpt_s.append(rcpt[1] - sent_env)
        data_s.append(data[1] - sent_env)
        mail_c.append(mail[0])
        rcpt_c.append(rcpt[0])
        data_c.append(data[0])
        nxt = run.claim(True)
        if data[0] != 354:
            # Refused before the data (at MAIL, RCPT or DATA): RSET clears
            # the half-open transaction before the next message.
            run.failed += 1
            samples["message"].append(data[1] - due)
            run.last_ns = data[1]
            if nxt is None and (nxt := run.claim(False)) is None:
                return
            i, due = nxt
            sent_env = await _send_envelope(run, transport, due, b"RSET\r\n" + pool[i % n_pool][0])
            got = await proto.read(4, timeout)
            continue
        payload = pool[i % n_pool][1]
        t = now()
        if nxt is not None:
            # The next envelope rides along with this message's data, in one
            # buffer: one syscall (writelines may make two).
            transport.write(payload + pool[nxt[0] % n_pool][0])
            run.send_lag.append(t - nxt[1])
            got = await proto.read(4, timeout)
            eod_s.append(got[0][1] - t)
            _finish(run, due, got[0])
            i, due = nxt
            sent_env = t
            got = got[1:]
            continue
        transport.write(payload)
        (eod,) = await proto.read(1, timeout)
        eod_s.append(eod[1] - t)
        _finish(run, due, eod)
        if (nxt := run.claim(False)) is None:
            return
        i, due = nxt
        sent_env = await _send_envelope(run, transport, due, pool[i % n_pool][0])
        got = await proto.read(3, timeout)


async def _lockstep(run: _Run, proto: _Protocol, transport: asyncio.Transport) -> None:
    s, pool, samples = run.settings, run.pool, run.samples
    n_pool = len(pool)
    rset = False
    while (claimed := run.claim(False)) is not None:
        i, due = claimed
        await _sleep_until(due)
        run.send_lag.append(time.perf_counter_ns() - due)
        envelope, payload = pool[i % n_pool]
        if rset:
            transport.write(b"RSET\r\n")
            (r,) = await proto.read(1, s.timeout)
            run.code("rset", r[0])
        refused: tuple[int, int, bytes] | None = None
        for phase, line in zip(("mail", "rcpt", "data"), envelope.split(b"\r\n"), strict=False):
            t = time.perf_counter_ns()
            transport.write(line + b"\r\n")
            (r,) = await proto.read(1, s.timeout)
            samples[phase].append(r[1] - t)
            run.code(phase, r[0])
            if r[0] >= 400:
                refused = r
                break
        rset = refused is not None
        if refused is not None:
            run.failed += 1
            samples["message"].append(refused[1] - due)
            run.last_ns = refused[1]
            continue
        t = time.perf_counter_ns()
        transport.write(payload)
        (eod,) = await proto.read(1, s.timeout)
        samples["eod"].append(eod[1] - t)
        _finish(run, due, eod)


async def _drive(run: _Run, progress: Callable[[int], None] | None) -> None:
    s = run.settings
    run.start_ns = time.perf_counter_ns()
    tasks = [asyncio.ensure_future(_connection(run)) for _ in range(s.connections)]
    ticker: asyncio.Task[None] | None = None
    if progress is not None:

        async def tick() -> None:
            while True:
                progress(run.delivered + run.failed)
                await asyncio.sleep(0.2)

        ticker = asyncio.ensure_future(tick())
    results = await asyncio.gather(*tasks, return_exceptions=True)
    if ticker is not None:
        ticker.cancel()
    for r in results:
        if isinstance(r, BaseException):
            if isinstance(r, OSError) and r.strerror:
                run.errors[f"connect: {r.strerror}"] += 1
            elif isinstance(r, OSError | TimeoutError):
                run.errors[f"connect: {type(r).__name__}"] += 1
            else:
                run.errors[str(r)] += 1


def run_smtp(
    settings: Settings,
    *,
    progress: Callable[[int], None] | None = None,
    messages: list[Prerendered] | None = None,
) -> dict[str, Any]:
    """Run the load; returns the result document (see :mod:`.result`)."""
    s = settings
    if s.messages < 1 or s.connections < 1 or s.rate < 0 or s.size < 0:
        raise BenchError(
            "--messages and --connections must be at least 1, --rate and --size at least 0"
        )
    prep_start = time.process_time()
    if messages is None:
        messages = signed_messages(min(s.messages, POOL), size=s.size, algorithm=s.algorithm)
    run = _Run(s, _prepare(messages))
    prep_cpu = time.process_time() - prep_start
    cpu0, wall0 = time.process_time(), time.perf_counter_ns()
    try:
        import uvloop

        uvloop.run(_drive(run, progress))
        loop_name = "uvloop"
    except ImportError:
        asyncio.run(_drive(run, progress))
        loop_name = "asyncio"
    cpu = time.process_time() - cpu0
    end_ns = run.last_ns or time.perf_counter_ns()
    elapsed = max(end_ns - wall0, 1) / 1e9
    done = run.delivered + run.failed
    result = new_result("smtp", {**asdict(s), "event_loop": loop_name, "pool": len(messages)})
    sizes = [len(p[1]) for p in run.pool]
    m = result["metrics"]
    m["messages"] = s.messages
    m["delivered"] = run.delivered
    m["failed"] = run.failed
    m["not_sent"] = s.messages - done
    m["elapsed_s"] = round(elapsed, 6)
    m["throughput_msg_s"] = round(run.delivered / elapsed, 1)
    m["mean_message_bytes"] = round(sum(sizes) / len(sizes), 1)
    m["client_cpu_us_per_msg"] = round(cpu / max(done, 1) * 1e6, 2)
    m["prerender_cpu_s"] = round(prep_cpu, 3)
    if s.rate > 0:
        m["intended_rate_msg_s"] = s.rate
        m["intended_duration_s"] = (s.messages - 1) / s.rate
    m["latency_ms"] = {p: latency_summary(run.samples[p]) for p in PHASES if run.samples[p]}
    m["send_lag_ms"] = latency_summary(run.send_lag)
    m["min_send_lag_ns"] = min(run.send_lag) if run.send_lag else 0
    result["codes"] = {
        phase: {str(k): v for k, v in sorted(Counter(c).items())} for phase, c in run.codes.items()
    }
    result["errors"] = dict(run.errors)
    if not run.pipelining_offered:
        result["notes"].append("the server does not offer PIPELINING: sent in lock-step")
    if s.messages > len(messages):
        result["notes"].append(f"{len(messages)} distinct pre-rendered messages, cycled")
    return result
