"""A delivered batch's spool records, made in C.

:meth:`mailsflux.jobs.journal.Journal.settle_delivered` turns each result
of a batch the scheduler reported all delivered into the spool record
:meth:`Journal.settle <mailsflux.jobs.journal.Journal.settle>` writes for
it (a frame a message, 74 bytecodes). Here it is one call a batch, which
also gives each result's domain (the job's per-domain tally wants them);
``settle`` makes its one record with the same code.
"""

from mailsflux._address cimport domain_of as _domain
from mailsflux._fields cimport learn

from msgspec.structs import astuple as _astuple

# The DeliveryResult fields a record takes, and where each is in
# astuple(result) for the type last seen (see _fields.pxd).
cdef tuple _NAMES = ("row", "attempts", "category", "recipient", "status", "message_id", "code",
                     "enhanced_status", "reply")
cdef Py_ssize_t _AT[9]
cdef list _SEEN = [None]


def domains(list rs not None):
    """Each result's recipient domain (``DeliveryResult.domain``), in order."""
    return [_domain(r.recipient) for r in rs]


cdef tuple _record_of(r, double now, set held, dict prior, dict parked, record):
    learn(r, _NAMES, _AT, _SEEN)
    cdef tuple f = _astuple(r)
    row = f[_AT[0]]
    if held:
        held.discard(row)
    # Both are empty in a plain job: no lookups then.
    before = prior.pop(row, None) if prior else None
    kept = parked.pop(row, None) if parked else None
    attempts = f[_AT[1]]
    if before is not None:
        attempts += before.attempts
        first = before.first_at
    else:
        first = kept[1] if kept else now
    category = f[_AT[2]]
    recipient = f[_AT[3]]
    cdef str domain = _domain(recipient)
    rec = record(
        row=row,
        state="suppressed" if category == "suppressed" else f[_AT[4]],
        recipient=recipient,
        message_id=f[_AT[5]],
        domain=domain,
        attempts=attempts,
        first_at=first,
        code=f[_AT[6]],
        enhanced_status=f[_AT[7]],
        reply=f[_AT[8]],
        category=category,
        updated=now,
    )
    return rec, kept, domain


def record_of(r, double now, set held not None, dict prior not None, dict parked not None, record):
    """``(record, parked, domain)`` for result ``r`` at ``now``: its spool
    ``record`` (the Record type), its row no longer in ``held``, its
    earlier attempts counted (``prior``: a queue run's records by row); the
    message parked for it, taken from ``parked`` (by row: ``(message,
    first attempt)``), or None; its recipient domain."""
    return _record_of(r, now, held, prior, parked, record)


def delivered_records(
    list rs not None,
    double now,
    set held not None,
    dict prior not None,
    dict parked not None,
    record,
):
    """``(records, domains)``: :func:`record_of` for each of ``rs``, a batch
    whose every message was delivered (none has a parked message to keep)."""
    cdef Py_ssize_t i, n = len(rs)
    cdef list records = [None] * n
    cdef list doms = [None] * n
    cdef tuple t
    for i in range(n):
        # rs[i] checked: making a record runs Python code.
        t = _record_of(rs[i], now, held, prior, parked, record)
        records[i] = t[0]
        doms[i] = t[2]
    return records, doms
