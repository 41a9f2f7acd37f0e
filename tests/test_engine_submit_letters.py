"""engine.submit_letters: a letter job from code, into the print-house drop
folder, its events delivered in the caller's event loop."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

from mailsflux import Engine
from mailsflux.events import Event
from mailsflux.letters import LetterSummary
from mailsflux.types import Problem

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "letters"


def test_submit_letters_from_the_engine(tmp_path: Path) -> None:
    job_dir = tmp_path / "letters"
    shutil.copytree(EXAMPLE, job_dir, ignore=shutil.ignore_patterns("print-drop", "letters-*"))
    events: list[tuple[Event, int]] = []
    problems: list[Problem] = []

    async def go() -> LetterSummary:
        async with Engine() as engine:
            return await engine.submit_letters(
                job_dir / "job.toml",
                on_event=lambda e: events.append((e, threading.get_ident())),
                on_problem=problems.append,
                workers=1,
            )

    summary = asyncio.run(go())
    assert (summary.submitted, summary.skipped, summary.total) == (4, 1, 5)
    assert [str(p).split(": ", 1)[1] for p in problems] == [
        "error: field postal_code: invalid for DE; row skipped"
    ]
    assert [e.type for e, _ in events] == ["letter_submitted"] * 4
    assert {t for _, t in events} == {threading.get_ident()}  # in the loop's thread
    assert len(list((job_dir / "print-drop").glob("*.pdf"))) == 4
