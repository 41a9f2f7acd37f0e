"""Running a letter job: render, hand to the carrier, follow its tracking.

:func:`send_letters` renders every good row and submits it; a row already
handed over in an earlier run is not sent again (its reference is in the
store), so a job stopped half way is run again as it is. :func:`poll_letters`
asks the carrier about every letter not yet settled and turns each new
tracking event into an :class:`~mailsflux.events.Event`; it also sweeps
the addresses of letters delivered long enough ago.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec

from mailsflux.errors import CarrierError
from mailsflux.events import Event, EventDetails, EventType, stream_id
from mailsflux.letters._extra import require
from mailsflux.letters.carrier import Carrier, Submission, Update
from mailsflux.letters.filedrop import FileDrop
from mailsflux.letters.jobfile import LetterJob
from mailsflux.letters.pool import render_all
from mailsflux.letters.recipients import LetterRecipient, read_recipients
from mailsflux.letters.store import LetterStore
from mailsflux.types import Problem

#: A carrier's status as an event's type.
EVENT_OF: dict[str, EventType] = {
    "submitted": "letter_submitted",
    "printed": "printed",
    "in_transit": "in_transit",
    "delivered": "delivered",
    "returned": "returned",
    "failed": "failed",
}


class LetterSummary(msgspec.Struct):
    job: str
    total: int = 0
    submitted: int = 0
    #: Rows skipped: a bad address, a template that would not render.
    skipped: int = 0
    #: Rows an earlier run handed over already.
    resumed: int = 0
    failed: int = 0
    #: Letters the carrier could not take just now (5xx, 429, a timeout):
    #: kept pending, the next run hands them over again under the same id.
    pending: int = 0
    elapsed: float = 0.0


def open_carrier(job: LetterJob) -> Carrier:
    c = job.spec.carrier
    if c.kind == "file":
        return FileDrop(job.resolve(c.dir))
    from mailsflux.letters.http_carrier import HTTPCarrier

    return HTTPCarrier(c.url, job.api_key(), timeout=c.timeout, attempts=c.attempts)


def open_store(job: LetterJob, clock: Callable[[], float] = time.time) -> LetterStore:
    return LetterStore.open(job.store_dir, job.key_path, clock=clock)


def renderer_args(job: LetterJob) -> dict[str, Any]:
    s = job.spec.letter
    return {
        "template": job.resolve(s.html),
        "paper": s.paper,
        "sender": s.sender,
        "origin_country": s.origin_country,
        "strict": s.missing_variables == "error",
        "partials": {k: job.resolve(v).read_text("utf-8") for k, v in s.partials.items()},
    }


def letter_event(
    etype: EventType, letter_id: str, job: str, ref: str, at: float, **details: Any
) -> Event:
    return Event(
        id=stream_id(),
        type=etype,
        time=at,
        tenant="",
        message_id=letter_id,
        job=job,
        recipient=ref,
        details=EventDetails(**details),
    )


class Run(msgspec.Struct, frozen=True, kw_only=True):
    """What one batch of letters is: its name, where its problems point, the
    service asked for, the carrier and the store."""

    name: str
    where: str
    paper: str
    mail_class: str = "standard"
    color: bool = False


def send_letters(
    job: LetterJob,
    *,
    on_problem: Callable[[Problem], None],
    on_event: Callable[[Event], None] = lambda e: None,
    carrier: Carrier | None = None,
    store: LetterStore | None = None,
    workers: int = 0,
) -> LetterSummary:
    require()
    carrier = carrier or open_carrier(job)
    own_store = store is None
    store = store or open_store(job)
    spec = job.spec
    path = job.resolve(spec.recipients.file)
    run = Run(
        name=job.name,
        where=str(path),
        paper=spec.letter.paper,
        mail_class=spec.carrier.mail_class,
        color=spec.carrier.color,
    )
    rows = read_recipients(path, spec.recipients.columns, id_column=spec.recipients.id_column)
    try:
        return deliver_letters(
            run,
            rows,
            renderer_args(job),
            carrier,
            store,
            on_problem=on_problem,
            on_event=on_event,
            workers=workers,
        )
    finally:
        if own_store:
            store.close()


def deliver_letters(
    run: Run,
    rows: Iterable[LetterRecipient | Problem],
    renderer: dict[str, Any],
    carrier: Carrier,
    store: LetterStore,
    *,
    on_problem: Callable[[Problem], None],
    on_event: Callable[[Event], None],
    workers: int = 0,
) -> LetterSummary:
    """Render and hand over each good row not handed over before (a job file's
    or an API request's); bad rows go to ``on_problem``."""
    started = time.perf_counter()
    summary = LetterSummary(job=run.name)

    def fresh() -> Iterator[LetterRecipient]:
        for item in rows:
            summary.total += 1
            if isinstance(item, Problem):
                summary.skipped += 1
                on_problem(item)
            else:
                known = store.find(run.name, item.ref)
                if known is None or (known.status == "pending" and not known.carrier_id):
                    # New, or pending: an earlier run failed transiently or
                    # stopped between recording and handing over.
                    yield item
                else:
                    summary.resumed += 1

    for r, pdf in render_all(fresh(), renderer, workers=workers):
        if isinstance(pdf, str):
            summary.skipped += 1
            on_problem(Problem(f"{run.where}:{r.row}", pdf))
            continue
        _submit(run, r, pdf, carrier, store, summary, on_problem, on_event)
    summary.elapsed = time.perf_counter() - started
    return summary


def _submit(
    run: Run,
    r: LetterRecipient,
    pdf: bytes,
    carrier: Carrier,
    store: LetterStore,
    summary: LetterSummary,
    on_problem: Callable[[Problem], None],
    on_event: Callable[[Event], None],
) -> None:
    known = store.find(run.name, r.ref)
    if known is not None:
        # Pending from an earlier run: the same id, so the carrier (whose
        # idempotency key it is) drops it if the first hand-over reached it.
        letter_id = known.letter_id
    else:
        letter_id = store.new_id()
        # Recorded before the hand-over: a crash between the two leaves a
        # "pending" letter the carrier may hold (its id is the idempotency key).
        store.add(letter_id, run.name, r.ref, r.address, carrier.name)
    sub = Submission(
        letter_id=letter_id,
        address=r.address,
        pdf=pdf,
        paper=run.paper,
        mail_class=run.mail_class,
        color=run.color,
    )
    try:
        carrier_id = carrier.submit(sub)
    except CarrierError as exc:
        where = f"{run.where}:{r.row}: letter {r.ref}"
        if not exc.permanent:
            summary.pending += 1
            on_problem(
                Problem(where, f"carrier: {exc.message}; kept pending, the next run retries it")
            )
            return
        store.failed(letter_id)
        summary.failed += 1
        on_problem(Problem(where, f"carrier: {exc.message}"))
        on_event(
            letter_event(
                "failed",
                letter_id,
                run.name,
                r.ref,
                time.time(),
                reply=exc.message,
                code=exc.code,
                carrier=carrier.name,
            )
        )
        return
    store.submitted(letter_id, carrier_id)
    summary.submitted += 1
    on_event(
        letter_event(
            "letter_submitted", letter_id, run.name, r.ref, time.time(), carrier=carrier.name
        )
    )


def poll_letters(
    job: LetterJob,
    *,
    on_event: Callable[[Event], None] = lambda e: None,
    on_problem: Callable[[Problem], None] = lambda p: None,
    carrier: Carrier | None = None,
    store: LetterStore | None = None,
) -> dict[str, int]:
    """Ask the carrier about open letters; the count of the job's letters per status."""
    require()
    carrier = carrier or open_carrier(job)
    own_store = store is None
    store = store or open_store(job)
    try:
        try:
            track(store, carrier, on_event, on_problem, job=job.name, where=str(job.path))
        finally:
            # Tracking that fails must not keep addresses past their time.
            store.sweep(job.spec.store.retention_days, max_age_days=job.spec.store.max_age_days)
        counts: dict[str, int] = {}
        for row in store.rows(job.name):
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts
    finally:
        if own_store:
            store.close()


def track(
    store: LetterStore,
    carrier: Carrier,
    on_event: Callable[[Event], None],
    on_problem: Callable[[Problem], None],
    *,
    job: str | None = None,
    where: str = "letters",
) -> int:
    """Each open letter's new tracking events (of ``job``, else every job),
    once each; how many there were."""
    n = 0
    for row in store.open_letters(job):
        try:
            updates = carrier.status(row.carrier_id)
        except (CarrierError, OSError, ValueError) as exc:
            why = exc.message if isinstance(exc, CarrierError) else type(exc).__name__
            on_problem(Problem(f"{where}: letter {row.ref}", f"carrier: {why}"))
            continue
        # By index: the carrier's list only grows. Its first event need not
        # be ``submitted``; a ``submitted`` one is not sent again (the
        # hand-over already sent ``letter_submitted``).
        new = updates[row.events :]
        for u in new:
            etype = EVENT_OF.get(u.status)
            if etype is not None and u.status != "submitted":
                n += 1
                on_event(
                    letter_event(
                        etype,
                        row.letter_id,
                        row.job,
                        row.ref,
                        u.time,
                        carrier=row.carrier,
                        tracking_number=u.tracking_number,
                    )
                )
        if new:
            store.advance(row.letter_id, _latest(row.status, new), len(updates), new[-1].time)
    take = getattr(carrier, "take_problems", None)
    if take is not None:
        for at, why in take():
            on_problem(Problem(at, why, "warning"))
    return n


def _latest(current: str, new: list[Update]) -> str:
    """The letter's status after ``new``: the last one, except that a letter
    delivered stays delivered unless it comes back (``returned``)."""
    status = current
    for u in new:
        if status == "delivered" and u.status != "returned":
            continue
        status = u.status
    return status
