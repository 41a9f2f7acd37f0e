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
from mailsflux.letters.address import FIELDS
from mailsflux.letters.carrier import ORDER, Status, Submission, Update

MANIFEST = "manifest.csv"
#: The letter, then the address in the library's fields (what sorting needs).
MANIFEST_COLUMNS = ("letter_id", "file", "paper", "mail_class", "color", *FIELDS)


class FileDrop:
    name = "file"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
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
        path = self.folder / "status.csv"
        updates = [Update(status="submitted", time=_mtime(self.folder / MANIFEST))]
        if path.exists():
            with path.open(newline="", encoding="utf-8") as f:
                for n, rec in enumerate(csv.DictReader(f), 2):
                    if rec.get("letter_id") != carrier_id:
                        continue
                    status = (rec.get("status") or "").strip()
                    if status not in ORDER:
                        raise CarrierError(f"unknown status {status!r}", file=str(path), line=n)
                    updates.append(
                        Update(
                            status=_status(status),
                            time=float(rec.get("time") or 0) or _mtime(path),
                            tracking_number=(rec.get("tracking_number") or "").strip(),
                        )
                    )
        if (self.folder / "cancelled.csv").exists() and carrier_id in _column(
            self.folder / "cancelled.csv"
        ):
            updates.append(Update(status="cancelled", time=_mtime(self.folder / "cancelled.csv")))
        return updates

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
    with path.open(newline="", encoding="utf-8") as f:
        return {r.get("letter_id", "") for r in csv.DictReader(f)}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()
