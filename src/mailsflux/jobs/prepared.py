"""A job made ready to run: templates compiled, DKIM key loaded, tracking and suppression open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mailsflux.delivery.bounce import classify_result
from mailsflux.dkim import Signer
from mailsflux.dkim.keyfiles import ensure_key
from mailsflux.errors import DKIMKeyError, TemplateError
from mailsflux.jobs.composer import Composer
from mailsflux.jobs.jobfile import Job, load_job
from mailsflux.jobs.recipients import RecipientFile
from mailsflux.jobs.rows import Composed, ProblemSink, compose_all, compose_batches
from mailsflux.jobs.suppression import Suppression, read_list
from mailsflux.tracking.config import TrackingConfig, load_config, write_new_config
from mailsflux.tracking.events import EventStore, SuppressionView
from mailsflux.types import DeliveryResult, RenderedMessage


def make_signer(job: Job) -> Signer:
    d = job.spec.dkim
    if d.generate:
        ensure_key(
            job.key_path, domain=d.domain, selector=d.selector, algorithm=d.algorithm, bits=d.bits
        )
    elif not job.key_path.exists():
        raise DKIMKeyError(
            "DKIM key file not found (set generate = true in [dkim] to create it)",
            file=str(job.key_path),
        )
    return job_signer(job)


def job_signer(job: Job) -> Signer:
    """The signer for the job's [dkim] table (the key file must exist)."""
    d = job.spec.dkim
    return Signer(domain=d.domain, selector=d.selector, key=job.key_path, algorithm=d.algorithm)


def tracking_config(job: Job) -> TrackingConfig | None:
    """The job's tracking config, created first when the job says to generate it."""
    t, path = job.spec.tracking, job.tracking_path
    if t is None or path is None:
        return None
    if t.generate and not path.exists():
        assert t.base_url is not None  # load_job checks this
        path.parent.mkdir(parents=True, exist_ok=True)
        write_new_config(path, t.base_url)
    return load_config(path)


class JobSuppression:
    """Who a job must not mail: its suppression list file and, with
    ``[tracking]``, the event store's list (unsubscribes, hard bounces)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.tracking = tracking_config(job)
        listed = job.spec.recipients.suppression
        self._listed = read_list(job.resolve(listed)) if listed is not None else None
        self.store: EventStore | None = None
        self.suppressed: Suppression | None = None
        self.reopen()

    def reopen(self) -> None:
        """Open the event store (again, after :meth:`close`: a worker process
        forked from the one that read the job opens its own)."""
        view: SuppressionView | None = None
        if self.tracking is not None:
            self.store = self.tracking.open_store()
            # Opt-outs of this list (the job's name) count as well as global ones.
            view = self.store.suppressed_view(list_name=self.job.name)
        if view is not None or self._listed is not None:
            self.suppressed = Suppression(self._listed, view)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def suppress_bounce(self, r: DeliveryResult) -> None:
        """A hard bounce (bad mailbox or domain) is never mailed again.

        The classifier decides, not the status code's subject: ``5.1.7`` and
        ``5.1.8`` are our own sender's address (RFC 3463), and a refusal of
        our setup, a policy block or a local problem says nothing about the
        recipient.
        """
        if self.store is not None and r.status == "bounced":
            c = classify_result(r)
            # The scheduler's category knew the stage (a refused MAIL FROM is
            # our sender's); when it disagrees with the text, it wins.
            if c.suppress and r.category in ("", c.category):
                self.store.suppress(
                    r.recipient, reason="hard-bounce", job=self.job.name, message_id=r.message_id
                )
                if self.suppressed is not None:
                    self.suppressed.add(r.recipient)


class Prepared:
    """A job with its templates compiled, key loaded and recipients opened.

    With ``[tracking]`` it also holds the event store, whose suppression list
    is checked for every recipient before anything is rendered for them.
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        self.signer = make_signer(job)
        self.lists = JobSuppression(job)
        self.tracking = self.lists.tracking
        self.store = self.lists.store
        self.suppressed = self.lists.suppressed
        tracker = self.tracking.tracker() if self.tracking is not None else None
        self.composer = Composer(job, self.signer, tracker=tracker)
        #: Rows an interrupted run already settled (a bitmap): not sent again.
        self.settled: bytearray | None = None
        self.recipients = RecipientFile(
            job.recipients_path, email_column=job.spec.recipients.email_column
        )
        # Before any row is read: a strict template variable that is no
        # column would skip every row, so the job cannot run at all.
        for cp in self.composer.missing_columns(self.recipients.columns):
            if cp.strict:
                self.close()
                raise TemplateError(f"{cp.where}: {cp.message(self.recipients.path)}")

    def close(self) -> None:
        self.lists.close()
        self.store = None

    def reopen(self) -> None:
        """Open again what :meth:`close` closed (the event store): a worker
        process forked from the one that prepared the job opens its own."""
        self.lists.reopen()
        self.store = self.lists.store
        self.suppressed = self.lists.suppressed

    def suppress_bounce(self, r: DeliveryResult) -> None:
        self.lists.suppress_bounce(r)

    @property
    def where(self) -> str:
        """Where row problems are reported (the recipient file)."""
        return str(self.recipients.path)

    @classmethod
    def load(cls, path: str | Path) -> Prepared:
        return cls(load_job(path))

    def messages(
        self, on_problem: ProblemSink, *, shard: tuple[int, int] = (0, 1)
    ) -> Iterator[RenderedMessage]:
        return compose_all(
            self.composer, self.recipients, on_problem, self.suppressed, shard, self.settled
        )

    def batches(self, *, shard: tuple[int, int] = (0, 1)) -> Iterator[Composed]:
        """:meth:`messages` a batch at a time, each batch's problems apart
        (:func:`~mailsflux.jobs.rows.compose_batches`): what a send hands to
        its scheduler, no turn of a Python loop a message."""
        return compose_batches(self.composer, self.recipients, self.suppressed, shard, self.settled)

    def count_rows(self) -> int:
        """Data rows in the recipient file (for the progress bar)."""
        return self.recipients.count_rows()
