# Declarations of the compiled DKIM canonicalizer (see _dkim.pyx).

cdef struct Field:
    Py_ssize_t start   # first byte of the field name
    Py_ssize_t colon   # offset of the first ':' in the field, or -1 if none
    Py_ssize_t name_end  # end of the name (WSP before the colon dropped), or -1 if no colon
    Py_ssize_t end     # end of the field, excluding its final CRLF


cdef class Policy:
    """A parsed ``c=`` value: one canonicalization for headers, one for the body."""
    cdef readonly bint header_relaxed
    cdef readonly bint body_relaxed
    cdef readonly str header
    cdef readonly str body
    cdef readonly str value


cdef class Message:
    """A CRLF-normalized message with its header fields located (offsets only)."""
    cdef readonly bytes data
    cdef readonly Py_ssize_t body_start
    cdef Field *fields
    cdef Py_ssize_t nfields
    cdef Py_ssize_t cap
    cdef bytes _bh_simple
    cdef bytes _bh_relaxed

    cdef int _parse(self) except -1
    cdef Py_ssize_t _count(self, bytes name) noexcept
    cdef bytes _body_digest(self, bint relaxed)
    cdef Py_ssize_t _signed_fields(self, tuple names, bint relaxed, unsigned char *buf) except -1
