"""The feedback loop: bounces, complaints and auto-replies that come back later.

::

    from mailsflux.feedback import Verp, parse_report

    verp = Verp(tracking_keys, "k1", "bounce.example.com")
    return_path = verp.make(message_id, recipient, job="welcome", tenant="acme")
    ...
    report = parse_report(raw_bytes)          # kind, and per recipient: status, reason, hard
    verp.open(report.return_paths[0])         # -> message id, recipient, job, tenant

:class:`Ingestor` records reports as events and suppression entries (and
quarantines what it cannot parse); :class:`BounceListener` receives them over
SMTP for the bounce domain; ``mailsflux bounces parse|ingest|listen`` are the
commands (:mod:`mailsflux.feedback.cli`). :class:`SuppressionList` adds,
removes, checks, lists, imports and exports the suppression list of one event
store (``mailsflux suppression ...``, :mod:`mailsflux.feedback.cli_suppression`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the names; at run time each loads on first use
    from mailsflux.feedback.ingest import FeedbackError, Ingestor, IngestStats, read_sources
    from mailsflux.feedback.listen import BounceListener
    from mailsflux.feedback.report import Outcome, Report, ReportKind, parse_report
    from mailsflux.feedback.suppression import REASONS, SuppressionError, SuppressionList
    from mailsflux.feedback.verp import Verp, VerpPayload

# Loaded on first use, not with the package: importing any submodule (the
# composer's VERP, the CLI's suppression commands, in every ``send`` process)
# runs this file, and the listener alone pulls in aiosmtpd (tens of ms).
_WHERE = {
    "FeedbackError": "ingest",
    "Ingestor": "ingest",
    "IngestStats": "ingest",
    "read_sources": "ingest",
    "BounceListener": "listen",
    "Outcome": "report",
    "Report": "report",
    "ReportKind": "report",
    "parse_report": "report",
    "REASONS": "suppression",
    "SuppressionError": "suppression",
    "SuppressionList": "suppression",
    "Verp": "verp",
    "VerpPayload": "verp",
}

if not TYPE_CHECKING:  # a typo in an import stays a type error

    def __getattr__(name: str) -> Any:
        where = _WHERE.get(name)
        if where is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(f"{__name__}.{where}"), name)
        globals()[name] = value
        return value


__all__ = [
    "REASONS",
    "BounceListener",
    "FeedbackError",
    "IngestStats",
    "Ingestor",
    "Outcome",
    "Report",
    "ReportKind",
    "SuppressionError",
    "SuppressionList",
    "Verp",
    "VerpPayload",
    "parse_report",
    "read_sources",
]
