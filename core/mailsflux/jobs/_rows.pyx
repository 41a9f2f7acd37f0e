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

A row's fields are split here too when its line holds no quote and no line
end but its last: what the csv module makes of such a line is the
line cut at each comma. The csv module's state machine cost about 7k
instructions a row of the sample job, and each worker reads every row (the
duplicate check spans the file). Any other line goes to the csv module.
Another worker's row, where its line is ASCII, is not split at all: only
its address is cut out of the line, for the duplicate check.
"""

from cpython.dict cimport PyDict_Copy
from cpython.ref cimport PyObject, Py_DECREF

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    object PyUnicode_AsUTF8String(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    int PyUnicode_KIND(object o)
    void *PyUnicode_DATA(object o)
    Py_UCS4 PyUnicode_READ(int kind, void *data, Py_ssize_t i)
    object PyUnicode_Substring(object s, Py_ssize_t start, Py_ssize_t end)
    PyObject *PyIter_Next(object o) except? NULL
    int PyUnicode_1BYTE_KIND

from _csv import field_size_limit as _field_size_limit

from mailsflux.compose._mimebuild cimport _plain_address

from mailsflux.compose._mimebuild import parse_address as _parse_address


#: What :meth:`RowTaker.take_run` stopped for.
FULL = 0   # ``out`` holds ``limit`` rows
END = 1    # the file has no more rows
SLOW = 2   # ``fields`` and ``row`` are a row for the reader's own checks


cdef class Lines:
    """The lines of a recipient file, for the csv reader and for
    :meth:`RowTaker.take_run`, counted whoever read them (``count`` is the
    csv reader's ``line_num`` when it reads them all). A line take_run
    cannot split is handed back, to be the csv reader's next."""

    cdef object it
    cdef object pending
    #: Lines read from the file so far.
    cdef public Py_ssize_t count

    def __init__(self, source):
        self.it = iter(source)
        self.pending = None
        self.count = 0

    def __iter__(self):
        return self

    def __next__(self):
        cdef object line = self.pending
        if line is not None:
            self.pending = None  # counted when it was read
            return line
        line = next(self.it)
        self.count += 1
        return line

    cdef object _read(self):
        """The next line from the file, counted; None at its end."""
        cdef PyObject *got = PyIter_Next(self.it)
        if got is NULL:
            return None
        self.count += 1
        line = <object>got  # a reference of its own
        Py_DECREF(line)  # the one PyIter_Next gave
        return line


cdef inline Py_ssize_t _content_end(int kind, void *data, Py_ssize_t n) noexcept:
    """The length of a line of ``n`` characters without its line end (LF,
    CR LF or CR), as the csv module sees it: where _split and _note_line
    stop reading."""
    if n and PyUnicode_READ(kind, data, n - 1) == 10:
        n -= 1
    if n and PyUnicode_READ(kind, data, n - 1) == 13:
        n -= 1
    return n


cdef list _split(object line, Py_ssize_t limit):
    """The csv module's row (excel dialect, strict) for ``line`` when that
    is the line cut at each comma: a str with no quote, CR or LF but its
    line end (LF, CR LF or CR; none at the file's end), shorter than the
    field size ``limit`` (so no field passes it). None for any other line."""
    if type(line) is not str:
        return None
    cdef int kind = PyUnicode_KIND(line)
    cdef void *data = PyUnicode_DATA(line)
    cdef Py_ssize_t end = _content_end(kind, data, PyUnicode_GET_LENGTH(line)), i, j = 0
    cdef const unsigned char *b = <const unsigned char *>data
    cdef Py_UCS4 c
    cdef list fields = []
    if end >= limit:
        return None
    if end == 0:
        return fields  # a blank line: the csv module's []
    # invariant: i < end <= the line's length, in both loops below
    if kind == PyUnicode_1BYTE_KIND:
        for i in range(end):
            c = b[i]
            if c <= 44:  # ',' is 44; '"' 34, CR 13 and LF 10 are below it
                if c == 44:
                    fields.append(PyUnicode_Substring(line, j, i))
                    j = i + 1
                elif c == 34 or c == 13 or c == 10:
                    return None
    else:
        for i in range(end):
            c = PyUnicode_READ(kind, data, i)
            if c <= 44:
                if c == 44:
                    fields.append(PyUnicode_Substring(line, j, i))
                    j = i + 1
                elif c == 34 or c == 13 or c == 10:
                    return None
    fields.append(PyUnicode_Substring(line, j, end))
    return fields


def split(line, Py_ssize_t limit=-1):
    """:func:`_split` for tests: the fields, or None where the csv module
    must read the line. ``limit``: the field size limit (-1: the csv
    module's own)."""
    return _split(line, _field_size_limit() if limit < 0 else limit)


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

    cdef bint _note_line(self, object line, Py_ssize_t limit) except -1:
        """:meth:`_note` of another worker's row straight from its line,
        without its fields made: True when done, False when the line must
        be split first. Done only where the split would give at least two
        fields that all encode (an ASCII line _split cuts), so the row is
        not blank and _note would look only at the count and the address."""
        if type(line) is not str or not PyUnicode_IS_ASCII(line):
            return False
        cdef void *data = PyUnicode_DATA(line)
        cdef const unsigned char *b = <const unsigned char *>data
        cdef Py_ssize_t end = _content_end(PyUnicode_1BYTE_KIND, data, PyUnicode_GET_LENGTH(line))
        cdef Py_ssize_t i, n = 1, at = 0, to = -1
        cdef unsigned char c
        if end >= limit:
            return False
        for i in range(end):  # invariant: i < end <= the line's length
            c = b[i]
            if c <= 44:  # ',' is 44; '"' 34, CR 13 and LF 10 are below it
                if c == 44:
                    if n == self.email_at + 1:
                        to = i  # the address field ends here
                    n += 1
                    if n == self.email_at + 1:
                        at = i + 1  # and starts here
                elif c == 34 or c == 13 or c == 10:
                    return False
        if n < 2:
            return False
        if n > self.ncols or n <= self.email_at:
            return True
        if to < 0:
            to = end  # the address is the last field
        got = self._address(PyUnicode_Substring(line, at, to))
        if got is not None:
            self.add(got[1])
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

    def take_run(self, Lines lines not None, reader, list out not None, Py_ssize_t limit):
        """Rows of ``lines`` taken into ``out`` until it holds ``limit``
        (FULL), the file ends (END), or a row needs the reader's own checks
        (SLOW: in ``fields`` and ``row``). A line is split here where it can
        be (_split); any other goes back to ``lines`` for ``reader``, a csv
        reader of ``lines`` (strict), to read its row. Blank lines are passed
        over, other shards' rows noted for the duplicate check, and rows set
        in the settled bitmap taken (their addresses count) but left out.

        A csv.Error from the reader propagates with ``start`` still the line
        its row starts on; the caller reports it there, sets ``start`` past
        it (``lines.count + 1``), and calls again: ``out`` keeps what was
        taken before it.
        """
        cdef list fields
        cdef Py_ssize_t row
        cdef bint other
        cdef Py_ssize_t size = _field_size_limit()  # it may change between calls
        if limit < 1:
            raise ValueError(f"limit {limit}: want at least one row")
        while len(out) < limit:
            line = lines._read()
            if line is None:
                return END
            row = self.start  # the line this row starts on
            other = self.count > 1 and row % self.count != self.index
            if other and self._note_line(line, size):
                self.start = lines.count + 1
                continue  # another worker's row, noted for the duplicate check
            fields = _split(line, size)
            if fields is None:
                lines.pending = line
                try:
                    fields = next(reader)
                except StopIteration:
                    return END
            self.start = lines.count + 1
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            if other:
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
