"""The rows of a job: each good row composed (or only checked), each bad one reported."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Sequence
from operator import attrgetter, itemgetter
from pathlib import Path

from mailsflux.errors import MailsfluxError
from mailsflux.jobs.composer import Composer, message_tokens
from mailsflux.jobs.recipients import RecipientFile
from mailsflux.jobs.suppression import suppressed_among
from mailsflux.types import Problem, Recipient, RenderedMessage

ProblemSink = Callable[[Problem], None]

_first, _email = itemgetter(0), attrgetter("email")

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


#: A batch of rows composed: its messages, and each problem with the number
#: of the batch's messages that come before it (so both keep the rows' order).
Composed = tuple[list[RenderedMessage], list[tuple[int, Problem]]]


def composed(
    composer: Composer,
    path: Path,
    batch: list[tuple[Recipient, str]],
    suppressed: Container[str] | None = None,
) -> Composed:
    """The messages of ``batch`` (rows with their tokens), composed together
    (:meth:`Composer.compose_batch`), and each refused or suppressed row's
    problem. Suppression is asked here, a batch at a time, just before the
    rows are composed. A batch with no problem is handed on as composed."""
    hits = None
    if suppressed is not None and batch:
        # The addresses taken in C, not a Python loop (8 bytecodes a message).
        hits = suppressed_among(suppressed, list(map(_email, map(_first, batch))))
    errors: list[tuple[int, MailsfluxError]] = []
    kept: Sequence[int]
    if hits is None:
        messages = composer.compose_batch(batch, errors)
        if not errors:
            return messages, []
        kept = range(len(batch))
    else:
        kept = [i for i, hit in enumerate(hits) if not hit]
        messages = composer.compose_batch([batch[i] for i in kept], errors)
    refused: dict[int, Problem] = {}
    for i, exc in errors:
        refused[kept[i]] = _row_problem(path, batch[kept[i]][0], exc)
    for i, hit in enumerate(hits or ()):
        if hit:
            item = batch[i][0]
            where = f"{path}:{item.row}"
            refused[i] = Problem(where, f"{item.email}: suppressed; row skipped", "warning")
    problems: list[tuple[int, Problem]] = []
    before = 0
    for i in range(len(batch)):
        if i in refused:
            problems.append((before, refused[i]))
        else:
            before += 1
    return messages, problems


def compose_batches(
    composer: Composer,
    rf: RecipientFile,
    suppressed: Container[str] | None = None,
    shard: tuple[int, int] = (0, 1),
    settled: bytearray | None = None,
) -> Iterator[Composed]:
    """Each good row's message and each bad or suppressed row's problem, a
    batch of at most COMPOSE_BATCH rows at a time (see :data:`Composed`):
    what a send hands to its scheduler together.

    With ``shard=(i, n)`` only rows whose line number is i modulo n are
    taken, so n worker processes share a file without overlap and each bad
    row is reported once. (The reader drops duplicate addresses per worker.)
    Rows set in the ``settled`` bitmap (a resumed job's) are passed over.
    """
    # Drawn as the rows are composed, so in the process that composes them:
    # a worker forked before its first row never shares another's. A row
    # found suppressed or refused leaves its token unused.
    tokens: list[str] = []
    for run in rf.runs(shard, COMPOSE_BATCH, settled):
        if type(run) is not list:
            yield [], [(0, run)]  # type: ignore[list-item]
            continue
        n = len(run)
        if len(tokens) < n:
            tokens += message_tokens(max(_TOKENS, n - len(tokens)))
        yield composed(composer, rf.path, list(zip(run, tokens[-n:], strict=True)), suppressed)
        del tokens[-n:]


def compose_all(
    composer: Composer,
    rf: RecipientFile,
    on_problem: ProblemSink,
    suppressed: Container[str] | None = None,
    shard: tuple[int, int] = (0, 1),
    settled: bytearray | None = None,
) -> Iterator[RenderedMessage]:
    """Yield each good row's message; report and skip each bad or suppressed
    row, in the rows' order (:func:`compose_batches`, a message at a time)."""
    for messages, problems in compose_batches(composer, rf, suppressed, shard, settled):
        at = 0
        for before, problem in problems:
            yield from messages[at:before]
            at = before
            on_problem(problem)
        yield from messages[at:]


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
