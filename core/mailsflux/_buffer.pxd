# A growable byte buffer shared by the compiled hot paths (_template,
# _mimebuild, _track): they write output into it instead of concatenating
# Python strings, and turn it into one bytes or str object at the end.
#
# Everything here is inline, so there is no extension module to build: each
# module that cimports it gets its own copy of these few functions.

from cpython.mem cimport PyMem_Realloc
from libc.string cimport memcpy


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef struct Buffer:
    char* data          # PyMem_Realloc'd; NULL until the first reserve
    Py_ssize_t len      # bytes written
    Py_ssize_t cap      # bytes allocated


cdef inline int buf_reserve(Buffer* b, Py_ssize_t extra) except -1:
    """Make room for ``extra`` more bytes (capacity doubles)."""
    cdef Py_ssize_t need, cap
    cdef char* p
    if extra <= b.cap - b.len:
        return 0
    if extra > PY_SSIZE_T_MAX - b.len:
        raise MemoryError()
    need = b.len + extra
    cap = b.cap if b.cap > 0 else 256
    while cap < need:
        if cap > PY_SSIZE_T_MAX // 2:
            cap = need
            break
        cap *= 2
    p = <char*>PyMem_Realloc(b.data, <size_t>cap)
    if p is NULL:
        raise MemoryError()
    b.data = p
    b.cap = cap
    return 0


cdef inline int buf_write(Buffer* b, const void* s, Py_ssize_t n) except -1:
    if n > b.cap - b.len:
        buf_reserve(b, n)
    if n > 0:
        memcpy(b.data + b.len, s, <size_t>n)
        b.len += n
    return 0


cdef inline int buf_byte(Buffer* b, unsigned char c) except -1:
    if b.len >= b.cap:
        buf_reserve(b, 1)
    b.data[b.len] = <char>c
    b.len += 1
    return 0
