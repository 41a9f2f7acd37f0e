"""A tenant's letters: ``POST /v1/letters`` rendered and handed to the
server's carrier (``[letters]`` in its config), events into the tenant's log.

Each tenant's letters live in its own folder (``letters/`` beside its
spool): the letter store, its addresses sealed with the tenant spool's keys.
A file-drop carrier gets a folder per tenant under its ``dir``. Events go
to the tenant's log like email's, so ``GET /v1/events`` and webhooks carry
them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailsflux.errors import MailsfluxError
from mailsflux.events import Event
from mailsflux.letters import (
    Carrier,
    FileDrop,
    HTTPCarrier,
    LetterRecipient,
    LetterStore,
    LetterSummary,
    Run,
    deliver_letters,
    require,
)
from mailsflux.letters.jobfile import CarrierSpec
from mailsflux.letters.run import track
from mailsflux.spool import SpoolKeys
from mailsflux.types import Problem


def tenant_carrier(spec: CarrierSpec, tenant: str, api_key: str) -> Carrier:
    if spec.kind == "file":
        return FileDrop(Path(spec.dir) / tenant)
    return HTTPCarrier(spec.url, api_key, timeout=spec.timeout, attempts=spec.attempts)


def send_tenant_letters(
    folder: Path,
    keys: SpoolKeys,
    carrier: Carrier,
    spec: CarrierSpec,
    *,
    name: str,
    template: str,
    rows: list[LetterRecipient | Problem],
    paper: str,
    sender: str,
    origin_country: str,
    on_event: Callable[[Event], None],
) -> tuple[LetterSummary, list[Problem]]:
    """One request's letters (in a thread: rendering is CPU work)."""
    require()
    assets = folder / "assets"
    assets.mkdir(parents=True, exist_ok=True, mode=0o700)
    renderer: dict[str, Any] = {
        "template": assets / "letter.html",
        "source": template,
        "paper": paper,
        "sender": sender,
        "origin_country": origin_country,
    }
    problems: list[Problem] = []
    store = LetterStore(folder, keys)
    try:
        run = Run(
            name=name, where="recipients", paper=paper, mail_class=spec.mail_class,
            color=spec.color,
        )  # fmt: skip
        summary = deliver_letters(
            run, rows, renderer, carrier, store,
            on_problem=problems.append, on_event=on_event, workers=1,
        )  # fmt: skip
    finally:
        store.close()
    return summary, problems


def track_tenant_letters(
    folder: Path,
    keys: SpoolKeys,
    carrier: Carrier,
    on_event: Callable[[Event], None],
    *,
    letter_days: float,
    letter_max_days: float = 180.0,
    now: float | None = None,
) -> dict[str, int]:
    """A tenant's open letters asked about (new events to ``on_event``), and
    the addresses of letters delivered ``letter_days`` ago deleted."""
    if not (folder / "letters.sqlite").exists():
        return {}
    store = LetterStore(folder, keys)
    events = 0
    try:
        try:
            events = track(store, carrier, on_event, _report, where=str(folder))
        except Exception as exc:  # tracking must not keep addresses past their time
            why = exc.message if isinstance(exc, MailsfluxError) else type(exc).__name__
            _report(Problem(str(folder), f"tracking failed: {why}"))
        deleted = store.sweep(letter_days, now, max_age_days=letter_max_days)
    finally:
        store.close()
    return {"letter_events": events, "letter_addresses_deleted": deleted}


def _report(p: Problem) -> None:
    print(f"mailsflux: letters: {p}", file=sys.stderr)
