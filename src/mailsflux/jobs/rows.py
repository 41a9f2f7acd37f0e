"""The rows of a job: each good row composed (or only checked), each bad one reported."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator
from pathlib import Path

from mailsflux.errors import MailsfluxError
from mailsflux.jobs.composer import Composer, message_tokens
from mailsflux.jobs.recipients import RecipientFile
from mailsflux.jobs.suppression import suppressed_among
from mailsflux.types import Problem, Recipient, RenderedMessage

ProblemSink = Callable[[Problem], None]

#: Message tokens drawn together (one read of the OS for this many rows).
_TOKENS = 64
#: Rows composed together, their signs after their assembly
#: (:meth:`Composer.compose_many`): as many as the send hands over at once.
COMPOSE_BATCH = 32


def _row_problem(path: Path, r: Recipient, exc: MailsfluxError) -> Problem:
    what = exc.message
    if exc.field and exc.field not in what:
        what = f"{exc.field}: {what}"
    return Problem(f"{path}:{r.row}", f"{r.email}: {what}; row skipped")


def composed(
    composer: Composer,
    path: Path,
    batch: list[tuple[Recipient, str]],
    on_problem: ProblemSink,
    suppressed: Container[str] | None = None,
) -> Iterator[RenderedMessage]:
    """The messages of ``batch`` (rows with their tokens), composed together
    (:meth:`Composer.compose_many`), each refused or suppressed row reported
    in its place; ``batch`` is emptied after. Suppression is asked here, a
    batch at a time, just before the rows are composed."""
    hits = None
    if suppressed is not None and batch:
        hits = suppressed_among(suppressed, [item.email for item, _ in batch])
    if hits is None:
        for (item, _), got in zip(batch, composer.compose_many(batch), strict=True):
            if isinstance(got, MailsfluxError):
                on_problem(_row_problem(path, item, got))
            else:
                yield got
    else:
        kept = [b for b, hit in zip(batch, hits, strict=True) if not hit]
        out = iter(composer.compose_many(kept))
        for (item, _), hit in zip(batch, hits, strict=True):
            if hit:
                where = f"{path}:{item.row}"
                on_problem(Problem(where, f"{item.email}: suppressed; row skipped", "warning"))
                continue
            got = next(out)
            if isinstance(got, MailsfluxError):
                on_problem(_row_problem(path, item, got))
            else:
                yield got
    batch.clear()


def compose_all(
    composer: Composer,
    rf: RecipientFile,
    on_problem: ProblemSink,
    suppressed: Container[str] | None = None,
    shard: tuple[int, int] = (0, 1),
    settled: bytearray | None = None,
) -> Iterator[RenderedMessage]:
    """Yield each good row's message; report and skip each bad or suppressed row.

    With ``shard=(i, n)`` only rows whose line number is i modulo n are
    taken, so n worker processes share a file without overlap and each bad
    row is reported once. (The reader drops duplicate addresses per worker.)
    Rows set in the ``settled`` bitmap (a resumed job's) are passed over.
    """
    # The rows read here, not through another generator: one fewer a message.
    top = len(settled) << 3 if settled else 0
    # Drawn as the rows are composed, so in the process that composes them:
    # a worker forked before its first row never shares another's.
    tokens: list[str] = []
    # Good rows with their tokens, composed COMPOSE_BATCH at a time (a row
    # found suppressed then is reported in its place, its token unused).
    # Taken before any problem is reported, so problems and messages come
    # in the rows' order, as one row at a time.
    batch: list[tuple[Recipient, str]] = []
    for item in rf.rows(shard):  # this shard's rows and problems only
        if isinstance(item, Problem):
            yield from composed(composer, rf.path, batch, on_problem, suppressed)
            on_problem(item)
            continue
        if top:
            n = item.row
            if n < top and settled[n >> 3] & (1 << (n & 7)):  # type: ignore[index]
                continue
        if not tokens:
            tokens = message_tokens(_TOKENS)
        batch.append((item, tokens.pop()))
        if len(batch) == COMPOSE_BATCH:
            yield from composed(composer, rf.path, batch, on_problem, suppressed)
    yield from composed(composer, rf.path, batch, on_problem, suppressed)


def check_all(composer: Composer, rf: RecipientFile, on_problem: ProblemSink) -> int:
    """Report every row that :func:`compose_all` would skip, without composing
    (no MIME bodies, no DKIM): what ``validate`` runs. Returns the good rows."""
    good = 0
    for item in rf.rows():
        if isinstance(item, Problem):
            on_problem(item)
            continue
        try:
            composer.check(item)
        except MailsfluxError as exc:
            on_problem(_row_problem(rf.path, item, exc))
        else:
            good += 1
    return good
