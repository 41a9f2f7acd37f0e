"""The print-house file drop: PDFs plus a manifest CSV in a folder.

How print shops take work: each letter's PDF (``LETTER_ID.pdf``), and a
line for it in ``manifest.csv`` with the address fields the franking and
sorting machines need. The print house reports back in ``status.csv``
(``letter_id,status,time[,tracking_number]``, one line per event, e.g.
from its own export); a letter whose PDF is still in the folder has not
been collected and can be cancelled (its PDF deleted, a line in
``cancelled.csv``).

Every file is written whole (a temporary name, then a rename) or appended
one line at a time, so a print house polling the folder never reads half.
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

import msgspec

from mailsflux.errors import CarrierError
from mailsflux.jobs.recipients import bad_utf8
from mailsflux.letters.address import FIELDS
from mailsflux.letters.carrier import ORDER, Status, Submission, Update, carrier_time

MANIFEST = "manifest.csv"
#: The letter, then the address in the library's fields (what sorting needs).
MANIFEST_COLUMNS = ("letter_id", "file", "paper", "mail_class", "color", *FIELDS)


class FileDrop:
    name = "file"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: tuple[tuple[int, int], dict[str, list[Update]]] | None = None
        self._problems: list[tuple[str, str]] = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CarrierError(
                f"cannot create the drop folder: {exc.strerror}", file=str(folder)
            ) from None

    def submit(self, s: Submission) -> str:
        pdf = self.folder / f"{s.letter_id}.pdf"
        tmp = pdf.with_suffix(".pdf.part")
        head = (s.letter_id, pdf.name, s.paper, s.mail_class, "yes" if s.color else "no")
        row = (*head, *(getattr(s.address, f) for f in FIELDS))
        try:
            with tmp.open("wb") as f:
                f.write(s.pdf)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(pdf)
            _append(self.folder / MANIFEST, MANIFEST_COLUMNS, row)
        except OSError as exc:
            raise CarrierError(
                f"cannot write to the drop folder: {exc.strerror}", file=str(pdf)
            ) from None
        return s.letter_id

    def status(self, carrier_id: str) -> list[Update]:
        updates = [Update(status="submitted", time=_mtime(self.folder / MANIFEST))]
        updates += self._reports().get(carrier_id, [])
        if (self.folder / "cancelled.csv").exists() and carrier_id in _column(
            self.folder / "cancelled.csv"
        ):
            updates.append(Update(status="cancelled", time=_mtime(self.folder / "cancelled.csv")))
        return updates

    def take_problems(self) -> list[tuple[str, str]]:
        """The bad lines of ``status.csv`` (``file:line``, why) found since
        last asked, each once per version of the file."""
        out, self._problems = self._problems, []
        return out

    def _reports(self) -> dict[str, list[Update]]:
        """``status.csv`` by letter id, read once per version of the file.

        Read as bytes and decoded line by line: a line that is not UTF-8, has
        an unknown status or a time that is neither Unix seconds (or
        milliseconds) nor ISO 8601 is skipped and reported, once; the other
        lines count."""
        path = self.folder / "status.csv"
        try:
            st = path.stat()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CarrierError(f"cannot read: {exc.strerror}", file=str(path)) from None
        version = (st.st_mtime_ns, st.st_size)
        if self._cache is not None and self._cache[0] == version:
            return self._cache[1]
        try:
            text = path.read_bytes().decode("utf-8-sig", "surrogateescape")
        except OSError as exc:
            raise CarrierError(f"cannot read: {exc.strerror}", file=str(path)) from None
        by_id: dict[str, list[Update]] = {}
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [h.strip() for h in next(reader, [])]
        start = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self._problems.append((f"{path}:{start}", f"malformed CSV: {exc}; line skipped"))
                start = reader.line_num + 1
                continue
            n, start = start, reader.line_num + 1
            if not any(f.strip() for f in fields):
                continue
            why, update, letter_id = _report_line(dict(zip(header, fields, strict=False)), path)
            if why:
                self._problems.append((f"{path}:{n}", f"{why}; line skipped"))
            elif update is not None:
                by_id.setdefault(letter_id, []).append(update)
        self._cache = (version, by_id)
        return by_id

    def cancel(self, carrier_id: str) -> bool:
        pdf = self.folder / f"{carrier_id}.pdf"
        try:
            pdf.unlink()
        except FileNotFoundError:
            return False  # collected: printed or on its way
        _append(
            self.folder / "cancelled.csv", ("letter_id", "time"), (carrier_id, str(time.time()))
        )
        return True


def _report_line(rec: dict[str, str], path: Path) -> tuple[str, Update | None, str]:
    """One ``status.csv`` line: (why it is bad, or ""), its update, its letter id."""
    joined = "".join(rec.values())
    if bad_utf8(joined):
        return "not valid UTF-8", None, ""
    letter_id = (rec.get("letter_id") or "").strip()
    status = (rec.get("status") or "").strip()
    if not letter_id:
        return "field letter_id: missing", None, ""
    if status not in ORDER:
        return f"field status: unknown {status[:40]!r}", None, ""
    raw = (rec.get("time") or "").strip()
    try:
        at = carrier_time(raw) if raw else _mtime(path)
    except ValueError:
        return "field time: not Unix seconds, milliseconds or ISO 8601", None, ""
    tracking = (rec.get("tracking_number") or "").strip()
    return "", Update(status=_status(status), time=at, tracking_number=tracking), letter_id


def _status(s: str) -> Status:
    status: Status = msgspec.convert(s, Status)  # checked against ORDER by the caller
    return status


def _append(path: Path, header: tuple[str, ...], row: tuple[str, ...]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if not path.exists():
        w.writerow(header)
    w.writerow(row)
    # One write() to an O_APPEND file: a reader sees whole lines only.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, buf.getvalue().encode())
    finally:
        os.close(fd)


def _column(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as f:
        return {r.get("letter_id", "") for r in csv.DictReader(f)}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()
