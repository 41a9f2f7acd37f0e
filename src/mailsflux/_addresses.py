"""Email address checks and the encodings SMTP needs.

Compiled in :mod:`mailsflux._mimebuild`; re-exported here. An address is
accepted when its local part is a dot-atom (RFC 5322 3.4.1; UTF-8 allowed per
RFC 6532, except surrogates, C1 controls and U+2028/U+2029) of at most 64
octets, and its domain a host name whose labels IDNA can encode. Quoted local
parts are refused on purpose: receivers mishandle them and no list sender
needs them. ``Address.smtputf8`` is true only for a non-ASCII local part.
"""

from mailsflux._mimebuild import Address, idna_domain, parse_address, split_mailbox

__all__ = ["Address", "idna_domain", "parse_address", "split_mailbox"]
