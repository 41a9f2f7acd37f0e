"""``multipart/form-data`` read as it arrives: small fields in memory, the
recipients file straight to disk (never held whole), both with limits."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import msgspec
from python_multipart.multipart import MultipartParser, parse_options_header

from mailsflux.errors import ConfigError
from mailsflux.gateway.sealed import Spill

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

#: The form field that carries the file; the only other fields a form may have.
FILE_FIELD = "recipients"
SMALL_FIELDS = ("template", "name")


class TooLarge(Exception):
    """A field or the file is over its limit."""


class BadForm(ValueError):
    """A form this endpoint does not take (or one cut off)."""


class Upload:
    """What a form held: its small fields, the file (spilled to disk
    encrypted), and the SHA-256 of everything (idempotency)."""

    def __init__(self) -> None:
        self.fields: dict[str, bytearray] = {}
        self.file: Spill | None = None
        self.file_size = 0
        self.digest = hashlib.sha256()


def boundary_of(content_type: bytes) -> bytes | None:
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        return None
    b = params.get(b"boundary")
    return b if b else None


async def read_form(
    receive: Receive, boundary: bytes, file_path: Path, *, max_field: int, max_file: int
) -> Upload:
    """Read the request body as a form; the ``recipients`` part goes to
    ``file_path``, encrypted (:class:`~mailsflux.gateway.sealed.Spill`)."""
    up = Upload()
    state: dict[str, Any] = {"name": "", "field": b"", "value": b"", "out": None}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        if state["field"].lower() == b"content-disposition":
            _, params = parse_options_header(state["value"])
            state["name"] = params.get(b"name", b"").decode("utf-8", "replace")
        state["field"] = state["value"] = b""

    def on_headers_finished() -> None:
        name = state["name"]
        up.digest.update(name.encode() + b"\x00")
        if name == FILE_FIELD and up.file is None:
            up.file = state["out"] = Spill(file_path)
        elif name in SMALL_FIELDS and name not in up.fields:
            up.fields[name] = bytearray()
        else:
            raise BadForm(f"unexpected or repeated form field {name!r}")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        up.digest.update(chunk)
        if state["out"] is not None:
            up.file_size += len(chunk)
            if up.file_size > max_file:
                raise TooLarge(f"the {FILE_FIELD} file is over {max_file} bytes")
            state["out"].write(chunk)
        else:
            value = up.fields[state["name"]]
            value += chunk
            if len(value) > max_field:
                raise TooLarge(f"form field {state['name']!r} is over {max_field} bytes")

    def on_part_end() -> None:
        if state["out"] is not None:
            state["out"].close()
            state["out"] = None
        up.digest.update(b"\x00")
        state["name"] = ""

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise BadForm("the client went away before the form ended")
            parser.write(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        parser.finalize()
    finally:
        if state["out"] is not None:
            state["out"].close()
    return up


def csv_rows(spill: Spill) -> Iterator[bytes]:
    """The CSV's rows as JSON objects (its header names the fields; ``email``
    is needed). Raises ConfigError naming the file's problem."""
    with spill.open_text() as f:
        reader = csv.DictReader(f)
        try:
            if reader.fieldnames is None or "email" not in reader.fieldnames:
                raise ConfigError(
                    "the recipients CSV needs a header row with an email column",
                    field=FILE_FIELD,
                )
            for row in reader:
                row.pop(None, None)
                yield msgspec.json.encode(row)
        except (csv.Error, UnicodeDecodeError) as exc:
            why = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise ConfigError(
                f"the recipients CSV, line {reader.line_num}: {why}", field=FILE_FIELD
            ) from None


__all__ = ["FILE_FIELD", "BadForm", "TooLarge", "Upload", "boundary_of", "csv_rows", "read_form"]
