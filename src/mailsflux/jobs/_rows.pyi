"""Type stub for the compiled good-row path of the reader (core/mailsflux/jobs/_rows.pyx)."""

from collections.abc import Callable, Sequence
from typing import Any

from mailsflux.types import Recipient

#: What :meth:`RowTaker.take_run` stopped for: ``out`` is full.
FULL: int
#: The file has no more rows.
END: int
#: ``fields`` and ``row`` are a row for the reader's own checks.
SLOW: int

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
    def take_run(self, reader: Any, out: list[Recipient], limit: int) -> int:
        """Rows of the csv ``reader`` taken into ``out`` until it holds
        ``limit`` (FULL), the file ends (END), or a row needs the reader's
        own checks (SLOW). A csv.Error propagates with ``start`` still the
        line its row starts on."""
