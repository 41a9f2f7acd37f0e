"""Type stub for the compiled good-row path of the reader (core/mailsflux/jobs/_rows.pyx)."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mailsflux.types import Recipient

#: What :meth:`RowTaker.take_run` stopped for: ``out`` is full.
FULL: int
#: The file has no more rows.
END: int
#: ``fields`` and ``row`` are a row for the reader's own checks.
SLOW: int

class Lines:
    """The lines of a recipient file for the csv reader and for
    :meth:`RowTaker.take_run`, counted whoever read them."""

    #: Lines read from the file so far.
    count: int
    def __init__(self, source: Iterable[Any]) -> None: ...
    def __iter__(self) -> Lines: ...
    def __next__(self) -> Any: ...

def split(line: object, limit: int = -1) -> list[str] | None:
    """The csv module's row for ``line`` (excel dialect, strict) where that
    is the line cut at each comma, else None. ``limit``: the field size
    limit (-1: the csv module's)."""

class RowTaker:
    #: The line the reader's next row starts on.
    start: int
    #: The row take_run stopped at (SLOW).
    fields: list[str] | None
    row: int
    def __init__(
        self,
        cols: Sequence[str],
        email_column: str,
        add: Callable[[str], bool],
        parse: Callable[[str], Any],
        address_error: type[BaseException],
        recipient: type[Recipient],
        shard: tuple[int, int] = (0, 1),
        settled: bytearray | None = None,
    ) -> None: ...
    def is_settled(self, row: int) -> bool:
        """Whether the resumed job's bitmap marks ``row`` settled."""
    def note(self, fields: list[str]) -> bool:
        """Another worker's row for the duplicate check: True when settled
        here (its address added, or a row the check skips); False when the
        reader's own checks must decide."""
    def take(self, fields: list[str], row: int) -> Recipient | None:
        """The row's Recipient, its address added to the duplicate set; or
        None, the row untouched, when it is not plainly good."""
    def take_run(self, lines: Lines, reader: Any, out: list[Recipient], limit: int) -> int:
        """Rows of ``lines`` (split here, or read by ``reader``, a csv reader
        of ``lines``) taken into ``out`` until it holds ``limit`` (FULL), the
        file ends (END), or a row needs the reader's own checks (SLOW). A
        csv.Error propagates with ``start`` still the line its row starts
        on."""
