"""Events files (JSON lines) with their personal fields sealed.

``send --events``, ``worker --events`` and the bounce listener append one
:class:`~mailsflux.events.Event` a line. The fields that name or quote a
person (the recipient, the reply text, the reported address, a clicked URL,
a user agent, where a report came from) are sealed one by one with
AES-256-GCM under the spool key file's keys; what is needed to count and
follow a job (type, time, job, message id, status codes, category) stays
readable, so ``jq`` still tallies a file without a key.

A sealed value is the string ``mfs2:KID:DATA`` (the key id in hex, then the
sealed bytes in URL-safe base64), bound to its field and its event's id,
type, time and message id: moved to another line or field (a bounce has no
message id, so that alone would not tell two apart), it does not open.
Values sealed before that (``mfs1:``, bound to the field and message id
only) still open, and are sealed the new way by ``keys rotate-store``.
Lines written before sealing (plain values) read as they are, so readers
take all three. A plain file is written only when asked for (``--events-plain``).

Not a stage: the key ring is passed in (anything with ``seal``, ``open``
and ``key_id``; :class:`mailsflux.spool.SpoolKeys` is one).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol, cast

import msgspec

from mailsflux._files import replace_whole
from mailsflux.errors import MailsfluxError

PREFIX = "mfs2:"
#: Values sealed before the binding took in the event's id, type and time.
OLD_PREFIX = "mfs1:"
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
    """What a value is bound to: its field and its line (id, type, time,
    message id: the time as JSON writes it, which reads back the same)."""
    line = _enc.encode([doc.get(k) for k in ("id", "type", "time", "message_id")])
    return b"events-jsonl2\x00" + field.encode() + b"\x00" + line


def _old_ctx(field: str, doc: dict[str, Any]) -> bytes:
    return f"events-jsonl\x00{field}\x00{doc.get('message_id') or ''}".encode()


def load_keys(path: Path | None) -> Sealer:
    """The spool key ring in ``path`` (default: the default spool's), made
    when missing: for writers outside the stages that own the spool."""
    from mailsflux.spool import SpoolKeys, default_spool_dir

    return SpoolKeys.load(path or default_spool_dir() / "keys")


def existing_keys(path: Path | None) -> Sealer | None:
    """The key ring in ``path`` (default: the default spool's) if there is
    one: for readers, which must not make a key file (None: there is none)."""
    from mailsflux.spool import SpoolKeys, default_spool_dir

    ring = path or default_spool_dir() / "keys"
    return SpoolKeys.load(ring, create=False) if ring.exists() else None


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith((PREFIX, OLD_PREFIX))


def _seal_value(keys: Sealer, value: str, field: str, doc: dict[str, Any]) -> str:
    sealed = keys.seal(value.encode(), _ctx(field, doc))
    data = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    return f"{PREFIX}{keys.key_id(sealed)}:{data}"


def _open_value(keys: Sealer, value: str, field: str, doc: dict[str, Any]) -> str:
    _, kid, data = value.split(":", 2)
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except ValueError:
        raise SealedLinesError(f"{field}: a damaged sealed value") from None
    if keys.key_id(raw) != kid:  # the id shown is the one that sealed it, or it was edited
        raise SealedLinesError(f"{field}: a sealed value names key {kid}, not its own")
    ctx = _ctx if value.startswith(PREFIX) else _old_ctx
    return keys.open(raw, ctx(field, doc)).decode()


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
    """Every event of ``path`` opened (old plain lines and sealed ones); a
    line that is not an event (cut short by a crash) is skipped, with a warning."""
    for n, doc in _docs(path):
        if isinstance(doc, bytes):
            continue
        try:
            yield open_doc(doc, keys)
        except MailsfluxError as exc:
            raise SealedLinesError(f"{exc}", file=str(path), line=n) from None


#: (file, line) already warned about: serve sweeps hourly, and says it once.
_warned: set[tuple[str, int]] = set()


def _docs(path: Path) -> Iterator[tuple[int, dict[str, Any] | bytes]]:
    """Each line's event, or its bytes when it is not one (a write cut short
    by a crash or a full disk, a stray byte): such a line is kept as it is
    by every rewrite, and named once on stderr, rather than stopping every
    reader, the retention sweep or an erasure."""
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
            doc = None
        if not isinstance(doc, dict):
            if (str(path), n) not in _warned:
                _warned.add((str(path), n))
                print(
                    f"mailsflux: warning: {path}:{n}: not a JSON event (kept as it is)",
                    file=sys.stderr,
                )
            yield n, line
            continue
        yield n, doc


@contextlib.contextmanager
def _holding(path: Path) -> Iterator[None]:
    """``path``'s lock, which writers take for each line: what is read under
    it and then replaced misses no line appended meanwhile. The lock is the
    file's: once it is held, the file must still be the one at ``path`` (a
    rewriter that got the lock first may have replaced it, and a writer may
    be appending to the new one under its lock): if not, take the new one's."""
    while True:
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not _replaced(fd, path):
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                return
        finally:
            os.close(fd)


def rewrite(path: Path, docs: list[dict[str, Any] | bytes]) -> None:
    """Replace ``path`` whole (0600) with ``docs``, one a line, bytes as they
    are (hold its lock). The new file is fsynced before it takes the old one's
    place: a crash leaves one or the other."""
    data = b"".join(d + b"\n" if isinstance(d, bytes) else _enc.encode(d) + b"\n" for d in docs)
    replace_whole(path, data, sync=True)


def reseal(path: Path, keys: Sealer) -> int:
    """Seal every line of ``path`` again under the newest key (plain lines too);
    returns how many lines. A running writer waits for the file's lock,
    then appends to the new file."""
    with _holding(path):
        lines = list(_docs(path))
        for n, d in lines:
            if not isinstance(d, bytes):
                try:
                    seal_doc(open_doc(d, keys), keys)
                except MailsfluxError as exc:
                    raise SealedLinesError(f"{exc}", file=str(path), line=n) from None
        rewrite(path, [d for _, d in lines])
    return len(lines)


def sweep(path: Path, *, events_before: float, recipients_before: float) -> dict[str, int]:
    """Retention for one file: lines older than ``events_before`` go, the
    personal fields of lines older than ``recipients_before`` go. No key is
    needed: sealed values are dropped, not opened."""
    with _holding(path):
        return _sweep(path, events_before, recipients_before)


def _sweep(path: Path, events_before: float, recipients_before: float) -> dict[str, int]:
    kept: list[dict[str, Any] | bytes] = []
    deleted = scrubbed = unreadable = 0
    for _, doc in _docs(path):
        if isinstance(doc, bytes):
            unreadable += 1
            kept.append(doc)
            continue
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
    counts = {
        "events_file_deleted": deleted,
        "events_file_anonymised": scrubbed,
        "events_file_unreadable_lines": unreadable,
    }
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
        lines = list(_docs(path))
        docs = [d for _, d in lines]
        for n, doc in lines:
            if isinstance(doc, bytes):
                continue
            try:
                open_doc(doc, keys)
            except MailsfluxError as exc:
                raise SealedLinesError(f"{exc}", file=str(path), line=n) from None
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
            if keys is not None:
                docs = [seal_doc(d, keys) if isinstance(d, dict) else d for d in docs]
            rewrite(path, docs)
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
        self._checked = False

    def _open(self) -> int:
        return os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)

    def _after_cut(self, out: bytes) -> bytes:
        """``out`` on a line of its own: a file whose last line was cut short
        (a crash mid-write) would otherwise swallow the next event into it."""
        if self._checked:
            return out
        self._checked = True
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            return b"\n" + out
        return out

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        out = data
        if self._keys is not None:
            lines = [encode(_dec.decode(x), self._keys) for x in data.splitlines() if x.strip()]
            out = b"".join(lines)
        while True:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            if not _replaced(self._fd, self._path):
                break
            # Replaced (swept, resealed) while unlocked, perhaps more than
            # once: closing drops the old file's lock; the new one's is taken.
            os.close(self._fd)
            self._fd = self._open()
            self._checked = False
        try:
            os.write(self._fd, self._after_cut(out))
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def _replaced(fd: int, path: Path) -> bool:
    """Whether ``fd`` is no longer the file at ``path`` (replaced or removed)."""
    try:
        held, now = os.fstat(fd), path.stat()
    except FileNotFoundError:
        return True
    return (held.st_ino, held.st_dev) != (now.st_ino, now.st_dev)
