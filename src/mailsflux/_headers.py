"""Header encoding: injection checks, RFC 2047 encoded words and folding.

Compiled in :mod:`mailsflux._mimebuild`; re-exported here for the modules
that import it by this name. Every header value is checked first: a CR, LF
or NUL in a value would let recipient data forge headers, so it is refused
(:class:`~mailsflux.errors.HeaderInjectionError` naming the header) instead
of being stripped.
"""

from mailsflux._mimebuild import (
    check_name,
    check_value,
    encode_unstructured,
    encoded_words,
    fold,
    format_mailbox,
)

__all__ = [
    "check_name",
    "check_value",
    "encode_unstructured",
    "encoded_words",
    "fold",
    "format_mailbox",
]
