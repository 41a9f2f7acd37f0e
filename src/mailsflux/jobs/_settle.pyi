"""Type stub for a delivered batch's spool records made in C (core/mailsflux/jobs/_settle.pyx)."""

from mailsflux.spool import Record
from mailsflux.types import DeliveryResult, RenderedMessage

def domains(rs: list[DeliveryResult]) -> list[str]:
    """Each result's recipient domain (``DeliveryResult.domain``), in order."""

def record_of(
    r: DeliveryResult,
    now: float,
    held: set[int],
    prior: dict[int, Record],
    parked: dict[int, tuple[RenderedMessage, float]],
    record: type[Record],
) -> tuple[Record, tuple[RenderedMessage, float] | None, str]:
    """``(record, parked, domain)`` for ``r``: its spool record at ``now``,
    its row no longer held, its earlier attempts counted; the message
    parked for it, or None; its recipient domain."""

def delivered_records(
    rs: list[DeliveryResult],
    now: float,
    held: set[int],
    prior: dict[int, Record],
    parked: dict[int, tuple[RenderedMessage, float]],
    record: type[Record],
) -> tuple[list[Record], list[str]]:
    """``(records, domains)``: :func:`record_of` for each of a delivered batch."""
