"""Rendering letters on every core.

WeasyPrint lays a page out in Python, one core per process, so a job
renders in worker processes, each with its own compiled template and font
setup (built once, in the worker's initializer). Results come back in
order, a bounded window ahead of the carrier, so memory holds a few PDFs,
not the job.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from mailsflux.errors import MailsfluxError
from mailsflux.letters.recipients import LetterRecipient
from mailsflux.letters.render import LetterRenderer

#: Either the PDF or the one line saying why this letter could not render.
Rendered = tuple[LetterRecipient, bytes | str]

_renderer: LetterRenderer | None = None


def _init(kwargs: dict[str, Any]) -> None:
    global _renderer
    _renderer = LetterRenderer(**kwargs)


def _render(r: LetterRecipient) -> bytes | str:
    assert _renderer is not None
    return render_one(_renderer, r)


def render_one(renderer: LetterRenderer, r: LetterRecipient) -> bytes | str:
    try:
        return renderer.pdf(r)
    except MailsfluxError as exc:
        return exc.message
    except Exception as exc:  # one letter's failure is one problem line, not the job's
        # WeasyPrint (or a font, an image decoder) failed on this letter's
        # content. Only the type is reported: the message may quote the text.
        return f"the letter could not be laid out ({type(exc).__name__}); row skipped"


def render_all(
    recipients: Iterable[LetterRecipient], renderer_args: dict[str, Any], *, workers: int = 0
) -> Iterator[Rendered]:
    """Each recipient with its PDF (or why not), in order.

    ``workers`` 0 is one per core; 1 renders in this process.
    """
    n = workers or os.cpu_count() or 1
    if n == 1:
        local = LetterRenderer(**renderer_args)
        for r in recipients:
            yield r, render_one(local, r)
        return
    with ProcessPoolExecutor(n, initializer=_init, initargs=(renderer_args,)) as pool:
        window: deque[tuple[LetterRecipient, Future[bytes | str]]] = deque()
        for r in recipients:
            window.append((r, pool.submit(_render, r)))
            if len(window) >= 4 * n:
                first, fut = window.popleft()
                yield first, fut.result()
        while window:
            first, fut = window.popleft()
            yield first, fut.result()
