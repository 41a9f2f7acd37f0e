"""The hot half of :class:`mailsflux.jobs.seen.SeenSet`: ``add`` in C.

Every row of a recipient file passes through ``add`` in every worker (its
own rows and, for the duplicate check, the others'): in Python it cost
about 1.4 us, most of it the interpreter around a hash, a probe or two and
an append. Here the probe runs over the table's 64-bit entries and the
address is appended to the pending buffer in C; what stays in Python, in
the subclass, is what is rare or slow anyway: reading a record back when a
fingerprint matches (``_read``), writing a megabyte out encrypted
(``_flush``) and doubling the table (``_grow``). The entry layout, the hash
and the record format are the subclass's, unchanged.

Index safety: ``add`` reads and writes the table through a pointer to its
``len(table)`` entries and only at ``i & mask``, where ``mask`` is checked
to be ``len(table) - 1`` on entry; nothing it calls in between replaces the
table (``_read`` and ``_flush`` only read it, ``_grow`` runs after the last
write). ``_append`` writes into the pending buffer only after resizing it
to hold what it writes.
"""

cimport cython
from cpython.array cimport array
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject_Hash
from cpython.unicode cimport PyUnicode_AsEncodedString
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)

import builtins

cdef object _builtin_hash = builtins.hash
#: An entry: the top 24 bits of the hash, then where the record lies (40 bits);
#: SeenSet's _grow writes the same layout.
OFFSET_BITS = 40
cdef int _OFFSET_BITS = OFFSET_BITS
cdef uint64_t OFFSET_MASK = (<uint64_t>1 << _OFFSET_BITS) - 1
#: The pending buffer is written out (encrypted) past this many bytes.
FLUSH = 1 << 20
cdef Py_ssize_t _FLUSH = FLUSH


cdef class SeenTable:
    """The table, the pending tail of the file and the counts; ``add``."""

    cdef public array _table
    cdef public Py_ssize_t _mask
    cdef public Py_ssize_t _limit
    cdef public Py_ssize_t _count
    cdef public Py_ssize_t _flushed
    cdef public bytearray _pending
    cdef public object _hash

    def __len__(self):
        return self._count

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def add(self, str key):
        """Add ``key``; True when it is new, False when it was there already."""
        cdef uint64_t h
        if self._hash is _builtin_hash:
            # hash(str) is PyObject_Hash; the cast keeps its 64 bits as
            # ``hash(key) & (2**64 - 1)`` does.
            h = <uint64_t>PyObject_Hash(key)
        else:
            h = <uint64_t>(self._hash(key) & 0xFFFFFFFFFFFFFFFF)
        cdef array table = self._table
        cdef Py_ssize_t mask = self._mask
        if len(table) != mask + 1:  # the invariant every index below relies on
            raise RuntimeError("seen set: table and mask disagree")
        cdef uint64_t* t = table.data.as_ulonglongs
        cdef uint64_t fp = h >> _OFFSET_BITS
        cdef Py_ssize_t i = <Py_ssize_t>(h & <uint64_t>mask)
        cdef uint64_t e
        while True:
            e = t[i]
            if e == 0:
                break
            if e >> _OFFSET_BITS == fp and self._read(<Py_ssize_t>(e & OFFSET_MASK)) == key:
                return False
            i = (i + 1) & mask
        cdef uint64_t at = self._append(key)
        t[i] = (fp << _OFFSET_BITS) | at
        self._count += 1
        if self._count > self._limit:
            table = None  # or the old table would live on beside the new one
            self._grow()
        return True

    cdef uint64_t _append(self, str key) except 0:
        """Append ``key``'s record (two bytes of length, big-endian, and its
        UTF-8, surrogates passed) to the pending buffer; its file offset,
        never 0 (offset 0 is the pad byte the buffer starts with), so 0
        says an exception is set."""
        cdef object data = None
        cdef const char* src
        cdef Py_ssize_t n
        if PyUnicode_IS_COMPACT_ASCII(key):
            src = <const char*>PyUnicode_DATA(key)
            n = PyUnicode_GET_LENGTH(key)
        else:
            data = PyUnicode_AsEncodedString(key, "utf-8", "surrogatepass")
            src = PyBytes_AS_STRING(data)
            n = PyBytes_GET_SIZE(data)
        cdef bytearray pending = self._pending
        cdef Py_ssize_t have = PyByteArray_GET_SIZE(pending)
        cdef uint64_t at = <uint64_t>(self._flushed + have)
        if n > 0xFFFF or at + <uint64_t>n > OFFSET_MASK:
            raise ValueError("address longer than 65,535 bytes, or a terabyte of them")
        PyByteArray_Resize(pending, have + 2 + n)
        cdef char* dst = PyByteArray_AS_STRING(pending) + have
        dst[0] = <char>(n >> 8)
        dst[1] = <char>(n & 0xFF)
        memcpy(dst + 2, src, n)
        if have + 2 + n >= _FLUSH:
            self._flush()
        return at
