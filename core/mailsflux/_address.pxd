# What the compiled stages take from an address, as the Python types do.
# Inline, like _chars.pxd: no extension module.


cdef inline str domain_of(str address):
    """What follows the last "@" of ``address``, lowercased: the domain
    ``RenderedMessage.domain`` and ``DeliveryResult.domain`` give."""
    return address.rpartition("@")[2].lower()
