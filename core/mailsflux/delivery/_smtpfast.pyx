"""Compiled SMTP client helpers: DATA payload assembly and reply parsing.

``payload`` dot-stuffs a message (RFC 5321 4.5.2), ends it with CRLF and the
final dot, and appends the next message's pipelined envelope, all into one
new ``bytes`` with one copy of the message. One scan, sixteen bytes at a
time past blocks without CR or LF, checks the line ends and counts the dots that
start a line; a message with none (the usual case: our MIME encodes a
leading dot) is copied whole, and only the others are stuffed, by ``memchr``
over their dots.

``envelope`` checks an ASCII envelope sender and recipient against the
address grammar (the ASCII pattern in ``mailsflux.delivery.smtp``, fuzzed
against it) and builds the pipelined ``MAIL``/``RCPT``/``DATA`` commands in
one new ``bytes``; anything else (non-ASCII, invalid) it leaves to the
Python path by returning None.

``parse`` splits reply lines out of the receive buffer, keeping the
continuation lines of an unfinished multi-line reply in a list the caller
owns, exactly as the Python reference in ``mailsflux.delivery.smtp`` does (the tests
compare the two on arbitrary bytes).

Index safety: every function reads through a ``const unsigned char*`` (or
``const char*``) with an explicit length; every read is guarded by a
comparison with that length, and every write into a new ``bytes`` stays
within the size computed for it (checked against it at the end).
"""

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdio cimport snprintf
from libc.string cimport memchr, memcpy

from mailsflux._chars cimport is_alnum, is_atext
from mailsflux._fields cimport learn
from mailsflux._simd cimport line_end_skip16


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)

import re

from msgspec.structs import astuple as _astuple

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")

# The RenderedMessage fields an envelope takes, and where each is in
# astuple(message) for the type last seen (see _fields.pxd).
cdef tuple _NAMES = ("smtputf8", "data", "mail_from", "rcpt_to")
cdef Py_ssize_t _AT[4]
cdef list _SEEN = [None]


def payload(bytes data not None, bytes tail not None = b"") -> bytes:
    """``data`` dot-stuffed, CRLF-ended, with ``.\\r\\n``, then ``tail``.

    A bare CR or LF becomes CRLF first (rare: our own messages are CRLF
    already): left alone, ``LF . CRLF`` would end the data early at servers
    that take LF as a line end (SMTP smuggling).
    """
    return _payload(data, tail)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef bytes _payload(bytes data, bytes tail):
    # payload(), for the Pipeline: a C call, not one through the module's dict.
    if data is None or tail is None:
        raise TypeError("payload() takes bytes, not None")
    cdef Py_ssize_t dots = _scan(<const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    if dots < 0:
        data = _LINE_ENDS.sub(b"\r\n", data)
        dots = _scan(<const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t nt = PyBytes_GET_SIZE(tail)
    cdef bint crlf = n >= 2 and s[n - 2] == 13 and s[n - 1] == 10
    cdef Py_ssize_t total = n + dots + (0 if crlf else 2) + 3 + nt
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef unsigned char* o = <unsigned char*>PyBytes_AS_STRING(out)
    cdef Py_ssize_t i = 0, j = 0, k, left = dots
    cdef const unsigned char* p
    if n > 0 and s[0] == 46:
        o[0] = 46
        j = 1
        left -= 1
    while left > 0 and i < n:
        p = <const unsigned char*>memchr(s + i, 46, n - i)
        if p == NULL:
            break
        k = p - s + 1  # just past the dot
        memcpy(o + j, s + i, k - i)
        j += k - i
        if k >= 3 and s[k - 3] == 13 and s[k - 2] == 10:
            o[j] = 46
            j += 1
            left -= 1
        i = k
    if i < n:
        memcpy(o + j, s + i, n - i)
        j += n - i
    if not crlf:
        o[j] = 13
        o[j + 1] = 10
        j += 2
    o[j] = 46
    o[j + 1] = 13
    o[j + 2] = 10
    j += 3
    if nt:
        memcpy(o + j, PyBytes_AS_STRING(tail), nt)
        j += nt
    if j != total:  # cannot happen: the count and the copy agree
        raise SystemError("payload size mismatch")
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _scan(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """The dots to stuff in ``s`` (one at the start, and one after each
    CRLF), or -1 when ``s`` has a CR not followed by LF or an LF not after
    a CR.

    Blocks of sixteen bytes without CR or LF are skipped whole, and in a
    block with one the scan moves to its first CR or LF (_simd.pxd: at
    least towards it); every CR and LF is looked at in order, and a CR
    takes its LF with it, so an LF met alone is a bare one. Invariant:
    i + 16 <= n for each block read, and the jump stays inside that block
    (k < 16), so i < n after it; i + 1 < n and i + 2 < n checked before
    those bytes are read."""
    cdef Py_ssize_t i = 0, dots = 0, k
    cdef unsigned char c
    if n > 0 and s[0] == 46:
        dots = 1
    while i < n:
        if i + 16 <= n:
            k = line_end_skip16(s + i)
            i += k
            if k == 16:
                continue
        c = s[i]
        if c == 13:
            if i + 1 >= n or s[i + 1] != 10:
                return -1
            if i + 2 < n and s[i + 2] == 46:
                dots += 1
            i += 2
        elif c == 10:
            return -1
        else:
            i += 1
    return dots


@cython.boundscheck(False)
@cython.wraparound(False)
def parse(const unsigned char[::1] buf, list lines not None):
    """``(consumed, [(code, text), ...], bad_line_or_None)`` for ``buf``.

    Each ``\\n``-ended line (trailing ``\\r`` stripped) must start with three
    digits and then a space, a hyphen or nothing; a hyphen continues a
    multi-line reply, whose earlier lines wait in ``lines``. On a malformed
    line parsing stops: the replies before it are returned with the line's
    first 80 bytes.
    """
    cdef Py_ssize_t consumed = 0
    cdef list replies = []
    bad = _parse_into(&buf[0] if buf.shape[0] else NULL, buf.shape[0], lines, replies, &consumed)
    return consumed, replies, bad


cdef object _parse_into(const unsigned char* s, Py_ssize_t n, list lines, list replies,
                        Py_ssize_t* consumed):
    """:func:`parse` of ``s[0:n]``: the whole replies appended to ``replies``,
    the bytes they took in ``consumed[0]``; returns the malformed line's
    first 80 bytes, or None."""
    cdef Py_ssize_t start = 0, end, ln
    cdef const unsigned char* p
    cdef unsigned char sep
    cdef int code
    cdef str text
    while start < n:
        p = <const unsigned char*>memchr(s + start, 10, n - start)
        if p == NULL:
            break
        end = p - s
        ln = end - start
        while ln > 0 and s[start + ln - 1] == 13:
            ln -= 1
        if (
            ln < 3
            or not (48 <= s[start] <= 57 and 48 <= s[start + 1] <= 57 and 48 <= s[start + 2] <= 57)
            or (ln > 3 and s[start + 3] != 32 and s[start + 3] != 45)
        ):
            consumed[0] = end + 1
            return PyBytes_FromStringAndSize(<const char*>(s + start), ln if ln < 80 else 80)
        code = (s[start] - 48) * 100 + (s[start + 1] - 48) * 10 + (s[start + 2] - 48)
        sep = s[start + 3] if ln > 3 else 0
        if ln > 4:
            text = PyUnicode_DecodeUTF8(<const char*>(s + start + 4), ln - 4, "replace")
        else:
            text = ""
        start = end + 1
        if sep == 45:
            lines.append(text)
        elif lines:
            lines.append(text)
            replies.append((code, "\n".join(lines)))
            del lines[:]
        else:
            replies.append((code, text))
    consumed[0] = start
    return None


cdef bint _ascii_address(const unsigned char* s, Py_ssize_t n) noexcept:
    """Does s[0:n] fully match the ASCII envelope address pattern?

    atom(.atom)* "@" (label(.label)* | "[" [A-Za-z0-9:.-]+ "]"), a label
    being alnum, or alnum [alnum-]* alnum. Every read of s[i] is guarded by
    ``i < n`` (or by ``n - 1`` for the closing bracket).
    """
    cdef Py_ssize_t i = 0, start
    cdef bint tail_ok
    while True:  # the local part: atoms joined by single dots
        start = i
        while i < n and is_atext(s[i]):
            i += 1
        if i == start:
            return False
        if i < n and s[i] == 46:
            i += 1
            continue
        break
    if i >= n or s[i] != 64:
        return False
    i += 1
    if i < n and s[i] == 91:  # an address literal, to the end
        i += 1
        start = i
        while i < n and (is_alnum(s[i]) or s[i] == 58 or s[i] == 46 or s[i] == 45):
            i += 1
        return i > start and i == n - 1 and s[i] == 93
    while True:  # labels joined by single dots; no hyphen at either end
        if i >= n or not is_alnum(s[i]):
            return False
        i += 1
        tail_ok = True
        while i < n and (is_alnum(s[i]) or s[i] == 45):
            tail_ok = s[i] != 45
            i += 1
        if not tail_ok:
            return False
        if i == n:
            return True
        if s[i] != 46:
            return False
        i += 1


def ascii_address(str addr not None) -> bool:
    """True when ``addr`` is ASCII and an envelope address (False for any non-ASCII)."""
    if not PyUnicode_IS_ASCII(addr):
        return False
    return _ascii_address(<const unsigned char*>PyUnicode_DATA(addr), PyUnicode_GET_LENGTH(addr))


def envelope(str mail_from not None, str rcpt_to not None, Py_ssize_t size):
    """``MAIL FROM:<s>[ SIZE=n]\r\nRCPT TO:<r>\r\nDATA\r\n``, or None.

    None unless both addresses are ASCII, the recipient is an envelope
    address and the sender is one or empty (the null sender). ``size`` < 0:
    no SIZE parameter.
    """
    return _envelope_of(mail_from, rcpt_to, size)


cdef object _envelope_of(str mail_from, str rcpt_to, Py_ssize_t size):
    # envelope(), for the Pipeline: a C call, not one through the module's dict.
    if mail_from is None or rcpt_to is None:
        raise TypeError("envelope() takes str addresses, not None")
    if not (PyUnicode_IS_ASCII(mail_from) and PyUnicode_IS_ASCII(rcpt_to)):
        return None
    cdef const char* f = <const char*>PyUnicode_DATA(mail_from)
    cdef Py_ssize_t nf = PyUnicode_GET_LENGTH(mail_from)
    cdef const char* r = <const char*>PyUnicode_DATA(rcpt_to)
    cdef Py_ssize_t nr = PyUnicode_GET_LENGTH(rcpt_to)
    if not _ascii_address(<const unsigned char*>r, nr):
        return None
    if nf and not _ascii_address(<const unsigned char*>f, nf):
        return None
    cdef char num[32]
    cdef Py_ssize_t k = 0
    if size >= 0:
        k = snprintf(num, sizeof(num), " SIZE=%zd", size)
        if k < 0 or k >= <Py_ssize_t>sizeof(num):  # cannot happen: 6 + at most 20 digits
            raise SystemError("SIZE formatting failed")
    cdef Py_ssize_t total = 11 + nf + 1 + k + 2 + 9 + nr + 9
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* o = PyBytes_AS_STRING(out)
    memcpy(o, b"MAIL FROM:<", 11)
    memcpy(o + 11, f, nf)
    cdef Py_ssize_t j = 11 + nf
    o[j] = 62  # ">"
    j += 1
    memcpy(o + j, num, k)
    j += k
    memcpy(o + j, b"\r\nRCPT TO:<", 11)
    j += 11
    memcpy(o + j, r, nr)
    j += nr
    memcpy(o + j, b">\r\nDATA\r\n", 9)
    j += 9
    if j != total:  # cannot happen: the sum and the copies agree
        raise SystemError("envelope size mismatch")
    return out


def enhanced_prefix(str text not None):
    """``text[:5]`` when ``text`` starts with a one-digit-a-part RFC 3463
    enhanced status and a space (``"2.0.0 Ok"``: most replies), else None."""
    if PyUnicode_GET_LENGTH(text) <= 5:
        return None
    cdef Py_UCS4 c0 = text[0]
    if not (
        (c0 == u"2" or c0 == u"4" or c0 == u"5")
        and text[1] == u"."
        and u"0" <= text[2] <= u"9"
        and text[3] == u"."
        and u"0" <= text[4] <= u"9"
        and text[5] == u" "
    ):
        return None
    return text[:5]


# RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; allow slack, but
# bound what a hostile server can make us buffer (a line, and the lines of
# a multi-line reply).
cdef Py_ssize_t _MAX_REPLY = 64 * 1024
cdef Py_ssize_t _MAX_LINES = 1000


def receive(bytearray buf not None, list lines not None, q, data):
    """Replies read from ``data``, after the unfinished line ``buf`` holds
    from before: each whole reply is appended to ``q`` (a deque), the rest
    of a line kept in ``buf``, the lines of an unfinished multi-line reply
    in ``lines``. Returns ``(came, why)``: whether a reply came, and why
    the connection must fail (a malformed or too long reply) or None. What
    the reader's ``data_received`` and :meth:`Pipeline.feed` both do."""
    cdef bint came = False
    why = _receive(buf, lines, q, data, &came)
    return came, why


cdef object _receive(bytearray buf, list lines, q, object data, bint* came):
    # receive(), for compiled callers: no call through Python, no tuple
    # back, and the bytes read in place (not through a memoryview).
    cdef Py_ssize_t consumed = 0, n
    cdef list replies = []
    if buf:
        buf += data
        bad = _parse_into(<const unsigned char*>PyByteArray_AS_STRING(buf), len(buf), lines,
                          replies, &consumed)
        del buf[:consumed]
    else:
        if type(data) is not bytes:
            data = bytes(data)
        n = PyBytes_GET_SIZE(data)
        bad = _parse_into(<const unsigned char*>PyBytes_AS_STRING(data), n, lines, replies,
                          &consumed)
        if consumed < n and bad is None:
            buf += data[consumed:]
    came[0] = len(replies) > 0
    if replies:
        q.extend(replies)
    if bad is not None:
        return f"malformed SMTP reply line: {bad!r}"
    if len(buf) > _MAX_REPLY or len(lines) > _MAX_LINES:
        return "SMTP reply too long"
    return None


cdef class ReaderState:
    """The reply reader's fields that the pipeline below sets and reads each
    message (``smtp._ReplyReader`` derives from this class). As C fields of
    the object, setting one from compiled code is a store: on a Python
    object it looks the name up in its type first, in CPython's type
    attribute cache, whose slots depend on where the names lie in memory,
    so two hot names can keep evicting each other (2.5k instructions a
    message once, for ``_deadline`` and ``_timeout``)."""

    cdef public double _deadline    # when the awaited reply is due (loop time)
    cdef public double _timeout     # the timeout that deadline came from
    cdef public double _timer_at    # when the watchdog fires (inf: none armed)
    cdef public object last         # the last reply read
    cdef public object _lost        # what broke the connection, or None
    cdef public object _waiter      # the future of the wait under way, or None


cdef class Pipeline:
    """The pipelined exchange of a batch's messages, driven from the reader's
    ``data_received`` as replies arrive, while every message is answered
    250, 250, 354 and its final dot 2xx: no Python frame and no wait a
    message (``SMTPSession.send`` hands over, then takes back the rest).

    It writes the first message's envelope itself, then, as the three
    envelope replies of message i come, its stuffed data with message
    i+1's envelope behind it (one write), exactly what ``send`` writes. It
    stops (resolving the reader's waiter) when:

    - a message's envelope replies are not 2xx, 2xx, 354: they are left
      queued and :attr:`stop_at` is that message, its envelope on the wire
      (:attr:`pending`);
    - a final dot is answered other than 2xx, or the next message has no
      compiled envelope (non-ASCII, above SIZE, invalid), or none is left:
      :attr:`stop_at` is the next message, :attr:`pending` says whether its
      envelope went out.

    Each final reply is appended to ``out`` as the ``Outcome`` ``send``
    makes. Deadlines are the reader's: ``timeout`` a reply, ``data_timeout``
    for the final dot's, moved on as replies come (the reader's watchdog
    enforces them). A connection that fails fails the reader's waiter.
    """

    cdef ReaderState reader
    cdef object q, msgs, out, transport, outcome, loop
    cdef object _write, _time  # transport.write and loop.time, looked up once a batch
    cdef bytearray buf
    cdef list lines
    cdef Py_ssize_t i, n, size_limit
    cdef int phase
    cdef bint next_written, running
    cdef double timeout, data_timeout
    cdef public Py_ssize_t sent, stop_at
    cdef public bint pending

    def __init__(
        self, reader, list msgs not None, list out not None, outcome, Py_ssize_t size_limit,
        double timeout, double data_timeout,
    ):
        self.reader = reader
        self.q = reader._replies
        self.buf = reader._buf
        self.lines = reader._lines
        self.transport = reader.transport
        self.loop = reader._loop
        self._write = self.transport.write
        self._time = self.loop.time if self.loop is not None else None
        self.msgs = msgs
        self.n = len(msgs)
        self.out = out
        self.outcome = outcome
        self.size_limit = size_limit  # -1: no SIZE; 0: SIZE without a limit
        self.timeout = timeout
        self.data_timeout = data_timeout
        self.i = 0
        self.phase = 0
        self.sent = 0
        self.stop_at = 0
        self.pending = False
        self.running = False

    cdef object _envelope(self, Py_ssize_t k):
        """Message k's envelope, or None where ``send``'s Python path must decide."""
        if k >= self.n:
            return None
        m = self.msgs[k]
        learn(m, _NAMES, _AT, _SEEN)
        cdef tuple f = _astuple(m)
        if f[_AT[0]]:
            return None
        cdef Py_ssize_t size = len(f[_AT[1]])
        if self.size_limit > 0 and size > self.size_limit:
            return None
        return _envelope_of(f[_AT[2]], f[_AT[3]], size if self.size_limit >= 0 else -1)

    def start(self):
        """Write the first envelope; False (nothing written) when the first
        message is not one for the compiled path."""
        env = self._envelope(0)
        if env is None or self.loop is None:
            return False
        self.running = True
        self._write(env)
        return True

    cdef void _deadline(self, double timeout) except *:
        cdef double deadline = self._time() + timeout
        cdef ReaderState r = self.reader
        r._deadline = deadline
        r._timeout = timeout
        if deadline < r._timer_at:
            r._arm(deadline)

    cdef void _finish(self, Py_ssize_t at, bint pending) except *:
        self.running = False
        self.stop_at = at
        self.pending = pending
        cdef ReaderState r = self.reader
        w = r._waiter
        r._waiter = None
        if w is not None and not w.done():
            w.set_result(None)

    cdef void _advance(self, bint came) except *:
        cdef int mail, rcpt, data, code
        q = self.q
        while self.running:
            if self.phase == 0:
                if len(q) < 3:
                    if came and len(q):
                        # Some of the awaited replies came: the next gets a
                        # whole timeout from now, as a read of it alone would.
                        self._deadline(self.timeout)
                    return
                mail = q[0][0]
                rcpt = q[1][0]
                data = q[2][0]
                if not (200 <= mail < 300 and 200 <= rcpt < 300 and data == 354):
                    self._finish(self.i, True)  # send() reads them, as its own
                    return
                q.popleft()
                q.popleft()
                self.reader.last = q.popleft()
                nxt = self._envelope(self.i + 1)
                self.next_written = nxt is not None
                self._write(_payload(self.msgs[self.i].data, nxt if nxt is not None else b""))
                self.phase = 1
                if not q:
                    self._deadline(self.data_timeout)
            else:
                if not q:
                    return
                reply = q.popleft()
                code = reply[0]
                self.out.append(
                    tuple.__new__(
                        self.outcome,
                        (
                            "delivered" if 200 <= code < 300
                            else "bounced" if 500 <= code < 600 else "deferred",
                            code,
                            reply[1],
                            "eod",
                        ),
                    )
                )
                self.sent += 1
                self.i += 1
                self.reader.last = None
                if not (200 <= code < 300 and self.next_written):
                    self._finish(self.i, self.next_written)
                    return
                self.phase = 0
                if len(q) < 3:
                    self._deadline(self.timeout)

    def feed(self, data):
        """The reader's ``data_received`` while this runs: replies parsed and
        queued, the exchange moved on; returns why the connection must fail
        (a malformed or too long reply), or None."""
        cdef bint came = False
        why = _receive(self.buf, self.lines, self.q, data, &came)
        if self.running and self.reader._lost is None:
            self._advance(came)
        return why
