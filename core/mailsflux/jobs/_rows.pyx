"""The good rows of a recipient file, taken in C.

:meth:`mailsflux.jobs.recipients.RecipientFile.rows` reads a row's fields
with the csv module and asks :meth:`RowTaker.take` for its
:class:`~mailsflux.types.Recipient`. ``take`` accepts only what is certainly
a good row whose address is new: no more fields than columns, the address
column present, every field valid text, the address parsed, and its key new
to the duplicate set. For anything else it returns None and the reader looks
at the row again the slow way, which says what is wrong with it: so the
reasons and their wording stay in one place, in Python.

A row refused here for a duplicate address was not added to the set (it was
there already); the slow way asks the set again and hears the same answer.
Nothing else here changes any state, so the slow way sees the row as if
``take`` had never looked at it.
"""

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    object PyUnicode_AsUTF8String(object o)


cdef class RowTaker:
    """``take(fields, row)`` for one file's columns and duplicate set."""

    cdef tuple cols
    cdef Py_ssize_t ncols
    cdef Py_ssize_t email_at
    cdef str email_column
    cdef object add             # the duplicate set's add(key) -> bool
    cdef object parse           # parse_address
    cdef object address_error   # AddressError
    cdef object recipient       # the Recipient type

    def __init__(self, cols, str email_column not None, add, parse, address_error, recipient):
        self.cols = tuple(cols)
        self.ncols = len(self.cols)
        self.email_column = email_column
        self.email_at = self.cols.index(email_column)
        self.add = add
        self.parse = parse
        self.address_error = address_error
        self.recipient = recipient

    def note(self, list fields not None):
        """Another worker's row, read only for the duplicate check: its
        address added when the row is good. True when that is settled here
        (added, or a row the check skips: too long, too short, no address);
        False, the row untouched, when the reader's own checks must decide
        (text that does not encode)."""
        cdef Py_ssize_t n = len(fields)
        if n > self.ncols or n <= self.email_at:
            return True
        if not self._encodes(fields):
            return False
        try:
            addr = self.parse(fields[self.email_at])
        except self.address_error:
            return True
        self.add(addr.key())
        return True

    cdef bint _encodes(self, list fields) except -1:
        # Text that encodes holds no surrogate: no undecodable byte.
        for f in fields:
            if type(f) is not str:
                return False
            if not PyUnicode_IS_ASCII(f):
                try:
                    PyUnicode_AsUTF8String(f)
                except UnicodeEncodeError:
                    return False
        return True

    def take(self, list fields not None, row):
        """The row's Recipient, its address added to the duplicate set; or
        None, the row untouched, when it is not plainly good."""
        cdef Py_ssize_t n = len(fields), i
        cdef dict values
        cdef str email
        if n > self.ncols or n <= self.email_at or not self._encodes(fields):
            return None
        try:
            addr = self.parse(fields[self.email_at])
        except self.address_error:
            return None
        email = str(addr)
        if not self.add(addr.key()):
            return None
        # A short row lacks its last columns: those variables are absent.
        values = {}
        for i in range(n):
            values[self.cols[i]] = fields[i]
        values[self.email_column] = email
        return self.recipient(email, values, row)
