# A msgspec Struct's fields read from compiled code in one call.
#
# From Cython, ``r.field`` is a generic attribute lookup (the type's
# dictionaries, then the field's member descriptor): about 140 instructions
# a field, where the interpreter's specialised LOAD_ATTR reads the slot.
# ``msgspec.structs.astuple(r)`` copies every field into a tuple in one
# call; ``learn`` says where each wanted field is in it, once per type.
# Inline, like _chars.pxd: no extension module (each module imports
# astuple itself, a .pxd holds no Python import).


cdef inline int learn(object t, tuple names, Py_ssize_t* at) except -1:
    """``at[i]``: the position of ``names[i]`` among the Struct type ``t``'s
    fields; ValueError for a field it lacks, ``at`` then unchanged (all
    found first: a caller's positions are never half another type's)."""
    cdef tuple fields = t.__struct_fields__
    cdef list found = [fields.index(name) for name in names]
    cdef Py_ssize_t i
    for i in range(len(names)):
        at[i] = found[i]
    return 0
