# cython: language_level=3
"""Compiled DKIM canonicalization (RFC 6376 section 3.4) and body hashing.

Everything here runs over the message bytes through raw pointers: the message
is normalized to CRLF once, its header fields are located as offsets in a C
array (no per-line Python objects), the body is canonicalized into one C
buffer that hashlib (OpenSSL SHA-256) hashes through a zero-copy memoryview,
and the header fields a signature covers are canonicalized into one ``bytes``.

Line model: :func:`normalize_crlf` makes the message what SMTP carries (lone
CR or LF -> CRLF, final CRLF added), so every line of a :class:`Message` ends
in CRLF.  The canonicalizers themselves accept any bytes: there, only CRLF
ends a line and a lone CR or LF is ordinary data.  WSP is SP or HTAB.

Index safety: all hot loops index ``const unsigned char *`` pointers, which
Cython never bounds-checks; each loop states the invariant that keeps it in
bounds, and the functions carry ``boundscheck(False)``/``wraparound(False)``
individually (never file-wide) so that stays true if a loop is ever rewritten
over a typed memoryview.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_New, PyTuple_SET_ITEM
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memset

from mailsflux._base64 cimport b64_write
from mailsflux._swar cimport SWAR_EXACT
from mailsflux._simd cimport (
    SIMD_OFF, SSE2, line_end_skip16, name_lower16, swar_line_end_skip16, swar_name_lower16,
    swar_unclean_skip16, swar_unplain_skip16, swar_uri_skip16, unclean_skip16, unplain_skip16,
    uri_skip16,
)

from hashlib import sha256 as _sha256
import time as _time

from mailsflux.errors import DKIMError


cdef extern from "Python.h":
    object PyMemoryView_FromMemory(char *mem, Py_ssize_t size, int flags)
    int PyBUF_READ


cdef enum:
    CR = 13
    LF = 10
    SP = 32
    HT = 9
    COLON = 58

# Above this many body bytes the canonicalizer releases the GIL.
cdef Py_ssize_t NOGIL_BODY = 1 << 16

# c= tag values (RFC 6376 section 3.5) -> True for "relaxed".
_CANON = {"simple": False, "relaxed": True}


cdef class Policy:
    """The ``c=`` tag parsed once: ``"relaxed/simple"`` -> header relaxed, body simple.

    Per RFC 6376 section 3.5, a value without ``/`` names the header
    algorithm and the body algorithm defaults to ``simple``.
    """

    def __init__(self, str value not None):
        parts = value.strip().lower().split("/")
        if len(parts) == 1:
            parts.append("simple")
        if len(parts) != 2 or parts[0] not in _CANON or parts[1] not in _CANON:
            raise DKIMError(
                f"canonicalization {value!r}: expected 'header/body' with each "
                "'relaxed' or 'simple'",
                field="canonicalization",
            )
        self.header = parts[0]
        self.body = parts[1]
        self.header_relaxed = _CANON[self.header]
        self.body_relaxed = _CANON[self.body]
        self.value = f"{self.header}/{self.body}"

    def __repr__(self):
        return f"Policy({self.value!r})"

    def __eq__(self, other):
        return isinstance(other, Policy) and (<Policy>other).value == self.value

    def __hash__(self):
        return hash(self.value)


# --------------------------------------------------------------------------
# Line endings
# --------------------------------------------------------------------------

cdef inline Py_ssize_t _copy_clean(const unsigned char *s, Py_ssize_t i, Py_ssize_t n,
                                   unsigned char *o, Py_ssize_t* m,
                                   Py_ssize_t avail) noexcept nogil:
    """Copy the run at ``s[i:n]`` that relaxed canonicalization leaves as it
    is when nothing is pending (bytes > SP, never WSP or CR, and single SPs
    each followed by a byte > SP) to ``o[m[0]:]``, sixteen bytes at a time
    (_simd.pxd's unclean_skip16); returns the new ``i``, ``m[0]`` moved on
    as far. Each byte copied is > SP or a SP before one that is, so nothing
    is pending after them; the caller's byte steps take the rest of the run
    (always ``s[n - 1]``, and more where the block test gives only a lower
    bound).

    ``s[0:avail]`` may be read (``avail >= n``): a block may look past ``n``
    but never copies ``s[n - 1]`` or beyond, so whether a SP at the end is
    kept is decided from ``s[0:n]`` alone.

    Invariant: i + 16 < avail for each block read (s[i .. i + 16]); each
    block writes o[m .. m + 16) with m <= i < n - 1, within the caller's output
    of n bytes (of n + 16 when avail > n); bytes past the run are written
    over later or lie past the returned length."""
    cdef Py_ssize_t k
    if avail > n:  # a field in its message: the clamped loop
        while i < n - 1 and i + 16 < avail:
            k = unclean_skip16(s + i)
            memcpy(o + m[0], s + i, 16)
            if k > n - 1 - i:
                k = n - 1 - i
            m[0] += k
            i += k
            if k < 16:
                break
        return i
    # The body (avail == n, so the inlined copy keeps only this loop): a
    # block read here ends at s[n - 1], so it never copies that byte.
    while i + 16 < n:
        k = unclean_skip16(s + i)
        memcpy(o + m[0], s + i, 16)
        m[0] += k
        i += k
        if k < 16:
            break
    return i


cdef bint _is_normal(const unsigned char *p, Py_ssize_t n) noexcept nogil:
    """Every LF preceded by CR, every CR followed by LF, ends in CRLF (or empty).

    Equivalently: ``p[0]`` is not LF, ``p[n - 1]`` is LF, and for every
    ``j`` in ``1 .. n - 1`` "``p[j - 1]`` is CR" equals "``p[j]`` is LF".  The
    loop has no branch, so the compiler vectorizes it (one memchr per line
    was most of a small message's cost).
    """
    cdef Py_ssize_t j
    cdef unsigned char bad = 0
    if n == 0:
        return True
    if n < 2 or p[n - 1] != LF or p[0] == LF:
        return False
    for j in range(1, n):  # invariant: 1 <= j < n, so p[j - 1] and p[j] are in p[0 .. n)
        bad |= (p[j - 1] == CR) ^ (p[j] == LF)
    return not bad


@cython.boundscheck(False)  # invariant: i < n reads p; m <= 2 * i <= 2 * n, +2 at the end
@cython.wraparound(False)
cpdef bytes normalize_crlf(bytes data):
    """``data`` as SMTP will carry it: lone CR and lone LF become CRLF, and a
    non-empty message gets a final CRLF if it lacks one.

    This is what aiosmtplib and smtplib do to a message before DATA, so a
    signature made over the result survives transmission.  Returns ``data``
    itself (no copy) when it is already normal.
    """
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data), i = 0, m = 0
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef unsigned char *buf
    cdef unsigned char c
    if _is_normal(p, n):
        return data
    buf = <unsigned char *>malloc(2 * n + 2)
    if buf == NULL:
        raise MemoryError()
    try:
        while i < n:
            c = p[i]
            i += 1
            if c == CR:
                if i < n and p[i] == LF:
                    i += 1
                buf[m] = CR
                buf[m + 1] = LF
                m += 2
            elif c == LF:
                buf[m] = CR
                buf[m + 1] = LF
                m += 2
            else:
                buf[m] = c
                m += 1
        if buf[m - 1] != LF:  # n > 0 here, so m > 0
            buf[m] = CR
            buf[m + 1] = LF
            m += 2
        return PyBytes_FromStringAndSize(<char *>buf, m)
    finally:
        free(buf)


# --------------------------------------------------------------------------
# The four canonicalizers.  Each writes into a caller-owned C buffer.
# --------------------------------------------------------------------------

# RFC 6376 section 3.4.1 -- header canonicalization "simple": the field is
# not changed in any way (the caller appends the CRLF that ends it).
cdef inline Py_ssize_t _header_simple(
    const unsigned char *s, Py_ssize_t n, unsigned char *o
) noexcept nogil:
    memcpy(o, s, n)
    return n


# RFC 6376 section 3.4.2 -- header canonicalization "relaxed":
#   lowercase the field name; unfold (delete CRLF immediately followed by
#   WSP); turn every run of WSP into one SP; delete WSP at the end of the
#   value; delete WSP before and after the colon that ends the name.
# ``s[0:n]`` is one field without its final CRLF; a field with no colon is
# all name.  Every input byte yields at most one output byte (a SP stands for
# a run of at least one WSP that itself wrote nothing), so ``o`` needs ``n``.
# ``s[0:avail]`` may be read (``avail >= n``): a field in a message is
# followed by the rest of it, so blocks of sixteen bytes can run to the
# field's end. They write up to fifteen bytes past ``o[n]``, so with
# ``avail > n`` the output needs ``n + 16``; what lies past ``n`` never
# changes the result.
@cython.boundscheck(False)  # invariant: 0 <= i < n reads s; m <= i so o[m] < o+n
@cython.wraparound(False)
cdef Py_ssize_t _header_relaxed(
    const unsigned char *s, Py_ssize_t n, unsigned char *o, Py_ssize_t avail
) noexcept nogil:
    cdef Py_ssize_t i = 0, m = 0, k
    cdef bint in_name = True, pending = False, value_started = False
    cdef unsigned char c
    # The name, lowercased sixteen bytes at a time while no byte ends it: one
    # output byte per input byte; the byte steps take the byte that ends it.
    # Invariant: i < n and i + 16 <= avail for each block (reads s[i .. i+16),
    # writes o[i .. i+16), within n + 16, and within n when avail == n).
    while i < n and i + 16 <= avail:
        k = name_lower16(s + i, o + i)
        if k > n - i:
            k = n - i  # the rest of the block is not this field's
        i += k
        if k < 16:
            break
    m = i
    while i < n:
        c = s[i]
        if c == CR and i + 2 < n and s[i + 1] == LF and (s[i + 2] == SP or s[i + 2] == HT):
            i += 2  # unfold; the WSP that follows is handled as WSP
            continue
        i += 1
        if c == SP or c == HT:
            pending = True
        elif in_name:
            if c == COLON:
                in_name = False
                pending = False  # WSP before the colon is deleted
                o[m] = c
                m += 1
            else:
                if pending:
                    o[m] = SP
                    m += 1
                    pending = False
                if c >= 65 and c <= 90:
                    c += 32
                o[m] = c
                m += 1
        else:
            if pending and value_started:  # WSP right after the colon is deleted
                o[m] = SP
                m += 1
            pending = False
            value_started = True
            o[m] = c
            m += 1
            # What follows unchanged (bytes above SP, single SPs between
            # them) is copied sixteen bytes at a time; nothing is pending here.
            i = _copy_clean(s, i, n, o, &m, avail)
            while i < n and s[i] > SP:  # invariant kept: one output byte per input byte
                o[m] = s[i]
                m += 1
                i += 1
    return m  # a trailing WSP run (``pending``) is dropped: end-of-value WSP


# RFC 6376 section 3.4.3 -- body canonicalization "simple": ignore all empty
# lines at the end of the body; if there is no body or no trailing CRLF, a
# CRLF is added.  Returns the length ``e`` of the prefix of ``s`` that is
# kept; the canonical body is ``s[:e]`` plus CRLF when ``e`` is 0 or
# ``s[:e]`` does not end in CRLF (see :func:`_simple_needs_crlf`).  No copy.
@cython.boundscheck(False)  # invariant: e >= 4 before reading s[e-4 .. e-1]
@cython.wraparound(False)
cdef Py_ssize_t _body_simple(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t e = n
    while e >= 4 and s[e - 1] == LF and s[e - 2] == CR and s[e - 3] == LF and s[e - 4] == CR:
        e -= 2
    return e


cdef inline bint _simple_needs_crlf(const unsigned char *s, Py_ssize_t e) noexcept nogil:
    return e < 2 or s[e - 2] != CR or s[e - 1] != LF


# RFC 6376 section 3.4.4 -- body canonicalization "relaxed":
#   ignore all WSP at the end of lines; reduce every run of WSP inside a line
#   to one SP; ignore all empty lines at the end of the body; if the body is
#   non-empty but does not end with CRLF, a CRLF is added.
# Output length <= n + 2 (each byte yields at most one, plus a final CRLF);
# returns the canonical length (the output up to the last non-empty line).
@cython.boundscheck(False)  # invariant: i < n reads s (i+1 < n checked); m <= i + 2 <= n + 2
@cython.wraparound(False)
cdef Py_ssize_t _body_relaxed(
    const unsigned char *s, Py_ssize_t n, unsigned char *o
) noexcept nogil:
    cdef Py_ssize_t i = 0, m = 0, keep = 0
    cdef bint pending = False, content = False
    cdef unsigned char c
    while i < n:
        c = s[i]
        if c > SP:  # the common case: printable ASCII or 8-bit, never WSP/CR
            if pending:
                o[m] = SP
                m += 1
                pending = False
            o[m] = c
            m += 1
            content = True
            i += 1
            # What follows unchanged (bytes above SP, single SPs between
            # them) is copied sixteen bytes at a time; nothing is pending here.
            i = _copy_clean(s, i, n, o, &m, n)
            while i < n and s[i] > SP:  # the rest of the run, copied as it is
                o[m] = s[i]
                m += 1
                i += 1
        elif c == SP or c == HT:
            pending = True
            i += 1
        elif c == CR and i + 1 < n and s[i + 1] == LF:
            pending = False  # WSP at the end of a line is ignored
            o[m] = CR
            o[m + 1] = LF
            m += 2
            i += 2
            if content:
                keep = m  # trailing empty lines stay beyond ``keep``
            content = False
        else:  # other control bytes, a lone CR, NUL: ordinary data
            if pending:
                o[m] = SP
                m += 1
                pending = False
            o[m] = c
            m += 1
            content = True
            i += 1
    if content:
        o[m] = CR
        o[m + 1] = LF
        m += 2
        keep = m
    return keep


# --------------------------------------------------------------------------
# Public helpers (used by tests, fuzzing and the signer)
# --------------------------------------------------------------------------

def block_skips(bytes data not None, Py_ssize_t at):
    """The byte scanners' sixteen-byte block tests (_simd.pxd) at
    ``data[at:]``, which needs 17 bytes from ``at``: ``(built, swar)``, each
    ``(line_end, unplain, unclean)``; ``built`` is the form the scanners
    use (SSE2 where :data:`BLOCKS_SSE2`), ``swar`` the portable one."""
    cdef const unsigned char *p
    if at < 0 or at + 17 > PyBytes_GET_SIZE(data):
        raise ValueError("a block test needs 17 bytes")
    p = <const unsigned char *>PyBytes_AS_STRING(data) + at
    return ((line_end_skip16(p), unplain_skip16(p), unclean_skip16(p)),
            (swar_line_end_skip16(p), swar_unplain_skip16(p), swar_unclean_skip16(p)))


def name_blocks(bytes data not None, Py_ssize_t at):
    """The field-name block (_simd.pxd's name_lower16) at ``data[at:]``,
    which needs 16 bytes from ``at``: ``(built, swar)``, each ``(k, the
    sixteen bytes it wrote)``."""
    cdef const unsigned char *p
    cdef unsigned char a[16]
    cdef unsigned char b[16]
    cdef Py_ssize_t ka, kb
    if at < 0 or at + 16 > PyBytes_GET_SIZE(data):
        raise ValueError("a name block needs 16 bytes")
    p = <const unsigned char *>PyBytes_AS_STRING(data) + at
    ka = name_lower16(p, a)
    kb = swar_name_lower16(p, b)
    return ((ka, PyBytes_FromStringAndSize(<char *>a, 16)),
            (kb, PyBytes_FromStringAndSize(<char *>b, 16)))


def uri_blocks(bytes data not None, Py_ssize_t at):
    """The URI block test (_simd.pxd's uri_skip16, which the MIME writer's
    List-Unsubscribe check uses) at ``data[at:]``, which needs 16 bytes
    from ``at``: ``(built, swar)``."""
    cdef const unsigned char *p
    if at < 0 or at + 16 > PyBytes_GET_SIZE(data):
        raise ValueError("a URI block needs 16 bytes")
    p = <const unsigned char *>PyBytes_AS_STRING(data) + at
    return (uri_skip16(p), swar_uri_skip16(p))


#: Whether the block tests were built with SSE2 (x86-64) or as SWAR words.
BLOCKS_SSE2 = bool(SSE2)
#: Whether the SWAR form finds the first byte (else it gives a lower bound).
BLOCKS_SWAR_EXACT = bool(SWAR_EXACT)
#: Whether SSE2 was turned off at build time (MF_NO_SIMD).
BLOCKS_SIMD_OFF = bool(SIMD_OFF)


def canonicalize_body(bytes body not None, bint relaxed):
    """The canonical form of ``body`` (CRLF line ends expected)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(body), e
    cdef const unsigned char *s = <const unsigned char *>PyBytes_AS_STRING(body)
    if not relaxed:
        e = _body_simple(s, n)
        out = body[:e]
        return out + b"\r\n" if _simple_needs_crlf(s, e) else out
    out = PyBytes_FromStringAndSize(NULL, n + 2)
    e = _body_relaxed(s, n, <unsigned char *>PyBytes_AS_STRING(out))
    return out[:e]


def canonicalize_header(bytes field not None, bint relaxed):
    """The canonical form of one header field given without its final CRLF."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(field), m
    if not relaxed:
        return field
    out = PyBytes_FromStringAndSize(NULL, n)
    m = _header_relaxed(
        <const unsigned char *>PyBytes_AS_STRING(field), n,
        <unsigned char *>PyBytes_AS_STRING(out), n,
    )
    return out[:m]


@cython.boundscheck(False)  # invariant: r + take <= n, w + take (+3) <= n + 3 * folds
@cython.wraparound(False)
def fold_value(bytes value not None, Py_ssize_t first, Py_ssize_t width):
    """``value`` split by ``CRLF SP`` after ``first`` bytes, then every ``width`` bytes."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(value), folds
    if first < 1 or width < 1:
        raise ValueError("first and width must be positive")
    if n <= first:
        return value
    folds = (n - first + width - 1) // width
    out = PyBytes_FromStringAndSize(NULL, n + 3 * folds)
    cdef const char *s = PyBytes_AS_STRING(value)
    cdef char *o = PyBytes_AS_STRING(out)
    _fold_into(o, s, n, first, width)
    return out


@cython.boundscheck(False)  # invariant: r + take <= n, w + take (+3) <= n + 3 * folds
@cython.wraparound(False)
cdef Py_ssize_t _fold_into(
    char *o, const char *s, Py_ssize_t n, Py_ssize_t first, Py_ssize_t width
) noexcept nogil:
    """Write ``s[0:n]`` into ``o`` split by ``CRLF SP`` after ``first`` bytes,
    then every ``width`` bytes; returns the bytes written. ``o`` holds
    n + 3 * folds bytes, folds = ceil((n - first) / width) when n > first."""
    cdef Py_ssize_t r = 0, w = 0, take = first
    while r < n:
        if take > n - r:
            take = n - r
        if r:
            o[w] = b"\r"
            o[w + 1] = b"\n"
            o[w + 2] = b" "
            w += 3
        memcpy(o + w, s + r, take)
        w += take
        r += take
        take = width
    return w


cdef bytes _digest_buffer(unsigned char *buf, Py_ssize_t n, bint add_crlf):
    """SHA-256 of ``buf[0:n]`` (+ CRLF), hashed in place through a memoryview."""
    view = PyMemoryView_FromMemory(<char *>buf, n, PyBUF_READ)
    try:
        h = _sha256(view)
    finally:
        view.release()
    if add_crlf:
        h.update(b"\r\n")
    return h.digest()


@cython.boundscheck(False)  # invariant: j < n == name length, and the name is within p
@cython.wraparound(False)
cdef inline bint _field_named(
    const unsigned char *p, const Field *f, const unsigned char *name, Py_ssize_t n
) noexcept nogil:
    """Field ``f``'s name (WSP before the colon ignored) equals lowercase ``name``."""
    cdef Py_ssize_t s = f.start, e = f.name_end, j
    cdef unsigned char c
    if e - s != n or e < 0:  # the length first: most names differ there
        return False
    for j in range(n):
        c = p[s + j]
        if c >= 65 and c <= 90:
            c += 32
        if c != name[j]:
            return False
    return True


cdef class Message:
    """A message normalized to CRLF, with header fields located by offset.

    ``data`` is the normalized message (the input object itself when it had
    no bare LF).  The header section ends at the first empty line; without
    one, the whole message is header and the body is empty.
    """

    def __cinit__(self, bytes data not None):
        self.fields = NULL
        self.nfields = 0
        self.cap = 0
        self.data = normalize_crlf(data)
        self._parse()

    def __dealloc__(self):
        free(self.fields)

    @cython.boundscheck(False)  # invariant: i < n before reading p[i]; lf is in [p+i, p+n);
    # i < name_end <= colon < e <= n before reading p[name_end - 1]
    @cython.wraparound(False)
    cdef int _parse(self) except -1:
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(self.data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(self.data)
        cdef Py_ssize_t i = 0, e, nxt, name_end
        cdef const unsigned char *lf
        cdef const unsigned char *colon
        cdef Field *grown
        self.body_start = n
        while i < n:
            if p[i] == CR and i + 1 < n and p[i + 1] == LF:
                self.body_start = i + 2  # the empty line ends the header
                break
            lf = <const unsigned char *>memchr(p + i, LF, n - i)
            if lf == NULL:
                e = n  # last header line without CRLF, and no body
                nxt = n
            else:
                e = (lf - p) - 1  # normalized: a CR precedes every LF
                nxt = (lf - p) + 1
            if (p[i] == SP or p[i] == HT) and self.nfields > 0:
                self.fields[self.nfields - 1].end = e  # continuation line
            else:
                if self.nfields == self.cap:
                    self.cap = self.cap * 2 if self.cap else 32
                    grown = <Field *>realloc(self.fields, self.cap * sizeof(Field))
                    if grown == NULL:
                        raise MemoryError()
                    self.fields = grown
                colon = <const unsigned char *>memchr(p + i, COLON, e - i)
                self.fields[self.nfields].start = i
                self.fields[self.nfields].end = e
                if colon == NULL:
                    self.fields[self.nfields].colon = -1
                    self.fields[self.nfields].name_end = -1
                else:
                    self.fields[self.nfields].colon = colon - p
                    name_end = colon - p
                    while name_end > i and (p[name_end - 1] == SP or p[name_end - 1] == HT):
                        name_end -= 1
                    self.fields[self.nfields].name_end = name_end
                self.nfields += 1
            i = nxt
        return 0

    cdef Py_ssize_t _count(self, bytes name) noexcept:
        """How many fields are named ``name`` (lowercase; WSP before the colon ignored)."""
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(self.data)
        cdef const unsigned char *q = <const unsigned char *>PyBytes_AS_STRING(name)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(name), k, c = 0
        for k in range(self.nfields):
            if _field_named(p, &self.fields[k], q, n):
                c += 1
        return c

    @property
    def header_count(self):
        """How many header fields the message has."""
        return self.nfields

    @property
    def body(self):
        """The (normalized, not canonicalized) body."""
        return self.data[self.body_start:]

    def counts(self, tuple names not None):
        """How many fields each lowercase name in ``names`` (bytes) has."""
        return tuple([self._count(<bytes?>obj) for obj in names])

    @cython.boundscheck(False)  # invariant: 0 <= k < nfields; used has nfields entries
    @cython.wraparound(False)
    cdef Py_ssize_t _signed_fields(
        self, tuple names, bint relaxed, unsigned char *buf
    ) except -1:
        """Write the fields ``names`` select, canonicalized, each + CRLF, to ``buf``.

        ``buf`` needs ``body_start + 2 * nfields + 16`` bytes: each field is
        taken at most once, all fields lie before ``body_start``, and
        canonicalizing never lengthens a field; relaxed, a field's blocks may
        write up to fifteen bytes past its end (see _header_relaxed).
        Returns the bytes written.
        """
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(self.data)
        cdef Py_ssize_t total = PyBytes_GET_SIZE(self.data)
        cdef Py_ssize_t small[64]
        cdef Py_ssize_t *keys = small
        cdef Py_ssize_t m = 0, k, fn, qn, want, L
        cdef const unsigned char *q
        cdef const Field *f
        cdef unsigned char c
        cdef bytes name
        if self.nfields > 64:
            keys = <Py_ssize_t *>malloc(self.nfields * sizeof(Py_ssize_t))
            if keys == NULL:
                raise MemoryError()
        try:
            # Each field's key: its name's length and first byte (lowercased,
            # as _field_named compares it), or -1 for a field without a colon
            # and for one already taken. A name is compared in full only with
            # the fields whose key is its own, where it was compared with
            # every field (most differ in length, but each took a call).
            for k in range(self.nfields):
                f = &self.fields[k]
                if f.name_end < 0:
                    keys[k] = -1
                    continue
                L = f.name_end - f.start
                c = p[f.start] if L > 0 else 0
                if c >= 65 and c <= 90:
                    c += 32
                keys[k] = (L << 8) | c
            for obj in names:
                name = <bytes?>obj
                q = <const unsigned char *>PyBytes_AS_STRING(name)
                qn = PyBytes_GET_SIZE(name)
                want = (qn << 8) | (q[0] if qn > 0 else 0)
                k = self.nfields - 1
                while k >= 0:
                    if keys[k] == want and _field_named(p, &self.fields[k], q, qn):
                        keys[k] = -1  # taken
                        fn = self.fields[k].end - self.fields[k].start
                        if relaxed:
                            m += _header_relaxed(
                                p + self.fields[k].start, fn, buf + m, total - self.fields[k].start
                            )
                        else:
                            m += _header_simple(p + self.fields[k].start, fn, buf + m)
                        buf[m] = CR
                        buf[m + 1] = LF
                        m += 2
                        break
                    k -= 1
        finally:
            if keys != small:
                free(keys)
        return m

    def header_hash_input(self, tuple names not None, bint relaxed, bytes signature=None):
        """The bytes a signature's header hash covers (RFC 6376 section 3.7).

        ``names`` is the ``h=`` list as lowercase bytes.  Each name takes the
        last field of that name not yet taken (section 5.4.2: bottom-up); a
        name with no field left contributes nothing.  Each field is
        canonicalized and ends in CRLF.  ``signature``, if given, is the
        DKIM-Signature field with an empty ``b=`` and no final CRLF; it is
        canonicalized and appended without CRLF.
        """
        cdef unsigned char *buf = NULL
        cdef Py_ssize_t m, sn = 0
        if signature is not None:
            sn = PyBytes_GET_SIZE(signature)
        buf = <unsigned char *>malloc(self.body_start + 2 * self.nfields + sn + 2 + 16)
        if buf == NULL:
            raise MemoryError()
        try:
            m = self._signed_fields(names, relaxed, buf)
            if signature is not None:
                m += _canon_header(
                    <const unsigned char *>PyBytes_AS_STRING(signature), sn, buf + m, relaxed
                )
            return PyBytes_FromStringAndSize(<char *>buf, m)
        finally:
            free(buf)

    def signing_input(
        self, tuple names not None, bytes head not None, bytes tx not None, bytes h not None,
        bint header_relaxed, bint body_relaxed, bint prehash,
    ):
        """One signature's ``(unsigned field, header hash input)`` in one call.

        The unsigned field is ``head + tx + b";\\r\\n h=" + h + b";\\r\\n bh="
        + base64(body_hash(body_relaxed)) + b";\\r\\n b="``; the second item is
        ``header_hash_input(names, header_relaxed, unsigned)``, or its SHA-256
        digest when ``prehash`` (Ed25519, RFC 8463 section 3).
        """
        cdef bytes bh = self._body_digest(body_relaxed)
        cdef Py_ssize_t hn = PyBytes_GET_SIZE(head), tn = PyBytes_GET_SIZE(tx)
        cdef Py_ssize_t gn = PyBytes_GET_SIZE(h), un, m
        cdef unsigned char *buf
        cdef char *w
        un = hn + tn + 6 + gn + 7 + 44 + 6
        unsigned = PyBytes_FromStringAndSize(NULL, un)
        w = PyBytes_AS_STRING(unsigned)
        memcpy(w, PyBytes_AS_STRING(head), hn)
        w += hn
        memcpy(w, PyBytes_AS_STRING(tx), tn)
        w += tn
        memcpy(w, b";\r\n h=", 6)
        w += 6
        memcpy(w, PyBytes_AS_STRING(h), gn)
        w += gn
        memcpy(w, b";\r\n bh=", 7)
        w += 7
        w += b64_write(<const unsigned char *>PyBytes_AS_STRING(bh), 32, w)
        memcpy(w, b";\r\n b=", 6)
        buf = <unsigned char *>malloc(self.body_start + 2 * self.nfields + un + 2 + 16)
        if buf == NULL:
            raise MemoryError()
        try:
            m = self._signed_fields(names, header_relaxed, buf)
            m += _canon_header(
                <const unsigned char *>PyBytes_AS_STRING(unsigned), un, buf + m, header_relaxed
            )
            if prehash:
                return unsigned, _digest_buffer(buf, m, False)
            return unsigned, PyBytes_FromStringAndSize(<char *>buf, m)
        finally:
            free(buf)

    def canonical_body(self, bint relaxed):
        """The canonical body (a copy; the signer hashes without making one)."""
        return canonicalize_body(self.data[self.body_start:], relaxed)

    def body_hash(self, bint relaxed):
        """SHA-256 of the canonical body (cached per canonicalization)."""
        return self._body_digest(relaxed)

    cdef bytes _body_digest(self, bint relaxed):
        cached = self._bh_relaxed if relaxed else self._bh_simple
        if cached is not None:
            return cached
        cdef unsigned char *s = <unsigned char *>PyBytes_AS_STRING(self.data) + self.body_start
        cdef Py_ssize_t n = PyBytes_GET_SIZE(self.data) - self.body_start, e
        cdef unsigned char *buf
        cdef bytes digest
        if not relaxed:
            e = _body_simple(s, n)
            digest = _digest_buffer(s, e, _simple_needs_crlf(s, e))
            self._bh_simple = digest
            return digest
        buf = <unsigned char *>malloc(n + 2)
        if buf == NULL:
            raise MemoryError()
        try:
            if n >= NOGIL_BODY:
                with nogil:
                    e = _body_relaxed(s, n, buf)
            else:
                e = _body_relaxed(s, n, buf)
            digest = _digest_buffer(buf, e, False)
        finally:
            free(buf)
        self._bh_relaxed = digest
        return digest


cdef inline Py_ssize_t _canon_header(
    const unsigned char *s, Py_ssize_t n, unsigned char *o, bint relaxed
) noexcept nogil:
    return _header_relaxed(s, n, o, n) if relaxed else _header_simple(s, n, o)


def dkim_field(
    bytes unsigned not None, bytes sig not None, Py_ssize_t first, Py_ssize_t width,
    bytes tail not None,
):
    """``unsigned + fold_value(base64(sig), first, width) + b"\\r\\n" + tail`` in one copy."""
    return _dkim_field(unsigned, sig, first, width, tail)


@cython.boundscheck(False)  # invariant: r + take <= L reads tmp; w stays within the sized output
@cython.wraparound(False)
cdef bytes _dkim_field(
    bytes unsigned, bytes sig, Py_ssize_t first, Py_ssize_t width, bytes tail,
):
    cdef Py_ssize_t un = PyBytes_GET_SIZE(unsigned), sn = PyBytes_GET_SIZE(sig)
    cdef Py_ssize_t tn = PyBytes_GET_SIZE(tail), L, folds = 0, w
    cdef unsigned char stack[1024]
    cdef unsigned char *tmp = stack
    cdef char *o
    if first < 1 or width < 1:
        raise ValueError("first and width must be positive")
    L = 4 * ((sn + 2) // 3)
    if L > first:
        folds = (L - first + width - 1) // width
    if L > 1024:
        tmp = <unsigned char *>malloc(L)
        if tmp == NULL:
            raise MemoryError()
    try:
        b64_write(<const unsigned char *>PyBytes_AS_STRING(sig), sn, <char *>tmp)
        out = PyBytes_FromStringAndSize(NULL, un + L + 3 * folds + 2 + tn)
        o = PyBytes_AS_STRING(out)
        memcpy(o, PyBytes_AS_STRING(unsigned), un)
        w = un + _fold_into(o + un, <const char *>tmp, L, first, width)
        o[w] = b"\r"
        o[w + 1] = b"\n"
        memcpy(o + w + 2, PyBytes_AS_STRING(tail), tn)
        return out
    finally:
        if tmp != stack:
            free(tmp)


cdef enum:
    # Counted names shorter than this are found by their length's bucket.
    NAME_BUCKETS = 64


cdef class SigningPlan:
    """One signer's per-message work up to the private-key operation.

    Built once per signer.  ``counted`` is the default ``h=`` name list
    (lowercase bytes) whose fields are counted per message and ``h_for``
    maps those counts to ``(names, h)``, cached in ``h_cache`` (the dict
    ``h_for`` fills); or ``counted`` is None and ``fixed`` is the
    ``(names, h)`` used for every message.  ``head`` is the field up to
    ``t=``; ``expire_after`` adds ``x=``.
    """

    cdef tuple counted
    cdef Py_ssize_t from_index
    cdef object h_for
    cdef dict h_cache
    cdef tuple fixed
    cdef bytes head
    cdef object expire_after
    cdef tuple tx_cache  # (t, formatted t= [and x=]) replaced whole: thread-safe
    cdef bint header_relaxed, body_relaxed, prehash
    # The counted names' indices by length: those of length L < NAME_BUCKETS
    # are _order[_starts[L]:_starts[L + 1]], the longer ones from
    # _starts[NAME_BUCKETS] to the end. A message's fields are each looked
    # up there, one pass, where each name took a pass over the fields.
    cdef Py_ssize_t* _order
    cdef Py_ssize_t _starts[NAME_BUCKETS + 1]
    cdef tuple _last  # (the last counts as bytes, their entry); see _look

    def __dealloc__(self):
        free(self._order)

    def __init__(
        self, tuple counted, Py_ssize_t from_index, h_for, dict h_cache, tuple fixed,
        bytes head not None, expire_after, bint header_relaxed, bint body_relaxed, bint prehash,
    ):
        if counted is not None:
            if not 0 <= from_index < len(counted):
                raise ValueError("from_index out of range")
            for name in counted:
                if type(name) is not bytes:
                    raise TypeError("counted names must be bytes")
        elif fixed is None or len(fixed) != 2:
            raise ValueError("a plan needs counted names or a fixed (names, h)")
        self.counted = counted
        self._last = None
        if counted is not None:
            self._bucket(counted)
        self.from_index = from_index
        self.h_for = h_for
        self.h_cache = h_cache
        self.fixed = fixed
        self.head = head
        self.expire_after = expire_after
        self.tx_cache = (None, b"")
        self.header_relaxed = header_relaxed
        self.body_relaxed = body_relaxed
        self.prehash = prehash

    cdef int _bucket(self, tuple counted) except -1:
        cdef Py_ssize_t i, L, n = len(counted)
        cdef Py_ssize_t at[NAME_BUCKETS + 1]
        free(self._order)
        self._order = <Py_ssize_t*>malloc((n if n else 1) * sizeof(Py_ssize_t))
        if self._order is NULL:
            raise MemoryError()
        memset(self._starts, 0, sizeof(self._starts))
        for i in range(n):  # how many a bucket, then where each starts
            L = min(len(<bytes>counted[i]), NAME_BUCKETS)
            if L < NAME_BUCKETS:
                self._starts[L + 1] += 1
        for L in range(1, NAME_BUCKETS + 1):
            self._starts[L] += self._starts[L - 1]
        memcpy(at, self._starts, sizeof(at))
        for i in range(n):  # in order within a bucket; the longer names last
            L = min(len(<bytes>counted[i]), NAME_BUCKETS)
            self._order[at[L]] = i
            at[L] += 1
        return 0

    @cython.boundscheck(False)  # invariant: 0 <= k < nfields; 0 <= t < n; j = _order[t] < n
    @cython.wraparound(False)
    cdef void _count_into(self, Message msg, Py_ssize_t* c) noexcept:
        """How many fields each counted name has (as Message.counts), into
        ``c[0:n]`` (n counted names)."""
        cdef tuple counted = self.counted
        cdef Py_ssize_t n = len(counted), k, t, j, L, lo, hi
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(msg.data)
        cdef const Field *f
        cdef bytes name
        memset(c, 0, n * sizeof(Py_ssize_t))
        for k in range(msg.nfields):
            f = &msg.fields[k]
            if f.name_end < 0:
                continue
            L = f.name_end - f.start
            if L < NAME_BUCKETS:
                lo, hi = self._starts[L], self._starts[L + 1]
            else:
                lo, hi = self._starts[NAME_BUCKETS], n
            for t in range(lo, hi):
                j = self._order[t]
                name = <bytes>PyTuple_GET_ITEM(counted, j)
                if _field_named(p, f, <const unsigned char *>PyBytes_AS_STRING(name),
                                PyBytes_GET_SIZE(name)):
                    c[j] += 1

    cdef tuple _counts(self, Message msg):
        """How many fields each counted name has, as a tuple."""
        return self._look(msg, False)

    cdef object _look(self, Message msg, bint entry):
        """The counts of ``msg`` as a tuple; or with ``entry``, ``(names, h)``
        for them, or None when it has no From.

        A job's messages mostly have the same fields, so the last counts
        and their entry are kept (as bytes, replaced whole with the entry:
        another thread sees one pair or the other): the same counts again
        need no tuple, no hash and no lookup in ``h_cache``. ``h_for`` gives
        one entry for given counts, and ``h_cache`` only ever gains entries
        (Signer._h_for), so the kept one is the one they would give."""
        cdef Py_ssize_t n = len(self.counted), j
        cdef Py_ssize_t small[32]
        cdef Py_ssize_t* c = small
        cdef tuple counts, last
        cdef object v
        cdef bytes seen
        if n > 32:
            c = <Py_ssize_t*>malloc(n * sizeof(Py_ssize_t))
            if c is NULL:
                raise MemoryError()
        try:
            self._count_into(msg, c)
            if entry:
                if not c[self.from_index]:
                    return None
                last = self._last
                if last is not None:
                    seen = <bytes>PyTuple_GET_ITEM(last, 0)
                    if (PyBytes_GET_SIZE(seen) == n * <Py_ssize_t>sizeof(Py_ssize_t)
                            and memcmp(PyBytes_AS_STRING(seen), c, n * sizeof(Py_ssize_t)) == 0):
                        return <object>PyTuple_GET_ITEM(last, 1)
            counts = PyTuple_New(n)
            for j in range(n):
                v = c[j]
                Py_INCREF(v)
                PyTuple_SET_ITEM(counts, j, v)
            if not entry:
                return counts
            got = self.h_cache.get(counts)
            if got is None:
                got = self.h_for(counts)
            self._last = (PyBytes_FromStringAndSize(<char *>c, n * sizeof(Py_ssize_t)), got)
            return got
        finally:
            if c != small:
                free(c)

    def counts(self, Message msg not None):
        """How many fields of ``msg`` each counted name has, in one pass
        (what :meth:`Message.counts` gives for them); None without names."""
        return self._counts(msg) if self.counted is not None else None

    def prepare(self, Message msg not None, timestamp):
        """``(unsigned field, header hash input or its SHA-256)``, or None without From."""
        return self._prepare(msg, timestamp)

    def sign_many(
        self, list messages not None, sign_data, Py_ssize_t first, Py_ssize_t width,
        to_message, no_from,
    ):
        """Each ``(message, timestamp)`` of ``messages`` signed, in order:
        the message with its field on top (``dkim_field`` of what
        :meth:`prepare` gives, ``sign_data`` of its hash input, ``first`` and
        ``width`` the b= folding); ``no_from()`` for one without From. A
        message that is not ``bytes`` is made a Message by ``to_message``.
        One call a batch (the signer's loop was a frame's turn a message)."""
        cdef Py_ssize_t i, n = len(messages)
        cdef list out = [None] * n
        cdef Message msg
        for i in range(n):
            message, timestamp = messages[i]
            msg = Message(message) if type(message) is bytes else to_message(message)
            if msg is None:
                raise TypeError("to_message returned None, not a Message")
            prepared = self._prepare(msg, timestamp)
            if prepared is None:
                out[i] = no_from()
                continue
            unsigned, data = prepared
            sig = sign_data(data)
            if type(sig) is not bytes:
                raise TypeError(f"sign_data returned {type(sig).__name__}, not bytes")
            out[i] = _dkim_field(unsigned, sig, first, width, msg.data)
        return out

    cdef object _prepare(self, Message msg, timestamp):
        cdef tuple entry
        if self.counted is not None:
            entry = self._look(msg, True)
            if entry is None:
                return None
        else:
            if not msg._count(b"from"):
                return None
            entry = self.fixed
        t = int(_time.time()) if timestamp is None else timestamp
        last_t, tx = self.tx_cache
        if last_t is None or t != last_t:
            if self.expire_after:
                tx = b"%d; x=%d" % (t, t + self.expire_after)
            else:
                tx = b"%d" % t
            self.tx_cache = (t, tx)
        return msg.signing_input(
            entry[0], self.head, tx, entry[1], self.header_relaxed, self.body_relaxed, self.prehash
        )
