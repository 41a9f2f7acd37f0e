# A msgspec Struct's fields read from compiled code in one call.
#
# From Cython, ``r.field`` is a generic attribute lookup (the type's
# dictionaries, then the field's member descriptor): about 140 instructions
# a field, where the interpreter's specialised LOAD_ATTR reads the slot.
# ``msgspec.structs.astuple(r)`` copies every field into a tuple in one
# call; ``learn`` says where each wanted field is in it, once per type
# (the type last seen is the caller's ``seen[0]``).
# Inline, like _chars.pxd: no extension module (each module imports
# astuple itself, a .pxd holds no Python import).


cdef inline int learn(object r, tuple names, Py_ssize_t* at, list seen) except -1:
    """``at[i]``: the position of ``names[i]`` among the fields of ``r``'s
    Struct type, unless ``seen[0]`` (the caller's) is that type already;
    ``seen[0]`` is the type after. ValueError for a field it lacks, ``at``
    and ``seen`` then unchanged (all found first: a caller's positions are
    never half another type's)."""
    cdef object t = type(r)
    if t is seen[0]:
        return 0
    cdef tuple fields = t.__struct_fields__
    cdef list found = [fields.index(name) for name in names]
    cdef Py_ssize_t i
    for i in range(len(names)):
        at[i] = found[i]
    seen[0] = t
    return 0
