"""Compiled MIME assembly: headers, encodings and multipart structure.

One message is written into one growable C buffer (``_Out``) and copied
into a ``bytes`` object once.  What it produces:

- header fields folded near 78 columns, every line at most 998 octets, CRLF
  everywhere; non-ASCII (or otherwise unsafe) display names, subjects and
  custom header values as RFC 2047 base64 encoded words, split between
  characters, never inside a multi-byte one, on lines of at most 76
  characters (RFC 2047 section 2);
- addresses checked (dot-atom local part, UTF-8 allowed per RFC 6532) with
  the domain in IDNA form; ``smtputf8`` set only for a non-ASCII local part;
- text parts as 7bit when that is safe, else quoted-printable (RFC 2045
  6.7) with every line end normalised to CRLF; attachments and inline
  images as base64 in 76-character lines, encoded once per job;
- multipart/alternative (text, then HTML), multipart/related (the HTML plus
  its ``cid:`` images, RFC 2387) and multipart/mixed (the body, then the
  attachments), nested as the parts present require.

A CR, LF or NUL in any header value raises :class:`HeaderInjectionError`
naming the header (``field``).

The hot loops (quoted-printable, base64, CRLF copy, header words) index raw
C pointers, which Cython never bounds-checks, so no boundscheck/wraparound
directive is needed anywhere; instead each writer reserves its worst case
up front, with the bound stated beside the ``_reserve`` call.

Boundaries are ``=_mf`` + a letter + a caller token.  They can never occur
in the parts: quoted-printable never writes ``=_`` (``=`` always starts an
escape or a soft line break), base64 has no ``_``, a 7bit part holding
``=_mf`` is sent quoted-printable instead, and the three kinds differ in
their fifth character, so none is a prefix of another (RFC 2046 5.1.1).
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.string cimport memchr, memcpy

from mailsflux._buffer cimport buf_byte as _putc
from mailsflux._buffer cimport buf_reserve as _reserve
from mailsflux._base64 cimport b64_block, b64_write
from mailsflux._chars cimport is_atext
from mailsflux._buffer cimport buf_write as _put
from mailsflux._simd cimport line_end_skip16, unplain_skip16, uri_skip16

import re
from unicodedata import normalize as _nfc
from urllib.parse import quote as _url_quote

from mailsflux._idna import to_ascii as _to_ascii

from mailsflux.errors import (
    AddressError,
    ConfigError,
    HeaderError,
    HeaderInjectionError,
)

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX
    bint PyUnicode_IS_ASCII(object o)
    unsigned char* PyUnicode_1BYTE_DATA(object o)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)


# RFC 5322 2.1.1: lines SHOULD be at most 78 characters (CRLF excluded).
cdef Py_ssize_t FOLD_AT = 78
# RFC 5322 2.1.1: lines MUST be at most 998 octets (CRLF excluded).
cdef Py_ssize_t MAX_LINE = 998
# RFC 2047 2: an encoded word is at most 75 characters, and a header line
# holding one at most 76 (stricter than FOLD_AT).
cdef Py_ssize_t MAX_WORD = 75
cdef Py_ssize_t MAX_WORD_LINE = 76
# The shortest word that holds any character: "=?utf-8?b?" + the 8 base64
# characters of a 4-byte UTF-8 sequence + "?=".
cdef Py_ssize_t MIN_WORD = 20
# Longest header name accepted, so "Name: " + one encoded word stays far
# below MAX_LINE.
cdef Py_ssize_t MAX_NAME = 200
# Longest single List-Unsubscribe URI (a URI cannot be folded).
cdef Py_ssize_t MAX_URI = 900
# Longest boundary token (RFC 2046: boundaries are at most 70 characters).
cdef Py_ssize_t MAX_TOKEN = 64

cdef const char* HEX = b"0123456789ABCDEF"

# Headers the builder writes itself; a job may not add them again.
RESERVED = frozenset(
    (
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "reply-to",
        "dkim-signature",
        "list-unsubscribe",
        "list-unsubscribe-post",
    )
)

# RFC 5322 3.2.3 specials that force a display name into quotes.
cdef str SPECIALS = '()<>[]:;@\\,."'
# 1 for each byte of SPECIALS, 0 for every other byte.
cdef unsigned char SPECIAL[256]

# Byte classes for the quoted-printable encoder (RFC 2045 6.7):
# 0 literal, 1 always =XX, 2 space/tab (=XX before a line end), 3 CR or LF.
cdef unsigned char QP_CLASS[256]
# Kept as they are in a URI: unreserved, reserved and "%" (escapes already made).
_URI_SAFE = "!#$%&'()*+,/:;=?@[]~"
#: What quote(u, safe=_URI_SAFE) leaves as it is, besides ASCII letters and
#: digits: quote()'s own always-safe marks, and _URI_SAFE. The one spelling
#: of it: the table below and _URI_UNCHANGED are made from it.
_URI_KEPT = "_.-~" + _URI_SAFE
# 1 for what _URI_UNCHANGED takes (quote() leaves it as it is): ASCII letters
# and digits and _URI_KEPT; 0 for every other byte.
cdef unsigned char URI_OK[256]
# What _check_token refuses in a Date, a Message-ID and a boundary token
# (letters, digits and "_-." only: bchars of RFC 2046 5.1.1 that need no
# quoting in Content-Type): 1 for each control, each byte above 0x7E, and
# each of the field's own marks.
_ID_MARKS = " <>"
_BOUNDARY_MARKS = " !\"#$%&'()*+,/:;<=>?@[\\]^`{|}~"
cdef unsigned char REFUSE_DATE[256]
cdef unsigned char REFUSE_ID[256]
cdef unsigned char REFUSE_BOUNDARY[256]


cdef int _init_tables() except -1:
    cdef int c
    cdef bytes uri_marks = _URI_KEPT.encode("ascii")
    for c in range(256):
        SPECIAL[c] = c < 128 and chr(c) in SPECIALS
        REFUSE_DATE[c] = c < 32 or c > 126
        REFUSE_ID[c] = REFUSE_DATE[c] or chr(c) in _ID_MARKS
        REFUSE_BOUNDARY[c] = REFUSE_DATE[c] or chr(c) in _BOUNDARY_MARKS
        URI_OK[c] = (97 <= c <= 122 or 65 <= c <= 90 or 48 <= c <= 57
                     or (c != 0 and memchr(<const char*>uri_marks, c, len(uri_marks)) != NULL))
        if c == 13 or c == 10:
            QP_CLASS[c] = 3
        elif c == 32 or c == 9:
            QP_CLASS[c] = 2
        elif 33 <= c <= 126 and c != 61:
            QP_CLASS[c] = 0
        else:
            QP_CLASS[c] = 1


_init_tables()


# --------------------------------------------------------------------------
# Output buffer


cdef inline int _put_bytes(_Out* o, bytes b) except -1:
    return _put(o, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


cdef inline int _crlf(_Out* o) except -1:
    return _put_bytes(o, b"\r\n")


cdef bytes _take(_Out* o):
    """The buffer's contents as bytes; frees the buffer."""
    cdef bytes out
    try:
        out = PyBytes_FromStringAndSize(o.data, o.len)
    finally:
        PyMem_Free(o.data)
        o.data = NULL
        o.len = o.cap = 0
    return out


cdef str _take_str(_Out* o):
    return _take(o).decode("utf-8")


# --------------------------------------------------------------------------
# Checks


cdef int _check_value(str name, str value) except -1:
    """Refuse a header value holding CR, LF or NUL, naming the header."""
    if "\r" in value or "\n" in value or "\x00" in value:
        raise HeaderInjectionError(
            f"header {name} holds a CR, LF or NUL character; refused", field=name
        )
    return 0


cdef int _check_name(str name) except -1:
    """RFC 5322 2.2: printable US-ASCII except colon (and at most MAX_NAME long)."""
    cdef Py_UCS4 ch
    if not name or len(name) > MAX_NAME:
        raise HeaderError(f"invalid header name {name!r}", field=name)
    for ch in name:
        if ch < 33 or ch > 126 or ch == u":":
            raise HeaderError(f"invalid header name {name!r}", field=name)
    return 0


cdef const unsigned char* _utf8(str value, str field, Py_ssize_t* n) except NULL:
    """UTF-8 of ``value`` (cached in the str); a lone surrogate is a HeaderError."""
    cdef const char* s
    try:
        s = PyUnicode_AsUTF8AndSize(value, n)
    except UnicodeEncodeError:
        raise HeaderError(
            f"header {field} holds a character that cannot be encoded (a lone surrogate)",
            field=field,
        ) from None
    return <const unsigned char*>s


# --------------------------------------------------------------------------
# Header encoding


cdef inline Py_ssize_t _u8len(unsigned char lead) noexcept nogil:
    """Length of the UTF-8 sequence starting with ``lead``."""
    if lead < 0xC0:
        return 1
    if lead < 0xE0:
        return 2
    if lead < 0xF0:
        return 3
    return 4


cdef int _w_b64(_Out* o, const unsigned char* s, Py_ssize_t n) except -1:
    """Append base64 of ``s[:n]`` (one unbroken run)."""
    # every 3 input bytes (or fewer, at the end) -> 4 characters
    _reserve(o, 4 * ((n + 2) // 3))
    o.len += b64_write(s, n, o.data + o.len)
    return 0


cdef int _w_b64_lines(_Out* o, const unsigned char* s, Py_ssize_t n) except -1:
    """Append base64 of ``s[:n]`` in lines of 76 characters, each ending in CRLF."""
    cdef Py_ssize_t i = 0, j
    cdef char* w
    # 57 input bytes -> one line of 76 characters + CRLF
    _reserve(o, 78 * ((n + 56) // 57))
    w = o.data + o.len
    while i < n:
        j = 0
        while j < 57 and i < n:
            b64_block(s + i, n - i if n - i < 3 else 3, w)
            w += 4
            i += 3
            j += 3
        w[0] = 13
        w[1] = 10
        w += 2
    o.len = w - o.data
    return 0


cdef int _w_words(_Out* o, const unsigned char* s, Py_ssize_t n, Py_ssize_t first_room) except -1:
    """Append ``s[:n]`` (UTF-8) as RFC 2047 encoded words joined by CRLF SPACE.

    A word never splits a multi-byte character and is at most MAX_WORD long;
    the first may take ``first_room`` columns (but at least one character).
    """
    cdef Py_ssize_t room = first_room if first_room > 20 else 20
    if room > MAX_WORD:
        room = MAX_WORD
    cdef Py_ssize_t start = 0, i = 0, cl
    cdef bint first = True
    while i < n:
        cl = _u8len(s[i])
        if cl > n - i:
            cl = n - i
        # "=?utf-8?b?" + base64 of the chunk with this character + "?="
        if i > start and 12 + 4 * ((i + cl - start + 2) // 3) > room:
            if not first:
                _put_bytes(o, b"\r\n ")
            _put_bytes(o, b"=?utf-8?b?")
            _w_b64(o, s + start, i - start)
            _put_bytes(o, b"?=")
            first = False
            start = i
            room = MAX_WORD
        i += cl
    if i > start:
        if not first:
            _put_bytes(o, b"\r\n ")
        _put_bytes(o, b"=?utf-8?b?")
        _w_b64(o, s + start, i - start)
        _put_bytes(o, b"?=")
    return 0


cdef int _w_words_after(_Out* o, const unsigned char* s, Py_ssize_t n, Py_ssize_t col) except -1:
    """Append `` `` + encoded words to a line already ``col`` columns long.

    The first word gets what is left of MAX_WORD_LINE; when that cannot hold
    even the shortest word (a long header name), the words start on a
    continuation line instead, so no line with a word passes 76 columns.
    """
    cdef Py_ssize_t room = MAX_WORD_LINE - col - 1
    if room < MIN_WORD:
        _put_bytes(o, b"\r\n ")
        room = MAX_WORD
    else:
        _putc(o, b" ")
    return _w_words(o, s, n, room)


cdef bint _plain_ascii(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """True when ``s`` can go out as it is: printable ASCII and spaces, no
    leading or trailing space, no double space and nothing a reader would
    take for an encoded word (``=?``)."""
    cdef Py_ssize_t i
    cdef unsigned char c, prev = 32
    if n == 0:
        return True
    if s[0] == 32 or s[n - 1] == 32:
        return False
    for i in range(n):
        c = s[i]
        if c < 32 or c > 126:
            return False
        if c == 32 and prev == 32:
            return False
        if c == 63 and prev == 61:
            return False
        prev = c
    return True


cdef Py_ssize_t _fold(_Out* o, const unsigned char* s, Py_ssize_t n, Py_ssize_t col) except -1:
    """Write `` s`` after a header's ``Name:`` (``col`` columns so far), folding
    before a space (one that follows a non-space) whenever the line would
    pass FOLD_AT.  ``o`` may be NULL to only measure.  Returns the longest
    line's length.
    """
    cdef Py_ssize_t a = 0, b, cur = col + 1, longest = 0
    cdef const unsigned char* sp
    if o is not NULL:
        _putc(o, b" ")
    while a < n:
        # b: the first space after a that follows a non-space, or n; the
        # spaces found by memchr (most values have few, a URI none).
        b = a + 1
        while b < n:
            sp = <const unsigned char*>memchr(s + b, 32, <size_t>(n - b))
            if sp == NULL:
                b = n
                break
            b = sp - s
            if s[b - 1] != 32:  # b > a >= 0
                break
            b += 1
        if a > 0 and cur + (b - a) > FOLD_AT:
            if cur > longest:
                longest = cur
            if o is not NULL:
                _crlf(o)
            cur = 0
        if o is not NULL:
            _put(o, <const char*>s + a, b - a)
        cur += b - a
        a = b
    return cur if cur > longest else longest


cdef int _w_unstructured(_Out* o, str name, str value) except -1:
    """``Name: value`` CRLF for an unstructured field (Subject, custom headers)."""
    cdef Py_ssize_t n, nn
    cdef const unsigned char* s
    cdef const unsigned char* nm
    _check_value(name, value)
    nm = _utf8(name, name, &nn)
    s = _utf8(value, name, &n)
    _put(o, <const char*>nm, nn)
    _putc(o, b":")
    if _plain_ascii(s, n) and _fold(NULL, s, n, nn + 1) <= FOLD_AT:
        _fold(o, s, n, nn + 1)
    else:
        _w_words_after(o, s, n, nn + 1)
    _crlf(o)
    return 0



@cython.boundscheck(False)  # invariant: 0 <= i < n
@cython.wraparound(False)
cdef inline bint _has_special(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """Whether ``s`` holds one of SPECIALS (RFC 5322 3.2.3): a display name
    that does goes out quoted (:func:`_quote_display`)."""
    cdef Py_ssize_t i
    for i in range(n):
        if SPECIAL[s[i]]:
            return True
    return False


cdef str _quote_display(str display):
    """``display`` as an RFC 5322 quoted string (its caller found one of
    SPECIALS in it, :func:`_has_special`)."""
    return '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'


cdef Address _w_mailbox(_Out* o, str name, str display, str address):
    """``Name: Display <local@domain>`` CRLF; returns the checked address."""
    cdef Address addr
    _check_value(name, display)
    _check_value(name, address)
    try:
        addr = _parse_address(address)
    except AddressError as exc:
        raise HeaderError(f"header {name}: {exc.message}", field=name) from None
    _w_mailbox_line(o, name, display, <const char*>PyBytes_AS_STRING(addr._utf8),
                    PyBytes_GET_SIZE(addr._utf8))
    return addr


cdef str _w_recipient(_Out* o, str name, str display, str address, bint* smtputf8,
                      bint fast=True):
    """:func:`_w_mailbox` for a message's recipient: returns the address's
    text and sets ``smtputf8``. An address that is already what
    ``_parse_address`` would make of it, plain ASCII (as the reader hands
    on most), goes out as it is, without being parsed again (``fast``)."""
    cdef Address addr
    if fast and _canonical_plain(address):
        _check_value(name, display)
        _w_mailbox_line(o, name, display, <const char*>PyUnicode_1BYTE_DATA(address),
                        len(address))
        smtputf8[0] = False
        return address
    addr = _w_mailbox(o, name, display, address)
    smtputf8[0] = addr.smtputf8
    return addr._text


cdef int _w_mailbox_line(_Out* o, str name, str display, const char* addr,
                         Py_ssize_t addr_n) except -1:
    """The line of :func:`_w_mailbox`, for a checked address's UTF-8 bytes.

    A plain ASCII display name goes out as it is (quoted when it holds
    specials); any other as encoded words, one per continuation line.
    """
    cdef Py_ssize_t n, nn, qn
    cdef const unsigned char* s
    cdef const unsigned char* q
    cdef const unsigned char* nm
    cdef bytes plain
    cdef str quoted
    cdef char line[256]
    display = display.strip()
    nm = _utf8(name, name, &nn)
    _put(o, <const char*>nm, nn)
    _putc(o, b":")
    if not display:
        _putc(o, b" ")
        _put(o, addr, addr_n)
        _crlf(o)
        return 0
    s = _utf8(display, name, &n)
    if _plain_ascii(s, n):
        q, qn = s, n
        if _has_special(s, n):  # quoted (a new string) only when it must be
            quoted = _quote_display(display)
            q = _utf8(quoted, name, &qn)
        if _fold(NULL, q, qn, nn + 1) <= FOLD_AT:
            # ``Display <addr>`` folded as one value: in a stack buffer
            # when it fits (most do), else in bytes.
            if qn + addr_n + 3 <= <Py_ssize_t>sizeof(line):
                memcpy(line, q, qn)
                memcpy(line + qn, b" <", 2)
                memcpy(line + qn + 2, addr, addr_n)
                line[qn + 2 + addr_n] = 62  # ">"
                _fold(o, <const unsigned char*>line, qn + addr_n + 3, nn + 1)
            else:
                plain = (<const char*>q)[:qn] + b" <" + addr[:addr_n] + b">"
                _fold(o, <const unsigned char*>PyBytes_AS_STRING(plain), PyBytes_GET_SIZE(plain),
                      nn + 1)
            _crlf(o)
            return 0
    _w_words_after(o, s, n, nn + 1)
    _put_bytes(o, b"\r\n <")
    _put(o, addr, addr_n)
    _put_bytes(o, b">\r\n")
    return 0


# --------------------------------------------------------------------------
# Addresses


_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


cdef class Address:
    """A checked address: ``local@domain`` with the domain in IDNA form."""

    def __init__(self, str local not None, str domain not None, bint smtputf8=False):
        self.local = local
        self.domain = domain
        self.smtputf8 = smtputf8
        self._text = local + "@" + domain
        self._utf8 = self._text.encode("utf-8")

    def __str__(self):
        return self._text

    def key(self):
        """``normalize_address(str(self))`` for an address ``parse_address``
        made, without the string taken apart again: the local part in NFC
        (an ASCII one is its own) and lower case, "@", the domain in IDNA
        form. The reader takes one of every row of a file, in every worker."""
        cdef str local = self.local
        cdef str dom
        if not local.isascii():
            local = _nfc("NFC", local)
        try:
            dom = _idna_domain(self.domain)  # parse_address's: already so
        except AddressError:
            dom = self.domain.rstrip(".").lower()
        return local.lower() + "@" + dom

    def __repr__(self):
        return f"Address({self._text!r})"

    def __eq__(self, other):
        if isinstance(other, Address):
            return self._text == (<Address>other)._text
        return NotImplemented

    def __hash__(self):
        return hash(self._text)


# IDNA 2008 encoding (UTS 46 mapping, punycode; mailsflux._idna) is pure
# Python and costs tens of us a domain, while a list holds few distinct
# domains: remember the last ones. ASCII domains never get here.
cdef dict _IDNA_CACHE = {}
cdef Py_ssize_t IDNA_CACHE_SIZE = 4096


cdef str _idna_encode(str d, str domain):
    cdef object hit = _IDNA_CACHE.get(d)
    if hit is not None:
        return <str>hit
    try:
        out = _to_ascii(d).rstrip(".")
    except ValueError as exc:  # idna.IDNAError: a UnicodeError
        raise AddressError(f"domain {domain!r} is not a valid IDNA 2008 domain: {exc}") from None
    if len(_IDNA_CACHE) >= IDNA_CACHE_SIZE:
        _IDNA_CACHE.clear()
    _IDNA_CACHE[d] = out
    return out


@cython.boundscheck(False)  # invariant: 0 <= i < n
@cython.wraparound(False)
cdef Py_ssize_t _ldh_labels(const unsigned char* s, Py_ssize_t n, bint upper, bint* ok) noexcept:
    """The number of labels of the dotted name ``s[0:n]``; ``ok[0]`` False
    unless each is 1 to 63 letters, digits and hyphens, neither starting nor
    ending with a hyphen (RFC 1034 3.5). Letters are lower case only, or
    either case with ``upper``."""
    cdef Py_ssize_t i, labels = 1, size = 0
    cdef unsigned char c, prev = 46
    ok[0] = True
    for i in range(n):
        c = s[i]
        if c == 46:
            if size == 0 or prev == 45:
                ok[0] = False
            labels += 1
            size = 0
        elif (97 <= c <= 122) or (48 <= c <= 57) or c == 45 or (upper and 65 <= c <= 90):
            if c == 45 and size == 0:
                ok[0] = False
            size += 1
            if size > 63:
                ok[0] = False
        else:
            ok[0] = False
        prev = c
    if size == 0 or prev == 45:
        ok[0] = False
    return labels


cdef str _idna_domain(str domain):
    """``domain`` lower-cased, in IDNA (xn--) form; AddressError naming the fault."""
    cdef str d = domain.strip().rstrip(".")
    cdef Py_ssize_t n, labels
    cdef bint ok
    if not d:
        raise AddressError("empty domain")
    if d.isascii():
        d = d.lower()
    else:
        # Not lower() first: UTS 46 maps case itself, and str.lower() would
        # turn a final capital sigma into a final small one (another domain).
        d = _idna_encode(d, domain)
    n = len(d)
    # Fast check of every label against _LABEL_RE; the slow path below only
    # runs to name the fault.
    if PyUnicode_IS_ASCII(d):
        labels = _ldh_labels(PyUnicode_1BYTE_DATA(d), n, False, &ok)
    else:
        labels, ok = d.count(".") + 1, False
    if labels < 2 or n > 253:
        raise AddressError(f"domain {domain!r} is not a fully qualified host name")
    if not ok:
        for label in d.split("."):
            if not _LABEL_RE.fullmatch(label):
                raise AddressError(f"domain {domain!r} has an invalid label {label!r}")
        raise AddressError(f"domain {domain!r} is invalid")  # not reached
    return d


cdef Address _parse_address(str text):
    """Check a bare ``local@domain`` address; AddressError naming the fault."""
    cdef str addr = text.strip()
    cdef str local, dom
    cdef Py_ssize_t at, size = 0
    cdef Py_UCS4 ch
    cdef bint dot = True, ok = True, ascii = True
    cdef Address a
    if not addr:
        raise AddressError("empty address")
    if "\r" in addr or "\n" in addr or "\x00" in addr:
        raise AddressError(f"address {addr!r} holds a control character")
    at = addr.rfind("@")
    if at < 0:
        raise AddressError(f"address {addr!r} has no @")
    if at == 0:
        raise AddressError(f"address {addr!r} has no local part (nothing before the @)")
    local = addr[:at]
    # Dot-atom (RFC 5322 3.4.1) over atext plus non-ASCII (RFC 6532 3.2);
    # surrogates, C1 controls, the Unicode line separators and the
    # noncharacters U+FFFE/U+FFFF are refused (as mailsflux.delivery.smtp does).
    for ch in local:
        if ch == u".":
            if dot:
                ok = False
            dot = True
            size += 1
            continue
        dot = False
        if ch < 128:
            size += 1
            if not is_atext(<unsigned char>ch):
                ok = False
        else:
            ascii = False
            size += 2 if ch < 0x800 else (3 if ch < 0x10000 else 4)
            if (ch < 0xA0 or 0xD800 <= ch <= 0xDFFF or ch == 0x2028 or ch == 0x2029
                    or ch == 0xFFFE or ch == 0xFFFF):
                ok = False
    if dot:
        ok = False
    if size > 64:
        raise AddressError(f"address {addr!r}: local part longer than 64 octets")
    if not ok:
        raise AddressError(f"address {addr!r}: invalid local part")
    try:
        dom = _idna_domain(addr[at + 1:])
    except AddressError as exc:
        raise AddressError(f"address {addr!r}: {exc.message}") from None
    a = Address.__new__(Address)
    a.local = local
    a.domain = dom
    a.smtputf8 = not ascii
    a._text = local + "@" + dom
    a._utf8 = a._text.encode("utf-8")
    return a


cdef inline bint _ascii_space(unsigned char c) noexcept nogil:
    # What str.strip() takes off an ASCII string: str.isspace() there.
    return c == 32 or 9 <= c <= 13 or 28 <= c <= 31


@cython.boundscheck(False)  # invariant: start <= i < end <= n, the string's length
@cython.wraparound(False)
cdef bint _plain_span(const unsigned char* s, Py_ssize_t n, bint upper, Py_ssize_t* start_,
                      Py_ssize_t* at_, Py_ssize_t* stop_) noexcept:
    """Whether the ASCII text ``s[0:n]`` is a plain address: white space that
    strip() removes at either end, a dot-atom of atext (RFC 5322 3.4.1),
    "@", and a domain of two letter-digit-hyphen labels or more (RFC 1034
    3.5), with its final dots; its letters lower case only unless ``upper``.
    Sets where the local part starts, the "@" and where the domain stops
    (before the final dots and white space)."""
    cdef Py_ssize_t i, start = 0, end = n, at, stop
    cdef unsigned char c, prev
    cdef bint ok
    while start < end and _ascii_space(s[start]):
        start += 1
    while end > start and _ascii_space(s[end - 1]):
        end -= 1
    at = end - 1
    while at >= start and s[at] != 64:  # the last "@", as rfind
        at -= 1
    if at <= start or at - start > 64:  # no "@", no local part, or too long
        return False
    prev = 46  # a local part may not start with "."
    for i in range(start, at):
        c = s[i]
        if c == 46:
            if prev == 46:
                return False
        elif not is_atext(c):
            return False
        prev = c
    if prev == 46:
        return False
    stop = end
    while stop > at + 1 and s[stop - 1] == 46:  # rstrip(".")
        stop -= 1
    if stop == at + 1 or stop - at - 1 > 253:
        return False
    # _idna_domain's check (before the domain is lowered, with ``upper``)
    if _ldh_labels(s + at + 1, stop - at - 1, upper, &ok) < 2 or not ok:
        return False
    start_[0], at_[0], stop_[0] = start, at, stop
    return True


cdef bint _canonical_plain(str text):
    """``text`` is a plain address that ``_parse_address`` gives back as it
    is: ASCII, nothing stripped at either end, its domain in lower case."""
    cdef Py_ssize_t n, start, at, stop
    if not PyUnicode_IS_ASCII(text):
        return False
    n = len(text)
    return (_plain_span(PyUnicode_1BYTE_DATA(text), n, False, &start, &at, &stop)
            and start == 0 and stop == n)


@cython.boundscheck(False)  # invariant: each new string's length is nl + 1 + nd
@cython.wraparound(False)    # = stop - start, within the text's
cdef tuple _plain_address(str text):
    """``(str(a), a.key())`` for ``a = _parse_address(text)``, without making
    ``a``, when ``text`` is a plain ASCII address (:func:`_plain_span`, in
    either case). None for any other text, which ``_parse_address`` decides
    (its errors, non-ASCII, IDNA, white space inside).

    The reader takes the key of every row of a file in every worker, and
    the address of its own: most are plain, and the Address object,
    its two strings and the key's calls were most of what a row cost.
    """
    cdef const unsigned char* s
    cdef unsigned char* a
    cdef unsigned char* k
    cdef Py_ssize_t i, start, at, stop, nl, nd
    cdef unsigned char c
    cdef str address, key
    if not PyUnicode_IS_ASCII(text):
        return None
    s = PyUnicode_1BYTE_DATA(text)  # ASCII: one byte a character
    if not _plain_span(s, len(text), True, &start, &at, &stop):
        return None
    # Both strings written at once, ASCII: the local part as it is (lower
    # case in the key), "@", the domain in lower case.
    nl, nd = at - start, stop - at - 1
    address = <str>PyUnicode_New(nl + 1 + nd, 127)
    key = <str>PyUnicode_New(nl + 1 + nd, 127)
    a, k = PyUnicode_1BYTE_DATA(address), PyUnicode_1BYTE_DATA(key)
    for i in range(nl):
        c = s[start + i]
        a[i] = c
        k[i] = c + 32 if 65 <= c <= 90 else c
    a[nl] = k[nl] = 64
    for i in range(nl + 1, nl + 1 + nd):
        c = s[start + i]
        a[i] = k[i] = c + 32 if 65 <= c <= 90 else c
    return (address, key)


def recipient_line(str display not None, str address not None, bint fast=True):
    """``(line, address, smtputf8)``: the To line the builder writes for
    ``address`` and ``display``, the address as the message's RCPT TO, and
    whether it needs SMTPUTF8; ``fast=False`` parses every address, for the
    fuzz test."""
    cdef _Out o
    cdef bint utf8 = False
    cdef str text
    o.data = NULL
    o.len = o.cap = 0
    try:
        text = _w_recipient(&o, "To", display, address, &utf8, fast)
        return (PyBytes_FromStringAndSize(o.data, o.len), text, utf8)
    finally:
        PyMem_Free(o.data)


def plain_address(str text not None):
    """``(address, key)`` as :func:`parse_address` and ``Address.key()``
    give them, for a plain ASCII address; None for any other text."""
    return _plain_address(text)


def split_mailbox(str text not None):
    """Split ``Display Name <addr>`` (or a bare address) into its two parts."""
    cdef str t = text.strip()
    cdef str name, rest
    if t.endswith(">") and "<" in t:
        name, _, rest = t.rpartition("<")
        name = name.strip()
        if len(name) >= 2 and name[0] == name[len(name) - 1] == '"':
            name = name[1:len(name) - 1].replace('\\"', '"').replace("\\\\", "\\")
        return name, rest[:len(rest) - 1].strip()
    return "", t


# --------------------------------------------------------------------------
# Bodies


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _w_crlf(_Out* o, const unsigned char* s, Py_ssize_t n) except -1:
    """Append ``s`` with CR, LF and CRLF all written as CRLF, ending in CRLF."""
    cdef Py_ssize_t i = 0, end, k
    cdef unsigned char c
    cdef char* w
    while i < n:
        end = i + 4096 if n - i > 4096 else n
        # each input byte becomes at most two output bytes
        _reserve(o, 2 * (end - i))
        w = o.data + o.len
        while i < end:
            # Blocks holding no CR or LF go as they are: i + 16 <= end <= n
            # for each block read, and each writes 16 of the 2 * (end - i)
            # bytes reserved for its 16 input bytes.
            while i + 16 <= end:
                k = line_end_skip16(s + i)
                if k < 16:
                    # The bytes before the block's first CR or LF go as
                    # they are (within the block, and within the bytes
                    # reserved for it); then the byte at i, below.
                    memcpy(w, s + i, k)
                    w += k
                    i += k
                    break
                memcpy(w, s + i, 16)
                w += 16
                i += 16
            if i == end:
                break
            c = s[i]
            if c == 10:
                w[0] = 13
                w[1] = 10
                w += 2
            elif c == 13:
                w[0] = 13
                w[1] = 10
                w += 2
                if i + 1 < n and s[i + 1] == 10:
                    i += 1
                    if i == end:
                        end += 1
            else:
                w[0] = <char>c
                w += 1
            i += 1
        o.len = w - o.data
    if n == 0 or (s[n - 1] != 10 and s[n - 1] != 13):
        _crlf(o)
    return 0


cdef int _w_seven_bit(_Out* o, const unsigned char* s, Py_ssize_t n) except -1:
    """When ``s`` may go out as 7bit, append it as _w_crlf does and return
    1; else return 0, having appended a part of it (the caller takes
    ``o.len`` back). 7bit: printable ASCII and tabs, lines of at most
    MAX_LINE octets, no white space before a line end (relays strip it),
    and no ``=_mf`` (which starts every boundary).

    One pass that checks and writes. The plain bytes of a block (_simd.pxd's
    unplain_skip16: printable ASCII but "="), up to its first other byte or
    all sixteen, are taken at once, which changes the column count and the
    last byte as that many single steps would; every other byte is checked
    and written alone (tests/test_mime_seven_bit_fast_fuzz.py holds the
    byte-at-a-time form). Invariants: i + 16 <= end <= n for each block
    read, and 0 <= i < n for each byte read; each chunk reserves
    2 * (end - i) output bytes, of which a block's 16-byte store takes 16
    (keeping the k it counts), a byte at most 2, and a CR LF pair 2 for its
    2 input bytes."""
    cdef Py_ssize_t i = 0, col = 0, k, end
    cdef unsigned char c, prev = 0
    cdef char* w
    while i < n:
        end = i + 4096 if n - i > 4096 else n
        _reserve(o, 2 * (end - i))
        w = o.data + o.len
        while i < end:
            if i + 16 <= end:
                k = unplain_skip16(s + i)
                if k:
                    col += k
                    if col > MAX_LINE:
                        return 0
                    memcpy(w, s + i, 16)
                    w += k
                    prev = s[i + k - 1]
                    i += k
                    continue
            c = s[i]
            if c == 13 or c == 10:
                if prev == 32 or prev == 9:
                    return 0
                col = 0
                w[0] = 13
                w[1] = 10
                w += 2
                if c == 13 and i + 1 < n and s[i + 1] == 10:
                    # CR LF at once: the LF's own check (its prev is the CR)
                    # always passes. It may be the next chunk's first byte.
                    c = 10
                    i += 1
                    if i == end:
                        end += 1
            elif (c < 32 and c != 9) or c > 126:
                return 0
            else:
                col += 1
                if col > MAX_LINE or (c == 61 and n - i > 3 and s[i + 1] == 95
                                      and s[i + 2] == 109 and s[i + 3] == 102):
                    return 0
                w[0] = <char>c
                w += 1
            prev = c
            i += 1
        o.len = w - o.data
    if prev == 32 or prev == 9:
        return 0
    if n == 0 or (s[n - 1] != 10 and s[n - 1] != 13):
        _crlf(o)
    return 1


cdef int _w_qp(_Out* o, const unsigned char* s, Py_ssize_t n) except -1:
    """Append ``s`` quoted-printable (RFC 2045 6.7), ending in CRLF.

    CR, LF and CRLF become hard line breaks (CRLF); soft breaks keep every
    line at most 76 characters; a space or tab before a line end, and a
    ``.`` or ``From `` starting a line, are encoded so no relay or mbox
    writer can alter the text.
    """
    cdef Py_ssize_t i = 0, j, stop, end, col = 0, need, t
    cdef unsigned char c, k
    cdef bint enc
    cdef char* w
    while i < n:
        end = i + 1024 if n - i > 1024 else n
        # Bound for this block of b = end - i input bytes: each byte becomes
        # at most 3 output bytes; a soft break (3 bytes) follows at least 73
        # output bytes, so at most 3 * (3b / 73 + 1) <= b / 8 + 3 of them.
        _reserve(o, 3 * (end - i) + (end - i) // 8 + 16)
        w = o.data + o.len
        while i < end:
            if col > 0:
                # Fast path: a run of bytes that go out as they are (any
                # space or tab in it is followed by more text on the line),
                # as long as the line has room.  j < stop <= end <= n, and
                # j + 1 < n is checked before s[j + 1] is read.
                stop = i + (75 - col)
                if stop > end:
                    stop = end
                j = i
                # Sixteen bytes at a time: those of a block before its
                # first control byte (CR, LF and tab among them), byte
                # above 0x7E or "=" (all sixteen when it has none) go out
                # as they are, each space among them followed, within the
                # block, by text; a space that is the last of them is left
                # to the byte step, which looks at the byte after it.
                # j + 16 <= n for each block read, and t is cut to
                # stop - j, so j stays within stop (the line's room ends
                # inside most blocks: those are read whole, used in part).
                while j < stop:
                    if j + 16 <= n:
                        t = unplain_skip16(s + j)
                        if t > stop - j:
                            t = stop - j
                        if t and s[j + t - 1] == 32:
                            t -= 1
                        if t:
                            j += t
                            continue
                    k = QP_CLASS[s[j]]
                    if k == 0 or (k == 2 and j + 1 < n and QP_CLASS[s[j + 1]] != 3):
                        j += 1
                    else:
                        break
                if j > i:
                    memcpy(w, s + i, <size_t>(j - i))
                    w += j - i
                    col += j - i
                    i = j
                    continue
            c = s[i]
            k = QP_CLASS[c]
            if k == 3:
                w[0] = 13
                w[1] = 10
                w += 2
                col = 0
                if c == 13 and i + 1 < n and s[i + 1] == 10:
                    i += 1
                    if i == end:
                        end += 1
                i += 1
                continue
            enc = k == 1
            if k == 2:
                enc = i + 1 == n or s[i + 1] == 13 or s[i + 1] == 10
            elif col == 0 and k == 0:
                enc = c == 46 or (
                    c == 70 and n - i > 4 and s[i + 1] == 114 and s[i + 2] == 111
                    and s[i + 3] == 109 and s[i + 4] == 32
                )
            need = 3 if enc else 1
            if col + need > 75:
                w[0] = 61
                w[1] = 13
                w[2] = 10
                w += 3
                col = 0
                continue  # this byte again, now at the start of a line
            if enc:
                w[0] = 61
                w[1] = HEX[c >> 4]
                w[2] = HEX[c & 15]
                w += 3
            else:
                w[0] = <char>c
                w += 1
            col += need
            i += 1
        o.len = w - o.data
    if n == 0 or (s[n - 1] != 10 and s[n - 1] != 13):
        _crlf(o)
    return 0


cdef int _w_text_part(_Out* o, bytes body, bytes subtype) except -1:
    """A text leaf: Content-Type, Content-Transfer-Encoding, blank line, body."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(body)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(body)
    cdef Py_ssize_t at
    _put_bytes(o, b"Content-Type: text/")
    _put_bytes(o, subtype)
    # Written as 7bit when it may go; else from here again, as QP.
    at = o.len
    _put_bytes(o, b"; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
    if not _w_seven_bit(o, s, n):
        o.len = at
        _put_bytes(o, b"; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
        _w_qp(o, s, n)
    return 0


cdef inline int _w_delim(_Out* o, const char* kind, bytes token, bint close) except -1:
    """CRLF ``--=_mf<kind><token>`` [``--``] CRLF (RFC 2046 5.1.1)."""
    _put_bytes(o, b"\r\n--=_mf")
    _put(o, kind, 1)
    _put_bytes(o, token)
    if close:
        _put_bytes(o, b"--\r\n")
    else:
        _crlf(o)
    return 0


cdef int _w_multipart_head(_Out* o, bytes ctype, const char* kind, bytes token) except -1:
    """The multipart's header, the blank line and its first delimiter."""
    _put_bytes(o, ctype)
    _put_bytes(o, b";\r\n boundary=\"=_mf")
    _put(o, kind, 1)
    _put_bytes(o, token)
    _put_bytes(o, b"\"\r\n\r\n--=_mf")
    _put(o, kind, 1)
    _put_bytes(o, token)
    _crlf(o)
    return 0


cdef int _w_html_node(_Out* o, bytes html, tuple inline, bytes token) except -1:
    """The HTML part, inside multipart/related with its images when it has any."""
    cdef Attachment part
    if not inline:
        return _w_text_part(o, html, b"html")
    _w_multipart_head(o, b'Content-Type: multipart/related; type="text/html"', b"r", token)
    _w_text_part(o, html, b"html")
    for part in inline:
        _w_delim(o, b"r", token, False)
        _put_bytes(o, part._part)
    _w_delim(o, b"r", token, True)
    return 0


cdef int _w_body(_Out* o, bytes text, bytes html, tuple inline, tuple attachments,
                 bytes token) except -1:
    """The message's top entity: its Content-Type header, blank line and body."""
    cdef Attachment part
    if attachments:
        _w_multipart_head(o, b"Content-Type: multipart/mixed", b"m", token)
    if text is not None and html is not None:
        _w_multipart_head(o, b"Content-Type: multipart/alternative", b"a", token)
        _w_text_part(o, text, b"plain")
        _w_delim(o, b"a", token, False)
        _w_html_node(o, html, inline, token)
        _w_delim(o, b"a", token, True)
    elif html is not None:
        _w_html_node(o, html, inline, token)
    else:
        _w_text_part(o, text, b"plain")
    if attachments:
        for part in attachments:
            _w_delim(o, b"m", token, False)
            _put_bytes(o, part._part)
        _w_delim(o, b"m", token, True)
    return 0


# --------------------------------------------------------------------------
# Attachments


_CTYPE_RE = re.compile(r"[a-z0-9!#$&^_.+\-]{1,64}/[a-z0-9!#$&^_.+\-]{1,64}")
_CID_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@\-]{1,200}")
_ATTR_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~")


cdef str _rfc2231(str value):
    """``value`` as RFC 2231 ``*=`` parameter text (utf-8, percent-encoded)."""
    return "".join(chr(b) if b in _ATTR_CHARS else f"%{b:02X}" for b in value.encode("utf-8"))


cdef class Attachment:
    """A file to attach (or, with ``cid``, an inline image for the HTML part).

    The part is base64-encoded once, here; every message reuses it.
    """

    def __init__(self, bytes data not None, str filename="", str content_type=None, *,
                 str cid=None):
        cdef _Out o
        cdef Py_ssize_t n
        cdef const unsigned char* s
        cdef str ctype, disp, pct, piece
        cdef bint simple
        cdef list pieces
        cdef Py_ssize_t i, j
        if filename is None:
            filename = ""
        ctype = "application/octet-stream" if content_type is None else content_type
        _check_value("Content-Type", ctype)
        _check_value("Content-Disposition", filename)
        ctype = ctype.strip().lower()
        if not _CTYPE_RE.fullmatch(ctype):
            raise HeaderError(f"invalid attachment content type {ctype!r}", field="Content-Type")
        if ctype.startswith(("multipart/", "message/")):
            raise HeaderError(
                f"content type {ctype} cannot be sent as a base64 attachment",
                field="Content-Type",
            )
        s = _utf8(filename, "Content-Disposition", &n)
        if n > 255:
            raise HeaderError("attachment file name longer than 255 octets",
                              field="Content-Disposition")
        if cid is not None:
            _check_value("Content-ID", cid)
            if not _CID_RE.fullmatch(cid):
                raise HeaderError(f"invalid Content-ID {cid!r}", field="Content-ID")
        self.data = data
        self.filename = filename
        self.content_type = ctype
        self.cid = cid
        simple = 0 < n <= 60 and _plain_ascii(s, n)
        disp = "inline" if cid is not None else "attachment"
        head = [f"Content-Type: {ctype}"]
        if simple:
            quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
            head[0] += f'; name="{quoted}"'
            disp += f';\r\n filename="{quoted}"'
        elif n:
            pct = _rfc2231(filename)
            if len(pct) <= 60:
                disp += f";\r\n filename*=utf-8''{pct}"
            else:
                # RFC 2231 3: continuations, never splitting a %XX escape.
                pieces = []
                i = 0
                while i < len(pct):
                    j = i + 60 if i + 60 < len(pct) else len(pct)
                    if j < len(pct):
                        if pct[j - 1] == "%":
                            j -= 1
                        elif pct[j - 2] == "%":
                            j -= 2
                    pieces.append(pct[i:j])
                    i = j
                for i, piece in enumerate(pieces):
                    disp += f";\r\n filename*{i}*={'utf-8' + chr(39) * 2 if i == 0 else ''}{piece}"
        head.append("Content-Transfer-Encoding: base64")
        if cid is not None:
            head.append(f"Content-ID: <{cid}>")
        head.append(f"Content-Disposition: {disp}")
        o.data = NULL
        o.len = o.cap = 0
        try:
            _put_bytes(&o, ("\r\n".join(head) + "\r\n\r\n").encode("ascii"))
            _w_b64_lines(&o, <const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
            self._part = PyBytes_FromStringAndSize(o.data, o.len)
        finally:
            PyMem_Free(o.data)

    @property
    def part(self):
        """The encoded body part: headers, blank line, base64 lines."""
        return self._part

    def __repr__(self):
        what = f"cid={self.cid!r}" if self.cid is not None else f"filename={self.filename!r}"
        return f"Attachment({what}, {self.content_type}, {len(self.data)} bytes)"


# --------------------------------------------------------------------------
# Messages


_UNSUB_RE = re.compile(r"[ \t]*<[^<>]*>[ \t]*(?:,[ \t]*<[^<>]*>[ \t]*)*")
_URI_RE = re.compile(r"<([^<>]*)>")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S")
#: What quote(u, safe=_URI_SAFE) returns unchanged.
_URI_UNCHANGED = re.compile("[A-Za-z0-9" + re.escape(_URI_KEPT) + "]*").fullmatch


cdef inline bint _uri_unchanged(unsigned char ch) noexcept nogil:
    """A character _URI_UNCHANGED takes (what quote() leaves as it is)."""
    return URI_OK[ch]


cdef inline bint _scheme_char(unsigned char ch):
    return (b"a"[0] <= ch <= b"z"[0] or b"A"[0] <= ch <= b"Z"[0] or b"0"[0] <= ch <= b"9"[0]
            or ch == b"+"[0] or ch == b"."[0] or ch == b"-"[0])


cdef object _unsub_fast(str value):
    """The usual List-Unsubscribe value, ``<URI>`` or ``<URI>, <URI>`` as the
    tracker makes it (one comma and space between, nothing else outside the
    brackets), of URIs that need no percent-encoding: ``(joined, post)``
    exactly as the regex path makes them, without its five regex passes.
    None for anything else, which the regex path then decides (and refuses).
    """
    cdef Py_ssize_t n, i = 0, start, k
    cdef const unsigned char* v
    cdef bint post = False
    if not value.isascii():  # every URI character the shortcut takes is ASCII
        return None
    v = <const unsigned char*>PyUnicode_AsUTF8AndSize(value, &n)  # ASCII: no copy
    while True:
        if i >= n or v[i] != b"<"[0]:
            return None
        i += 1
        start = i
        # Sixteen URI characters a step while a block holds nothing else
        # (_simd.pxd's uri_skip16 takes what _uri_unchanged takes); the byte
        # steps look at the rest. Invariant: i + 16 <= n for each block read.
        while i + 16 <= n:
            k = uri_skip16(v + i)
            i += k
            if k < 16:
                break
        while i < n and _uri_unchanged(v[i]):
            i += 1
        if i >= n or v[i] != b">"[0] or i - start > MAX_URI:
            return None
        # An absolute URI: a scheme (RFC 3986 3.1), ":" and one character more.
        # No URI character is white space, so _SCHEME_RE's \S is any of them.
        if not (b"a"[0] <= v[start] <= b"z"[0] or b"A"[0] <= v[start] <= b"Z"[0]):
            return None
        k = start + 1
        while k < i and _scheme_char(v[k]):
            k += 1
        if k + 1 >= i or v[k] != b":"[0]:
            return None
        if k - start == 5 and (v[start] | 0x20) == b"h"[0] and (v[start + 1] | 0x20) == b"t"[0] \
                and (v[start + 2] | 0x20) == b"t"[0] and (v[start + 3] | 0x20) == b"p"[0] \
                and (v[start + 4] | 0x20) == b"s"[0]:
            post = True
        i += 1
        if i == n:
            return value, post
        if i + 2 >= n or v[i] != b","[0] or v[i + 1] != b" "[0]:
            return None
        i += 2


cdef int _w_unsub(_Out* o, str value, bint fast) except -1:
    """Write the List-Unsubscribe header line (and List-Unsubscribe-Post)
    for ``value``; ``fast``: try :func:`_unsub_fast` first."""
    cdef list uris
    cdef str u, joined
    cdef bint post = False
    cdef tuple got
    _check_value("List-Unsubscribe", value)
    got = _unsub_fast(value) if fast else None
    if got is not None:
        joined, post = got
    else:
        if not _UNSUB_RE.fullmatch(value):
            raise HeaderError(
                "header List-Unsubscribe: expected one or more <URI> separated by commas",
                field="List-Unsubscribe",
            )
        uris = []
        for u in _URI_RE.findall(value):
            u = u.strip()
            if not _SCHEME_RE.match(u):
                raise HeaderError(
                    f"header List-Unsubscribe: {u!r} is not an absolute URI",
                    field="List-Unsubscribe",
                )
            try:
                # quote() leaves a URI of safe characters only as it is (the
                # usual one): it is not called for it.
                if _URI_UNCHANGED(u) is None:
                    u = _url_quote(u, safe=_URI_SAFE)
            except UnicodeError:
                raise HeaderError(
                    "header List-Unsubscribe holds a character that cannot be encoded",
                    field="List-Unsubscribe",
                ) from None
            if len(u) > MAX_URI:
                raise HeaderError(
                    f"header List-Unsubscribe: a URI longer than {MAX_URI} characters",
                    field="List-Unsubscribe",
                )
            if u[:6].lower() == "https:":
                post = True
            uris.append(f"<{u}>")
        joined = ", ".join(uris)
    # ASCII either way (the shortcut's URIs, or quote()'s): its UTF-8 is
    # the string's own bytes, no copy.
    cdef Py_ssize_t n
    cdef const unsigned char* j = <const unsigned char*>PyUnicode_AsUTF8AndSize(joined, &n)
    _put_bytes(o, b"List-Unsubscribe:")
    _fold(o, j, n, 16)
    _crlf(o)
    if post:
        _put_bytes(o, b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    return 0


cdef bytes _unsub_line(str value, bint fast):
    """:func:`_w_unsub`'s lines as bytes."""
    cdef _Out h
    h.data = NULL
    h.len = h.cap = 0
    try:
        _w_unsub(&h, value, fast)
        return PyBytes_FromStringAndSize(h.data, h.len)
    finally:
        PyMem_Free(h.data)


def unsubscribe_line(str value not None, bint fast=True):
    """The List-Unsubscribe header line(s) for ``value`` (what the builder
    writes); ``fast=False`` skips the shortcut, for the fuzz test."""
    return _unsub_line(value, fast)


@cython.boundscheck(False)  # invariant: 0 <= i < n, the length of an ASCII value
@cython.wraparound(False)
cdef int _check_token(str value, str field, Py_ssize_t lo, Py_ssize_t hi,
                      const unsigned char* refuse) except -1:
    """``value`` is lo..hi printable ASCII characters, none of them one that
    ``refuse`` (a REFUSE_* table) marks."""
    cdef const unsigned char* s
    cdef Py_ssize_t i, n = len(value)
    if not (lo <= n <= hi):
        raise HeaderError(f"header {field}: invalid value {value!r}", field=field)
    if PyUnicode_IS_ASCII(value):
        s = PyUnicode_1BYTE_DATA(value)  # ASCII: one byte a character
        for i in range(n):
            if refuse[s[i]]:
                break
        else:
            return 0
    _check_value(field, value)  # names an injection first
    raise HeaderError(f"header {field}: invalid value {value!r}", field=field)


cdef class MessageBuilder:
    """Assembles finished messages for one job.

    Everything the same for every recipient is encoded once here: the From
    line when ``sender`` is given, Reply-To, MIME-Version, the custom
    ``headers`` (name, value pairs or a mapping), the ``attachments``
    (multipart/mixed) and the ``inline`` images (multipart/related beside
    the HTML part; each an :class:`Attachment` with a ``cid``).
    """

    def __init__(self, *, str sender=None, str reply_to=None, headers=(), attachments=(),
                 inline=()):
        cdef _Out o
        cdef Address ra
        cdef Attachment part
        cdef str name, value, display, address
        cdef set cids = set()
        o.data = NULL
        o.len = o.cap = 0
        if hasattr(headers, "items"):
            headers = headers.items()
        try:
            if sender is not None:
                display, address = split_mailbox(sender)
                self.sender = _w_mailbox(&o, "From", display, address)
                self._from_line = PyBytes_FromStringAndSize(o.data, o.len)
                o.len = 0
            if reply_to is not None:
                display, address = split_mailbox(reply_to)
                ra = _w_mailbox(&o, "Reply-To", display, address)
                self.has_reply_to_utf8 = ra.smtputf8
            _put_bytes(&o, b"MIME-Version: 1.0\r\n")
            for name, value in headers:
                _check_name(name)
                if name.lower() in RESERVED:
                    raise HeaderError(f"header {name} is set by Mailsflux itself", field=name)
                _w_unstructured(&o, name, value)
            self._static = PyBytes_FromStringAndSize(o.data, o.len)
        finally:
            PyMem_Free(o.data)
        self._parts_size = 0
        for part in attachments:
            if part.cid is not None:
                raise ConfigError(f"attachment {part.filename!r} has a cid: pass it as inline")
            self._parts_size += len(part._part) + 100
        for part in inline:
            if part.cid is None:
                raise ConfigError(f"inline image {part.filename!r} needs a cid")
            if part.cid in cids:
                raise HeaderError(f"Content-ID <{part.cid}> used twice", field="Content-ID")
            cids.add(part.cid)
            self._parts_size += len(part._part) + 100
        self._attachments = tuple(attachments)
        self._inline = tuple(inline)
        self._unsub = None

    cdef int _w_unsubscribe(self, _Out* o, str value) except -1:
        """List-Unsubscribe (RFC 2369), plus List-Unsubscribe-Post (RFC 8058)
        when one of the URIs is https.  Non-ASCII, spaces and controls in a
        URI are percent-encoded (as UTF-8, RFC 3987 3.1).

        A tracked job's value differs from message to message (its token):
        written straight into the message. A value met twice running (one
        for the whole job) is kept as its lines, and copied from then on."""
        cdef tuple cached = self._unsub
        cdef bytes line
        if cached is not None and cached[0] == value:
            line = cached[1]
            if line is None:
                line = _unsub_line(value, True)
                self._unsub = (value, line)
            _put_bytes(o, line)
            return 0
        _w_unsub(o, value, True)
        self._unsub = (value, None)
        return 0

    def build(self, *, str to not None, str subject not None, str date not None,
              str message_id not None, bytes text=None, bytes html=None, str to_name=None,
              str sender=None, str list_unsubscribe=None, str boundary=""):
        """One finished message.

        Returns ``(data, mail_from, rcpt_to, smtputf8)``: the message bytes,
        the From and To addresses (domains in IDNA form) and whether SMTPUTF8
        is needed (a non-ASCII local part in From, To or Reply-To).
        ``boundary`` is a token (letters, digits, ``._-``, at most 64) that
        makes the multipart boundaries; ``sender`` overrides the static From.
        """
        return self._build(to, subject, date, message_id, text, html, to_name, sender,
                           list_unsubscribe, boundary)

    cdef tuple _build(self, str to, str subject, str date, str message_id, bytes text,
                      bytes html, str to_name, str sender, str list_unsubscribe, str boundary):
        # build() for compiled callers; to, subject, date and message_id not None.
        cdef _Out o
        cdef Address frm
        cdef str display, address, rcpt
        cdef bint rcpt_utf8
        cdef bytes token
        if text is None and html is None:
            raise ConfigError("a message needs a text or an HTML body")
        if self._inline and html is None:
            raise ConfigError("inline images need an HTML body")
        _check_token(date, "Date", 1, 100, REFUSE_DATE)
        _check_token(message_id, "Message-ID", 3, 250, REFUSE_ID)
        if "@" not in message_id:
            raise HeaderError(f"header Message-ID: invalid value {message_id!r}",
                              field="Message-ID")
        if boundary is None:
            boundary = ""
        _check_token(boundary, "Content-Type", 0, MAX_TOKEN, REFUSE_BOUNDARY)
        token = boundary.encode("ascii")
        o.data = NULL
        o.len = o.cap = 0
        try:
            _reserve(&o, 1024 + PyBytes_GET_SIZE(self._static) + self._parts_size
                     + (len(text) * 9 // 8 if text is not None else 0)
                     + (len(html) * 9 // 8 if html is not None else 0))
            if sender is not None:
                display, address = split_mailbox(sender)
                frm = _w_mailbox(&o, "From", display, address)
            elif self._from_line is not None:
                _put_bytes(&o, self._from_line)
                frm = self.sender
            else:
                raise HeaderError("a message needs a From address", field="From")
            rcpt = _w_recipient(&o, "To", to_name if to_name is not None else "", to,
                                &rcpt_utf8)
            _w_unstructured(&o, "Subject", subject)
            _put_bytes(&o, b"Date: ")
            _put_bytes(&o, date.encode("ascii"))
            _put_bytes(&o, b"\r\nMessage-ID: <")
            _put_bytes(&o, message_id.encode("ascii"))
            _put_bytes(&o, b">\r\n")
            if list_unsubscribe is not None:
                self._w_unsubscribe(&o, list_unsubscribe)
            _put_bytes(&o, self._static)
            _w_body(&o, text, html, self._inline, self._attachments, token)
            data = PyBytes_FromStringAndSize(o.data, o.len)
        finally:
            PyMem_Free(o.data)
        return (data, frm._text, rcpt,
                frm.smtputf8 or rcpt_utf8 or self.has_reply_to_utf8)

    @property
    def attachments(self):
        return self._attachments

    @property
    def inline(self):
        return self._inline


# --------------------------------------------------------------------------
# Python API (also what the tests and the fuzzer drive)


def check_value(str name not None, str value not None):
    """Refuse a header value holding CR or LF (or NUL), naming the header."""
    _check_value(name, value)


def check_name(str name not None):
    """Refuse a header field name that is not printable ASCII without colon."""
    _check_name(name)


def encoded_words(str text not None, first_room):
    """RFC 2047 base64 encoded words, split between characters, never inside one.

    ``first_room`` is how many columns the first word may take (20 to 75).
    """
    cdef _Out o
    cdef Py_ssize_t n
    cdef const unsigned char* s = _utf8(text, "(value)", &n)
    cdef Py_ssize_t room = 75 if first_room > 75 else (20 if first_room < 20 else first_room)
    o.data = NULL
    o.len = o.cap = 0
    try:
        _w_words(&o, s, n, room)
    except BaseException:
        PyMem_Free(o.data)
        raise
    out = _take_str(&o)
    return out.split("\r\n ") if out else []


def fold(str name not None, str value not None):
    """``Name: value`` folded before spaces so lines stay near 78 columns."""
    cdef _Out o
    cdef Py_ssize_t n, nn
    cdef const unsigned char* s
    cdef const unsigned char* nm
    _check_name(name)
    _check_value(name, value)
    nm = _utf8(name, name, &nn)
    s = _utf8(value, name, &n)
    o.data = NULL
    o.len = o.cap = 0
    try:
        _put(&o, <const char*>nm, nn)
        _putc(&o, b":")
        _fold(&o, s, n, nn + 1)
    except BaseException:
        PyMem_Free(o.data)
        raise
    return _take_str(&o)


def encode_unstructured(str name not None, str value not None):
    """``Name: value`` for an unstructured header (Subject, custom headers)."""
    cdef _Out o
    _check_name(name)
    o.data = NULL
    o.len = o.cap = 0
    try:
        _w_unstructured(&o, name, value)
    except BaseException:
        PyMem_Free(o.data)
        raise
    o.len -= 2  # no final CRLF
    return _take_str(&o)


def format_mailbox(str name not None, str display not None, str address not None):
    """``(Name: "Display" <addr>, Address)``, with the domain in IDNA form."""
    cdef _Out o
    cdef Address a
    _check_name(name)
    o.data = NULL
    o.len = o.cap = 0
    try:
        a = _w_mailbox(&o, name, display, address)
    except BaseException:
        PyMem_Free(o.data)
        raise
    o.len -= 2
    return _take_str(&o), a


def parse_address(str text not None):
    """Check a bare ``local@domain`` address; AddressError naming the fault."""
    return _parse_address(text)


def idna_domain(str domain not None):
    """``domain`` lower-cased, in IDNA (xn--) form, or AddressError."""
    return _idna_domain(domain)


def crlf(bytes data not None):
    """``data`` with CR, LF and CRLF all as CRLF, ending in CRLF."""
    cdef _Out o
    o.data = NULL
    o.len = o.cap = 0
    try:
        _w_crlf(&o, <const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    except BaseException:
        PyMem_Free(o.data)
        raise
    return _take(&o)


def quoted_printable(bytes data not None):
    """``data`` quoted-printable (RFC 2045 6.7), line ends as CRLF."""
    cdef _Out o
    o.data = NULL
    o.len = o.cap = 0
    try:
        _w_qp(&o, <const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    except BaseException:
        PyMem_Free(o.data)
        raise
    return _take(&o)


def base64_lines(bytes data not None):
    """``data`` base64-encoded in lines of 76 characters, each ending in CRLF."""
    cdef _Out o
    o.data = NULL
    o.len = o.cap = 0
    try:
        _w_b64_lines(&o, <const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    except BaseException:
        PyMem_Free(o.data)
        raise
    return _take(&o)


def seven_bit_body(bytes data not None):
    """``data`` as a 7bit part's body (what :func:`crlf` writes) when it may
    go out as 7bit (:func:`seven_bit`), else None: the one-pass writer."""
    cdef _Out o
    o.data = NULL
    o.len = o.cap = 0
    try:
        if not _w_seven_bit(&o, <const unsigned char*>PyBytes_AS_STRING(data),
                            PyBytes_GET_SIZE(data)):  # some of it written: dropped
            PyMem_Free(o.data)
            return None
    except BaseException:
        PyMem_Free(o.data)
        raise
    return _take(&o)


def seven_bit(bytes data not None):
    """Whether ``data`` may go out as 7bit: what :func:`text_part` decides."""
    return seven_bit_body(data) is not None


def text_part(bytes data not None, str subtype not None = "plain"):
    """A text leaf part: Content-Type, Content-Transfer-Encoding, blank line, body."""
    cdef _Out o
    if subtype not in ("plain", "html"):
        raise ValueError("subtype must be 'plain' or 'html'")
    o.data = NULL
    o.len = o.cap = 0
    try:
        _w_text_part(&o, data, b"plain" if subtype == "plain" else b"html")
    except BaseException:
        PyMem_Free(o.data)
        raise
    return _take(&o)
