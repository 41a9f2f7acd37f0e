# Eight bytes at a time (SWAR, "SIMD within a register"): tests that say
# whether any byte of a 64-bit word is one of a few values, so a scan can
# skip the words that hold none of them and look at the others byte by byte.
#
# Each test is exact as a "some byte is" test (it may mark other bytes of a
# word that has one, never a word that has none), which is all the callers
# use. Inline, like _buffer.pxd: each module that cimports it gets its own copy.

from libc.stdint cimport uint64_t
from libc.string cimport memcpy

# 0x01 and 0x80 in every byte, as C constants (a .pxd holds no initialized
# variables).
cdef extern from *:
    """
    #define MF_SWAR_ONES 0x0101010101010101ULL
    #define MF_SWAR_HIGHS 0x8080808080808080ULL
    """
    const uint64_t ONES "MF_SWAR_ONES"
    const uint64_t HIGHS "MF_SWAR_HIGHS"


cdef inline uint64_t load8(const unsigned char* p) noexcept nogil:
    """The eight bytes at ``p`` (unaligned; the byte order does not matter
    to a "some byte" test). The caller guarantees eight readable bytes."""
    cdef uint64_t x
    memcpy(&x, p, 8)
    return x


cdef inline uint64_t has_byte(uint64_t x, unsigned char c) noexcept nogil:
    """Non-zero when some byte of ``x`` is ``c``: a zero byte of x ^ ONES*c,
    found as (y - ONES) & ~y & HIGHS."""
    cdef uint64_t y = x ^ (ONES * c)
    return (y - ONES) & ~y & HIGHS


cdef inline uint64_t has_less(uint64_t x, unsigned char n) noexcept nogil:
    """Non-zero when some byte of ``x`` is below ``n`` (n <= 128): a byte
    below n borrows into its high bit once no byte has it set already, and
    a byte with its high bit set is not below n (~x clears it)."""
    return (x - ONES * n) & ~x & HIGHS


cdef inline uint64_t has_more(uint64_t x, unsigned char n) noexcept nogil:
    """Non-zero when some byte of ``x`` is above ``n`` (n < 128): adding
    127 - n carries such a byte into its high bit, or it had it set."""
    return ((x + ONES * (127 - n)) | x) & HIGHS


cdef inline bint no_line_end8(uint64_t x) noexcept nogil:
    """None of the eight bytes is CR or LF."""
    return (has_byte(x, 10) | has_byte(x, 13)) == 0
