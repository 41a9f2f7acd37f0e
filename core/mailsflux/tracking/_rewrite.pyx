"""Compiled open and click tracking: HTML link rewriting and sealed tokens.

A token is ``{key_id}.{base64url(V || C)}``: AES-256-SIV (RFC 5297) of the
msgpack array ``[message_id, recipient, job, sent_at, kind, url]`` with the
key id as associated data, under a key derived from the tracking key
(:func:`mailsflux.tracking.tokens.token_key`).  Everything a click needs
travels in the token, so the tracking server opens it and redirects without a
database lookup, and nobody without the key can read the address, the job
or the target from a link.

Why SIV: it is deterministic authenticated encryption (RFC 5297 section 4),
so no nonce travels in the token: a token is as long as the payload plus the
16-byte synthetic IV, the length the HMAC-signed tokens had.  Being
deterministic, it shows only that two tokens are equal, that is the same
link in the same message to the same person, which the message shows anyway.

Per message, the payload's first fields (message id, recipient, job, send
time) are the same for every token, so CMAC's chaining value over their
complete blocks is computed once (as RFC 5297 section 5 suggests for
invariant input); each link then costs CMAC over its URL, the final S2V
block, and CTR over the payload.  AES runs on AES-NI in C, chosen at import,
so no call leaves C per link; without AES-NI the cryptography package seals
each token.  ``mailsflux.tracking.tokens`` opens tokens with the cryptography
package, which keeps this implementation honest.

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
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeASCII
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy, memset

from mailsflux._buffer cimport buf_byte as _out_byte
from mailsflux._buffer cimport buf_reserve as _out_reserve
from mailsflux._buffer cimport buf_write as _out_write

import html as _html
import html.entities as _entities
import re as _re

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX
    Py_ssize_t PyUnicode_FindChar(
        object s, Py_UCS4 ch, Py_ssize_t start, Py_ssize_t end, int direction
    ) except -2


cdef extern from * nogil:
    """
    #include <stdint.h>
    #include <string.h>
    #if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(MF_NO_X86)
    #include <cpuid.h>
    #include <immintrin.h>
    #define MF_X86 1
    #endif

    /* AES-256-SIV (RFC 5297) for tracking tokens: K1 keys S2V (AES-CMAC),
       K2 keys CTR.  D is S2V's running value after the associated data (the
       key id), the same for every token of one key, so it is made once. */
    typedef struct {
        unsigned char mac[15][16];   /* K1 round keys */
        unsigned char enc[15][16];   /* K2 round keys */
        unsigned char sub1[16];      /* CMAC subkeys (RFC 4493 K1, K2) */
        unsigned char sub2[16];
        unsigned char d[16];
    } mf_siv;

    /* CMAC's chaining value over the complete blocks of a message's prefix
       (the token fields shared by every link): RFC 5297 section 5 caches
       invariant input the same way.  A token needs the value after kp or
       kp - 1 blocks, depending on where its last 16 bytes (which S2V's
       xorend changes) begin. */
    typedef struct {
        size_t kp;
        unsigned char prev[16];      /* after kp - 1 blocks (zero when kp == 0) */
        unsigned char last[16];      /* after kp blocks */
    } mf_siv_pre;

    /* One token to seal: V || P at v, len bytes of P; sealed in place. */
    typedef struct {
        unsigned char *v;
        size_t len;
    } mf_siv_job;

    static int mf_aes_ni = 0;

    /* Doubling in GF(2^128) (RFC 5297 section 2.3), constant time. */
    static void mf_dbl(const unsigned char *in, unsigned char *out) {
        unsigned char carry = (unsigned char)(0u - (in[0] >> 7)) & 0x87;
        int i;
        for (i = 0; i < 15; i++) out[i] = (unsigned char)(in[i] << 1 | in[i + 1] >> 7);
        out[15] = (unsigned char)(in[15] << 1) ^ carry;
    }

    static int mf_aes_ni_available(void) {
    #ifdef MF_X86
        unsigned int a, b, c, d;
        if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
        return (c & (1u << 25)) != 0 && (d & (1u << 26)) != 0;   /* AES, SSE2 */
    #else
        return 0;
    #endif
    }

    /* Use AES-NI when asked and available; returns whether it is used.  Without
       it, tokens are sealed by the cryptography package (see _write_token). */
    static int mf_aes_use_ni(int on) {
        mf_aes_ni = on && mf_aes_ni_available();
        return mf_aes_ni;
    }

    #ifdef MF_X86
    #define MF_TGT __attribute__((target("aes,sse2")))
    #define MF_LD(p) _mm_loadu_si128((const __m128i *)(p))
    #define MF_ST(p, x) _mm_storeu_si128((__m128i *)(p), (x))

    #define MF_EXP_A(rc, i)                                                   \\
        t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(k1, rc), 0xff);       \\
        k0 = _mm_xor_si128(k0, _mm_slli_si128(k0, 4));                        \\
        k0 = _mm_xor_si128(k0, _mm_slli_si128(k0, 4));                        \\
        k0 = _mm_xor_si128(k0, _mm_slli_si128(k0, 4));                        \\
        k0 = _mm_xor_si128(k0, t);                                            \\
        MF_ST(rk[i], k0);
    #define MF_EXP_B(i)                                                       \\
        t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(k0, 0), 0xaa);        \\
        k1 = _mm_xor_si128(k1, _mm_slli_si128(k1, 4));                        \\
        k1 = _mm_xor_si128(k1, _mm_slli_si128(k1, 4));                        \\
        k1 = _mm_xor_si128(k1, _mm_slli_si128(k1, 4));                        \\
        k1 = _mm_xor_si128(k1, t);                                            \\
        MF_ST(rk[i], k1);

    /* The AES-256 key schedule (FIPS 197 section 5.2) with AESKEYGENASSIST. */
    MF_TGT static void mf_aes256_expand(const unsigned char *key, unsigned char rk[15][16]) {
        __m128i k0 = MF_LD(key), k1 = MF_LD(key + 16), t;
        MF_ST(rk[0], k0);
        MF_ST(rk[1], k1);
        MF_EXP_A(0x01, 2) MF_EXP_B(3)
        MF_EXP_A(0x02, 4) MF_EXP_B(5)
        MF_EXP_A(0x04, 6) MF_EXP_B(7)
        MF_EXP_A(0x08, 8) MF_EXP_B(9)
        MF_EXP_A(0x10, 10) MF_EXP_B(11)
        MF_EXP_A(0x20, 12) MF_EXP_B(13)
        MF_EXP_A(0x40, 14)
    }

    MF_TGT static inline __m128i mf_aes(const __m128i *k, __m128i b) {
        int i;
        b = _mm_xor_si128(b, k[0]);
        for (i = 1; i < 14; i++) b = _mm_aesenc_si128(b, k[i]);
        return _mm_aesenclast_si128(b, k[14]);
    }

    MF_TGT static void mf_keys(const unsigned char rk[15][16], __m128i *k) {
        int i;
        for (i = 0; i < 15; i++) k[i] = MF_LD(rk[i]);
    }

    /* AES-CMAC (RFC 4493) of m[:n] under K1. */
    MF_TGT static void mf_cmac(const mf_siv *s, const unsigned char *m, size_t n, unsigned char *out) {
        __m128i k[15], x = _mm_setzero_si128();
        unsigned char last[16];
        size_t nb = n ? (n + 15) / 16 : 1, i, r;
        mf_keys(s->mac, k);
        for (i = 0; i + 1 < nb; i++) x = mf_aes(k, _mm_xor_si128(x, MF_LD(m + 16 * i)));
        r = n - 16 * (nb - 1);
        memset(last, 0, 16);
        memcpy(last, m + 16 * (nb - 1), r);
        if (r == 16) {
            x = _mm_xor_si128(x, MF_LD(s->sub1));
        } else {
            last[r] = 0x80;
            x = _mm_xor_si128(x, MF_LD(s->sub2));
        }
        MF_ST(out, mf_aes(k, _mm_xor_si128(x, MF_LD(last))));
    }

    /* Key schedule, CMAC subkeys and S2V's D after the associated data ad. */
    MF_TGT static void mf_siv_init(mf_siv *s, const unsigned char *key,
                                   const unsigned char *ad, size_t adlen) {
        __m128i k[15];
        unsigned char l[16], d[16];
        int i;
        mf_aes256_expand(key, s->mac);
        mf_aes256_expand(key + 32, s->enc);
        mf_keys(s->mac, k);
        MF_ST(l, mf_aes(k, _mm_setzero_si128()));
        mf_dbl(l, s->sub1);
        mf_dbl(s->sub1, s->sub2);
        memset(l, 0, 16);
        mf_cmac(s, l, 16, d);                     /* D = AES-CMAC(K, <zero>) */
        mf_dbl(d, s->d);
        mf_cmac(s, ad, adlen, d);                 /* D = dbl(D) xor AES-CMAC(K, AD) */
        for (i = 0; i < 16; i++) s->d[i] ^= d[i];
        memset(l, 0, 16);
        memset(d, 0, 16);
    }

    MF_TGT static void mf_siv_prefix(const mf_siv *s, const unsigned char *p, size_t plen,
                                     mf_siv_pre *pre) {
        __m128i k[15], x = _mm_setzero_si128(), prev = x;
        size_t i;
        mf_keys(s->mac, k);
        pre->kp = plen / 16;
        for (i = 0; i < pre->kp; i++) {
            prev = x;
            x = mf_aes(k, _mm_xor_si128(x, MF_LD(p + 16 * i)));
        }
        MF_ST(pre->prev, prev);
        MF_ST(pre->last, x);
    }

    /* CTR from Q = V with bits 63 and 31 cleared; a token is far below 2^32
       blocks, so the low 32-bit word counts (RFC 5297 sections 2.5 and 5). */
    MF_TGT static void mf_siv_ctr(const __m128i *k, mf_siv_job *jobs, size_t count) {
        unsigned char cb[8][16], ks[8][16], *dst[8];
        __m128i c[8];
        size_t t = 0, i = 0, dn[8], b;
        uint32_t ctr;
        int lanes, j, rd;
        /* Eight blocks at a time, taken across the tokens in turn, so that
           independent AES calls overlap in the pipeline. */
        for (;;) {
            lanes = 0;
            while (lanes < 8 && t < count) {
                if (16 * i >= jobs[t].len) { t++; i = 0; continue; }
                memcpy(cb[lanes], jobs[t].v, 16);
                cb[lanes][8] &= 0x7f;
                cb[lanes][12] &= 0x7f;
                ctr = ((uint32_t)cb[lanes][12] << 24 | (uint32_t)cb[lanes][13] << 16
                       | (uint32_t)cb[lanes][14] << 8 | cb[lanes][15]) + (uint32_t)i;
                cb[lanes][12] = (unsigned char)(ctr >> 24); cb[lanes][13] = (unsigned char)(ctr >> 16);
                cb[lanes][14] = (unsigned char)(ctr >> 8); cb[lanes][15] = (unsigned char)ctr;
                dst[lanes] = jobs[t].v + 16 + 16 * i;
                dn[lanes] = jobs[t].len - 16 * i < 16 ? jobs[t].len - 16 * i : 16;
                lanes++;
                i++;
            }
            if (!lanes) break;
            for (j = 0; j < 8; j++) c[j] = _mm_xor_si128(MF_LD(cb[j]), k[0]);
            for (rd = 1; rd < 14; rd++)
                for (j = 0; j < 8; j++) c[j] = _mm_aesenc_si128(c[j], k[rd]);
            for (j = 0; j < 8; j++) MF_ST(ks[j], _mm_aesenclast_si128(c[j], k[14]));
            for (j = 0; j < lanes; j++) {
                if (dn[j] == 16) {
                    MF_ST(dst[j], _mm_xor_si128(MF_LD(dst[j]), MF_LD(ks[j])));
                } else {
                    for (b = 0; b < dn[j]; b++) dst[j][b] ^= ks[j][b];
                }
            }
        }
    }

    /* S2V (RFC 5297 section 2.4) of up to eight tokens of one message at
       once: CMAC is a chain of dependent AES calls, so eight chains side by
       side keep the AES unit busy where one would wait on each result. */
    MF_TGT static void mf_siv_v8(const mf_siv *s, const mf_siv_pre *pre,
                                    mf_siv_job *jobs, int lanes) {
        __m128i k[15], x[8];
        unsigned char t[8][32];
        const unsigned char *zero = (const unsigned char *)s->sub1;  /* any 16 bytes */
        size_t start[8], q[8], steps[8], most = 0, r, i, tl, len;
        unsigned char *m;
        int j, rd;
        mf_keys(s->mac, k);
        for (j = 0; j < lanes; j++) {
            m = jobs[j].v + 16;
            len = jobs[j].len;
            memset(t[j], 0, 32);
            if (len >= 16) {
                /* T = P xorend D: only the last 16 bytes change, so the blocks
                   wholly before them come from P (and the prefix state). */
                q[j] = (len - 16) / 16;
                if (q[j] >= pre->kp) { start[j] = pre->kp; x[j] = MF_LD(pre->last); }
                else if (q[j] + 1 == pre->kp) { start[j] = q[j]; x[j] = MF_LD(pre->prev); }
                else { start[j] = 0; x[j] = _mm_setzero_si128(); }
                tl = len - 16 * q[j];             /* 16 to 31 bytes */
                memcpy(t[j], m + 16 * q[j], tl);
                for (i = 0; i < 16; i++) t[j][tl - 16 + i] ^= s->d[i];
                if (tl == 16) {
                    for (i = 0; i < 16; i++) t[j][i] ^= s->sub1[i];
                    steps[j] = q[j] - start[j] + 1;
                } else {
                    t[j][tl] = 0x80;              /* pad the last block */
                    for (i = 0; i < 16; i++) t[j][16 + i] ^= s->sub2[i];
                    steps[j] = q[j] - start[j] + 2;
                }
            } else {
                /* T = dbl(D) xor pad(P): one complete block */
                mf_dbl(s->d, t[j]);
                for (i = 0; i < len; i++) t[j][i] ^= m[i];
                t[j][len] ^= 0x80;
                for (i = 0; i < 16; i++) t[j][i] ^= s->sub1[i];
                q[j] = start[j] = 0;
                x[j] = _mm_setzero_si128();
                steps[j] = 1;
            }
            if (steps[j] > most) most = steps[j];
        }
        for (; j < 8; j++) { steps[j] = 0; x[j] = _mm_setzero_si128(); }
        for (r = 0; r < most; r++) {
            for (j = 0; j < 8; j++) {
                const unsigned char *blk = zero;
                if (r < steps[j]) {
                    i = start[j] + r;
                    blk = i < q[j] ? jobs[j].v + 16 + 16 * i : t[j] + 16 * (i - q[j]);
                }
                x[j] = _mm_xor_si128(_mm_xor_si128(x[j], MF_LD(blk)), k[0]);
            }
            for (rd = 1; rd < 14; rd++)
                for (j = 0; j < 8; j++) x[j] = _mm_aesenc_si128(x[j], k[rd]);
            for (j = 0; j < 8; j++) {
                x[j] = _mm_aesenclast_si128(x[j], k[14]);
                if (r + 1 == steps[j]) MF_ST(jobs[j].v, x[j]);
            }
        }
        memset(t, 0, sizeof t);
    }

    MF_TGT static void mf_siv_seal_many(const mf_siv *s, const mf_siv_pre *pre,
                                        mf_siv_job *jobs, size_t count) {
        __m128i k[15];
        size_t i;
        for (i = 0; i < count; i += 8)      /* every V first: CTR changes P */
            mf_siv_v8(s, pre, jobs + i, count - i < 8 ? (int)(count - i) : 8);
        mf_keys(s->enc, k);
        mf_siv_ctr(k, jobs, count);
    }

    #else
    static void mf_siv_init(mf_siv *s, const unsigned char *key,
                            const unsigned char *ad, size_t adlen) { (void)s; (void)key; (void)ad; (void)adlen; }
    static void mf_siv_prefix(const mf_siv *s, const unsigned char *p, size_t plen,
                              mf_siv_pre *pre) { (void)s; (void)p; (void)plen; pre->kp = 0; }
    static void mf_siv_seal_many(const mf_siv *s, const mf_siv_pre *pre,
                                 mf_siv_job *jobs, size_t count) {
        (void)s; (void)pre; (void)jobs; (void)count;
    }
    #endif

    static const char mf_B64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /* Two base64url characters per 12 bits, so three bytes take two lookups. */
    static char mf_B64x2[4096][2];
    static int mf_b64_simd = 0;

    #ifdef MF_X86
    static int mf_ssse3_available(void) {
        unsigned int a, b, c, d;
        if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
        return (c & (1u << 9)) != 0;                                /* SSSE3 */
    }

    /* Twelve bytes to sixteen base64url characters a step, W. Mula and
       D. Lemire, "Faster Base64 Encoding and Decoding Using AVX2
       Instructions" (2018), sections 3.1 and 3.2 in their SSE form: a
       shuffle puts each 3-byte group's bytes in a 32-bit lane as b1 b0 b2 b1,
       two multiplies move its four 6-bit indices to the lanes' bytes, and a
       16-entry table gives each index range its offset to ASCII. A block
       reads 16 bytes and uses 12, so blocks run while i + 16 <= n; returns
       the bytes encoded, a multiple of 12, having written 4/3 as many. */
    __attribute__((target("ssse3")))
    static size_t mf_b64url_ssse3(const unsigned char *s, size_t n, char *d) {
        const __m128i order = _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1);
        const __m128i offsets = _mm_setr_epi8(
            'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
            '0' - 52, '0' - 52, '0' - 52, '-' - 62, '_' - 63, 'A', 0, 0);
        size_t i = 0;
        __m128i in, t0, t1, x, r;
        for (; i + 16 <= n; i += 12, d += 16) {
            in = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(s + i)), order);
            t0 = _mm_mulhi_epu16(_mm_and_si128(in, _mm_set1_epi32(0x0fc0fc00)),
                                 _mm_set1_epi32(0x04000040));
            t1 = _mm_mullo_epi16(_mm_and_si128(in, _mm_set1_epi32(0x003f03f0)),
                                 _mm_set1_epi32(0x01000010));
            x = _mm_or_si128(t0, t1);                               /* indices 0..63 */
            /* The table's slot: 0 for 26..51, 1..12 for 52..63, 13 for 0..25. */
            r = _mm_subs_epu8(x, _mm_set1_epi8(51));
            r = _mm_or_si128(r, _mm_and_si128(_mm_cmpgt_epi8(_mm_set1_epi8(26), x),
                                              _mm_set1_epi8(13)));
            _mm_storeu_si128((__m128i *)d, _mm_add_epi8(x, _mm_shuffle_epi8(offsets, r)));
        }
        return i;
    }
    #endif

    static void mf_b64_init(void) {
        int i;
        for (i = 0; i < 4096; i++) {
            mf_B64x2[i][0] = mf_B64[i >> 6];
            mf_B64x2[i][1] = mf_B64[i & 63];
        }
    #if defined(MF_X86) && !defined(MF_NO_SIMD)
        mf_b64_simd = mf_ssse3_available();
    #endif
    }

    /* The SSSE3 blocks when asked and available; returns whether they are used. */
    static int mf_b64_use_simd(int on) {
    #if defined(MF_X86) && !defined(MF_NO_SIMD)
        mf_b64_simd = on && mf_ssse3_available();
    #else
        (void)on;
    #endif
        return mf_b64_simd;
    }

    /* base64url without padding; returns the number of characters written. */
    static size_t mf_b64url(const unsigned char *s, size_t n, char *d) {
        char *p = d;
        size_t i = 0;
        uint32_t v;
    #ifdef MF_X86
        if (mf_b64_simd) {
            i = mf_b64url_ssse3(s, n, d);
            p += i / 3 * 4;
        }
    #endif
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
    ctypedef struct mf_siv:
        pass
    ctypedef struct mf_siv_pre:
        size_t kp
        unsigned char prev[16]
        unsigned char last[16]
    int mf_aes_ni
    int mf_aes_ni_available()
    int mf_aes_use_ni(int on)
    void mf_siv_init(mf_siv* s, const unsigned char* key, const unsigned char* ad, size_t adlen)
    void mf_siv_prefix(const mf_siv* s, const unsigned char* p, size_t plen, mf_siv_pre* pre)
    ctypedef struct mf_siv_job:
        unsigned char* v
        size_t len
    void mf_siv_seal_many(const mf_siv* s, const mf_siv_pre* pre, mf_siv_job* jobs, size_t count)
    size_t mf_b64url(const unsigned char* s, size_t n, char* d)
    void mf_b64_init()
    int mf_b64_simd
    int mf_b64_use_simd(int on)


#: Whether tokens are sealed with AES-NI here (else by the cryptography package).
AES_NI = bool(mf_aes_use_ni(1))
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

#: Bytes of the synthetic IV (the SIV tag) in a token (128 bits).
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


cdef inline Py_ssize_t _mp_str_size(Py_ssize_t n) noexcept:
    # msgpack str: fixstr, str 8, str 16, str 32 (the smallest that holds n)
    return n + (1 if n < 32 else 2 if n < 256 else 3 if n < 65536 else 5)


cdef inline Py_ssize_t _mp_str_head(unsigned char* p, Py_ssize_t n) noexcept:
    """Write the msgpack str header for ``n`` bytes at ``p`` (at most 5
    bytes; n < 2**32); return its length."""
    if n < 32:
        p[0] = <unsigned char>(0xA0 | n)
        return 1
    if n < 256:
        p[0] = 0xD9
        p[1] = <unsigned char>n
        return 2
    if n < 65536:
        p[0] = 0xDA
        p[1] = <unsigned char>(n >> 8)
        p[2] = <unsigned char>n
        return 3
    p[0] = 0xDB
    p[1] = <unsigned char>(n >> 24)
    p[2] = <unsigned char>(n >> 16)
    p[3] = <unsigned char>(n >> 8)
    p[4] = <unsigned char>n
    return 5


cdef inline unsigned char* _mp_put_str(unsigned char* p, const char* s, Py_ssize_t n) noexcept:
    p += _mp_str_head(p, n)
    memcpy(p, s, <size_t>n)
    return p + n


# 2**32 as a C constant: Cython makes a literal above 32 bits a Python int,
# and a comparison with it a Python call (in a noexcept function, whose
# error would be lost).
cdef extern from *:
    """
    #define MF_U32_END 4294967296LL
    #define MF_I32_MIN (-2147483647LL - 1)
    """
    const long long U32_END "MF_U32_END"
    const long long I32_MIN "MF_I32_MIN"


cdef inline Py_ssize_t _mp_int_size(long long x) noexcept:
    # msgpack int as msgspec writes it: a fixint, else the smallest of
    # uint 8/16/32/64 (x >= 0) or int 8/16/32/64 (x < 0) that holds x
    if -32 <= x < 128:
        return 1
    if x >= 0:
        return 2 if x < 256 else 3 if x < 65536 else 5 if x < U32_END else 9
    return 2 if x >= -128 else 3 if x >= -32768 else 5 if x >= I32_MIN else 9


cdef inline unsigned char* _mp_put_int(unsigned char* p, long long x) noexcept:
    cdef Py_ssize_t size = _mp_int_size(x), i
    cdef unsigned long long u = <unsigned long long>x
    if size == 1:
        p[0] = <unsigned char>u
        return p + 1
    if x >= 0:
        p[0] = 0xCC if size == 2 else 0xCD if size == 3 else 0xCE if size == 5 else 0xCF
    else:
        p[0] = 0xD0 if size == 2 else 0xD1 if size == 3 else 0xD2 if size == 5 else 0xD3
    for i in range(size - 1):  # big-endian, the low size - 1 bytes
        p[size - 1 - i] = <unsigned char>(u >> (8 * i))
    return p + size


cdef bytes _payload_prefix(str message_id, str recipient, str job, long long sent_at):
    # msgpack [message_id, recipient, job, sent_at, ...]: a 6-element array
    # whose first four items are the same for every token of one message.
    # Written here as msgspec.msgpack.encode writes the four (the tracking
    # server decodes them with it), in one bytes of its final size.
    cdef Py_ssize_t n1, n2, n3, size
    cdef const char* s1 = PyUnicode_AsUTF8AndSize(message_id, &n1)
    cdef const char* s2 = PyUnicode_AsUTF8AndSize(recipient, &n2)
    cdef const char* s3 = PyUnicode_AsUTF8AndSize(job, &n3)
    cdef bytes out
    cdef unsigned char* p
    size = 1 + _mp_str_size(n1) + _mp_str_size(n2) + _mp_str_size(n3) + _mp_int_size(sent_at)
    if size > _MAX_PREFIX:
        raise ValueError("message id, recipient and job are too long for a tracking token")
    out = PyBytes_FromStringAndSize(NULL, size)
    p = <unsigned char*>PyBytes_AS_STRING(out)
    p[0] = 0x96
    p = _mp_put_str(p + 1, s1, n1)
    p = _mp_put_str(p, s2, n2)
    p = _mp_put_str(p, s3, n3)
    _mp_put_int(p, sent_at)
    return out


def payload_prefix(str message_id not None, str recipient not None, str job not None,
                   long long sent_at):
    """The tokens' shared payload prefix (for tests: it must be what
    msgspec.msgpack.encode gives, with a 6-element array's first byte)."""
    return _payload_prefix(message_id, recipient, job, sent_at)


cdef inline Py_ssize_t _token_len(Rewriter rw, Py_ssize_t plen, Py_ssize_t n) noexcept:
    """An upper bound of the token's length for a URL of ``n`` bytes."""
    return PyBytes_GET_SIZE(rw.key_id) + 1 + ((plen + 6 + n + _TAG) * 4 + 2) // 3


cdef Py_ssize_t _put_plain(_Out* tmp, bytes prefix, int kind, const unsigned char* url,
                           Py_ssize_t n) except -1:
    """Append room for V and the payload (prefix, kind, URL) to ``tmp``; return
    where V goes."""
    cdef unsigned char head[6]
    cdef Py_ssize_t h, plen = PyBytes_GET_SIZE(prefix), off = tmp.len
    if n >= U32_END:
        raise ValueError("URL too long for a token")
    head[0] = <unsigned char>kind
    h = 1 + _mp_str_head(head + 1, n)
    _out_reserve(tmp, _TAG + plen + h + n)
    tmp.len += _TAG
    _out_write(tmp, PyBytes_AS_STRING(prefix), plen)
    _out_write(tmp, head, h)
    _out_write(tmp, url, n)
    return off


cdef int _seal(Rewriter rw, const mf_siv_pre* pre, _Out* tmp, const Py_ssize_t* offs,
               Py_ssize_t count) except -1:
    """Seal the ``count`` tokens laid out back to back in ``tmp`` (each ``V ||
    payload`` from ``offs[i]`` to the next one), eight at a time."""
    cdef mf_siv_job jobs[8]
    cdef Py_ssize_t i, j, end, lanes
    cdef bytes sealed
    i = 0
    while i < count:
        lanes = count - i if count - i < 8 else 8
        for j in range(lanes):
            end = offs[i + j + 1] if i + j + 1 < count else tmp.len
            jobs[j].v = <unsigned char*>tmp.data + offs[i + j]
            jobs[j].len = <size_t>(end - offs[i + j] - _TAG)
            if not mf_aes_ni:
                sealed = rw._fallback().encrypt(
                    PyBytes_FromStringAndSize(<char*>jobs[j].v + _TAG, <Py_ssize_t>jobs[j].len),
                    [rw.key_id],
                )
                memcpy(jobs[j].v, PyBytes_AS_STRING(sealed), jobs[j].len + _TAG)
        if mf_aes_ni:
            mf_siv_seal_many(<const mf_siv*>rw._siv, pre, jobs, <size_t>lanes)
        i += lanes
    return 0


cdef int _put_token(Rewriter rw, _Out* out, const char* sealed, Py_ssize_t n) except -1:
    """Append ``key_id.base64url(sealed[:n])`` to ``out``."""
    cdef size_t w
    _out_write(out, PyBytes_AS_STRING(rw.key_id), PyBytes_GET_SIZE(rw.key_id))
    _out_byte(out, 46)                                          # "."
    _out_reserve(out, (n * 4 + 2) // 3)
    w = mf_b64url(<const unsigned char*>sealed, <size_t>n, out.data + out.len)
    out.len += <Py_ssize_t>w
    return 0


cdef int _write_token(Rewriter rw, _Out* out, const mf_siv_pre* pre, bytes prefix, int kind,
                      const unsigned char* url, Py_ssize_t n, _Out* tmp) except -1:
    """Append one token, ``key_id.base64url(V || C)``, to ``out``."""
    cdef Py_ssize_t off
    tmp.len = 0
    off = _put_plain(tmp, prefix, kind, url, n)
    _seal(rw, pre, tmp, &off, 1)
    return _put_token(rw, out, tmp.data, tmp.len)


cdef int _prefix_state(Rewriter rw, bytes prefix, mf_siv_pre* pre) except -1:
    if mf_aes_ni:
        mf_siv_prefix(<const mf_siv*>rw._siv, <const unsigned char*>PyBytes_AS_STRING(prefix),
                      <size_t>PyBytes_GET_SIZE(prefix), pre)
    else:
        pre.kp = 0
    return 0


cpdef str unsubscribe_value(str url, str token, str mailto):
    """``List-Unsubscribe`` (RFC 2369): the one-click URL, and with ``mailto``
    (a plain address, which the caller has checked) a ``mailto:`` alternative
    whose subject carries the token."""
    if mailto is None:
        return f"<{url}>"
    return f"<{url}>, <mailto:{mailto}?subject=unsubscribe-{token}>"


#: A kept buffer larger than this is freed after the call that grew it: one
#: huge part does not pin its memory for the Rewriter's life.
cdef Py_ssize_t _KEEP_MAX = 1 << 20


cdef void _scratch_free(_Scratch* sc) noexcept:
    PyMem_Free(sc.out.data)
    PyMem_Free(sc.tmp.data)
    PyMem_Free(sc.url.data)
    PyMem_Free(sc.ed.items)
    PyMem_Free(sc.idx)
    memset(sc, 0, sizeof(_Scratch))


cdef inline void _trim(_Out* b) noexcept:
    if b.cap > _KEEP_MAX:
        PyMem_Free(b.data)
        b.data = NULL
        b.cap = 0


cdef void _scratch_trim(_Scratch* sc) noexcept:
    """Keep ``sc`` for the next call, less what grew too large."""
    _trim(&sc.out)
    _trim(&sc.tmp)
    _trim(&sc.url)
    if <Py_ssize_t>sizeof(_Edit) * sc.ed.cap > _KEEP_MAX:
        PyMem_Free(sc.ed.items)
        sc.ed.items = NULL
        sc.ed.cap = 0
    if <Py_ssize_t>sizeof(Py_ssize_t) * sc.nidx > _KEEP_MAX:
        PyMem_Free(sc.idx)
        sc.idx = NULL
        sc.nidx = 0


cdef class Rewriter:
    """Seals tokens with one key and rewrites HTML parts to carry them.

    ``base`` is the tracking server's URL (``https://t.example.com``, no
    trailing slash); ``key_id`` (ASCII, no ``.``) names the key so that keys
    can rotate; ``key`` is the 64-byte AES-256-SIV key derived from that
    tracking key (:func:`mailsflux.tracking.tokens.token_key`).  Input
    validation lives in :class:`mailsflux.tracking.Tracker`.
    """

    def __cinit__(self):
        self._siv = PyMem_Malloc(sizeof(mf_siv))
        if self._siv is NULL:
            raise MemoryError()
        memset(self._siv, 0, sizeof(mf_siv))

    def __dealloc__(self):
        if self._siv is not NULL:
            memset(self._siv, 0, sizeof(mf_siv))
            PyMem_Free(self._siv)
        _scratch_free(&self._keep)

    def __init__(self, str base, str key_id, bytes key not None):
        if "." in key_id or not key_id or not key_id.isascii():
            raise ValueError("key id must be non-empty ASCII without '.'")
        if len(key) != 64:
            raise ValueError("the AES-256-SIV key must be 64 bytes")
        self.base = base.rstrip("/").encode("ascii")
        self.key_id = key_id.encode("ascii")
        self._own = self.base + b"/"
        self._unsubscribe_base = base.rstrip("/") + "/u/"
        self._key = key
        self._aessiv = None
        if mf_aes_ni_available():
            mf_siv_init(<mf_siv*>self._siv, <const unsigned char*>PyBytes_AS_STRING(key),
                        <const unsigned char*>PyBytes_AS_STRING(self.key_id),
                        <size_t>PyBytes_GET_SIZE(self.key_id))

    cdef object _fallback(self):
        if self._aessiv is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESSIV
            self._aessiv = AESSIV(self._key)
        return self._aessiv

    def token(self, int kind, str message_id not None, str recipient not None, str job not None,
              long long sent_at, str url not None = ""):
        """One token (``kind``: 0 open, 1 click, 2 unsubscribe) as ``str``."""
        return self._token(kind, message_id, recipient, job, sent_at, url.encode("utf-8"))

    cdef str _token(self, int kind, str message_id, str recipient, str job, long long sent_at,
                    bytes u):
        cdef _Out out, tmp
        cdef mf_siv_pre ctx
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
            # ASCII throughout (the key id, base64url): the bytes are the str's.
            return PyUnicode_DecodeASCII(out.data, out.len, NULL)
        finally:
            PyMem_Free(out.data)
            PyMem_Free(tmp.data)

    def unsubscribe_pair(self, str message_id not None, str recipient not None,
                         str job not None, long long sent_at, str mailto=None):
        """``({base}/u/{token}, List-Unsubscribe value)`` with one unsubscribe
        token (:func:`unsubscribe_value`; ``mailto`` a plain address, which
        the caller has checked). Every message of a tracked job needs both;
        one call instead of five Python frames a message."""
        token = self._token(2, message_id, recipient, job, sent_at, b"")
        url = self._unsubscribe_base + token
        return url, unsubscribe_value(url, token, mailto)

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
        cdef mf_siv_pre ctx
        cdef bytes prefix
        cdef const unsigned char* own = <const unsigned char*>PyBytes_AS_STRING(self._own)
        cdef Py_ssize_t nown = PyBytes_GET_SIZE(self._own), nskip = 0
        cdef const unsigned char* skip = NULL
        cdef bint pixel_done = False
        cdef Py_ssize_t* slot = NULL
        cdef Py_ssize_t* offs = NULL
        cdef Py_ssize_t* idx
        cdef Py_ssize_t count = 0, k, end
        cdef _Scratch mine
        cdef _Scratch* sc
        if not clicks and not opens:
            return html
        if skip_prefix is not None and PyBytes_GET_SIZE(skip_prefix) > 0:
            skip = <const unsigned char*>PyBytes_AS_STRING(skip_prefix)
            nskip = PyBytes_GET_SIZE(skip_prefix)
        # The buffers the last call left, unless a call running now has them
        # (another thread while this one waits for the GIL): then its own.
        memset(&mine, 0, sizeof(_Scratch))
        if self._keep_taken:
            sc = &mine
        else:
            self._keep_taken = True
            sc = &self._keep
        out = sc.out
        tmp = sc.tmp
        url = sc.url
        ed = sc.ed
        out.len = tmp.len = url.len = ed.len = 0
        try:
            _scan(s, 0, n, &ed, True, &body)
            if not clicks:
                ed.len = 0
            prefix = _payload_prefix(message_id, recipient, job, sent_at)
            # First every token's payload, then all of them sealed together
            # (eight CMAC chains at a time), then the output.
            if sc.nidx < 2 * (ed.len + 1):
                idx = <Py_ssize_t*>PyMem_Realloc(sc.idx, <size_t>(2 * (ed.len + 1)) * sizeof(Py_ssize_t))
                if idx is NULL:
                    raise MemoryError()
                sc.idx = idx
                sc.nidx = 2 * (ed.len + 1)
            slot = sc.idx
            offs = sc.idx + (ed.len + 1)
            if opens:
                offs[0] = _put_plain(&tmp, prefix, KIND_OPEN, NULL, 0)
                count = 1
            for i in range(ed.len):
                slot[i] = -1
                e = ed.items[i]
                if e.kind != EDIT_HREF:
                    continue
                _clean_url(s + e.start, e.end - e.start, &url)
                if (
                    not _is_http(<const unsigned char*>url.data, url.len)
                    or (url.len >= nown and memcmp(url.data, own, <size_t>nown) == 0)
                    or (skip is not NULL and url.len >= nskip
                        and memcmp(url.data, skip, <size_t>nskip) == 0)
                    or _token_len(self, PyBytes_GET_SIZE(prefix), url.len) > _MAX_TOKEN
                    or not _utf8_ok(<const unsigned char*>url.data, url.len)
                ):
                    continue
                slot[i] = count
                offs[count] = _put_plain(&tmp, prefix, KIND_CLICK,
                                         <const unsigned char*>url.data, url.len)
                count += 1
            _prefix_state(self, prefix, &ctx)
            _seal(self, &ctx, &tmp, offs, count)
            _out_reserve(&out, n + (tmp.len * 4 + 2) // 3 + count * (
                PyBytes_GET_SIZE(self.base) + PyBytes_GET_SIZE(self.key_id) + 8
            ) + PyBytes_GET_SIZE(_PIX_HEAD) + PyBytes_GET_SIZE(_PIX_TAIL))
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
                    end = offs[1] if count > 1 else tmp.len
                    _put_token(self, &out, tmp.data + offs[0], end - offs[0])
                    _out_write(&out, PyBytes_AS_STRING(_PIX_TAIL), PyBytes_GET_SIZE(_PIX_TAIL))
                    pixel_done = True
                if e.kind < 0:
                    break
                _out_write(&out, s + last, e.start - last)
                last = e.end
                if e.kind == EDIT_DROP:
                    continue
                k = slot[i]
                if k < 0:                                       # an href left as it is
                    _out_write(&out, s + e.start, e.end - e.start)
                    continue
                _out_write(&out, PyBytes_AS_STRING(self.base), PyBytes_GET_SIZE(self.base))
                _out_write(&out, b"/c/", 3)
                end = offs[k + 1] if k + 1 < count else tmp.len
                _put_token(self, &out, tmp.data + offs[k], end - offs[k])
            _out_write(&out, s + last, n - last)
            return PyBytes_FromStringAndSize(out.data, out.len)
        finally:
            sc.out = out
            sc.tmp = tmp
            sc.url = url
            sc.ed = ed
            if sc == &mine:
                _scratch_free(sc)
            else:
                _scratch_trim(sc)
                self._keep_taken = False

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
        cdef str whole, url, own = self._own.decode("ascii"), base = self.base.decode("ascii")
        cdef bytes u, prefix = None
        cdef bint no_prefix = False
        cdef list pieces = None
        cdef _Out out, tmp
        cdef mf_siv_pre ctx
        cdef Py_ssize_t* offs = NULL
        cdef Py_ssize_t* grown
        cdef Py_ssize_t count = 0, cap = 0, k, end
        # The next "h" and "H" at or after i (n: none left): a URL can start
        # only there, and the search for them runs at memchr's speed where a
        # read of each character in turn took most of a text's time.
        cdef Py_ssize_t next_h = -1, next_H = -1
        if skip_prefix is not None and not skip_prefix:
            skip_prefix = None
        out.data = tmp.data = NULL
        out.len = out.cap = tmp.len = tmp.cap = 0
        try:
            # Invariant for the unchecked reads: every index read is < n (each
            # read below is guarded by a comparison with n first).
            while i < n:
                if next_h < i:
                    next_h = PyUnicode_FindChar(src, u"h", i, n, 1)
                    if next_h < 0:
                        next_h = n
                if next_H < i:
                    next_H = PyUnicode_FindChar(src, u"H", i, n, 1)
                    if next_H < 0:
                        next_H = n
                i = next_h if next_h < next_H else next_H
                if i >= n:
                    break
                if i == 0 or not _word(src[i - 1]):
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
                        # the payload now; all tokens are sealed together below
                        if count == cap:
                            cap = cap * 2 if cap else 16
                            grown = <Py_ssize_t*>PyMem_Realloc(
                                offs, <size_t>cap * sizeof(Py_ssize_t))
                            if grown is NULL:
                                raise MemoryError()
                            offs = grown
                        offs[count] = _put_plain(&tmp, prefix, KIND_CLICK,
                                                 <const unsigned char*>PyBytes_AS_STRING(u),
                                                 PyBytes_GET_SIZE(u))
                        if pieces is None:
                            pieces = []
                        pieces.append(src[last:j - len(whole)])
                        pieces.append(base)
                        pieces.append(u"/c/")
                        pieces.append(count)                    # the token's place
                        pieces.append(whole[len(url):])
                        count += 1
                        last = j
                        continue
                i += 1
            if pieces is None:
                return text
            _seal(self, &ctx, &tmp, offs, count)
            for i in range(len(pieces)):
                if type(pieces[i]) is int:
                    k = pieces[i]
                    end = offs[k + 1] if k + 1 < count else tmp.len
                    out.len = 0
                    _put_token(self, &out, tmp.data + offs[k], end - offs[k])
                    pieces[i] = PyBytes_FromStringAndSize(out.data, out.len).decode("ascii")
        finally:
            PyMem_Free(offs)
            PyMem_Free(out.data)
            PyMem_Free(tmp.data)
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


cpdef str _trim_url(str url):
    """Drop sentence punctuation and unbalanced closing brackets from a URL's end.

    Linear: the bracket counts are taken once and updated as characters are
    dropped (recounting per character was quadratic in the trailing run).
    They are taken when the first closing bracket is met at the end, which
    most URLs never reach: until then only punctuation was dropped, so the
    counts are those of the whole URL."""
    cdef Py_ssize_t end = len(url)
    cdef Py_ssize_t open_paren = 0, open_square = 0, close_paren = 0, close_square = 0
    cdef bint counted = False
    cdef Py_UCS4 c
    while end:
        c = url[end - 1]
        if c == u"." or c == u"," or c == u";" or c == u":" or c == u"!" or c == u"?":
            end -= 1
            continue
        if c != u")" and c != u"]":
            break
        if not counted:
            open_paren, open_square = url.count(u"("), url.count(u"[")
            close_paren, close_square = url.count(u")"), url.count(u"]")
            counted = True
        if c == u")" and open_paren < close_paren:
            close_paren -= 1
            end -= 1
        elif c == u"]" and open_square < close_square:
            close_square -= 1
            end -= 1
        else:
            break
    return url[:end]


def siv_encrypt(bytes key not None, bytes ad not None, bytes data not None):
    """AES-256-SIV of ``data`` with one associated-data string, by this module's
    AES-NI code (for tests against the cryptography package)."""
    cdef mf_siv_pre pre
    cdef mf_siv_job one
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 16 + PyBytes_GET_SIZE(data))
    cdef unsigned char* o = <unsigned char*>PyBytes_AS_STRING(out)
    cdef void* siv
    if not mf_aes_ni:
        raise RuntimeError("AES-NI is off")
    if len(key) != 64:
        raise ValueError("key must be 64 bytes")
    siv = PyMem_Malloc(sizeof(mf_siv))
    if siv is NULL:
        raise MemoryError()
    try:
        mf_siv_init(<mf_siv*>siv, <const unsigned char*>PyBytes_AS_STRING(key),
                    <const unsigned char*>PyBytes_AS_STRING(ad), <size_t>PyBytes_GET_SIZE(ad))
        mf_siv_prefix(<const mf_siv*>siv, NULL, 0, &pre)
        memcpy(o + 16, PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data))
        one.v = o
        one.len = <size_t>PyBytes_GET_SIZE(data)
        mf_siv_seal_many(<const mf_siv*>siv, &pre, &one, 1)
    finally:
        PyMem_Free(siv)
    return out


def use_aes_ni(bint on):
    """Switch the sealing code path (tests cover both); returns whether AES-NI is on."""
    return bool(mf_aes_use_ni(1 if on else 0))


def aes_ni_available():
    return bool(mf_aes_ni_available())


def use_b64_simd(bint on):
    """Switch the tokens' base64url to SSSE3 blocks or the table alone (tests
    cover both); returns whether the blocks are on."""
    return bool(mf_b64_use_simd(1 if on else 0))


def kept_scratch(Rewriter rw not None):
    """``(taken, out, tmp, url, edits, index)``: whether a call holds the
    buffers ``rw`` keeps between rewrite_html calls, and their capacities
    (for tests)."""
    return (bool(rw._keep_taken), rw._keep.out.cap, rw._keep.tmp.cap, rw._keep.url.cap,
            rw._keep.ed.cap, rw._keep.nidx)


def b64_simd():
    """Whether the tokens' base64url runs in SSSE3 blocks now."""
    return bool(mf_b64_simd)


def b64url(bytes data not None):
    """base64url of ``data`` without padding, as tokens are written (for tests
    against :func:`base64.urlsafe_b64encode`)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, (n * 4 + 2) // 3)
    cdef size_t w = mf_b64url(<const unsigned char*>PyBytes_AS_STRING(data), <size_t>n,
                              PyBytes_AS_STRING(out))
    assert w == <size_t>PyBytes_GET_SIZE(out)
    return out
