"""A carrier's JSON API over HTTP(S), shaped after the print-and-mail APIs.

``POST /v1/letters`` creates a letter (the address, the PDF in base64, the
service; ``Idempotency-Key`` is our letter id, so a submission repeated
after a lost reply is not printed twice), ``GET /v1/letters/{id}`` returns
it with its ``tracking_events``, ``DELETE /v1/letters/{id}`` cancels it
(409 once printed). A 429 waits its ``Retry-After`` and a 5xx or a lost
connection backs off, up to ``attempts`` tries; any other 4xx is final.
"""

from __future__ import annotations

import base64
import http.client
import random
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

from mailsflux._tls import client_context
from mailsflux.errors import CarrierError
from mailsflux.letters.carrier import ORDER, Status, Submission, Update, carrier_time


class _Event(msgspec.Struct):
    # Not ``Status``: a status this adapter does not know is skipped and
    # counted, not a reason to refuse the whole reply.
    type: str
    time: float | str
    tracking_number: str = ""


class _Letter(msgspec.Struct):
    id: str
    tracking_events: list[_Event] = msgspec.field(default_factory=list)


def request_body(s: Submission) -> dict[str, Any]:
    """Exactly what the carrier receives: the address, the PDF, the service."""
    a = s.address
    return {
        "reference": s.letter_id,
        "to": {
            "name": a.name,
            "company": a.company_name,
            "address_lines": a.street_address.splitlines(),
            "city": a.city,
            "city_area": a.city_area,
            "state": a.country_area,
            "postal_code": a.postal_code,
            "sorting_code": a.sorting_code,
            "country": a.country_code,
        },
        "file": base64.b64encode(s.pdf).decode("ascii"),
        "paper": s.paper,
        "mail_class": s.mail_class,
        "color": s.color,
    }


class _ErrorCode(msgspec.Struct):
    code: str = ""


class _ErrorReply(msgspec.Struct):
    code: str | int = ""
    error: _ErrorCode | str | None = None


_SAFE_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def error_code(data: bytes) -> str:
    """The error code of a carrier's JSON error reply (``{"code": ...}`` or
    ``{"error": {"code": ...}}``), if it looks like a code; else ""."""
    try:
        reply = msgspec.json.decode(data, type=_ErrorReply)
    except msgspec.MsgspecError:
        return ""
    code = reply.error.code if isinstance(reply.error, _ErrorCode) else str(reply.code)
    return code if _SAFE_CODE.fullmatch(code) else ""


class HTTPCarrier:
    name = "http"

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise CarrierError(f"carrier url must be http(s)://host[:port]: {url!r}")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port
        self.base = u.path.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.sleep = sleep
        self._problems: list[tuple[str, str]] = []

    def _conn(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=client_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _call(
        self, method: str, path: str, body: bytes | None = None, key: str = ""
    ) -> tuple[int, bytes]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        if key:
            headers["Idempotency-Key"] = key
        wait = 1.0
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            conn = self._conn()
            try:
                conn.request(method, self.base + path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                retry_after = resp.getheader("Retry-After")
            except (OSError, http.client.HTTPException) as exc:
                if last:
                    raise CarrierError(f"{method} {path}: {exc}") from None
                self.sleep(wait * random.uniform(0.5, 1.0))
                wait = min(wait * 2, 60.0)
                continue
            finally:
                conn.close()
            if resp.status == 429 or resp.status >= 500:
                if last:
                    raise CarrierError(
                        f"{method} {path}: HTTP {resp.status} after {attempt} attempts",
                        code=resp.status,
                    )
                if resp.status == 429 and retry_after and retry_after.strip().isdigit():
                    self.sleep(float(retry_after))
                else:
                    self.sleep(wait * random.uniform(0.5, 1.0))
                    wait = min(wait * 2, 60.0)
                continue
            return resp.status, data
        raise AssertionError("unreachable")

    def _ok(self, method: str, path: str, status: int, data: bytes) -> bytes:
        if 200 <= status < 300:
            return data
        # The carrier's body is not quoted: it may echo the address back.
        # Only its machine-readable error code goes into events and logs.
        code = error_code(data)
        err = CarrierError(
            f"{method} {path}: HTTP {status}" + (f" ({code})" if code else ""), code=status
        )
        err.permanent = True
        raise err

    def submit(self, s: Submission) -> str:
        body = msgspec.json.encode(request_body(s))
        status, data = self._call("POST", "/v1/letters", body, key=s.letter_id)
        return self._decode(self._ok("POST", "/v1/letters", status, data)).id

    def status(self, carrier_id: str) -> list[Update]:
        path = f"/v1/letters/{quote(carrier_id, safe='')}"
        status, data = self._call("GET", path)
        letter = self._decode(self._ok("GET", path, status, data))
        out: list[Update] = []
        ignored = 0
        for e in letter.tracking_events:
            try:
                at = carrier_time(e.time)
            except ValueError:
                ignored += 1
                continue
            if e.type not in ORDER:
                ignored += 1
                continue
            st = msgspec.convert(e.type, Status)
            out.append(Update(status=st, time=at, tracking_number=e.tracking_number))
        if ignored:
            self._problems.append(
                (f"carrier letter {carrier_id[:80]!r}",
                 f"{ignored} tracking events with an unknown status or time ignored")
            )  # fmt: skip
        return out

    def take_problems(self) -> list[tuple[str, str]]:
        """What the replies had that was skipped, since last asked."""
        out, self._problems = self._problems, []
        return out

    def cancel(self, carrier_id: str) -> bool:
        path = f"/v1/letters/{quote(carrier_id, safe='')}"
        status, data = self._call("DELETE", path)
        if status == 409:
            return False
        self._ok("DELETE", path, status, data)
        return True

    def _decode(self, data: bytes) -> _Letter:
        try:
            return msgspec.json.decode(data, type=_Letter)
        except msgspec.DecodeError as exc:
            raise CarrierError(f"the carrier's reply is not a letter: {exc}") from None
