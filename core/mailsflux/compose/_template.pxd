# Declarations for mailsflux.compose._template (compiled Mustache templates).
#
# A template compiles once into a flat list of _Op nodes; a section's body is
# the op range [index + 1, end) of that same list.  Rendering walks the list
# and writes UTF-8 into a growable C buffer (_Buf).

from cpython.object cimport PyObject


from mailsflux._buffer cimport Buffer as _Buf


cdef struct _State:
    _Buf buf
    int depth           # nesting of section bodies, partials and lambdas
    Py_ssize_t steps    # ops executed so far: the work budget (MAX_STEPS)
    PyObject* row       # borrowed: only read to build MissingVariableError
    PyObject* recipient # borrowed, idem


cdef class _Op:
    cdef int kind               # OP_TEXT, OP_VAR, OP_SECTION, OP_INVERTED, OP_PARTIAL
    # OP_TEXT: the literal, encoded once at compile time
    cdef bytes text
    cdef const char* data       # points into `text`, which the op keeps alive
    cdef Py_ssize_t size
    # OP_VAR / OP_SECTION / OP_INVERTED / OP_PARTIAL
    cdef str name               # the tag's name as written (dotted)
    cdef tuple path             # name split on "." (str items); () for "."
    cdef Py_ssize_t npath       # len(path)
    cdef bint dot               # the implicit iterator "."
    cdef bint escape            # OP_VAR: {{name}} (True) vs {{{name}}} / {{&name}}
    # OP_SECTION / OP_INVERTED
    cdef Py_ssize_t end         # index of the first op after the body
    cdef str raw                # the body's source text (for lambdas)
    cdef str otag               # delimiters in effect at the tag (for lambdas)
    cdef str ctag
    # OP_PARTIAL
    cdef str indent             # standalone indentation, prepended to each line
    cdef object target          # compiled partial (list of _Op) or None
    cdef bint resolved          # target looked up already
    # location, for errors raised at render time
    cdef str file
    cdef int line
    cdef int column


cdef class Template:
    cdef public str name
    cdef readonly str source
    cdef readonly frozenset variables
    cdef readonly bint escape
    cdef readonly bint strict
    cdef dict _partials         # partial name -> source
    cdef dict _compiled         # (partial name, indent) -> list of _Op, or None
    cdef list _ops
    cdef Py_ssize_t _hint       # initial output buffer size

    cdef int _run(self, object data, object row, object recipient, _State* st) except -1
    # render() and render_bytes() for compiled callers (no keyword parsing)
    cdef str _render(self, object data, object row, object recipient)
    cdef bytes _render_bytes(self, object data, object row, object recipient)
    cdef int _resolve(self, _Op op) except -1
