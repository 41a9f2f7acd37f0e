# Declarations for mailsflux.delivery._smtpfast (DATA payload assembly, reply parsing).

# Dots to insert when dot-stuffing s[0:n] (one for a leading dot, one for
# each dot right after a CRLF), or -1 when s holds a bare CR or LF.
cdef Py_ssize_t _scan(const unsigned char* s, Py_ssize_t n) noexcept nogil
