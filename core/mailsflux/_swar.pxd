# Eight bytes at a time (SWAR, "SIMD within a register"): tests that say
# whether any byte of a 64-bit word is one of a few values, so a scan can
# skip the words that hold none of them and look at the others byte by byte.
#
# The has_* tests are exact as "some byte is" tests (they may mark other
# bytes of a word that has one, never a word that has none); the *_lanes
# tests mark exactly the bytes that are (no carry crosses a byte). Inline,
# like _buffer.pxd: each module that cimports it gets its own copy.

from libc.stdint cimport uint64_t
from libc.string cimport memcpy

# 0x01 and 0x80 in every byte, as C constants (a .pxd holds no initialized
# variables).
cdef extern from *:
    """
    #define MF_SWAR_ONES 0x0101010101010101ULL
    #define MF_SWAR_HIGHS 0x8080808080808080ULL
    #define MF_SWAR_LOW7 0x7F7F7F7F7F7F7F7FULL
    """
    const uint64_t ONES "MF_SWAR_ONES"
    const uint64_t HIGHS "MF_SWAR_HIGHS"
    const uint64_t LOW7 "MF_SWAR_LOW7"


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


cdef extern from *:
    """
    /* The lowest marked byte of a has_* mask, as a byte offset from the
       word's first byte. Little-endian only: the lowest marker of a has_*
       mask is exact (a borrow only ever marks bytes above a true one), and
       there the lowest byte is the first in memory. Elsewhere 0: the caller
       then looks at the word's bytes one by one, as it would without this.
       MF_SWAR_LOWER_BOUND builds that form here too (CI tests it so). */
    #if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
        __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && (defined(__GNUC__) || defined(__clang__)) \
        && !defined(MF_SWAR_LOWER_BOUND)
    #define MF_SWAR_FIRST(m) ((Py_ssize_t)(__builtin_ctzll(m) >> 3))
    #define MF_SWAR_EXACT 1
    #else
    #define MF_SWAR_FIRST(m) ((Py_ssize_t)0)
    #define MF_SWAR_EXACT 0
    #endif
    """
    Py_ssize_t first_marked "MF_SWAR_FIRST"(uint64_t m) noexcept nogil
    # Whether first_marked finds the first marked byte (else it gives 0).
    const bint SWAR_EXACT "MF_SWAR_EXACT"


cdef inline uint64_t line_end_marks(uint64_t x) noexcept nogil:
    """A has_* mask of the CR and LF bytes of ``x`` (0: none): its lowest
    marker, by :func:`first_marked`, is the first CR or LF, since each
    test's lowest marker is exact and the union's lowest is the lower."""
    return has_byte(x, 10) | has_byte(x, 13)


cdef inline uint64_t above_sp_lanes(uint64_t x) noexcept nogil:
    """The high bit of each byte of ``x`` set exactly when that byte is above
    SP (0x20): the low seven bits plus 0x5F stay below 0x100 and reach 0x80
    exactly from 0x21; a byte of 0x80 or more has its high bit already."""
    return (((x & LOW7) + ONES * 0x5F) | x) & HIGHS


cdef inline uint64_t sp_lanes(uint64_t x) noexcept nogil:
    """The high bit of each byte of ``x`` set exactly when that byte is SP:
    a byte of x ^ ONES*0x20 is zero exactly when its low seven bits plus
    0x7F stay below 0x80 and its own high bit is clear."""
    cdef uint64_t t = x ^ (ONES * 0x20)
    return ~(((t & LOW7) + LOW7) | t) & HIGHS


cdef inline uint64_t upper_lanes(uint64_t x) noexcept nogil:
    """The high bit of each byte of ``x`` set exactly when that byte is an
    ASCII capital (0x41..0x5A): its low seven bits plus 0x3F reach 0x80
    exactly from 0x41, plus 0x25 exactly from 0x5B (neither carries out of
    the byte), and a byte of 0x80 or more is none (~x)."""
    cdef uint64_t low = x & LOW7
    return (low + ONES * 0x3F) & ~(low + ONES * 0x25) & ~x & HIGHS
