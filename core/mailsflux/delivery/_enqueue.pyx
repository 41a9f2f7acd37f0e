"""Messages bound for the site the message before went to, queued in C.

:meth:`mailsflux.delivery.scheduler.Scheduler._place_cached` queues a
batch of submitted messages whose routes are cached. Most of a batch goes
where the message before it went (one relay, or one big provider): each of
those was a turn of its Python loop (81 bytecodes a message). Here a run
of them is one call; the loop still places the first message of each run,
and whatever is not plainly bound for the same queue. A domain not yet
looked up in this batch is looked up from here (``look``), so a batch whose
domains take turns (a relay for many domains) stays one run: each lookup
had been a return to the loop and a call again (32.5 bytecodes a message).
"""

from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject

from mailsflux._address cimport domain_of


def queue_run(
    msgs, Py_ssize_t i, Py_ssize_t stop, dict routes not None, key, tls, queue, item, now, look
):
    """Append ``item(msgs[j], now)`` to ``queue`` for ``j`` from ``i`` while
    ``j < stop`` and message j's domain has a route in ``routes`` (domain:
    ``(route, tls policy or None, queue key)``, or None for none) to this
    queue: its key ``key``, and no TLS policy or this queue's, ``tls``.
    A domain not in ``routes`` is looked up by ``look(routes, domain)``,
    which enters it there and returns its entry. Returns the first ``j``
    not appended."""
    append = queue.append
    cdef PyObject *got
    while i < stop:
        msg = msgs[i]
        domain = domain_of(msg.rcpt_to)
        got = PyDict_GetItem(routes, domain)
        if got is NULL:
            hit = look(routes, domain)
        else:
            hit = <object>got
        if hit is None or hit[2] != key:
            break
        policy = hit[1]
        if policy is not None and policy is not tls:
            break
        append(item(msg, now))
        i += 1
    return i


def take(queue, Py_ssize_t n):
    """Up to ``n`` items from the front of ``queue`` (a deque), in order,
    each marked not done: a worker's next batch."""
    cdef Py_ssize_t i, k = min(n, len(queue))
    if k < 0:
        k = 0
    cdef list out = [None] * k
    pop = queue.popleft
    for i in range(k):
        item = pop()
        item.done = False
        out[i] = item
    return out
