"""Type stub for the compiled message assembly (core/mailsflux/compose/_assemble.pyx)."""

from collections.abc import Callable, Sequence
from typing import Any

from mailsflux.compose._mimebuild import MessageBuilder
from mailsflux.compose._template import Template
from mailsflux.errors import DKIMError, MailsfluxError
from mailsflux.tracking.tracker import Tracker
from mailsflux.types import Recipient, RenderedMessage

class Assembler:
    def __init__(
        self,
        *,
        subject: Template,
        sender: Template | None,
        text: Template | None,
        html: Template | None,
        builder: MessageBuilder,
        name_column: str,
        id_domain: str,
        job: str,
        tracker: Tracker | None = None,
        clicks: bool = False,
        opens: bool = False,
        text_links: bool = False,
        preferences: bool = False,
        unsubscribe_mailto: str | None = None,
        unsubscribe: Callable[[dict[str, Any], int, str], str | None] | None = None,
        unsubscribe_static: str | None = None,
    ) -> None: ...
    def message_id(self, token: str, row: int) -> str:
        """A message's Message-ID (without its angle brackets)."""
    def tracked_unsubscribe(self, message_id: str, recipient: str) -> tuple[str, str]:
        """The one-click URL and the List-Unsubscribe value, with one token."""
    def compose_many(
        self,
        rows: Sequence[tuple[Recipient, str]],
        clock: Callable[[], float],
        sign_many: Callable[[list[tuple[bytes, int]]], list[bytes | DKIMError]] | None,
        verp: Callable[[str, str, str], str] | None,
        errors: list[tuple[int, MailsfluxError]] | None = None,
    ) -> list[RenderedMessage | MailsfluxError]:
        """Each (row, token) composed, in order: its message or the error that
        refused it; with ``errors``, only the messages, each refused row's
        (index, error) appended to ``errors``."""
