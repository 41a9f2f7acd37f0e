"""A project log record keeps its exception for an embedding application's
handlers (``record.exc_info``), while the text a formatter prints for it (the
traceback) has its addresses masked."""

from __future__ import annotations

import logging

import pytest

from mailsflux import masking


def test_exception_kept_and_its_text_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(masking.SHOW_ENV, raising=False)
    seen: list[logging.LogRecord] = []
    printed: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)
            printed.append(self.format(record))

    log = masking.logger("mailsflux.test-exc-info")
    log.addHandler(Keep())
    log.propagate = False
    try:
        raise LookupError("no mailbox <zoe.h@example.net>")
    except LookupError:
        log.exception("while sending to %s", "zoe.h@example.net")
    (record,) = seen
    assert record.exc_info is not None and isinstance(record.exc_info[1], LookupError)
    assert "zoe.h@example.net" not in printed[0]
    assert "LookupError: no mailbox <z***@example.net>" in printed[0]
    assert printed[0].startswith("while sending to z***@example.net\nTraceback")
