# Sixteen bytes at a time: the block tests of the byte scanners (the SMTP
# payload's dot count, the MIME writer's line ends and 7bit check, DKIM's
# relaxed canonicalization). On x86-64 (SSE2 is part of the architecture)
# each is a few vector instructions and a move-mask, where the SWAR tests
# of _swar.pxd took about as many instructions for eight bytes; elsewhere,
# or with MF_NO_SIMD defined, the same answer comes from two SWAR words.
#
# The contract callers rely on, whichever form is built:
#   *_skip16(p) is a k in 0..16 such that p[0:k] holds none of the bytes
#   the test looks for, and k == 16 exactly when none of p[0:16] is one:
#   the first one's offset with SSE2, and with the SWAR form on a
#   little-endian GCC or Clang (SWAR_EXACT); a lower bound of it elsewhere,
#   or built with MF_SWAR_LOWER_BOUND, where the
#   caller then looks at p[k] byte by byte, as it would at a marked byte.
# So a scan stays right even where the bound is not exact.
#
# Inline, like _swar.pxd: each module that cimports it gets its own copy.
# tests/test_simd_blocks.py checks both forms against a byte loop.

from libc.stdint cimport uint64_t
from libc.string cimport memcpy

from mailsflux._swar cimport (
    HIGHS, above_sp_lanes, first_marked, has_byte, has_less, has_more, line_end_marks, load8,
    sp_lanes, upper_lanes,
)


cdef extern from *:
    """
    #if defined(MF_NO_SIMD)
    #define MF_SIMD_OFF 1
    #else
    #define MF_SIMD_OFF 0
    #endif
    #if !defined(MF_NO_SIMD) && (defined(__SSE2__) || defined(_M_X64) || \
        (defined(_M_IX86_FP) && _M_IX86_FP >= 2))
    #include <emmintrin.h>
    #define MF_SSE2 1
    /* One bit a byte, bit k for p[k]: which bytes are CR or LF. */
    static inline unsigned mf_sse2_line_ends(const unsigned char* p) {
        __m128i x = _mm_loadu_si128((const __m128i*)p);
        return (unsigned)_mm_movemask_epi8(_mm_or_si128(
            _mm_cmpeq_epi8(x, _mm_set1_epi8(10)), _mm_cmpeq_epi8(x, _mm_set1_epi8(13))));
    }
    /* Bytes below 0x20 or above 0x7E, or "=": as signed bytes, 0x80..0xFF
       are negative, so "below 0x20" takes them with the controls, and
       0x7F is the one left to test. */
    static inline unsigned mf_sse2_unplain(const unsigned char* p) {
        __m128i x = _mm_loadu_si128((const __m128i*)p);
        __m128i m = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
                                 _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7F)));
        return (unsigned)_mm_movemask_epi8(_mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8(0x3D))));
    }
    /* Bytes that relaxed canonicalization would change or look at: a byte
       at or below SP that is not a SP followed by a byte above SP (reads
       p[16]). max(x, SP) == SP exactly when x <= SP, unsigned. */
    static inline unsigned mf_sse2_unclean(const unsigned char* p) {
        __m128i sp = _mm_set1_epi8(0x20);
        __m128i x = _mm_loadu_si128((const __m128i*)p);
        __m128i y = _mm_loadu_si128((const __m128i*)(p + 1));
        __m128i low = _mm_cmpeq_epi8(_mm_max_epu8(x, sp), sp);
        __m128i next_low = _mm_cmpeq_epi8(_mm_max_epu8(y, sp), sp);
        __m128i single_sp = _mm_andnot_si128(next_low, _mm_cmpeq_epi8(x, sp));
        return (unsigned)_mm_movemask_epi8(_mm_andnot_si128(single_sp, low));
    }
    /* A header field's name: which bytes end it (":" or a byte at or below
       SP: WSP before the colon, the CR of a fold or of the line's end), and
       the block lowercased into o[0:16]. As signed bytes 0x80..0xFF are
       negative, so never between "A" and "Z". */
    static inline unsigned mf_sse2_name_lower(const unsigned char* p, unsigned char* o) {
        __m128i sp = _mm_set1_epi8(0x20);
        __m128i x = _mm_loadu_si128((const __m128i*)p);
        __m128i up = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8(0x40)),
                                   _mm_cmplt_epi8(x, _mm_set1_epi8(0x5B)));
        _mm_storeu_si128((__m128i*)o, _mm_or_si128(x, _mm_and_si128(up, sp)));
        return (unsigned)_mm_movemask_epi8(_mm_or_si128(
            _mm_cmpeq_epi8(_mm_max_epu8(x, sp), sp), _mm_cmpeq_epi8(x, _mm_set1_epi8(0x3A))));
    }
    /* Bytes a URI cannot hold as they are (what quote() would change, its
       safe marks being RFC 3986's reserved ones): controls, SP, 0x7F and
       above (negative as signed bytes), and the nine printable ASCII marks
       '"' '<' '>' '\\' '^' '`' '{' '|' '}'. */
    static inline unsigned mf_sse2_uri_odd(const unsigned char* p) {
        __m128i x = _mm_loadu_si128((const __m128i*)p);
        __m128i m = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x21)),
                                 _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7F)));
        m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(0x22)),
                                         _mm_cmpeq_epi8(x, _mm_set1_epi8(0x3C))));
        m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(0x3E)),
                                         _mm_cmpeq_epi8(x, _mm_set1_epi8(0x5C))));
        m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(0x5E)),
                                         _mm_cmpeq_epi8(x, _mm_set1_epi8(0x60))));
        /* "{" "|" "}" are 0x7B..0x7D: above 0x7A and below 0x7E. */
        m = _mm_or_si128(m, _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8(0x7A)),
                                          _mm_cmplt_epi8(x, _mm_set1_epi8(0x7E))));
        return (unsigned)_mm_movemask_epi8(m);
    }
    #else
    #define MF_SSE2 0
    static inline unsigned mf_sse2_uri_odd(const unsigned char* p) { (void)p; return 0; }
    static inline unsigned mf_sse2_line_ends(const unsigned char* p) { (void)p; return 0; }
    static inline unsigned mf_sse2_unplain(const unsigned char* p) { (void)p; return 0; }
    static inline unsigned mf_sse2_unclean(const unsigned char* p) { (void)p; return 0; }
    static inline unsigned mf_sse2_name_lower(const unsigned char* p, unsigned char* o) {
        (void)p; (void)o; return 0;
    }
    #endif
    /* A block's mask as a *_skip16 answer: the offset of its lowest set
       bit, or 16 when none is set. */
    static inline Py_ssize_t mf_skip_of(unsigned m) {
        if (m == 0)
            return 16;
    #if defined(__GNUC__) || defined(__clang__)
        return (Py_ssize_t)__builtin_ctz(m);
    #else
        Py_ssize_t k = 0;
        while (!(m & 1u)) { m >>= 1; k++; }
        return k;
    #endif
    }
    """
    const bint SSE2 "MF_SSE2"
    const bint SIMD_OFF "MF_SIMD_OFF"  # built with MF_NO_SIMD
    unsigned int sse2_line_ends "mf_sse2_line_ends"(const unsigned char* p) noexcept nogil
    unsigned int sse2_unplain "mf_sse2_unplain"(const unsigned char* p) noexcept nogil
    unsigned int sse2_unclean "mf_sse2_unclean"(const unsigned char* p) noexcept nogil
    unsigned int sse2_uri_odd "mf_sse2_uri_odd"(const unsigned char* p) noexcept nogil
    unsigned int sse2_name_lower "mf_sse2_name_lower"(
        const unsigned char* p, unsigned char* o) noexcept nogil
    Py_ssize_t skip_of "mf_skip_of"(unsigned int m) noexcept nogil


cdef inline Py_ssize_t _skip_words(uint64_t a, uint64_t b) noexcept nogil:
    # Two has_* masks of p[0:8] and p[8:16] as a *_skip16 answer.
    if a != 0:
        return first_marked(a)
    if b != 0:
        return 8 + first_marked(b)
    return 16


cdef inline uint64_t unplain8(uint64_t x) noexcept nogil:
    """A has_* mask of the bytes below 0x20, above 0x7E, or ``=``."""
    return has_less(x, 0x20) | has_more(x, 0x7E) | has_byte(x, 0x3D)


cdef inline uint64_t unclean8(const unsigned char* p) noexcept nogil:
    """The high bit of each byte of ``p[0:8]`` that relaxed canonicalization
    would change or look at (reads ``p[8]``): exact lanes, so the lowest is
    the first such byte."""
    cdef uint64_t w = load8(p)
    return ~(above_sp_lanes(w) | (sp_lanes(w) & above_sp_lanes(load8(p + 1)))) & HIGHS


cdef inline uint64_t uri_odd8(uint64_t x) noexcept nogil:
    """A has_* mask of the bytes a URI cannot hold as they are (see
    mf_sse2_uri_odd), lowest marker exact."""
    return (has_less(x, 0x21) | has_more(x, 0x7E) | has_byte(x, 0x22) | has_byte(x, 0x3C)
            | has_byte(x, 0x3E) | has_byte(x, 0x5C) | has_byte(x, 0x5E) | has_byte(x, 0x60)
            | has_byte(x, 0x7B) | has_byte(x, 0x7C) | has_byte(x, 0x7D))


cdef inline uint64_t name_lower8(const unsigned char* p, unsigned char* o) noexcept nogil:
    """``p[0:8]`` lowercased into ``o[0:8]``; a has_* mask of the bytes
    that end a field name (``:``, or at or below SP), lowest marker exact."""
    cdef uint64_t x = load8(p)
    cdef uint64_t lowered = x | (upper_lanes(x) >> 2)  # 0x80 >> 2 is 0x20, per lane
    memcpy(o, &lowered, 8)
    return (~above_sp_lanes(x) & HIGHS) | has_byte(x, 0x3A)


cdef inline Py_ssize_t swar_line_end_skip16(const unsigned char* p) noexcept nogil:
    return _skip_words(line_end_marks(load8(p)), line_end_marks(load8(p + 8)))


cdef inline Py_ssize_t swar_unplain_skip16(const unsigned char* p) noexcept nogil:
    return _skip_words(unplain8(load8(p)), unplain8(load8(p + 8)))


cdef inline Py_ssize_t swar_unclean_skip16(const unsigned char* p) noexcept nogil:
    return _skip_words(unclean8(p), unclean8(p + 8))


cdef inline Py_ssize_t swar_uri_skip16(const unsigned char* p) noexcept nogil:
    return _skip_words(uri_odd8(load8(p)), uri_odd8(load8(p + 8)))


cdef inline Py_ssize_t swar_name_lower16(const unsigned char* p, unsigned char* o) noexcept nogil:
    cdef uint64_t a = name_lower8(p, o)
    return _skip_words(a, name_lower8(p + 8, o + 8))


cdef inline Py_ssize_t line_end_skip16(const unsigned char* p) noexcept nogil:
    """How many of ``p[0:16]`` come before a CR or LF (see the contract)."""
    if SSE2:
        return skip_of(sse2_line_ends(p))
    return swar_line_end_skip16(p)


cdef inline Py_ssize_t unplain_skip16(const unsigned char* p) noexcept nogil:
    """How many of ``p[0:16]`` come before a byte below 0x20, above 0x7E,
    or ``=`` (see the contract)."""
    if SSE2:
        return skip_of(sse2_unplain(p))
    return swar_unplain_skip16(p)


cdef inline Py_ssize_t unclean_skip16(const unsigned char* p) noexcept nogil:
    """How many of ``p[0:16]`` relaxed canonicalization copies as they are
    when nothing is pending: bytes above SP, and single SPs before a byte
    above SP (reads ``p[16]``; see the contract)."""
    if SSE2:
        return skip_of(sse2_unclean(p))
    return swar_unclean_skip16(p)


cdef inline Py_ssize_t name_lower16(const unsigned char* p, unsigned char* o) noexcept nogil:
    """How many of ``p[0:16]`` come before a byte that ends a header field's
    name (``:``, or a byte at or below SP; see the contract), the sixteen
    bytes written lowercased (A-Z only) to ``o[0:16]`` whatever the answer."""
    if SSE2:
        return skip_of(sse2_name_lower(p, o))
    return swar_name_lower16(p, o)


cdef inline Py_ssize_t uri_skip16(const unsigned char* p) noexcept nogil:
    """How many of ``p[0:16]`` come before a byte a URI cannot hold as it is
    (a control, SP, 0x7F or above, or one of ``"<>\\^`{|}``; see the
    contract): the bytes quote() with RFC 3986's reserved marks as safe
    leaves unchanged."""
    if SSE2:
        return skip_of(sse2_uri_odd(p))
    return swar_uri_skip16(p)
