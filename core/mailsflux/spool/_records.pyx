"""A spool commit's rows, made and sealed in C.

:meth:`mailsflux.spool.sqlite.SQLiteSpool._write` binds the ``rcpt`` rows of
a commit as one flat list of values (``_RCPT_COLUMNS`` a row) and seals
each row's private part (recipient, message id, reply, enhanced status),
and each held message's bytes, bound to its job, row and part
(:func:`mailsflux.spool.sqlite._ctx`). A job commits a record a message,
and a held message twice: that loop, and the seal's, ran in the interpreter
once a message each (105 bytecodes). Here they are a call a commit.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdio cimport snprintf
from libc.string cimport memcpy

from mailsflux._fields cimport learn

from msgspec.structs import astuple as _astuple

# The values of one rcpt row, in the table's column order after its first,
# the job (sqlite.py binds rows by these: its _RCPT_COLUMNS and _META_COLUMN
# are these). The job is one value a statement, bound once for its rows.
COLUMNS = 11
# Where the sealed part goes among them; None until sealed.
META_AT = 9
cdef Py_ssize_t _COLUMNS = COLUMNS
cdef Py_ssize_t _META_AT = META_AT

# The Record fields a row is made of, and where each is in astuple(record)
# for the type last seen (see _fields.pxd).
cdef tuple _NAMES = ("row", "recipient", "message_id", "reply", "enhanced_status", "state",
                     "domain", "attempts", "first_at", "next_at", "code", "category", "updated",
                     "message")
cdef Py_ssize_t _POS[14]
cdef list _SEEN = [None]


cdef bytes _context(bytes head, long long row, bytes part):
    # b"%s%d\x00%s" % (head, row, part): the context :func:`sqlite._ctx` binds.
    cdef char digits[24]
    cdef int nd = snprintf(digits, sizeof(digits), b"%lld", row)
    cdef Py_ssize_t nh = PyBytes_GET_SIZE(head), np = PyBytes_GET_SIZE(part)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, nh + nd + 1 + np)
    cdef char *w = PyBytes_AS_STRING(out)
    memcpy(w, PyBytes_AS_STRING(head), nh)
    memcpy(w + nh, digits, nd)
    w[nh + nd] = 0
    memcpy(w + nh + nd + 1, PyBytes_AS_STRING(part), np)
    return out


def context(bytes head not None, long long row, bytes part not None):
    """A row's sealing context: ``head`` (the job's share), the row in
    decimal, a NUL, ``part``."""
    return _context(head, row, part)


def row_values(
    list records not None,
    bytes head not None,
    double now,
    claimed,
    encode_meta,
    encode_body,
    final,
):
    """``(values, metas, bodies, body_rows, released)`` for ``records``
    (spool Records): ``values`` each row's columns after the job (which
    the statement binds once) one row after another,
    the sealed part None; ``metas`` each row's ``(plain, context)`` to seal,
    in order; ``bodies`` the same for each record that keeps its message
    (its bytes, ``encode_body(message)``), ``body_rows`` their rows; and
    ``released`` the rows settled for good (their state in ``final``)
    without a message, whose stored bytes may go."""
    cdef Py_ssize_t i, at, n = len(records)
    cdef list values = [None] * (n * _COLUMNS)
    cdef list metas = [None] * n
    cdef list bodies = []
    cdef list body_rows = []
    cdef list released = []
    cdef tuple f
    cdef Py_ssize_t _AT[14]  # this call's copy: encode_meta runs Python code
    for i in range(n):
        r = records[i]  # checked: the calls below run Python code
        learn(r, _NAMES, _POS, _SEEN)
        memcpy(_AT, _POS, sizeof(_AT))
        f = _astuple(r)
        row = f[_AT[0]]
        metas[i] = (
            encode_meta((f[_AT[1]], f[_AT[2]], f[_AT[3]], f[_AT[4]])),
            _context(head, row, b"meta"),
        )
        at = i * _COLUMNS
        values[at] = row
        state = f[_AT[5]]
        values[at + 1] = state
        values[at + 2] = f[_AT[6]]
        values[at + 3] = f[_AT[7]]
        values[at + 4] = f[_AT[8]]
        values[at + 5] = f[_AT[9]]
        values[at + 6] = f[_AT[10]]
        values[at + 7] = f[_AT[11]]
        values[at + 8] = f[_AT[12]] or now
        values[at + _META_AT] = None  # sealed with the others, after
        values[at + 10] = claimed
        message = f[_AT[13]]
        if message is not None:
            bodies.append((encode_body(message), _context(head, row, b"body")))
            body_rows.append(row)
        elif state in final:
            released.append(row)
    return values, metas, bodies, body_rows, released


def seal_each(encrypt, bytes key_head not None, bytes nonces not None, list items not None,
              bint blob=False):
    """Each ``(plain, context)`` of ``items`` sealed: ``key_head``, its
    nonce (the next ``len(nonces) // len(items)`` bytes of ``nonces``), then
    ``encrypt(nonce, plain, context)``; as bytearrays with ``blob``."""
    cdef Py_ssize_t i, n = len(items)
    cdef list out = [None] * n
    if n == 0:
        return out
    cdef Py_ssize_t size = PyBytes_GET_SIZE(nonces) // n
    if size * n != PyBytes_GET_SIZE(nonces) or size == 0:
        raise ValueError("the nonces do not divide evenly among the items")
    cdef Py_ssize_t nk = PyBytes_GET_SIZE(key_head), nc
    cdef const char *src = PyBytes_AS_STRING(nonces)
    cdef bytes nonce, ct
    cdef object sealed
    cdef char *w
    for i in range(n):
        plain, ctx = items[i]  # checked: encrypt runs Python code
        nonce = PyBytes_FromStringAndSize(src + i * size, size)
        ct = encrypt(nonce, plain, ctx)
        if ct is None:
            raise TypeError("encrypt returned None, not bytes")
        nc = PyBytes_GET_SIZE(ct)
        if blob:
            sealed = PyByteArray_FromStringAndSize(NULL, nk + size + nc)
            w = PyByteArray_AS_STRING(sealed)
        else:
            sealed = PyBytes_FromStringAndSize(NULL, nk + size + nc)
            w = PyBytes_AS_STRING(sealed)
        memcpy(w, PyBytes_AS_STRING(key_head), nk)
        memcpy(w + nk, src + i * size, size)
        memcpy(w + nk + size, PyBytes_AS_STRING(ct), nc)
        out[i] = sealed
    return out
