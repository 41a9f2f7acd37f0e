"""A batch whose every message was delivered, made into results in C.

The scheduler hands such a batch to ``on_delivered`` in one call
(:meth:`mailsflux.delivery.scheduler.Scheduler._delivered`). Settling it,
an item and a :class:`~mailsflux.types.DeliveryResult` a message, was two
Python frames a message (68 bytecodes); here it is one call a batch. Any
batch with another outcome is left to the scheduler's Python path, which
settles each message by what its reply says.
"""

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE

# How much of a reply's text a result keeps (DeliveryResult.reply).
cdef Py_ssize_t _REPLY_MAX = 500


def messages(list batch not None):
    """The messages of a batch of items, in order (for the session)."""
    cdef Py_ssize_t i, n = PyList_GET_SIZE(batch)
    cdef list out = [None] * n
    for i in range(n):
        out[i] = (<object>PyList_GET_ITEM(batch, i)).msg
    return out


def all_delivered(list outcomes not None):
    """True when there is an outcome and every one is "delivered"."""
    cdef Py_ssize_t i, n = PyList_GET_SIZE(outcomes)
    if n == 0:
        return False
    for i in range(n):
        if (<object>PyList_GET_ITEM(outcomes, i))[0] != "delivered":
            return False
    return True


def delivered(list batch not None, list outcomes not None, result, enhanced):
    """Settle the first ``len(outcomes)`` items of ``batch``, all delivered:
    each counted an attempt and done; their results, as the scheduler's
    ``_result`` makes them (``result`` the DeliveryResult type, ``enhanced``
    ``find_enhanced_status``). The caller has checked ``all_delivered``."""
    cdef Py_ssize_t i, n = min(PyList_GET_SIZE(batch), PyList_GET_SIZE(outcomes))
    cdef list out = [None] * n
    cdef str text
    for i in range(n):
        item = <object>PyList_GET_ITEM(batch, i)
        o = <object>PyList_GET_ITEM(outcomes, i)
        attempts = item.attempts + 1
        item.attempts = attempts
        item.done = True
        text = o[2]
        msg = item.msg
        # DeliveryResult(recipient, message_id, status, code, enhanced_status,
        # reply, attempts, row, category): a 2xx is "delivered" whatever its text.
        out[i] = result(
            msg.rcpt_to,
            msg.message_id,
            "delivered",
            o[1],
            enhanced(text),
            text.strip()[:_REPLY_MAX],
            attempts if attempts > 1 else 1,
            msg.row,
            "delivered",
        )
    return out
