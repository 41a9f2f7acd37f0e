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

from cpython.dict cimport PyDict_Copy

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    object PyUnicode_AsUTF8String(object o)

from mailsflux.compose._mimebuild cimport _plain_address

from mailsflux.compose._mimebuild import parse_address as _parse_address


#: What :meth:`RowTaker.take_run` stopped for.
FULL = 0   # ``out`` holds ``limit`` rows
END = 1    # the file has no more rows
SLOW = 2   # ``fields`` and ``row`` are a row for the reader's own checks


cdef class RowTaker:
    """``take(fields, row)`` for one file's columns and duplicate set;
    ``take_run`` for the rows of one shard, a run at a time."""

    cdef tuple cols
    cdef Py_ssize_t ncols
    cdef dict blank             # every column, each None: what a full row's variables copy
    cdef Py_ssize_t email_at
    cdef str email_column
    cdef object add             # the duplicate set's add(key) -> bool
    cdef object parse           # parse_address
    cdef bint plain             # parse is the compiled parse_address: plain addresses skip it
    cdef object address_error   # AddressError
    cdef object recipient       # the Recipient type
    cdef Py_ssize_t index, count  # the shard: rows whose line is index modulo count
    cdef object settled         # a resumed job's bitmap of settled rows, or None
    cdef Py_ssize_t top         # the rows the bitmap covers
    #: The line the reader's next row starts on (kept here, so the reader's
    #: caller knows where a row the csv module refuses starts).
    cdef public Py_ssize_t start
    #: The row take_run stopped at for the reader's own checks (SLOW).
    cdef public list fields
    cdef public Py_ssize_t row

    def __init__(
        self, cols, str email_column not None, add, parse, address_error, recipient,
        shard=(0, 1), settled=None,
    ):
        self.cols = tuple(cols)
        self.ncols = len(self.cols)
        self.blank = dict.fromkeys(self.cols)
        self.email_column = email_column
        self.email_at = self.cols.index(email_column)
        self.add = add
        self.parse = parse
        self.plain = parse is _parse_address
        self.address_error = address_error
        self.recipient = recipient
        self.index, self.count = shard
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {shard!r}: want (i, n) with 0 <= i < n")
        self.settled = settled if settled else None  # the job's own, not a copy
        self.top = len(settled) << 3 if settled else 0
        self.start = 0
        self.fields = None
        self.row = 0

    cpdef bint is_settled(self, Py_ssize_t row):
        """Whether the resumed job's bitmap marks ``row`` settled."""
        cdef bytearray bits = self.settled
        if row < 0 or row >= self.top:
            return False
        return (bits[row >> 3] >> (row & 7)) & 1

    def note(self, list fields not None):
        """Another worker's row: see _note."""
        return self._note(fields)

    cdef bint _note(self, list fields) except -1:
        """Another worker's row, read only for the duplicate check: its
        address added when the row is good. True when that is settled here
        (added, or a row the check skips: too long, too short, no address);
        False, the row untouched, when the reader's own checks must decide
        (text that does not encode)."""
        cdef Py_ssize_t n = len(fields)
        cdef tuple got
        if n > self.ncols or n <= self.email_at:
            return True
        if not self._encodes(fields):
            return False
        got = self._address(fields[self.email_at])
        if got is not None:
            self.add(got[1])
        return True

    cdef tuple _address(self, str text):
        """``(address, key)`` of a row's address, or None when it is no
        address: a plain one without an Address made (_plain_address),
        any other through ``parse``."""
        cdef tuple got
        if self.plain:
            got = _plain_address(text)
            if got is not None:
                return got
        try:
            addr = self.parse(text)
        except self.address_error:
            return None
        return (str(addr), addr.key())

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
        return self._take(fields, row)

    cdef object _take(self, list fields, object row):
        cdef Py_ssize_t n = len(fields), i
        cdef dict values
        cdef str email
        cdef tuple got
        if n > self.ncols or n <= self.email_at or not self._encodes(fields):
            return None
        got = self._address(fields[self.email_at])
        if got is None:
            return None
        email = got[0]
        if not self.add(got[1]):
            return None
        # A full row's variables start as a copy of ``blank``: CPython copies
        # its key table whole, and each column then replaces a value, where
        # inserting them one by one into an empty dict grew it on the way.
        # The keys are in the same order either way (a repeated column name
        # where it first appears, its last field the value).
        # A short row lacks its last columns: those variables are absent.
        if n == self.ncols:
            values = PyDict_Copy(self.blank)
        else:
            values = {}
        for i in range(n):
            values[self.cols[i]] = fields[i]
        values[self.email_column] = email
        return self.recipient(email, values, row)

    def take_run(self, reader, list out not None, Py_ssize_t limit):
        """Rows of ``reader`` (a csv reader) taken into ``out`` until it holds
        ``limit`` (FULL), the file ends (END), or a row needs the reader's
        own checks (SLOW: in ``fields`` and ``row``). Blank lines are passed
        over, other shards' rows noted for the duplicate check, and rows set
        in the settled bitmap taken (their addresses count) but left out.

        A csv.Error from the reader propagates with ``start`` still the line
        its row starts on; the caller reports it there, sets ``start`` past
        it (``reader.line_num + 1``), and calls again: ``out`` keeps what was
        taken before it.
        """
        cdef list fields
        cdef Py_ssize_t row
        if limit < 1:
            raise ValueError(f"limit {limit}: want at least one row")
        while len(out) < limit:
            try:
                fields = next(reader)
            except StopIteration:
                return END
            row = self.start
            self.start = reader.line_num + 1
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            if self.count > 1 and row % self.count != self.index:
                if self._note(fields):
                    continue
                self.fields, self.row = fields, row
                return SLOW
            got = self._take(fields, row)
            if got is None:
                self.fields, self.row = fields, row
                return SLOW
            if self.top and self.is_settled(row):
                continue
            out.append(got)
        return FULL
