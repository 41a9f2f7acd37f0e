"""Recording what comes back: events, suppression entries, and a quarantine.

:class:`Ingestor` takes received reports one at a time (from files, a
maildir, an mbox, or the listener) and

* appends one event per recipient to a JSONL file (``bounced``,
  ``deferred``, ``delivered``, ``complained``, ``auto_replied``), carrying
  the message id, job and tenant when a VERP token names them, its
  personal fields sealed with ``keys`` (:mod:`mailsflux.sealedlines`);
* suppresses hard bounces and complaints: in the tracking event store's
  suppression list (what :class:`mailsflux.jobs.Suppression` checks before
  every render and retry) and/or a plain list file (one address a line, the
  format ``[recipients] suppression_list`` reads);
* copies every report it cannot use (``not-a-report``, or a bounce without a
  recipient) into the quarantine folder (sealed whole with ``keys``,
  ``NAME.eml.sealed``: it quotes people's mail), and counts it: nothing is
  dropped.

When a report's return path is a genuine VERP address, the recipient we
mailed is the token's, whatever the report calls it (a forwarder's final
address, a complaint with the address redacted).
"""

from __future__ import annotations

import hashlib
import mailbox
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import msgspec

from mailsflux._files import replace_whole
from mailsflux.compose import normalize_address
from mailsflux.errors import MailsfluxError
from mailsflux.events import Event, EventDetails, EventType, stream_id
from mailsflux.feedback.report import Outcome, Report, parse_report
from mailsflux.feedback.verp import Verp, VerpPayload
from mailsflux.sealedlines import Sealer, open_append
from mailsflux.tracking.events import EventStore


class FeedbackError(MailsfluxError):
    """A report source or a feedback setting cannot be used."""


class IngestStats(msgspec.Struct):
    reports: int = 0
    bounces: int = 0
    complaints: int = 0
    auto_replies: int = 0
    events: int = 0
    suppressed: int = 0
    quarantined: int = 0


_EVENT: dict[str, EventType] = {
    "failed": "bounced",
    "delayed": "deferred",
    "delivered": "delivered",
    "relayed": "delivered",
    "expanded": "delivered",
}


class Ingestor:
    """Records reports; see the module docstring. Use as a context manager."""

    def __init__(
        self,
        *,
        quarantine: str | os.PathLike[str],
        events: str | os.PathLike[str] | None = None,
        store: EventStore | None = None,
        suppression_list: str | os.PathLike[str] | None = None,
        verp: Verp | None = None,
        keys: Sealer | None = None,
        plain_events: bool = False,
    ) -> None:
        self.quarantine = Path(quarantine)
        self.keys = keys
        self.store = store
        self.verp = verp
        self.stats = IngestStats()
        self._events: IO[bytes] | None = None
        self._list: IO[str] | None = None
        self._listed: set[str] = set()
        try:
            # Reports and events name people: owner-only, like send --events.
            self.quarantine.mkdir(mode=0o700, parents=True, exist_ok=True)
            if events is not None:
                # Sealed (recipient, reported address, source) unless the
                # user asked for a plain file.
                self._events = open_append(events, None if plain_events else keys)
            if suppression_list is not None:
                path = Path(suppression_list)
                if path.exists():
                    for line in path.read_text("utf-8").splitlines():
                        entry = line.split("#", 1)[0].strip()
                        if entry:
                            self._listed.add(normalize_address(entry))
                self._list = open(path, "a", encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.close()
            raise FeedbackError(f"cannot open feedback output: {exc}") from None

    def close(self) -> None:
        for fh in (self._events, self._list):
            if fh is not None:
                fh.close()
        self._events = self._list = None

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one report ------------------------------------------------------------

    def _token(self, report: Report) -> VerpPayload | None:
        if self.verp is None:
            return None
        for address in report.return_paths:
            payload = self.verp.open(address)
            if payload is not None:
                return payload
        return None

    def ingest(
        self, data: bytes, *, source: str = "", envelope_to: list[str] | None = None
    ) -> Report:
        """Parse and record one received message; return what it was."""
        report = parse_report(data, envelope_to=envelope_to)
        self.stats.reports += 1
        token = self._token(report)
        outcomes = report.recipients
        if not outcomes and token is not None and report.kind == "complaint":
            # The provider redacted the address; the token still names it.
            outcomes = [Outcome(token.recipient, None, None, "complaint", True)]
        if report.kind == "not-a-report" or not outcomes:
            self._quarantine(data, source, report.note or report.kind)
            return report
        if report.kind == "bounce":
            self.stats.bounces += 1
        elif report.kind == "complaint":
            self.stats.complaints += 1
        else:
            self.stats.auto_replies += 1
        now = time.time()
        for o in outcomes:
            ours = token is not None and (
                len(outcomes) == 1 or o.recipient.lower() == token.recipient.lower()
            )
            address = token.recipient if ours and token is not None else o.recipient
            event: EventType
            if report.kind == "complaint":
                event = "complained"
            elif report.kind == "auto-reply":
                event = "auto_replied"
            else:
                event = _EVENT.get(o.action, "bounced")
            doc = Event(
                id=stream_id(),
                type=event,
                time=now,
                tenant=token.tenant if token else "",
                message_id=token.message_id if token else "",
                job=(token.job or None) if token else None,
                recipient=address,
                details=EventDetails(
                    code=o.code,
                    enhanced_status=o.status,
                    category=o.reason,
                    hard=o.hard,
                    feedback_type=report.feedback_type if report.kind == "complaint" else "",
                    reported_recipient=o.recipient if o.recipient != address else "",
                    source=source,
                ),
            )
            if self._events is not None:
                self._events.write(msgspec.json.encode(doc) + b"\n")
                self.stats.events += 1
            if o.hard:
                self._suppress(
                    address,
                    reason="complaint" if report.kind == "complaint" else "hard-bounce",
                    job=token.job if token else "",
                    message_id=token.message_id if token else "",
                )
        return report

    def _suppress(self, address: str, *, reason: str, job: str, message_id: str) -> None:
        added = False
        if self.store is not None:
            added = self.store.suppress(address, reason=reason, job=job, message_id=message_id)
        if self._list is not None:
            key = normalize_address(address)
            if key not in self._listed:
                self._listed.add(key)
                self._list.write(f"{key}  # {reason} {time.strftime('%Y-%m-%d')}\n")
                self._list.flush()
                added = True
        if added:
            self.stats.suppressed += 1

    def _quarantine(self, data: bytes, source: str, note: str) -> None:
        digest = hashlib.sha256(data).hexdigest()[:16]
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{digest}.eml"
        if self.keys is not None:
            # A report names people and quotes their mail: sealed like the
            # events (``bounces ingest`` opens it again with the same keys).
            data = self.keys.seal(data, _quarantine_ctx(name))
            name += SEALED_SUFFIX
        try:
            fd = os.open(self.quarantine / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise FeedbackError(
                f"cannot keep an unparsed report in quarantine: {exc}", file=source or None
            ) from None
        self.stats.quarantined += 1


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _looks_like_mbox(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(5) == b"From "


SEALED_SUFFIX = ".sealed"


def _quarantine_ctx(name: str) -> bytes:
    return f"bounce-quarantine\x00{name}".encode()


def reseal_quarantine(directory: Path, keys: Sealer) -> int:
    """Seal every quarantined report again under the newest key (after a
    rotation); returns how many. Each keeps its file's time: retention ages
    a report by it, and a rotation must not restart the clock."""
    n = 0
    for path in sorted(directory.glob(f"*{SEALED_SUFFIX}")):
        ctx = _quarantine_ctx(path.name.removesuffix(SEALED_SUFFIX))
        data = keys.seal(keys.open(path.read_bytes(), ctx), ctx)
        replace_whole(path, data, sync=True, keep_times=True)
        n += 1
    return n


def read_sources(
    paths: Iterable[str | os.PathLike[str]], keys: Sealer | None = None
) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of every message in files, maildirs and mboxes (a
    quarantined report, ``NAME.eml.sealed``, opened with ``keys``).

    Every path is checked now, before the first message is read, so a typo
    fails before anything is recorded.
    """
    checked: list[tuple[str, Path]] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            if not _is_maildir(path):
                raise FeedbackError("not a maildir (no cur/, new/ and tmp/)", file=str(path))
            checked.append(("maildir", path))
            continue
        try:
            kind = "mbox" if _looks_like_mbox(path) else "file"
        except FileNotFoundError:
            raise FeedbackError("no such file", file=str(path)) from None
        except OSError as exc:
            raise FeedbackError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
        if path.name.endswith(SEALED_SUFFIX):
            if keys is None:
                raise FeedbackError("a sealed report: give the key file", file=str(path))
            kind = "sealed"
        checked.append((kind, path))
    return _read(checked, keys)


def _read(checked: list[tuple[str, Path]], keys: Sealer | None) -> Iterator[tuple[str, bytes]]:
    for kind, path in checked:
        try:
            if kind == "sealed":
                assert keys is not None
                name = path.name.removesuffix(SEALED_SUFFIX)
                try:
                    yield str(path), keys.open(path.read_bytes(), _quarantine_ctx(name))
                except MailsfluxError as exc:
                    raise FeedbackError(exc.message, file=str(path)) from None
            elif kind == "file":
                yield str(path), path.read_bytes()
            elif kind == "maildir":
                for sub in ("new", "cur"):
                    for entry in sorted((path / sub).iterdir()):
                        if entry.is_file() and not entry.name.startswith("."):
                            yield str(entry), entry.read_bytes()
            else:
                box = mailbox.mbox(path, create=False)
                try:
                    for i, key in enumerate(box.iterkeys()):
                        yield f"{path}#{i + 1}", box.get_bytes(key)
                finally:
                    box.close()
        except OSError as exc:
            where = exc.filename or path
            raise FeedbackError(f"cannot read: {exc.strerror or exc}", file=str(where)) from None


__all__ = ["FeedbackError", "IngestStats", "Ingestor", "read_sources"]
