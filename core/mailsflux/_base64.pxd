# Standard base64 (RFC 4648 section 4, "+/" and "=" padding), written into C
# buffers: shared by the MIME writer (bodies, encoded words) and the DKIM
# signer (bh= and b=). Inline, like _buffer.pxd: no extension module.


cdef inline void b64_block(const unsigned char* s, Py_ssize_t n, char* w) noexcept nogil:
    """Base64 of ``s[:n]`` (1 <= n <= 3) into ``w[:4]``, padded with ``=``."""
    cdef const char* table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    cdef unsigned int v = (<unsigned int>s[0]) << 16
    if n > 1:
        v |= (<unsigned int>s[1]) << 8
    if n > 2:
        v |= s[2]
    w[0] = table[(v >> 18) & 63]
    w[1] = table[(v >> 12) & 63]
    w[2] = table[(v >> 6) & 63] if n > 1 else b"="
    w[3] = table[v & 63] if n > 2 else b"="


cdef inline Py_ssize_t b64_write(const unsigned char* s, Py_ssize_t n, char* w) noexcept nogil:
    """Base64 of ``s[:n]`` as one unbroken run into ``w``, which holds
    ``4 * ((n + 2) // 3)`` bytes; returns that length (what
    ``binascii.b2a_base64(..., newline=False)`` gives)."""
    cdef Py_ssize_t i = 0, m = 0
    while i < n:
        b64_block(s + i, n - i if n - i < 3 else 3, w + m)
        m += 4
        i += 3
    return m
