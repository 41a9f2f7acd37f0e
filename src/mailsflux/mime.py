"""MIME assembly: headers, encodings and the multipart structure of a message.

A thin re-export of the compiled :mod:`mailsflux._mimebuild`. A
:class:`MessageBuilder` encodes what every recipient shares once (static
headers, :class:`Attachment` parts, inline ``cid:`` images) and
:meth:`MessageBuilder.build` writes one message per call: RFC 2047 encoded
words for non-ASCII names and subjects, quoted-printable text parts, base64
attachments, IDNA domains, CRLF line ends and no line over 998 octets. A CR,
LF or NUL in any header value raises
:class:`~mailsflux.errors.HeaderInjectionError` naming the header.
"""

from mailsflux._mimebuild import (
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

__all__ = [
    "RESERVED",
    "Address",
    "Attachment",
    "MessageBuilder",
    "base64_lines",
    "check_name",
    "check_value",
    "crlf",
    "encode_unstructured",
    "encoded_words",
    "fold",
    "format_mailbox",
    "idna_domain",
    "parse_address",
    "quoted_printable",
    "split_mailbox",
    "text_part",
]
