"""Type stub for the compiled good-row path of the reader (core/mailsflux/jobs/_rows.pyx)."""

from collections.abc import Callable, Sequence
from typing import Any

from mailsflux.types import Recipient

class RowTaker:
    def __init__(
        self,
        cols: Sequence[str],
        email_column: str,
        add: Callable[[str], bool],
        parse: Callable[[str], Any],
        address_error: type[BaseException],
        recipient: type[Recipient],
    ) -> None: ...
    def note(self, fields: list[str]) -> bool:
        """Another worker's row for the duplicate check: True when settled
        here (its address added, or a row the check skips); False when the
        reader's own checks must decide."""
    def take(self, fields: list[str], row: int) -> Recipient | None:
        """The row's Recipient, its address added to the duplicate set; or
        None, the row untouched, when it is not plainly good."""
