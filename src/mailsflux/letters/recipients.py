"""A letter job's recipient CSV: merge variables plus a postal address a row.

Streamed like the email recipients; a row whose address does not pass is
one :class:`Problem` (``file:line: field X: why; row skipped``) and the
rest go on.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import msgspec

from mailsflux.errors import RecipientError
from mailsflux.jobs.recipients import bad_utf8, open_csv
from mailsflux.letters.address import AddressProblem, PostalAddress, check_address
from mailsflux.letters.jobfile import AddressColumns
from mailsflux.types import Problem


class LetterRecipient(msgspec.Struct, frozen=True, kw_only=True):
    #: What status and events call the letter (the id column, else ``row-N``).
    ref: str
    row: int
    address: PostalAddress
    vars: dict[str, str]


def read_recipients(
    path: Path, columns: AddressColumns, *, id_column: str = ""
) -> Iterator[LetterRecipient | Problem]:
    try:
        fh = open_csv(path)
    except OSError as exc:
        raise RecipientError(
            f"cannot read recipient file: {exc.strerror}", file=str(path)
        ) from None
    with fh:
        reader = csv.reader(fh, strict=True)
        try:
            header = [c.strip() for c in next(reader)]
        except (StopIteration, csv.Error):
            raise RecipientError("no header row", file=str(path), line=1) from None
        if any(bad_utf8(c) for c in header):
            raise RecipientError("header row is not valid UTF-8", file=str(path), line=1)
        for need in (columns.country_code, id_column):
            if need and need not in header:
                raise RecipientError(
                    f"header row has no {need!r} column", file=str(path), line=1, field=need
                )
        seen: set[str] = set()
        start = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Problem(f"{path}:{start}", f"malformed CSV: {exc}; row skipped")
                start = reader.line_num + 1
                continue
            row, start = start, reader.line_num + 1
            if not any(f.strip() for f in fields):
                continue
            where = f"{path}:{row}"
            if bad_utf8("".join(fields)):
                yield Problem(where, "row is not valid UTF-8; row skipped")
                continue
            values = dict(zip(header, fields, strict=False))
            ref = values.get(id_column, "").strip() if id_column else f"row-{row}"
            if not ref:
                yield Problem(where, f"field {id_column}: missing; row skipped")
                continue
            if ref in seen:
                yield Problem(where, f"duplicate {id_column} {ref}; row skipped", "warning")
                continue
            try:
                address = check_address(values, columns)
            except AddressProblem as exc:
                yield Problem(where, f"field {exc.field}: {exc.message}; row skipped")
                continue
            seen.add(ref)
            yield LetterRecipient(ref=ref, row=row, address=address, vars=values)


#: An address given field by field (the HTTP API): the library's own names.
FIELD_NAMES = AddressColumns(
    name="name",
    company_name="company_name",
    street_address="street_address",
    city="city",
    city_area="city_area",
    country_area="country_area",
    postal_code="postal_code",
    sorting_code="sorting_code",
    country_code="country_code",
)


def recipient_of(
    where: str, row: int, ref: str, address: dict[str, str], data: dict[str, str]
) -> LetterRecipient | Problem:
    """One recipient given as fields (``where`` names it in a problem)."""
    try:
        checked = check_address(address, FIELD_NAMES)
    except AddressProblem as exc:
        return Problem(where, f"field address.{exc.field}: {exc.message}; skipped")
    return LetterRecipient(ref=ref, row=row, address=checked, vars=data)
