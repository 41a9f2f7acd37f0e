# What the compiled stages take from an address, as the Python types do.
# Inline, like _chars.pxd: no extension module.

cdef extern from "Python.h":
    Py_ssize_t PyUnicode_FindChar(
        object s, Py_UCS4 ch, Py_ssize_t start, Py_ssize_t end, int direction
    ) except -2
    bint PyUnicode_IS_ASCII(object o)
    const unsigned char* PyUnicode_1BYTE_DATA(object o)


cdef inline str domain_of(str address):
    """What follows the last "@" of ``address``, lowercased: the domain
    ``RenderedMessage.domain`` and ``DeliveryResult.domain`` give
    (``address.rpartition("@")[2].lower()``), as one string: most domains
    come lower-case already (the reader writes them so), and are then
    the slice itself, not a tuple of three and a lowered copy."""
    cdef Py_ssize_t at = PyUnicode_FindChar(address, 64, 0, len(address), -1), i
    cdef str d = address[at + 1:]  # no "@" (at = -1): all of it, as rpartition
    cdef const unsigned char* s
    if PyUnicode_IS_ASCII(d):
        s = PyUnicode_1BYTE_DATA(d)
        for i in range(len(d)):
            if 65 <= s[i] <= 90:
                return d.lower()
        return d
    return d.lower()
