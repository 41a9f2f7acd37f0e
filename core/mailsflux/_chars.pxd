# ASCII character classes of the address grammars, shared by the MIME
# writer (header addresses) and the SMTP client (envelope addresses).
# Inline, like _buffer.pxd: no extension module.


cdef inline bint is_alnum(unsigned char c) noexcept nogil:
    """An ASCII letter or digit."""
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)


cdef inline bint is_atext(unsigned char c) noexcept nogil:
    """RFC 5322 section 3.2.3 atext, ASCII part: letters, digits and
    ``!#$%&'*+-/=?^_`{|}~``."""
    return is_alnum(c) or c == 33 or (35 <= c <= 39) or c == 42 or c == 43 or c == 45 or (
        c == 47 or c == 61 or c == 63 or (94 <= c <= 96) or (123 <= c <= 126)
    )
