"""Events files (JSON lines) with their personal fields sealed.

``send --events``, ``worker --events`` and the bounce listener append one
:class:`~mailsflux.events.Event` a line. The fields that name or quote a
person (the recipient, the reply text, the reported address, a clicked URL,
a user agent, where a report came from) are sealed one by one with
AES-256-GCM under the spool key file's keys; what is needed to count and
follow a job (type, time, job, message id, status codes, category) stays
readable, so ``jq`` still tallies a file without a key.

A sealed value is the string ``mfs1:KID:DATA`` (the key id in hex, then the
sealed bytes in URL-safe base64), bound to its field and its event's
message id: moved to another line or field, it does not open. Lines
written before sealing (plain values) read as they are, so readers take
both. A plain file is written only when asked for (``--events-plain``).

Not a stage: the key ring is passed in (anything with ``seal``, ``open``
and ``key_id``; :class:`mailsflux.spool.SpoolKeys` is one).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol, cast

import msgspec

from mailsflux.errors import MailsfluxError

PREFIX = "mfs1:"
#: ``serve``'s key file for the events files it writes (the bounce
#: listener's), in its data directory; ``keys rotate-store`` rotates it.
EVENTS_KEY_FILE = "events.keys"
#: Personal fields of an event, and of its ``details``.
PERSONAL = ("recipient",)
PERSONAL_DETAILS = ("reply", "reported_recipient", "url", "user_agent", "source")

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


class Sealer(Protocol):
    def seal(self, plain: bytes, context: bytes) -> bytes: ...
    def open(self, sealed: bytes, context: bytes) -> bytes: ...
    def key_id(self, sealed: bytes) -> str: ...


class SealedLinesError(MailsfluxError):
    """An events file that cannot be read or rewritten."""


def _ctx(field: str, doc: dict[str, Any]) -> bytes:
    return f"events-jsonl\x00{field}\x00{doc.get('message_id') or ''}".encode()


def load_keys(path: Path | None) -> Sealer:
    """The spool key ring in ``path`` (default: the default spool's), made
    when missing: for writers outside the stages that own the spool."""
    from mailsflux.spool import SpoolKeys, default_spool_dir

    return SpoolKeys.load(path or default_spool_dir() / "keys")


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _seal_value(keys: Sealer, value: str, field: str, doc: dict[str, Any]) -> str:
    sealed = keys.seal(value.encode(), _ctx(field, doc))
    data = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    return f"{PREFIX}{keys.key_id(sealed)}:{data}"


def _open_value(keys: Sealer, value: str, field: str, doc: dict[str, Any]) -> str:
    data = value.split(":", 2)[2]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return keys.open(raw, _ctx(field, doc)).decode()


def _fields(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(the dict holding it, its key, the name it is sealed under) per personal field."""
    for f in PERSONAL:
        if doc.get(f):
            yield doc, f, f
    details = doc.get("details")
    if isinstance(details, dict):
        for f in PERSONAL_DETAILS:
            if details.get(f):
                yield details, f, "details." + f


def seal_doc(doc: dict[str, Any], keys: Sealer) -> dict[str, Any]:
    """``doc`` with its personal fields sealed (in place; sealed ones left as they are)."""
    for holder, key, name in list(_fields(doc)):
        if not is_sealed(holder[key]):
            holder[key] = _seal_value(keys, str(holder[key]), name, doc)
    return doc


def open_doc(doc: dict[str, Any], keys: Sealer | None) -> dict[str, Any]:
    """``doc`` with its sealed fields opened (in place); plain lines pass through."""
    for holder, key, name in list(_fields(doc)):
        if is_sealed(holder[key]):
            if keys is None:
                raise SealedLinesError("an events line is sealed and no key file was given")
            holder[key] = _open_value(keys, holder[key], name, doc)
    return doc


def key_ids(doc: dict[str, Any]) -> set[str]:
    """The key ids of the line's sealed values."""
    return {h[k].split(":", 2)[1] for h, k, _ in _fields(doc) if is_sealed(h[k])}


def scrub_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without its personal fields (retention, erasure)."""
    for holder, key, _ in list(_fields(doc)):
        del holder[key]
    return doc


def encode(event: object, keys: Sealer | None) -> bytes:
    """One line: ``event`` (an Event or a dict) sealed with ``keys`` (plain when None)."""
    doc = event if isinstance(event, dict) else msgspec.to_builtins(event)
    if keys is not None:
        doc = seal_doc(doc, keys)
    return _enc.encode(doc) + b"\n"


def read(path: Path, keys: Sealer | None) -> Iterator[dict[str, Any]]:
    """Every event of ``path`` opened (old plain lines and sealed ones)."""
    for n, doc in _docs(path):
        try:
            yield open_doc(doc, keys)
        except MailsfluxError as exc:
            raise SealedLinesError(f"{exc}", file=str(path), line=n) from None


def _docs(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise SealedLinesError(
            f"cannot read the events file: {exc.strerror}", file=str(path)
        ) from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = _dec.decode(line)
        except msgspec.DecodeError:
            raise SealedLinesError("not a JSON event", file=str(path), line=n) from None
        if not isinstance(doc, dict):
            raise SealedLinesError("not a JSON event", file=str(path), line=n)
        yield n, doc


@contextlib.contextmanager
def _holding(path: Path) -> Iterator[None]:
    """``path``'s lock, which writers take for each line: what is read under
    it and then replaced misses no line appended meanwhile."""
    fd = os.open(path, os.O_RDONLY)
    try:
        with _locked(fd):
            yield
    finally:
        os.close(fd)


def rewrite(path: Path, docs: list[dict[str, Any]]) -> None:
    """Replace ``path`` whole (0600) with ``docs``, one a line (hold its lock)."""
    tmp = path.with_name(f".{path.name}.rewrite")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        for doc in docs:
            f.write(_enc.encode(doc) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def reseal(path: Path, keys: Sealer) -> int:
    """Seal every line of ``path`` again under the newest key (plain lines too);
    returns how many lines. A running writer waits for the file's lock,
    then appends to the new file."""
    with _holding(path):
        docs = [seal_doc(open_doc(d, keys), keys) for d in read(path, keys)]
        rewrite(path, docs)
    return len(docs)


def sweep(path: Path, *, events_before: float, recipients_before: float) -> dict[str, int]:
    """Retention for one file: lines older than ``events_before`` go, the
    personal fields of lines older than ``recipients_before`` go. No key is
    needed: sealed values are dropped, not opened."""
    with _holding(path):
        return _sweep(path, events_before, recipients_before)


def _sweep(path: Path, events_before: float, recipients_before: float) -> dict[str, int]:
    kept: list[dict[str, Any]] = []
    deleted = scrubbed = 0
    for _, doc in _docs(path):
        at = doc.get("time")
        when = float(at) if isinstance(at, (int, float)) else None
        if when is not None and when < events_before:
            deleted += 1
            continue
        if when is not None and when < recipients_before and any(_fields(doc)):
            scrub_doc(doc)
            scrubbed += 1
        kept.append(doc)
    if deleted or scrubbed:
        rewrite(path, kept)
    counts = {"events_file_deleted": deleted, "events_file_anonymised": scrubbed}
    return {k: v for k, v in counts.items() if v}


def person(
    path: Path,
    keys: Sealer | None,
    match: Callable[[str], bool],
    *,
    erase: bool = False,
    correct: str | None = None,
) -> list[dict[str, Any]]:
    """The events of ``path`` naming a person (``match`` on the recipient or
    the reported address), opened; with ``erase`` their personal fields
    are dropped, with ``correct`` the address is replaced (sealed again)."""
    found: list[dict[str, Any]] = []
    with _holding(path):
        docs = list(read(path, keys))
        for doc in docs:
            named = [(h, k) for h, k, _ in _fields(doc) if k in ("recipient", "reported_recipient")]
            if any(match(str(h[k])) for h, k in named):
                found.append(json_copy(doc))
                if erase:
                    scrub_doc(doc)
                elif correct is not None:
                    for h, k in named:
                        if match(str(h[k])):
                            h[k] = correct
        if found and (erase or correct is not None):
            # Written back sealed (a plain line too: it was rewritten anyway).
            rewrite(path, [seal_doc(d, keys) if keys is not None else d for d in docs])
    return found


def json_copy(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _dec.decode(_enc.encode(doc))
    return out


def open_append(path: str | os.PathLike[str], keys: Sealer | None) -> IO[bytes]:
    """The events file for appending: owner-only (0600), each line one
    write() to an O_APPEND file, so several processes' lines never
    interleave. With ``keys``, each line is sealed on its way (None: plain,
    only when the user asked for it). A sweep or a reseal may replace the
    file meanwhile: each write holds the file's lock and follows the path
    to the file now there, so no line lands in a replaced one."""
    return cast(IO[bytes], _Appender(Path(path), keys))


class _Appender(io.RawIOBase):
    """Writes are event lines (the writers write plain :class:`Event` lines),
    sealed before they reach the disk."""

    def __init__(self, path: Path, keys: Sealer | None) -> None:
        super().__init__()
        self._path = path
        self._keys = keys
        self._fd = self._open()

    def _open(self) -> int:
        return os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        out = data
        if self._keys is not None:
            lines = [encode(_dec.decode(x), self._keys) for x in data.splitlines() if x.strip()]
            out = b"".join(lines)
        with _locked(self._fd):
            if _replaced(self._fd, self._path):
                os.close(self._fd)
                self._fd = self._open()
                with _locked(self._fd):
                    os.write(self._fd, out)
            else:
                os.write(self._fd, out)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def _replaced(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino != path.stat().st_ino
    except FileNotFoundError:
        return True


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
