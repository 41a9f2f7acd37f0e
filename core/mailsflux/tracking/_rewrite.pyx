"""Compiled open and click tracking: HTML link rewriting and signed tokens.

A token is ``{key_id}.{base64url(payload || tag)}``: ``payload`` is the
msgpack array ``[message_id, recipient, job, sent_at, kind, url]`` and
``tag`` the first 16 bytes (128 bits) of HMAC-SHA256(key, ``key_id + "." +
payload``).  Everything a click needs travels in the token, so the tracking
server verifies it and redirects without a database lookup.

Per message, the fields shared by every token of that message (key id,
message id, recipient, job, send time) are absorbed into one SHA-256 state
once; each link then costs a copy of that state, the URL's bytes, and the
outer HMAC block.  SHA-256 is implemented here in C (with the x86 SHA
extensions when the CPU has them, chosen at import) so no call leaves C per
link.  ``mailsflux.tracking.tokens`` verifies tokens with the standard library's
``hmac``, which keeps this implementation honest.

The HTML scanner follows the HTML tokenizer where it matters for links:
comments (``<!-- -->``, ``<!-->``, ``--!>``), bogus comments (``<!...>``,
``<?...>``), raw-text elements (``script``, ``style``, ``textarea``,
``title``, ...) whose content is never rewritten, single-, double- and
un-quoted attribute values, and tags cut off by the end of input (left
alone).  Outlook conditional comments (``<!--[if mso]> ... <![endif]-->``)
are scanned as HTML, so the VML "bulletproof button" (``<v:roundrect
href=...>``) is tracked too.

Index safety: the scanner reads the input through a ``const unsigned char*``
with an explicit ``end``; every read is guarded by ``i < end`` (or a check
that enough bytes remain), and the functions carry ``boundscheck(False)``
individually.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy

from mailsflux._buffer cimport buf_byte as _out_byte
from mailsflux._buffer cimport buf_reserve as _out_reserve
from mailsflux._buffer cimport buf_write as _out_write

import html as _html
import html.entities as _entities
import re as _re

import msgspec as _msgspec

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef extern from * nogil:
    """
    #include <stdint.h>
    #include <string.h>
    #if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    #include <cpuid.h>
    #include <immintrin.h>
    #define MF_SHA_X86 1
    #endif

    typedef struct {
        uint32_t h[8];
        uint64_t n;
        unsigned char buf[64];
        size_t blen;
    } mf_sha;

    static const uint32_t mf_H0[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

    static const uint32_t mf_K[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

    #define MF_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

    static void mf_compress_c(uint32_t *s, const unsigned char *p, size_t nb) {
        uint32_t w[64];
        while (nb--) {
            int i;
            uint32_t a, b, c, d, e, f, g, h;
            for (i = 0; i < 16; i++)
                w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16
                     | (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
            for (i = 16; i < 64; i++) {
                uint32_t s0 = MF_ROR(w[i - 15], 7) ^ MF_ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
                uint32_t s1 = MF_ROR(w[i - 2], 17) ^ MF_ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
            }
            a = s[0]; b = s[1]; c = s[2]; d = s[3]; e = s[4]; f = s[5]; g = s[6]; h = s[7];
            for (i = 0; i < 64; i++) {
                uint32_t t1 = h + (MF_ROR(e, 6) ^ MF_ROR(e, 11) ^ MF_ROR(e, 25))
                            + ((e & f) ^ (~e & g)) + mf_K[i] + w[i];
                uint32_t t2 = (MF_ROR(a, 2) ^ MF_ROR(a, 13) ^ MF_ROR(a, 22))
                            + ((a & b) ^ (a & c) ^ (b & c));
                h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
            }
            s[0] += a; s[1] += b; s[2] += c; s[3] += d;
            s[4] += e; s[5] += f; s[6] += g; s[7] += h;
            p += 64;
        }
    }

    #ifdef MF_SHA_X86
    /* SHA-256 with the x86 SHA extensions (SHA-NI): four rounds per pair of
       sha256rnds2, the message schedule with sha256msg1/msg2. */
    __attribute__((target("sha,sse4.1,ssse3")))
    static void mf_compress_ni(uint32_t *state, const unsigned char *data, size_t nb) {
        __m128i st0, st1, msg, tmp, abef, cdgh, m[4];
        const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
        int i;
        tmp = _mm_loadu_si128((const __m128i *)&state[0]);
        st1 = _mm_loadu_si128((const __m128i *)&state[4]);
        tmp = _mm_shuffle_epi32(tmp, 0xB1);          /* CDAB */
        st1 = _mm_shuffle_epi32(st1, 0x1B);          /* EFGH */
        st0 = _mm_alignr_epi8(tmp, st1, 8);          /* ABEF */
        st1 = _mm_blend_epi16(st1, tmp, 0xF0);       /* CDGH */
        while (nb--) {
            abef = st0;
            cdgh = st1;
            for (i = 0; i < 4; i++)
                m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), mask);
            for (i = 0; i < 16; i++) {
                msg = _mm_add_epi32(m[i & 3], _mm_loadu_si128((const __m128i *)&mf_K[4 * i]));
                st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
                msg = _mm_shuffle_epi32(msg, 0x0E);
                st0 = _mm_sha256rnds2_epu32(st0, st1, msg);
                if (i < 12) {
                    /* W[t..t+3] from W[t-16..t-1], t = 4 * (i + 4) */
                    tmp = _mm_sha256msg1_epu32(m[i & 3], m[(i + 1) & 3]);
                    tmp = _mm_add_epi32(tmp, _mm_alignr_epi8(m[(i + 3) & 3], m[(i + 2) & 3], 4));
                    m[i & 3] = _mm_sha256msg2_epu32(tmp, m[(i + 3) & 3]);
                }
            }
            st0 = _mm_add_epi32(st0, abef);
            st1 = _mm_add_epi32(st1, cdgh);
            data += 64;
        }
        tmp = _mm_shuffle_epi32(st0, 0x1B);          /* FEBA */
        st1 = _mm_shuffle_epi32(st1, 0xB1);          /* DCHG */
        st0 = _mm_blend_epi16(tmp, st1, 0xF0);       /* DCBA */
        st1 = _mm_alignr_epi8(st1, tmp, 8);          /* ABEF */
        _mm_storeu_si128((__m128i *)&state[0], st0);
        _mm_storeu_si128((__m128i *)&state[4], st1);
    }
    #endif

    static void (*mf_compress)(uint32_t *, const unsigned char *, size_t) = mf_compress_c;

    static int mf_sha_ni_available(void) {
    #ifdef MF_SHA_X86
        unsigned int a, b, c, d;
        if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
        if (!(c & (1u << 19)) || !(c & (1u << 9))) return 0;   /* SSE4.1, SSSE3 */
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
        return (b & (1u << 29)) != 0;                          /* SHA */
    #else
        return 0;
    #endif
    }

    /* Use the SHA extensions when asked and available; returns what is used. */
    static int mf_sha_use_ni(int on) {
    #ifdef MF_SHA_X86
        if (on && mf_sha_ni_available()) { mf_compress = mf_compress_ni; return 1; }
    #endif
        mf_compress = mf_compress_c;
        return 0;
    }

    static void mf_sha_init(mf_sha *c) { memcpy(c->h, mf_H0, 32); c->n = 0; c->blen = 0; }

    /* Resume from a midstate taken after exactly one 64-byte block. */
    static void mf_sha_start(mf_sha *c, const uint32_t *mid) {
        memcpy(c->h, mid, 32); c->n = 64; c->blen = 0;
    }

    static void mf_sha_update(mf_sha *c, const unsigned char *p, size_t n) {
        c->n += n;
        if (c->blen) {
            size_t k = 64 - c->blen;
            if (k > n) k = n;
            memcpy(c->buf + c->blen, p, k);
            c->blen += k; p += k; n -= k;
            if (c->blen < 64) return;
            mf_compress(c->h, c->buf, 1);
            c->blen = 0;
        }
        if (n >= 64) {
            size_t nb = n / 64;
            mf_compress(c->h, p, nb);
            p += nb * 64; n -= nb * 64;
        }
        if (n) { memcpy(c->buf, p, n); c->blen = n; }
    }

    static void mf_sha_final(mf_sha *c, unsigned char *out) {
        uint64_t bits = c->n * 8;
        int i;
        c->buf[c->blen++] = 0x80;
        if (c->blen > 56) {
            memset(c->buf + c->blen, 0, 64 - c->blen);
            mf_compress(c->h, c->buf, 1);
            c->blen = 0;
        }
        memset(c->buf + c->blen, 0, 56 - c->blen);
        for (i = 0; i < 8; i++) c->buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
        mf_compress(c->h, c->buf, 1);
        for (i = 0; i < 8; i++) {
            out[4 * i] = (unsigned char)(c->h[i] >> 24);
            out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
            out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
            out[4 * i + 3] = (unsigned char)c->h[i];
        }
    }

    static void mf_sha256(const unsigned char *p, size_t n, unsigned char *out) {
        mf_sha c;
        mf_sha_init(&c); mf_sha_update(&c, p, n); mf_sha_final(&c, out);
    }

    /* HMAC-SHA256 midstates: SHA-256 after (key ^ ipad) and after (key ^ opad). */
    static void mf_hmac_prepare(const unsigned char *key, size_t klen, uint32_t *ist, uint32_t *ost) {
        unsigned char k[64], blk[64];
        int i;
        memset(k, 0, 64);
        if (klen > 64) mf_sha256(key, klen, k); else memcpy(k, key, klen);
        for (i = 0; i < 64; i++) blk[i] = k[i] ^ 0x36;
        memcpy(ist, mf_H0, 32); mf_compress(ist, blk, 1);
        for (i = 0; i < 64; i++) blk[i] = k[i] ^ 0x5c;
        memcpy(ost, mf_H0, 32); mf_compress(ost, blk, 1);
        memset(k, 0, 64); memset(blk, 0, 64);
    }

    static void mf_hmac_finish(mf_sha *inner, const uint32_t *ost, unsigned char *out) {
        unsigned char d[32];
        mf_sha o;
        mf_sha_final(inner, d);
        mf_sha_start(&o, ost);
        mf_sha_update(&o, d, 32);
        mf_sha_final(&o, out);
    }

    static const char mf_B64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /* Two base64url characters per 12 bits, so three bytes take two lookups. */
    static char mf_B64x2[4096][2];

    static void mf_b64_init(void) {
        int i;
        for (i = 0; i < 4096; i++) {
            mf_B64x2[i][0] = mf_B64[i >> 6];
            mf_B64x2[i][1] = mf_B64[i & 63];
        }
    }

    /* base64url without padding; returns the number of characters written. */
    static size_t mf_b64url(const unsigned char *s, size_t n, char *d) {
        char *p = d;
        size_t i = 0;
        uint32_t v;
        for (; i + 3 <= n; i += 3) {
            v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
            memcpy(p, mf_B64x2[v >> 12], 2);
            memcpy(p + 2, mf_B64x2[v & 0xFFF], 2);
            p += 4;
        }
        if (n - i == 1) {
            v = (uint32_t)s[i] << 16;
            p[0] = mf_B64[v >> 18]; p[1] = mf_B64[(v >> 12) & 63];
            p += 2;
        } else if (n - i == 2) {
            v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
            p[0] = mf_B64[v >> 18]; p[1] = mf_B64[(v >> 12) & 63]; p[2] = mf_B64[(v >> 6) & 63];
            p += 3;
        }
        return (size_t)(p - d);
    }
    """
    ctypedef struct mf_sha:
        uint32_t h[8]
        uint64_t n
        unsigned char buf[64]
        size_t blen
    int mf_sha_ni_available()
    int mf_sha_use_ni(int on)
    void mf_sha_init(mf_sha* c)
    void mf_sha_start(mf_sha* c, const uint32_t* mid)
    void mf_sha_update(mf_sha* c, const unsigned char* p, size_t n)
    void mf_sha_final(mf_sha* c, unsigned char* out)
    void mf_sha256(const unsigned char* p, size_t n, unsigned char* out)
    void mf_hmac_prepare(const unsigned char* key, size_t klen, uint32_t* ist, uint32_t* ost)
    void mf_hmac_finish(mf_sha* inner, const uint32_t* ost, unsigned char* out)
    size_t mf_b64url(const unsigned char* s, size_t n, char* d)
    void mf_b64_init()


#: Whether this CPU runs SHA-256 with the x86 SHA extensions.
SHA_NI = bool(mf_sha_use_ni(1))
mf_b64_init()

cdef enum:
    EDIT_HREF = 0
    EDIT_DROP = 1
    EDIT_PIXEL = 2

cdef enum:
    KIND_OPEN = 0
    KIND_CLICK = 1
    KIND_UNSUBSCRIBE = 2

#: Longest token made (characters); links that would need more stay untracked.
#: The verifier (mailsflux.tracking.tokens.MAX_TOKEN) accepts no more either.
MAX_TOKEN = 8192
cdef Py_ssize_t _MAX_TOKEN = 8192
# Longest per-message part of a payload (message id, recipient, job).
cdef Py_ssize_t _MAX_PREFIX = 2048

#: Bytes of HMAC-SHA256 kept in a token (128 bits).
TAG_SIZE = 16
cdef Py_ssize_t _TAG = 16

# The open pixel: _PIX_HEAD + base + b"/o/" + token + _PIX_TAIL.
cdef bytes _PIX_HEAD = b'<img src="'
cdef bytes _PIX_TAIL = b'" width="1" height="1" alt="" style="border:0" />'



# --------------------------------------------------------------------------
# Growable buffers


cdef int _edit(_Edits* e, Py_ssize_t start, Py_ssize_t end, int kind) except -1:
    cdef Py_ssize_t cap
    cdef _Edit* p
    if e.len >= e.cap:
        cap = e.cap * 2 if e.cap > 0 else 16
        p = <_Edit*>PyMem_Realloc(e.items, <size_t>cap * sizeof(_Edit))
        if p is NULL:
            raise MemoryError()
        e.items = p
        e.cap = cap
    e.items[e.len].start = start
    e.items[e.len].end = end
    e.items[e.len].kind = kind
    e.len += 1
    return 0


# --------------------------------------------------------------------------
# The HTML scanner


cdef inline bint _ws(unsigned char c) noexcept nogil:
    # HTML whitespace: tab, LF, FF, CR, space
    return c == 32 or c == 9 or c == 10 or c == 12 or c == 13


cdef inline bint _alpha(unsigned char c) noexcept nogil:
    return (c | 32) >= 97 and (c | 32) <= 122


cdef inline unsigned char _lower(unsigned char c) noexcept nogil:
    return c | 32 if 65 <= c <= 90 else c


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline bint _ieq(const unsigned char* p, Py_ssize_t n, const char* lit, Py_ssize_t m) noexcept:
    """``p[:n]`` equals the lowercase ASCII literal ``lit[:m]``, ignoring case."""
    cdef Py_ssize_t i
    if n != m:
        return False
    for i in range(n):
        if _lower(p[i]) != <unsigned char>lit[i]:
            return False
    return True


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _find2(const unsigned char* s, Py_ssize_t i, Py_ssize_t end,
                       unsigned char a, unsigned char b) noexcept:
    """Index of the first ``ab`` in ``s[i:end]``, or -1."""
    cdef const unsigned char* p
    while i + 1 < end:
        p = <const unsigned char*>memchr(s + i, a, <size_t>(end - 1 - i))
        if p is NULL:
            return -1
        i = p - s
        if s[i + 1] == b:
            return i
        i += 1
    return -1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _comment_end(const unsigned char* s, Py_ssize_t i, Py_ssize_t end,
                       Py_ssize_t* close, Py_ssize_t* after) noexcept:
    """From just after ``<!--``: where the comment's text ends and what follows it.

    The comment ends at the first ``-->`` or ``--!>``; the abrupt forms
    ``<!-->`` and ``<!--->`` end at once.  Without a terminator the comment
    runs to ``end``.
    """
    cdef Py_ssize_t j
    if i < end and s[i] == 62:                                  # <!-->
        close[0] = i
        after[0] = i + 1
        return
    if i + 1 < end and s[i] == 45 and s[i + 1] == 62:           # <!--->
        close[0] = i
        after[0] = i + 2
        return
    j = i
    while True:
        j = _find2(s, j, end, 45, 45)                           # "--"
        if j < 0:
            close[0] = end
            after[0] = end
            return
        if j + 2 < end and s[j + 2] == 62:                      # -->
            close[0] = j
            after[0] = j + 3
            return
        if j + 3 < end and s[j + 2] == 33 and s[j + 3] == 62:   # --!>
            close[0] = j
            after[0] = j + 4
            return
        j += 1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _to_gt(const unsigned char* s, Py_ssize_t i, Py_ssize_t end) noexcept:
    """Index after the next ``>`` (a bogus comment's end), or ``end``."""
    cdef const unsigned char* p
    if i >= end:
        return end
    p = <const unsigned char*>memchr(s + i, 62, <size_t>(end - i))
    return end if p is NULL else (p - s) + 1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _rawtext_end(const unsigned char* s, Py_ssize_t i, Py_ssize_t end,
                             const unsigned char* name, Py_ssize_t n) noexcept:
    """Index of the ``<`` of the ``</name`` that closes a raw-text element, or ``end``."""
    cdef Py_ssize_t j, k
    cdef unsigned char c
    while True:
        j = _find2(s, i, end, 60, 47)                           # "</"
        if j < 0:
            return end
        k = j + 2
        if k + n <= end and _ieq(s + k, n, <const char*>name, n):
            if k + n == end:
                return j
            c = s[k + n]
            if _ws(c) or c == 47 or c == 62:
                return j
        i = j + 2


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _tag(const unsigned char* s, Py_ssize_t i, Py_ssize_t end, bint is_start,
                     _Edits* ed) except -2:
    """Parse the tag whose name starts at ``i``; return the index after its ``>``.

    Returns -1 when the input ends inside the tag (a cut-off tag is not a
    tag: nothing in it is changed).  For a start tag that can carry a link
    (``a``, ``area``, VML ``v:*``), appends an EDIT_HREF for the first
    ``href`` value, or EDIT_DROP spans for ``data-mf-notrack`` attributes (and
    then no href edit).  A tag with ``data-mf-unsubscribe`` is left alone.
    """
    cdef Py_ssize_t name0 = i, name1, a0, a1, v0 = -1, v1 = -1, j, prev_end
    cdef Py_ssize_t href0 = -1, href1 = -1, k0 = ed.len
    cdef bint target, unsub = False, notrack = False, has_value
    cdef unsigned char c, q
    cdef const unsigned char* p
    while i < end:
        c = s[i]
        if _ws(c) or c == 47 or c == 62:
            break
        i += 1
    name1 = i
    target = is_start and (
        _ieq(s + name0, name1 - name0, "a", 1)
        or _ieq(s + name0, name1 - name0, "area", 4)
        or (name1 - name0 > 2 and _lower(s[name0]) == 118 and s[name0 + 1] == 58)   # v:
    )
    prev_end = name1
    while True:
        # before attribute name ("/" outside a value acts as a separator)
        while i < end and (_ws(s[i]) or s[i] == 47):
            i += 1
        if i >= end:
            ed.len = k0
            return -1
        if s[i] == 62:
            i += 1
            break
        # attribute name: the first character may be anything, even "="
        a0 = i
        i += 1
        while i < end:
            c = s[i]
            if _ws(c) or c == 47 or c == 62 or c == 61:
                break
            i += 1
        a1 = i
        j = i
        while j < end and _ws(s[j]):
            j += 1
        has_value = False
        if j < end and s[j] == 61:                              # "="
            j += 1
            while j < end and _ws(s[j]):
                j += 1
            if j >= end:
                ed.len = k0
                return -1
            q = s[j]
            if q == 34 or q == 39:
                p = <const unsigned char*>memchr(s + j + 1, q, <size_t>(end - j - 1))
                if p is NULL:
                    ed.len = k0
                    return -1
                v0 = j + 1
                v1 = p - s
                i = v1 + 1
            elif q == 62:                                       # a=> : empty value
                v0 = v1 = j
                i = j
            else:
                v0 = j
                while j < end and not _ws(s[j]) and s[j] != 62:
                    j += 1
                v1 = j
                i = j
            has_value = True
        if target:
            if _ieq(s + a0, a1 - a0, "href", 4):
                if href0 < 0 and has_value:
                    href0 = v0
                    href1 = v1
            elif _ieq(s + a0, a1 - a0, "data-mf-notrack", 15):
                notrack = True
                _edit(ed, prev_end, i, EDIT_DROP)
            elif _ieq(s + a0, a1 - a0, "data-mf-unsubscribe", 19):
                unsub = True
        prev_end = i
    if not target or unsub:
        ed.len = k0
    elif not notrack and href0 >= 0 and href1 > href0:
        _edit(ed, href0, href1, EDIT_HREF)
    return i


cdef const char* _rawtext(const unsigned char* name, Py_ssize_t n) noexcept:
    """The lowercase name if ``name`` is an element whose content is text, else NULL."""
    cdef const char* cand = NULL
    cdef unsigned char c
    if n < 3 or n > 9:
        return NULL
    c = _lower(name[0])
    if n == 3:
        cand = "xmp"
    elif n == 5:
        cand = "style" if c == 115 else "title"
    elif n == 6:
        cand = "script" if c == 115 else "iframe"
    elif n == 7:
        cand = "noembed"
    elif n == 8:
        cand = "textarea" if c == 116 else "noframes"
    elif n == 9:
        cand = "plaintext"
    if cand is not NULL and _ieq(name, n, cand, n):
        return cand
    return NULL


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _scan(const unsigned char* s, Py_ssize_t start, Py_ssize_t end, _Edits* ed,
               bint top, Py_ssize_t* body) except -1:
    """Find the edits in ``s[start:end]``; ``body`` gets the last ``</body`` (top level)."""
    cdef Py_ssize_t pos = start, lt, close, after, q, r, name0
    cdef const unsigned char* p
    cdef const char* raw_name
    cdef unsigned char c
    while pos < end:
        p = <const unsigned char*>memchr(s + pos, 60, <size_t>(end - pos))
        if p is NULL:
            break
        lt = p - s
        pos = lt + 1
        if pos >= end:
            break
        c = s[pos]
        if c == 33:                                             # "<!"
            if pos + 2 < end and s[pos + 1] == 45 and s[pos + 2] == 45:
                _comment_end(s, pos + 3, end, &close, &after)
                q = pos + 3
                # Outlook conditional comment: <!--[if ...]> HTML <![endif]-->
                if (top and q + 3 <= close and s[q] == 91 and _lower(s[q + 1]) == 105
                        and _lower(s[q + 2]) == 102):
                    r = _find2(s, q, close, 93, 62)             # "]>"
                    if r >= 0:
                        _scan(s, r + 2, close, ed, False, NULL)
                pos = after
            else:
                pos = _to_gt(s, pos + 1, end)
        elif c == 63:                                           # "<?"
            pos = _to_gt(s, pos + 1, end)
        elif c == 47:                                           # "</"
            if pos + 1 < end and _alpha(s[pos + 1]):
                name0 = pos + 1
                r = _tag(s, name0, end, False, ed)
                if r < 0:
                    break
                if top and body is not NULL and name0 + 4 <= end and _ieq(s + name0, 4, "body", 4):
                    if name0 + 4 == end or _ws(s[name0 + 4]) or s[name0 + 4] == 47 or s[name0 + 4] == 62:
                        body[0] = lt
                pos = r
            elif pos + 1 < end and s[pos + 1] == 62:            # "</>" is dropped
                pos += 2
            else:
                pos = _to_gt(s, pos + 1, end)
        elif _alpha(c):
            name0 = pos
            r = _tag(s, name0, end, True, ed)
            if r < 0:
                break
            pos = r
            q = name0
            while q < end and not _ws(s[q]) and s[q] != 47 and s[q] != 62:
                q += 1
            raw_name = _rawtext(s + name0, q - name0)
            if raw_name is not NULL:
                if q - name0 == 9:                              # plaintext: the rest is text
                    return 0
                pos = _rawtext_end(s, pos, end, <const unsigned char*>raw_name, q - name0)
        # else: a "<" that opens nothing is text
    return 0


# --------------------------------------------------------------------------
# URLs in attribute values

_CHARREF = _re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]{0,31};?)")
_HTML5 = _entities.html5


def _unescape_ref(m):
    ref = m.group(1)
    if ref[0] == "#":
        return _html.unescape(m.group(0))
    if ref[-1] == ";" and ref in _HTML5:
        return _HTML5[ref]
    # A legacy reference without ";" (longest match first).  In an attribute
    # value it stays literal when an "=" or an ASCII letter or digit follows.
    after = m.string[m.end() : m.end() + 1]
    for k in range(len(ref), 1, -1):
        if ref[:k] in _HTML5:
            nxt = ref[k] if k < len(ref) else after
            if nxt == "=" or (nxt.isascii() and nxt.isalnum()):
                return m.group(0)
            return _HTML5[ref[:k]] + ref[k:]
    return m.group(0)


def attr_unescape(str value):
    """Decode character references in an attribute value as a browser does."""
    if "&" not in value:
        return value
    return _CHARREF.sub(_unescape_ref, value)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _clean_url(const unsigned char* s, Py_ssize_t n, _Out* url) except -1:
    """The URL an ``href`` value holds: references decoded, spaces trimmed, tabs and
    newlines removed (as the URL parser does), into ``url`` (which is reset)."""
    cdef Py_ssize_t i = 0, j
    cdef bint simple = True
    cdef unsigned char c
    cdef const unsigned char* p
    cdef bytes dec
    url.len = 0
    # fast path: only "&amp;" references (or none)
    j = 0
    while True:
        p = <const unsigned char*>memchr(s + j, 38, <size_t>(n - j)) if j < n else NULL
        if p is NULL:
            break
        j = (p - s)
        if not (j + 5 <= n and memcmp(s + j, b"&amp;", 5) == 0):
            simple = False
            break
        j += 5
    if not simple:
        dec = attr_unescape(
            PyBytes_FromStringAndSize(<const char*>s, n).decode("utf-8", "surrogateescape")
        ).encode("utf-8", "surrogateescape")
        return _copy_url(<const unsigned char*>PyBytes_AS_STRING(dec), PyBytes_GET_SIZE(dec), url)
    # strip leading and trailing C0 controls and spaces
    while n > 0 and s[n - 1] <= 32:
        n -= 1
    while i < n and s[i] <= 32:
        i += 1
    _out_reserve(url, n - i)
    while i < n:
        c = s[i]
        if c == 38 and i + 5 <= n and memcmp(s + i, b"&amp;", 5) == 0:
            url.data[url.len] = 38
            url.len += 1
            i += 5
            continue
        if c != 9 and c != 10 and c != 13:
            url.data[url.len] = <char>c
            url.len += 1
        i += 1
    return 0


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _copy_url(const unsigned char* s, Py_ssize_t n, _Out* url) except -1:
    """Like _clean_url for already-decoded bytes (which may hold "&")."""
    cdef Py_ssize_t i = 0
    cdef unsigned char c
    url.len = 0
    while n > 0 and s[n - 1] <= 32:
        n -= 1
    while i < n and s[i] <= 32:
        i += 1
    _out_reserve(url, n - i)
    while i < n:
        c = s[i]
        if c != 9 and c != 10 and c != 13:
            url.data[url.len] = <char>c
            url.len += 1
        i += 1
    return 0


cdef inline bint _is_http(const unsigned char* s, Py_ssize_t n) noexcept:
    if n > 7 and _ieq(s, 7, "http://", 7):
        return True
    return n > 8 and _ieq(s, 8, "https://", 8)


cdef bint _utf8_ok(const unsigned char* s, Py_ssize_t n):
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] >= 128:
            try:
                PyBytes_FromStringAndSize(<const char*>s, n).decode("utf-8")
            except UnicodeDecodeError:
                return False
            return True
    return True


# --------------------------------------------------------------------------
# Tokens


cdef bytes _payload_prefix(str message_id, str recipient, str job, long long sent_at):
    # msgpack [message_id, recipient, job, sent_at, ...]: a 6-element array
    # whose first four items are the same for every token of one message.
    enc = _msgspec.msgpack.encode((message_id, recipient, job, sent_at))
    if len(enc) > _MAX_PREFIX:
        raise ValueError("message id, recipient and job are too long for a tracking token")
    return b"\x96" + enc[1:]


cdef inline Py_ssize_t _token_len(Rewriter rw, Py_ssize_t plen, Py_ssize_t n) noexcept:
    """An upper bound of the token's length for a URL of ``n`` bytes."""
    return PyBytes_GET_SIZE(rw.key_id) + 1 + ((plen + 6 + n + _TAG) * 4 + 2) // 3


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _write_token(Rewriter rw, _Out* out, const mf_sha* pre, bytes prefix, int kind,
                      const unsigned char* url, Py_ssize_t n, _Out* tmp) except -1:
    """Append ``key_id.base64url(payload || tag)`` to ``out``."""
    cdef mf_sha ctx = pre[0]
    cdef unsigned char head[6]
    cdef Py_ssize_t h = 1, plen = PyBytes_GET_SIZE(prefix)
    cdef unsigned char mac[32]
    cdef size_t w
    if n > 0xFFFFFFFF:
        raise ValueError("URL too long for a token")
    head[0] = <unsigned char>kind
    if n < 32:
        head[1] = <unsigned char>(0xA0 | n)
        h = 2
    elif n < 256:
        head[1] = 0xD9
        head[2] = <unsigned char>n
        h = 3
    elif n < 65536:
        head[1] = 0xDA
        head[2] = <unsigned char>(n >> 8)
        head[3] = <unsigned char>n
        h = 4
    else:
        head[1] = 0xDB
        head[2] = <unsigned char>(n >> 24)
        head[3] = <unsigned char>(n >> 16)
        head[4] = <unsigned char>(n >> 8)
        head[5] = <unsigned char>n
        h = 6
    mf_sha_update(&ctx, head, <size_t>h)
    if n > 0:
        mf_sha_update(&ctx, url, <size_t>n)
    mf_hmac_finish(&ctx, rw._ost, mac)
    tmp.len = 0
    _out_write(tmp, PyBytes_AS_STRING(prefix), plen)
    _out_write(tmp, head, h)
    _out_write(tmp, url, n)
    _out_write(tmp, mac, _TAG)
    _out_write(out, PyBytes_AS_STRING(rw.key_id), PyBytes_GET_SIZE(rw.key_id))
    _out_byte(out, 46)                                          # "."
    _out_reserve(out, (tmp.len * 4 + 2) // 3)
    w = mf_b64url(<const unsigned char*>tmp.data, <size_t>tmp.len, out.data + out.len)
    out.len += <Py_ssize_t>w
    return 0


cdef int _prefix_state(Rewriter rw, bytes prefix, mf_sha* ctx) except -1:
    mf_sha_start(ctx, rw._ist)
    mf_sha_update(ctx, <const unsigned char*>PyBytes_AS_STRING(rw.key_id),
                  <size_t>PyBytes_GET_SIZE(rw.key_id))
    mf_sha_update(ctx, <const unsigned char*>b".", 1)
    mf_sha_update(ctx, <const unsigned char*>PyBytes_AS_STRING(prefix),
                  <size_t>PyBytes_GET_SIZE(prefix))
    return 0


cdef class Rewriter:
    """Signs tokens with one key and rewrites HTML parts to carry them.

    ``base`` is the tracking server's URL (``https://t.example.com``, no
    trailing slash); ``key_id`` (ASCII, no ``.``) names ``key`` so that keys
    can rotate.  Input validation lives in :class:`mailsflux.tracking.Tracker`.
    """

    def __init__(self, str base, str key_id, bytes key not None):
        if "." in key_id or not key_id or not key_id.isascii():
            raise ValueError("key id must be non-empty ASCII without '.'")
        if not key:
            raise ValueError("empty key")
        self.base = base.rstrip("/").encode("ascii")
        self.key_id = key_id.encode("ascii")
        self._own = self.base + b"/"
        mf_hmac_prepare(<const unsigned char*>PyBytes_AS_STRING(key), <size_t>len(key),
                        self._ist, self._ost)

    def token(self, int kind, str message_id not None, str recipient not None, str job not None,
              long long sent_at, str url not None = ""):
        """One token (``kind``: 0 open, 1 click, 2 unsubscribe) as ``str``."""
        cdef _Out out, tmp
        cdef mf_sha ctx
        cdef bytes u = url.encode("utf-8")
        cdef bytes prefix = _payload_prefix(message_id, recipient, job, sent_at)
        if kind < 0 or kind > 2:
            raise ValueError("kind must be 0 (open), 1 (click) or 2 (unsubscribe)")
        if _token_len(self, PyBytes_GET_SIZE(prefix), PyBytes_GET_SIZE(u)) > _MAX_TOKEN:
            raise ValueError("URL too long for a tracking token")
        out.data = tmp.data = NULL
        out.len = out.cap = tmp.len = tmp.cap = 0
        try:
            _prefix_state(self, prefix, &ctx)
            _write_token(self, &out, &ctx, prefix, kind,
                         <const unsigned char*>PyBytes_AS_STRING(u), PyBytes_GET_SIZE(u), &tmp)
            return PyBytes_FromStringAndSize(out.data, out.len).decode("ascii")
        finally:
            PyMem_Free(out.data)
            PyMem_Free(tmp.data)

    def edits(self, bytes html not None, bint clicks=True, bint opens=True):
        """The scanner's findings as ``[(start, end, kind)]`` (kind: "href",
        "drop", "pixel"): every candidate, before URL checks. For tests."""
        cdef _Edits ed
        cdef Py_ssize_t body = -1, i, n = PyBytes_GET_SIZE(html)
        ed.items = NULL
        ed.len = ed.cap = 0
        try:
            if clicks:
                _scan(<const unsigned char*>PyBytes_AS_STRING(html), 0, n, &ed, True, &body)
            elif opens:
                _scan(<const unsigned char*>PyBytes_AS_STRING(html), 0, n, &ed, True, &body)
                ed.len = 0
            names = ("href", "drop", "pixel")
            found = [(ed.items[i].start, ed.items[i].end, names[ed.items[i].kind])
                     for i in range(ed.len)]
            if opens:
                at = body if body >= 0 else n
                found.append((at, at, "pixel"))
                found.sort(key=lambda t: (t[0], t[2] != "pixel"))
            return found
        finally:
            PyMem_Free(ed.items)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def rewrite_html(self, bytes html not None, str message_id not None, str recipient not None,
                     str job not None, long long sent_at, bytes skip_prefix=None,
                     bint clicks=True, bint opens=True):
        """Rewrite tracked links to ``{base}/c/{token}`` and add the open pixel.

        ``skip_prefix`` (bytes): URLs starting with it (the unsubscribe link)
        stay as they are.  With ``clicks`` and ``opens`` both false the input
        is returned unchanged.
        """
        cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(html)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(html), last = 0, i, body = -1, at
        cdef _Edits ed
        cdef _Out out, tmp, url
        cdef _Edit e
        cdef mf_sha ctx
        cdef bytes prefix
        cdef const unsigned char* own = <const unsigned char*>PyBytes_AS_STRING(self._own)
        cdef Py_ssize_t nown = PyBytes_GET_SIZE(self._own), nskip = 0
        cdef const unsigned char* skip = NULL
        cdef bint pixel_done = False
        if not clicks and not opens:
            return html
        if skip_prefix is not None and PyBytes_GET_SIZE(skip_prefix) > 0:
            skip = <const unsigned char*>PyBytes_AS_STRING(skip_prefix)
            nskip = PyBytes_GET_SIZE(skip_prefix)
        ed.items = NULL
        ed.len = ed.cap = 0
        out.data = tmp.data = url.data = NULL
        out.len = out.cap = tmp.len = tmp.cap = url.len = url.cap = 0
        try:
            _scan(s, 0, n, &ed, True, &body)
            if not clicks:
                ed.len = 0
            prefix = _payload_prefix(message_id, recipient, job, sent_at)
            _prefix_state(self, prefix, &ctx)
            _out_reserve(&out, n + (ed.len + 1) * (200 + PyBytes_GET_SIZE(prefix)))
            at = body if body >= 0 else n
            for i in range(ed.len + 1):
                if i < ed.len:
                    e = ed.items[i]
                else:
                    e.start = e.end = n
                    e.kind = -1
                if opens and not pixel_done and at <= e.start:
                    # the pixel goes before the first edit at or after its place
                    _out_write(&out, s + last, at - last)
                    last = at
                    _out_write(&out, PyBytes_AS_STRING(_PIX_HEAD), PyBytes_GET_SIZE(_PIX_HEAD))
                    _out_write(&out, PyBytes_AS_STRING(self.base), PyBytes_GET_SIZE(self.base))
                    _out_write(&out, b"/o/", 3)
                    _write_token(self, &out, &ctx, prefix, KIND_OPEN, NULL, 0, &tmp)
                    _out_write(&out, PyBytes_AS_STRING(_PIX_TAIL), PyBytes_GET_SIZE(_PIX_TAIL))
                    pixel_done = True
                if e.kind < 0:
                    break
                _out_write(&out, s + last, e.start - last)
                last = e.end
                if e.kind == EDIT_DROP:
                    continue
                # EDIT_HREF
                _clean_url(s + e.start, e.end - e.start, &url)
                if (
                    not _is_http(<const unsigned char*>url.data, url.len)
                    or (url.len >= nown and memcmp(url.data, own, <size_t>nown) == 0)
                    or (skip is not NULL and url.len >= nskip
                        and memcmp(url.data, skip, <size_t>nskip) == 0)
                    or _token_len(self, PyBytes_GET_SIZE(prefix), url.len) > _MAX_TOKEN
                    or not _utf8_ok(<const unsigned char*>url.data, url.len)
                ):
                    _out_write(&out, s + e.start, e.end - e.start)
                    continue
                _out_write(&out, PyBytes_AS_STRING(self.base), PyBytes_GET_SIZE(self.base))
                _out_write(&out, b"/c/", 3)
                _write_token(self, &out, &ctx, prefix, KIND_CLICK,
                             <const unsigned char*>url.data, url.len, &tmp)
            _out_write(&out, s + last, n - last)
            return PyBytes_FromStringAndSize(out.data, out.len)
        finally:
            PyMem_Free(ed.items)
            PyMem_Free(out.data)
            PyMem_Free(tmp.data)
            PyMem_Free(url.data)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def rewrite_text(self, bytes text not None, str message_id not None,
                     str recipient not None, str job not None, long long sent_at,
                     str skip_prefix=None):
        """Track the http(s) URLs of a text part (UTF-8 bytes, undecodable
        bytes kept as they are): each becomes ``{base}/c/{token}``.

        A URL is what ``\\bhttps?://[^\\s<>"'`]+`` (``re.I``) matches in the
        text decoded with surrogateescape, less the trailing punctuation and
        unbalanced closing brackets :func:`_trim_url` drops.  Left alone: our
        own URLs, URLs starting with ``skip_prefix``, and URLs that cannot be
        in a token (undecodable bytes, too long).
        """
        cdef str src = text.decode("utf-8", "surrogateescape")
        cdef Py_ssize_t n = len(src), i = 0, j, last = 0
        cdef Py_UCS4 c
        cdef str whole, url, own = self._own.decode("ascii"), base = self.base.decode("ascii")
        cdef bytes u, prefix = None
        cdef bint no_prefix = False
        cdef list pieces = None
        cdef _Out out, tmp
        cdef mf_sha ctx
        if skip_prefix is not None and not skip_prefix:
            skip_prefix = None
        out.data = tmp.data = NULL
        out.len = out.cap = tmp.len = tmp.cap = 0
        try:
            # Invariant for the unchecked reads: every index read is < n (each
            # read below is guarded by a comparison with n first).
            while i < n:
                c = src[i]
                if (c == u"h" or c == u"H") and (i == 0 or not _word(src[i - 1])):
                    j = _url_end(src, i, n)
                    if j > 0:
                        whole = src[i:j]
                        i = j
                        url = _trim_url(whole)
                        if url.startswith(own) or (
                            skip_prefix is not None and url.startswith(skip_prefix)
                        ):
                            continue
                        try:
                            u = url.encode("utf-8")
                        except UnicodeEncodeError:  # undecodable bytes in it
                            continue
                        if prefix is None and not no_prefix:
                            try:
                                prefix = _payload_prefix(message_id, recipient, job, sent_at)
                            except ValueError:  # no token fits: every URL stays
                                no_prefix = True
                            else:
                                _prefix_state(self, prefix, &ctx)
                        if no_prefix or _token_len(
                            self, PyBytes_GET_SIZE(prefix), PyBytes_GET_SIZE(u)
                        ) > _MAX_TOKEN:
                            continue
                        out.len = 0
                        _write_token(self, &out, &ctx, prefix, KIND_CLICK,
                                     <const unsigned char*>PyBytes_AS_STRING(u),
                                     PyBytes_GET_SIZE(u), &tmp)
                        if pieces is None:
                            pieces = []
                        pieces.append(src[last:j - len(whole)])
                        pieces.append(base)
                        pieces.append(u"/c/")
                        pieces.append(PyBytes_FromStringAndSize(out.data, out.len).decode("ascii"))
                        pieces.append(whole[len(url):])
                        last = j
                        continue
                i += 1
        finally:
            PyMem_Free(out.data)
            PyMem_Free(tmp.data)
        if pieces is None:
            return text
        pieces.append(src[last:])
        return u"".join(pieces).encode("utf-8", "surrogateescape")


cdef inline bint _word(Py_UCS4 c) noexcept:
    # What re's \b takes for a word character in a str pattern.
    return c == u"_" or c.isalnum()


cdef inline bint _url_char(Py_UCS4 c) noexcept:
    # [^\s<>"'`] of a str pattern: \s is Unicode whitespace there.
    return not (c.isspace() or c == u"<" or c == u">" or c == u'"' or c == u"'" or c == u"`")


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _url_end(str s, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Where the URL starting at ``s[i]`` ends, or -1: ``https?://`` (any case;
    re.I also takes U+017F LONG S for "s") and at least one URL character.
    Invariant: ``i < n == len(s)``; every index is checked against ``n``."""
    cdef Py_UCS4 c
    if i + 4 > n:
        return -1
    c = s[i + 1]
    if c != u"t" and c != u"T":
        return -1
    c = s[i + 2]
    if c != u"t" and c != u"T":
        return -1
    c = s[i + 3]
    if c != u"p" and c != u"P":
        return -1
    i += 4
    if i < n:
        c = s[i]
        if c == u"s" or c == u"S" or c == 0x017F:
            i += 1
    if i + 3 >= n or s[i] != u":" or s[i + 1] != u"/" or s[i + 2] != u"/":
        return -1
    i += 3
    if not _url_char(s[i]):
        return -1
    i += 1
    while i < n and _url_char(s[i]):
        i += 1
    return i


def _trim_url(str url):
    """Drop sentence punctuation and unbalanced closing brackets from a URL's end.

    Linear: the bracket counts are taken once and updated as characters are
    dropped (recounting per character was quadratic in the trailing run)."""
    cdef Py_ssize_t end = len(url)
    cdef Py_ssize_t open_paren = url.count(u"("), open_square = url.count(u"[")
    cdef Py_ssize_t close_paren = url.count(u")"), close_square = url.count(u"]")
    cdef Py_UCS4 c
    while end:
        c = url[end - 1]
        if c == u"." or c == u"," or c == u";" or c == u":" or c == u"!" or c == u"?":
            end -= 1
        elif c == u")" and open_paren < close_paren:
            close_paren -= 1
            end -= 1
        elif c == u"]" and open_square < close_square:
            close_square -= 1
            end -= 1
        else:
            break
    return url[:end]


def sha256(bytes data not None):
    """SHA-256 with this module's C code (for tests against hashlib)."""
    cdef unsigned char out[32]
    mf_sha256(<const unsigned char*>PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data), out)
    return PyBytes_FromStringAndSize(<const char*>out, 32)


def use_sha_ni(bint on):
    """Switch the SHA-256 code path (tests cover both); returns whether SHA-NI is on."""
    return bool(mf_sha_use_ni(1 if on else 0))


def sha_ni_available():
    return bool(mf_sha_ni_available())
