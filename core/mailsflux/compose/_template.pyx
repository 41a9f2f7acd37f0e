"""Compiled Mustache templates (the full spec: interpolation, sections,
inverted sections, comments, partials, set delimiters, lambdas).

A template is parsed once into a flat list of :class:`_Op` nodes.  Literal
text is encoded to UTF-8 at compile time; a section's body is the op range
``[index + 1, end)`` of the same list, so rendering is a loop over that list
that appends UTF-8 bytes to one growable C buffer (doubling ``realloc``).
``render()`` decodes that buffer once; ``render_bytes()`` copies it into a
``bytes`` object.  HTML escaping scans the UTF-8 bytes in C.

Rendering never recurses more than ``MAX_DEPTH`` levels (sections, partials,
lambdas), so a self-including partial or a runaway lambda raises a
TemplateSyntaxError instead of overflowing the C stack.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItemWithError
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyCallable_Check, PyObject, PyObject_Str
from cpython.type cimport PyType_Check
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.string cimport memcpy

from mailsflux._buffer cimport buf_reserve as _buf_reserve
from mailsflux._buffer cimport buf_write as _buf_write

from collections.abc import Mapping, Sequence

from mailsflux.errors import MissingVariableError, TemplateError, TemplateSyntaxError

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef enum:
    OP_TEXT = 0
    OP_VAR = 1
    OP_SECTION = 2
    OP_INVERTED = 3
    OP_PARTIAL = 4

# Deepest nesting of section bodies + partials + lambdas, at compile and at
# render time.  Bounds the C recursion of _render (a few hundred bytes of
# stack per level), so even a thread with a small stack cannot overflow.
cdef int MAX_DEPTH = 256

# Work and output budgets for one render. Depth alone does not bound work: a
# partial that includes itself twice doubles the work at each of its 256
# levels. An email body needs thousands of ops, not millions.
cdef Py_ssize_t MAX_STEPS = 5_000_000
cdef Py_ssize_t MAX_OUTPUT = 64 * 1024 * 1024

# The initial output buffer never exceeds this, whatever earlier renders needed.
cdef Py_ssize_t MAX_HINT = 128 * 1024

cdef object _MISSING = object()


# --------------------------------------------------------------------------
# Output buffer


cdef int _buf_write_escaped(_Buf* b, const char* s, Py_ssize_t n) except -1:
    """Append ``s[:n]`` with ``& < > " '`` replaced by HTML entities.

    Only ASCII bytes are replaced, so multi-byte UTF-8 sequences (all bytes
    >= 0x80) pass through untouched.
    """
    cdef Py_ssize_t i, run = 0
    cdef unsigned char c
    _buf_reserve(b, n)
    for i in range(n):
        c = <unsigned char>s[i]
        # fast path: every byte above '>' (62) and most below need nothing
        if c > 62 or (c != 38 and c != 60 and c != 62 and c != 34 and c != 39):
            continue
        if i > run:
            _buf_write(b, s + run, i - run)
        if c == 38:
            _buf_write(b, b"&amp;", 5)
        elif c == 60:
            _buf_write(b, b"&lt;", 4)
        elif c == 62:
            _buf_write(b, b"&gt;", 4)
        elif c == 34:
            _buf_write(b, b"&quot;", 6)
        else:
            _buf_write(b, b"&#39;", 5)
        run = i + 1
    if n > run:
        _buf_write(b, s + run, n - run)
    return 0


# --------------------------------------------------------------------------
# Compiler


cdef object _syntax_error(str msg, str src, Py_ssize_t pos, str file):
    cdef Py_ssize_t line = src.count("\n", 0, pos) + 1
    cdef Py_ssize_t column = pos - (src.rfind("\n", 0, pos) + 1) + 1
    return TemplateSyntaxError(msg, file=file, line=line, column=column)


cdef inline bint _is_blank(str src, Py_ssize_t a, Py_ssize_t b):
    """True when src[a:b] holds only spaces and tabs."""
    cdef Py_ssize_t i
    cdef Py_UCS4 ch
    for i in range(a, b):
        ch = src[i]
        if ch != u" " and ch != u"\t":
            return False
    return True


cdef tuple _parse_name(str name, str what, str src, Py_ssize_t pos, str file):
    """Validate a tag name; return its dotted path (``()`` for ``.``)."""
    cdef Py_UCS4 ch
    if not name:
        raise _syntax_error(f"empty {what} name", src, pos, file)
    for ch in name:
        if ch.isspace():
            raise _syntax_error(f"{what} name {name!r} contains whitespace", src, pos, file)
    if name == ".":
        return ()
    path = tuple(name.split("."))
    if "" in path:
        raise _syntax_error(f"invalid dotted name {name!r}", src, pos, file)
    return path


cdef _Op _new_op(int kind, str file, str src, Py_ssize_t pos):
    cdef _Op op = _Op.__new__(_Op)
    op.kind = kind
    op.file = file
    op.line = <int>(src.count("\n", 0, pos) + 1)
    op.column = <int>(pos - (src.rfind("\n", 0, pos) + 1) + 1)
    return op


cdef int _flush_text(list ops, list pending) except -1:
    cdef _Op op
    if not pending:
        return 0
    text = "".join(pending)
    del pending[:]
    if not text:
        return 0
    op = _Op.__new__(_Op)
    op.kind = OP_TEXT
    op.text = text.encode("utf-8")
    op.data = PyBytes_AS_STRING(op.text)
    op.size = PyBytes_GET_SIZE(op.text)
    ops.append(op)
    return 0


cdef list _compile(str src, str file, str otag, str ctag, set names, list partial_names):
    """Parse ``src`` into a flat op list.

    ``names`` (if not None) collects the first segment of every variable and
    section name; ``partial_names`` (if not None) collects partial names.
    """
    cdef list ops = []
    cdef list pending = []      # text pieces not yet turned into an op
    cdef list stack = []        # open sections: (op, index, tag start, body start)
    cdef Py_ssize_t n = len(src)
    cdef Py_ssize_t pos = 0, start, inner, content_start, close_at, tag_end
    cdef Py_ssize_t line_start = 0, j, after = 0, index
    cdef Py_UCS4 sigil, ch
    cdef bint standalone
    cdef str close, content, name, kind
    cdef tuple path
    cdef _Op op, open_op
    while pos < n:
        start = src.find(otag, pos)
        if start < 0:
            pending.append(src[pos:])
            break
        inner = start + len(otag)
        sigil = src[inner] if inner < n else u"\0"
        if sigil == u"{":
            close = "}" + ctag
            content_start = inner + 1
        elif sigil == u"=":
            close = "=" + ctag
            content_start = inner + 1
        else:
            close = ctag
            content_start = inner
        close_at = src.find(close, content_start)
        if close_at < 0:
            if sigil == u"=" and src.find(ctag, content_start) >= 0:
                raise _syntax_error(
                    f"bad set-delimiter tag: expected {otag}=<open> <close>={ctag}",
                    src, start, file,
                )
            raise _syntax_error(
                f"unclosed tag: {otag!r} without a matching {close!r}", src, start, file
            )
        content = src[content_start:close_at]
        tag_end = close_at + len(close)

        if sigil == u"{":
            kind = "&"
            name = content.strip()
        elif sigil == u"=":
            kind = "="
            name = content
        else:
            name = content.strip()
            if name and name[0] in "#^/>!&":
                kind = name[0]
                name = name[1:].strip()
            else:
                kind = ""

        # Standalone lines: a block, comment, partial or delimiter tag alone
        # on its line (but for spaces and tabs) takes the whole line with it.
        standalone = False
        if kind and kind != "&":
            line_start = src.rfind("\n", 0, start) + 1
            if line_start >= pos and _is_blank(src, line_start, start):
                j = tag_end
                while j < n:
                    ch = src[j]
                    if ch != u" " and ch != u"\t":
                        break
                    j += 1
                if j == n:
                    standalone = True
                    after = n
                elif src[j] == u"\n":
                    standalone = True
                    after = j + 1
                elif src[j] == u"\r" and j + 1 < n and src[j + 1] == u"\n":
                    standalone = True
                    after = j + 2
        if standalone:
            pending.append(src[pos:line_start])
            pos = after
        else:
            pending.append(src[pos:start])
            pos = tag_end

        if kind == "!":
            continue
        if kind == "=":
            parts = name.split()
            if len(parts) != 2:
                raise _syntax_error(
                    f"bad set-delimiter tag {src[start:tag_end]!r}: "
                    "expected two delimiters separated by whitespace",
                    src, start, file,
                )
            otag = parts[0]
            ctag = parts[1]
            continue

        _flush_text(ops, pending)
        if kind == "" or kind == "&":
            path = _parse_name(name, "variable", src, start, file)
            op = _new_op(OP_VAR, file, src, start)
            op.escape = kind == ""
        elif kind == "#" or kind == "^":
            path = _parse_name(name, "section", src, start, file)
            if len(stack) >= MAX_DEPTH:
                raise _syntax_error(
                    f"sections nested more than {MAX_DEPTH} deep", src, start, file
                )
            op = _new_op(OP_SECTION if kind == "#" else OP_INVERTED, file, src, start)
            op.otag = otag
            op.ctag = ctag
            stack.append((op, len(ops), start, tag_end))
        elif kind == "/":
            _parse_name(name, "section", src, start, file)
            if not stack:
                raise _syntax_error(
                    f"closing tag {otag}/{name}{ctag} without an open section",
                    src, start, file,
                )
            open_op, index, _, body_start = stack.pop()
            if open_op.name != name:
                raise _syntax_error(
                    f"closing tag {otag}/{name}{ctag} does not match section "
                    f"{open_op.name!r} opened at line {open_op.line}, column {open_op.column}",
                    src, start, file,
                )
            open_op.end = len(ops)
            open_op.raw = src[body_start:start]
            continue
        else:  # ">"
            _parse_name(name, "partial", src, start, file)
            op = _new_op(OP_PARTIAL, file, src, start)
            op.indent = src[line_start:start] if standalone else ""
            op.name = name
            if partial_names is not None:
                partial_names.append(name)
            ops.append(op)
            continue
        op.name = name
        op.path = path
        op.npath = len(path)
        op.dot = op.npath == 0
        if names is not None and not op.dot:
            names.add(path[0])
        ops.append(op)

    _flush_text(ops, pending)
    if stack:
        open_op, index, start, _ = stack[len(stack) - 1]
        raise _syntax_error(f"unclosed section {open_op.name!r}", src, start, file)
    return ops


cdef str _indent_source(str src, str indent):
    """Prepend ``indent`` to every non-empty line of a standalone partial."""
    lines = src.split("\n")
    return "\n".join([indent + line if line else line for line in lines])


# --------------------------------------------------------------------------
# Renderer


@cython.boundscheck(False)
@cython.wraparound(False)
cdef object _get(object ctx, object key):
    """``ctx[key]`` for mappings (``ctx.key`` for other objects), else _MISSING."""
    cdef PyObject* item
    cdef Py_ssize_t index
    t = type(ctx)
    if t is dict:
        item = PyDict_GetItemWithError(ctx, key)
        if item is NULL:
            return _MISSING
        return <object>item
    if t is str or t is int or t is float or t is bool or ctx is None or t is bytes:
        return _MISSING
    if t is list or t is tuple:
        # "items.0": a non-negative decimal index; 0 <= index < len(ctx) is
        # checked right here, so the unchecked ctx[index] below is in range.
        if (<str>key).isascii() and (<str>key).isdigit() and len(<str>key) < 10:
            index = int(key)
            if t is list and index < len(<list>ctx):
                return (<list>ctx)[index]
            if t is tuple and index < len(<tuple>ctx):
                return (<tuple>ctx)[index]
        return _MISSING
    if isinstance(ctx, Mapping):
        if key in ctx:
            return ctx[key]
        return _MISSING
    # Any other object: its public attributes (never _private or __dunder__).
    if (<str>key).startswith("_"):
        return _MISSING
    return getattr(ctx, key, _MISSING)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef object _lookup(list stack, _Op op):
    """Resolve ``op``'s name through the context stack; _MISSING if absent."""
    cdef Py_ssize_t j, k
    cdef tuple path = op.path
    # The stack always holds the render's root data, so len(stack) >= 1 and
    # len(stack) - 1 is a valid index; j only takes values in [0, len).
    if op.dot:
        return stack[len(stack) - 1]
    key = path[0]  # op.npath == len(path) >= 1 when not op.dot
    j = len(stack) - 1
    value = _MISSING
    while j >= 0:
        value = _get(stack[j], key)
        if value is not _MISSING:
            break
        j -= 1
    if value is _MISSING:
        return _MISSING
    # k stays in [1, npath) and npath == len(path)
    for k in range(1, op.npath):
        value = _get(value, path[k])
        if value is _MISSING:
            return _MISSING
    return value


cdef inline bint _is_lambda(object value):
    return PyCallable_Check(value) and not PyType_Check(value)


cdef int _write_value(_Buf* b, object value, bint esc) except -1:
    cdef const char* s
    cdef Py_ssize_t n
    if type(value) is str:
        text = value
    elif value is None or value is False:
        return 0
    else:
        text = PyObject_Str(value)
    s = PyUnicode_AsUTF8AndSize(text, &n)
    if esc:
        return _buf_write_escaped(b, s, n)
    return _buf_write(b, s, n)


cdef object _depth_error(_Op op):
    return TemplateSyntaxError(
        f"templates nested more than {MAX_DEPTH} levels deep "
        "(a partial that includes itself, or a lambda that expands to itself?)",
        file=op.file, line=op.line, column=op.column,
    )


cdef object _budget_error(_Op op, str what):
    return TemplateError(
        f"rendering stopped: {what} (recursive partials or runaway sections?)",
        file=op.file, line=op.line, column=op.column,
    )


cdef object _missing_error(Template tpl, _Op op, _State* st):
    row = <object>st.row
    recipient = <object>st.recipient
    msg = f"missing variable {op.name!r}"
    if row is not None:
        msg += f" for row {row}"
    if recipient is not None:
        msg += f" (recipient {recipient})"
    return MissingVariableError(
        msg, variable=op.name, row=row, recipient=recipient, file=tpl.name
    )


cdef int _render_list(Template tpl, list ops, list stack, _State* st, _Op at) except -1:
    """Render a whole op list one level deeper."""
    if st.depth >= MAX_DEPTH:
        raise _depth_error(at)
    st.depth += 1
    _render(tpl, ops, 0, len(ops), stack, st)
    st.depth -= 1
    return 0


cdef int _render_lambda_var(Template tpl, object fn, _Op op, list stack, _State* st) except -1:
    """``{{lambda}}``: call it, render the result as a template, then escape."""
    cdef _State sub
    result = fn()
    text = "" if result is None else str(result)
    ops = _compile(text, tpl.name, "{{", "}}", None, None)
    if not (op.escape and tpl.escape):
        return _render_list(tpl, ops, stack, st, op)
    sub.buf.data = NULL
    sub.buf.len = 0
    sub.buf.cap = 0
    sub.depth = st.depth
    sub.steps = st.steps
    sub.row = st.row
    sub.recipient = st.recipient
    try:
        _render_list(tpl, ops, stack, &sub, op)
        _buf_write_escaped(&st.buf, sub.buf.data, sub.buf.len)
    finally:
        st.steps = sub.steps
        PyMem_Free(sub.buf.data)
    return 0


cdef int _render_lambda_section(Template tpl, object fn, _Op op, list stack, _State* st) except -1:
    """``{{#lambda}}raw{{/lambda}}``: call it with the raw body, render the result."""
    result = fn(op.raw)
    text = "" if result is None else str(result)
    ops = _compile(text, tpl.name, op.otag, op.ctag, None, None)
    return _render_list(tpl, ops, stack, st, op)


cdef int _render_body(Template tpl, list ops, _Op op, Py_ssize_t lo, object ctx,
                      list stack, _State* st) except -1:
    """Render a section body ``ops[lo:op.end]`` with ``ctx`` pushed."""
    if st.depth >= MAX_DEPTH:
        raise _depth_error(op)
    st.depth += 1
    stack.append(ctx)
    _render(tpl, ops, lo, op.end, stack, st)
    stack.pop()
    st.depth -= 1
    return 0


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _render(Template tpl, list ops, Py_ssize_t lo, Py_ssize_t hi, list stack,
                 _State* st) except -1:
    """Render ``ops[lo:hi]``.

    Invariant for the unchecked ``ops[i]``: the compiler only produces
    0 <= lo <= hi <= len(ops) (a section's ``end`` never exceeds the length
    of its list), ``i`` starts at ``lo`` and is only read while ``i < hi``,
    and a jump sets ``i`` to a section's ``end`` which is <= hi of the
    enclosing range.  Op lists are never mutated after compilation.
    """
    cdef Py_ssize_t i = lo
    cdef _Op op
    cdef int kind
    cdef object value
    while i < hi:
        op = <_Op>ops[i]
        i += 1
        st.steps += 1
        if st.steps > MAX_STEPS:
            raise _budget_error(op, f"more than {MAX_STEPS} template operations")
        if st.buf.len > MAX_OUTPUT:
            raise _budget_error(op, f"output larger than {MAX_OUTPUT} bytes")
        kind = op.kind
        if kind == OP_TEXT:
            _buf_write(&st.buf, op.data, op.size)
        elif kind == OP_VAR:
            value = _lookup(stack, op)
            if type(value) is str:
                if op.escape and tpl.escape:
                    _write_value(&st.buf, value, True)
                else:
                    _write_value(&st.buf, value, False)
            elif value is _MISSING:
                if tpl.strict:
                    raise _missing_error(tpl, op, st)
            elif type(value) is not int and type(value) is not float and _is_lambda(value):
                _render_lambda_var(tpl, value, op, stack, st)
            else:
                _write_value(&st.buf, value, op.escape and tpl.escape)
        elif kind == OP_SECTION:
            value = _lookup(stack, op)
            if value is _MISSING or value is None or value is False:
                pass
            elif type(value) is list or type(value) is tuple:
                for item in value:
                    _render_body(tpl, ops, op, i, item, stack, st)
            elif type(value) is dict or type(value) is str or type(value) is bool:
                if value:
                    _render_body(tpl, ops, op, i, value, stack, st)
            elif _is_lambda(value):
                _render_lambda_section(tpl, value, op, stack, st)
            elif not value:
                pass
            elif isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
                for item in value:
                    _render_body(tpl, ops, op, i, item, stack, st)
            else:
                _render_body(tpl, ops, op, i, value, stack, st)
            i = op.end
        elif kind == OP_INVERTED:
            value = _lookup(stack, op)
            if not (value is _MISSING or value is None or value is False
                    or (not _is_lambda(value) and not value)):
                i = op.end
            # else: fall through into the body, which follows inline
        else:  # OP_PARTIAL
            if not op.resolved:
                tpl._resolve(op)
            if op.target is not None:
                _render_list(tpl, <list>op.target, stack, st, op)
    return 0


# --------------------------------------------------------------------------
# Public API


cdef class _Op:
    """One compiled node (text, variable, section, inverted section, partial)."""

    def __repr__(self):
        kinds = ("text", "var", "section", "inverted", "partial")
        if self.kind == OP_TEXT:
            return f"<_Op text {self.text!r}>"
        return f"<_Op {kinds[self.kind]} {self.name!r}>"


def _rebuild(source, partials, escape, strict, name):
    return Template(source, partials=partials, escape=escape, strict=strict, name=name)


cdef class Template:
    """A Mustache template, compiled once, rendered many times.

    ``escape=True`` HTML-escapes ``{{name}}`` (``{{{name}}}`` and
    ``{{& name}}`` never escape); ``escape=False`` escapes nothing.
    ``strict=True`` makes an interpolation of a name that does not resolve
    raise MissingVariableError (missing section names stay falsy).
    Syntax errors raise TemplateSyntaxError with the tag's line and column.
    """

    def __init__(self, str source not None, *, partials=None, bint escape=True,
                 bint strict=False, str name not None="<template>"):
        cdef set names = set()
        cdef list todo = []
        cdef dict compiled = {}
        cdef _Op op
        self.source = source
        self.name = name
        self.escape = escape
        self.strict = strict
        self._partials = {}
        if partials is not None:
            for key, value in partials.items():
                if not isinstance(key, str) or not isinstance(value, str):
                    raise TypeError(
                        f"partials must map str to str, not {type(key).__name__} "
                        f"to {type(value).__name__}"
                    )
                self._partials[key] = value
        self._ops = _compile(source, name, "{{", "}}", names, todo)
        # Compile every reachable partial now (unindented), so syntax errors
        # surface here and `variables` covers them.  Indented variants of
        # standalone partials compile on first use (see _resolve).
        while todo:
            pname = todo.pop()
            if (pname, "") in compiled:
                continue
            psource = self._partials.get(pname)
            compiled[(pname, "")] = (
                None if psource is None
                else _compile(psource, pname, "{{", "}}", names, todo)
            )
        self._compiled = compiled
        self.variables = frozenset(names)
        size = 64
        for op in self._ops:
            size += op.size + 16
        self._hint = min(size, MAX_HINT)

    @property
    def missing_partials(self):
        """``(name, file, line, column)`` of every reachable partial tag whose
        partial was not given (it renders empty, as Mustache specifies)."""
        cdef _Op op
        found = []
        lists = [self._ops] + [ops for ops in self._compiled.values() if ops is not None]
        for ops in lists:
            for op in ops:
                if op.kind == OP_PARTIAL and op.name not in self._partials:
                    found.append((op.name, op.file, op.line, op.column))
        return tuple(found)

    cdef int _resolve(self, _Op op) except -1:
        key = (op.name, op.indent)
        target = self._compiled.get(key, _MISSING)
        if target is _MISSING:
            psource = self._partials.get(op.name)
            if psource is None:
                target = None
            else:
                target = _compile(_indent_source(psource, op.indent), op.name,
                                  "{{", "}}", None, None)
            self._compiled[key] = target
        op.target = target
        op.resolved = True
        return 0

    cdef int _run(self, object data, object row, object recipient, _State* st) except -1:
        cdef list stack = [data]
        st.buf.data = NULL
        st.buf.len = 0
        st.buf.cap = 0
        st.depth = 0
        st.steps = 0
        st.row = <PyObject*>row
        st.recipient = <PyObject*>recipient
        try:
            _buf_reserve(&st.buf, self._hint)
            _render(self, self._ops, 0, len(self._ops), stack, st)
        except BaseException:
            PyMem_Free(st.buf.data)
            st.buf.data = NULL
            raise
        if st.buf.len > self._hint:
            self._hint = min(st.buf.len, MAX_HINT)
        return 0

    def render(self, data, *, row=None, recipient=None):
        """Render with ``data`` as the root context; return a str."""
        return self._render(data, row, recipient)

    def render_bytes(self, data, *, row=None, recipient=None):
        """Render with ``data`` as the root context; return UTF-8 bytes."""
        return self._render_bytes(data, row, recipient)

    cdef str _render(self, object data, object row, object recipient):
        cdef _State st
        self._run(data, row, recipient, &st)
        try:
            return PyUnicode_DecodeUTF8(st.buf.data, st.buf.len, NULL)
        finally:
            PyMem_Free(st.buf.data)

    cdef bytes _render_bytes(self, object data, object row, object recipient):
        cdef _State st
        self._run(data, row, recipient, &st)
        try:
            return PyBytes_FromStringAndSize(st.buf.data, st.buf.len)
        finally:
            PyMem_Free(st.buf.data)

    def __reduce__(self):
        return (_rebuild, (self.source, self._partials or None, self.escape,
                           self.strict, self.name))

    def __repr__(self):
        return f"<Template {self.name!r}>"


cdef dict _CACHE = {}


def render(str source not None, data, partials=None):
    """Render ``source`` once (compiled templates without partials are cached)."""
    cdef Template tpl
    if partials is not None:
        return Template(source, partials=partials).render(data)
    cached = _CACHE.get(source)
    if cached is None:
        tpl = Template(source)
        if len(_CACHE) >= 256:
            _CACHE.clear()
        _CACHE[source] = tpl
    else:
        tpl = <Template>cached
    return tpl.render(data)
