"""Addresses on a terminal or in a log are masked by default: ``j***@example.com``.

The CLI wraps its stdout and stderr once (:func:`install`), so every line a
command, the engine, the server or a listener prints passes through one
filter, whatever printed it: a problem line, a summary, a note, an error.
An operator at a terminal who needs the whole address asks for it with
``mailsflux --show-addresses COMMAND`` (or ``MAILSFLUX_SHOW_ADDRESSES=1``,
which worker processes inherit). Commands whose output is the data asked
for (``privacy export``, ``suppression export``) write their stdout as is.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import IO, Any, cast

SHOW_ENV = "MAILSFLUX_SHOW_ADDRESSES"

# What an address looks like in running text (and in JSON: quotes end it).
ADDRESS = re.compile(r"""[^\s:;()<>,'"\[\]{}=/\\]+@[^\s:;()<>,'"\[\]{}=/\\@]+""")
# What is left as it is, though it looks like an address: a Message-ID after
# its name (a header, a JSON field ``"message_id": "..."``, a ``queue show``
# line ``message_id  ...``): it names a message, not a person, and a masked
# one no longer finds the message in a mail log.
_MESSAGE_ID = (
    r"""\b(?i:message[-_ ]?id|in-reply-to|references)"""
    r"""["']?[ \t]*[:=]?[ \t]*["']?<?[^\s<>"',]*>?"""
)
# A URL's user information (``smtp://user:secret@host``): all of it goes, a
# password's first character too.
_USERINFO = r"""(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@'"<>]+@"""
_TEXT = re.compile(f"(?P<keep>{_MESSAGE_ID})|{_USERINFO}|(?P<address>{ADDRESS.pattern})")


def mask_address(address: str) -> str:
    """``john@example.com`` -> ``j***@example.com`` (the domain stays: it is
    what an operator acts on, and it names no one)."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address[:1] + "***"
    if local.strip("*") == "":
        return address  # already masked (a relay URL's ``user:***@host``)
    return f"{local[:1]}***@{domain}"


def mask_text(text: str) -> str:
    """``text`` with every address in it masked (Message-IDs left whole, a
    URL's user and password replaced by ``***``)."""
    return _TEXT.sub(_mask_match, text) if "@" in text else text


def _mask_match(m: re.Match[str]) -> str:
    if m.group("keep") is not None:
        return m.group()
    if m.group("scheme") is not None:
        return f"{m.group('scheme')}***@"
    return mask_address(m.group())


def log_text(text: str) -> str:
    """A log line as it may be printed: masked unless whole addresses were
    asked for (for an embedding application's stderr, which :func:`install`
    does not wrap)."""
    return text if showing() else mask_text(text)


def showing() -> bool:
    """Whether addresses are shown whole (asked for explicitly)."""
    return os.environ.get(SHOW_ENV) == "1"


class _MaskRecords(logging.Filter):
    """A log record's text with its addresses masked (an exception's too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not showing():
            record.msg = mask_text(record.getMessage())
            record.args = None
            # The exception stays on the record (an embedding application's
            # handlers may want its type or report it elsewhere); its text,
            # which :class:`logging.Formatter` prints instead of formatting
            # the exception again, is masked.
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
            if record.stack_info:
                record.stack_info = mask_text(record.stack_info)
        return True


def logger(name: str) -> logging.Logger:
    """The logger ``name``, its records masked wherever they are handled
    (the CLI's stderr or an embedding application's handlers)."""
    out = logging.getLogger(name)
    if not any(isinstance(f, _MaskRecords) for f in out.filters):
        out.addFilter(_MaskRecords())
    return out


class _Masking:
    """A text stream whose written text has its addresses masked; everything
    else (``buffer``, ``fileno``, ``isatty``, ...) is the stream's own."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(mask_text(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install(*, show: bool, stdout: bool = True) -> None:
    """Mask this process's stderr (and stdout unless ``stdout`` is False);
    ``show``: leave both whole, and tell child processes so."""
    if show:
        os.environ[SHOW_ENV] = "1"
    if show or showing():
        return
    if not isinstance(sys.stderr, _Masking):
        sys.stderr = cast(IO[str], _Masking(sys.stderr))
    if stdout and not isinstance(sys.stdout, _Masking):
        sys.stdout = cast(IO[str], _Masking(sys.stdout))
