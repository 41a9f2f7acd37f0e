"""A letter's postal address is sealed at rest and deleted 30 days after
confirmed delivery: the clock moved to 29 and 31 days."""

from __future__ import annotations

from pathlib import Path

from mailsflux.letters import LetterStore, PostalAddress
from mailsflux.spool import SpoolKeys

DAY = 86_400.0
ADDRESS = PostalAddress(
    country_code="DE", name="Erika Mustermann", street_address="Hauptstraße 5",
    city="BERLIN", postal_code="10115",
)  # fmt: skip


def test_address_sealed_then_deleted_30_days_after_delivery(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = LetterStore(tmp_path / "state", SpoolKeys.generate(), clock=lambda: now[0])
    store.add("ltr_1", "job", "c1", ADDRESS, "file")
    store.add("ltr_2", "job", "c2", ADDRESS, "file")  # never delivered
    store.submitted("ltr_1", "car_1")
    store.submitted("ltr_2", "car_2")
    assert store.address("ltr_1") == ADDRESS
    store.advance("ltr_1", "delivered", 4, at=now[0])
    raw = (tmp_path / "state" / "letters.sqlite").read_bytes()
    assert b"Mustermann" not in raw and b"10115" not in raw

    now[0] += 29 * DAY
    assert store.sweep(30) == 0
    assert store.address("ltr_1") == ADDRESS

    now[0] += 2 * DAY  # 31 days after delivery
    assert store.sweep(30) == 1
    assert store.address("ltr_1") is None
    assert store.address("ltr_2") == ADDRESS  # not delivered: kept
    row = store.find("job", "c1")
    assert row is not None and row.status == "delivered" and not row.has_address
    store.close()


def test_a_sealed_address_does_not_open_under_another_letter(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    from mailsflux.errors import SpoolError

    store = LetterStore(tmp_path / "state", SpoolKeys.generate())
    store.add("ltr_1", "job", "c1", ADDRESS, "file")
    store.add("ltr_2", "job", "c2", ADDRESS, "file")
    db = sqlite3.connect(tmp_path / "state" / "letters.sqlite")
    db.execute(
        "UPDATE letters SET address = (SELECT address FROM letters WHERE letter_id = 'ltr_1')"
        " WHERE letter_id = 'ltr_2'"
    )
    db.commit()
    with pytest.raises(SpoolError):
        store.address("ltr_2")
