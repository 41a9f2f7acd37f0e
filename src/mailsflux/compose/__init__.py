"""Composing: Mustache templates, MIME assembly, addresses and headers.

The first stage a message passes: a :class:`Template` compiles once (syntax
errors raise :class:`~mailsflux.errors.TemplateSyntaxError` with the tag's
line and column) and renders per recipient into a C buffer; a
:class:`MessageBuilder` encodes what every recipient shares once (static
headers, :class:`Attachment` parts, inline ``cid:`` images) and writes one
message per :meth:`MessageBuilder.build`: RFC 2047 encoded words, quoted-
printable text parts, base64 attachments, IDNA domains, CRLF line ends, no
line over 998 octets. A CR, LF or NUL in any header value raises
:class:`~mailsflux.errors.HeaderInjectionError` naming the header.

An :class:`Assembler` makes a job's messages from such parts, a batch at a
time: the Message-ID, the templates rendered, links tracked (by the
tracker's rewriter, which it is given), the MIME message built, then signed
(by the signer it is given). The jobs stage's composer checks a job and makes
one.

All three are compiled (``core/mailsflux/compose/``).
"""

from mailsflux.compose._assemble import Assembler
from mailsflux.compose._mimebuild import (
    RESERVED,
    Address,
    Attachment,
    MessageBuilder,
    base64_lines,
    check_name,
    check_value,
    crlf,
    encode_unstructured,
    encoded_words,
    fold,
    format_mailbox,
    idna_domain,
    parse_address,
    quoted_printable,
    split_mailbox,
    text_part,
)
from mailsflux.compose._template import Template, render
from mailsflux.compose.addresses import normalize_address

__all__ = [
    "RESERVED",
    "Address",
    "Assembler",
    "Attachment",
    "MessageBuilder",
    "Template",
    "base64_lines",
    "check_name",
    "check_value",
    "crlf",
    "encode_unstructured",
    "encoded_words",
    "fold",
    "format_mailbox",
    "idna_domain",
    "normalize_address",
    "parse_address",
    "quoted_printable",
    "render",
    "split_mailbox",
    "text_part",
]
