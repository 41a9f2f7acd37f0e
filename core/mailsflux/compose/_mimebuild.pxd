# Declarations for mailsflux.compose._mimebuild (compiled MIME assembly).
#
# A MessageBuilder holds everything that is the same for every recipient of a
# job (static headers, attachments and inline images already base64-encoded);
# build() writes one message's header block and body into a growable C
# buffer (_Out) and copies it into a bytes object once.


from mailsflux._buffer cimport Buffer as _Out


cdef class Address:
    cdef readonly str local     # as given (UTF-8 allowed, RFC 6532)
    cdef readonly str domain    # lower-case, IDNA (xn--) form
    cdef readonly bint smtputf8 # the local part is non-ASCII (RFC 6531)
    cdef str _text              # "local@domain"
    cdef bytes _utf8            # _text in UTF-8, as written into headers


cdef tuple _plain_address(str text)


cdef class Attachment:
    cdef readonly bytes data
    cdef readonly str filename
    cdef readonly str content_type
    cdef readonly str cid       # Content-ID of an inline image; None for an attachment
    cdef bytes _part            # the whole body part: headers, blank line, base64 lines


cdef class MessageBuilder:
    cdef readonly Address sender        # the static From address, or None
    cdef readonly bint has_reply_to_utf8
    cdef bytes _from_line               # "From: ...\r\n" when static, else None
    cdef bytes _static                  # Reply-To, MIME-Version, custom headers
    cdef tuple _attachments             # of Attachment (multipart/mixed)
    cdef tuple _inline                  # of Attachment with a cid (multipart/related)
    cdef Py_ssize_t _parts_size         # total encoded size of both
    cdef tuple _unsub                   # (last List-Unsubscribe value, its header bytes)

    cdef int _w_unsubscribe(self, _Out* o, str value) except -1
    cdef tuple _build(self, str to, str subject, str date, str message_id, bytes text,
                      bytes html, str to_name, str sender, str list_unsubscribe, str boundary)
