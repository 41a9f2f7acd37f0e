"""A batch whose every message was delivered, made into results in C.

The scheduler hands such a batch to ``on_delivered`` in one call
(:meth:`mailsflux.delivery.scheduler.Scheduler._delivered`). Settling it,
an item and a :class:`~mailsflux.types.DeliveryResult` a message, was two
Python frames a message (68 bytecodes); here it is one call a batch. Any
batch with another outcome is left to the scheduler's Python path, which
settles each message by what its reply says.
"""

from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE

# How much of a reply's text a result keeps (DeliveryResult.reply).
cdef Py_ssize_t _REPLY_MAX = 500


cdef inline object _item(object o, Py_ssize_t k):
    """``o[k]`` of an outcome. An Outcome is a NamedTuple, a tuple subclass,
    and CPython indexes those through their ``__getitem__`` (a method found
    and called: about 750 instructions a time by callgrind). Outcome does
    not override it, so its item is read directly; anything else is
    indexed as before."""
    if PyTuple_Check(o) and 0 <= k < PyTuple_GET_SIZE(o):
        return <object>PyTuple_GET_ITEM(o, k)
    return o[k]


def messages(list batch not None):
    """The messages of a batch of items, in order (for the session)."""
    return [item.msg for item in batch]


def all_delivered(list outcomes not None):
    """True when there is an outcome and every one is "delivered"."""
    if not outcomes:
        return False
    for o in outcomes:
        if _item(o, 0) != "delivered":
            return False
    return True


cdef inline object _status(str text, object enhanced, object prefix):
    # find_enhanced_status is prefix(text) or its search: prefix's answer,
    # when it has one (never empty), is the same.
    if prefix is not None:
        got = prefix(text)
        if got:
            return got
    return enhanced(text)


def delivered(list batch not None, list outcomes not None, result, enhanced, prefix=None):
    """Settle the first ``len(outcomes)`` items of ``batch``, all delivered:
    each counted an attempt and done; their results, as the scheduler's
    ``_result`` makes them (``result`` the DeliveryResult type, ``enhanced``
    ``find_enhanced_status``). ``prefix`` (``_smtpfast.enhanced_prefix``),
    when given, is asked first: a reply that starts with its status needs
    no Python frame (6 bytecodes a message). The caller has checked
    ``all_delivered``.
    The items change only once every result is made: a failure on the way
    leaves them as they were, to be settled by the worker's fault path."""
    cdef Py_ssize_t i, n = min(len(batch), len(outcomes))
    cdef list out = [None] * n
    cdef str text
    for i in range(n):
        item = batch[i]  # checked: the calls below run Python code
        o = outcomes[i]
        attempts = item.attempts + 1
        text = _item(o, 2)
        msg = item.msg
        # DeliveryResult(recipient, message_id, status, code, enhanced_status,
        # reply, attempts, row, category): a 2xx is "delivered" whatever its text.
        out[i] = result(
            msg.rcpt_to,
            msg.message_id,
            "delivered",
            _item(o, 1),
            _status(text, enhanced, prefix),
            text.strip()[:_REPLY_MAX],
            attempts if attempts > 1 else 1,
            msg.row,
            "delivered",
        )
    for i in range(n):
        item = batch[i]
        item.attempts += 1
        item.done = True
    return out
