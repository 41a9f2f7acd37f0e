# Declarations for mailsflux.tracking._rewrite (compiled link rewriting and sealed tokens).
#
# The HTML scanner records what to change as a list of _Edit spans over the
# input (href values to replace, data-mf-notrack attributes to drop, the
# pixel's insertion point); the rewriter then copies the input through,
# replacing only those spans.


cdef struct _Edit:
    Py_ssize_t start    # first byte of the span in the input
    Py_ssize_t end      # end of the span (== start for an insertion)
    int kind            # EDIT_HREF, EDIT_DROP or EDIT_PIXEL


cdef struct _Edits:
    _Edit* items        # PyMem_Realloc'd; NULL until the first append
    Py_ssize_t len
    Py_ssize_t cap


from mailsflux._buffer cimport Buffer as _Out


# rewrite_html's working buffers, kept by its Rewriter between calls.
cdef struct _Scratch:
    _Out out           # the rewritten part
    _Out tmp           # every token's payload, then sealed in place
    _Out url           # one href, entities and white space cleaned
    _Edits ed          # the scanner's spans
    Py_ssize_t* idx    # each edit's token slot, then each token's offset in tmp
    Py_ssize_t nidx    # entries idx has room for


cdef class Rewriter:
    cdef readonly bytes base        # b"https://t.example.com" (no trailing slash)
    cdef readonly bytes key_id      # ASCII key id, written in clear before the "."
    cdef bytes _own                 # base + b"/": our own URLs are never wrapped
    cdef str _unsubscribe_base      # base + "/u/": the one-click URL before its token
    cdef void* _siv                 # mf_siv: AES-256-SIV key schedules, CMAC subkeys, S2V's D
    cdef bytes _key                 # the 64-byte AES-SIV key, for the fallback without AES-NI
    cdef object _aessiv             # cryptography's AESSIV, made when first needed
    cdef _Scratch _keep             # rewrite_html's buffers, for the next call
    cdef bint _keep_taken           # a call is using _keep (another makes its own)

    cdef object _fallback(self)
    cdef str _token(self, int kind, str message_id, str recipient, str job, long long sent_at,
                    bytes u)
