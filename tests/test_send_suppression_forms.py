"""Every address comparison uses one normal form (IDNA A-label domain without
a trailing dot, NFC and lower-cased local part): a suppressed address written
in another form is still not mailed, whether listed in the suppression file
or in the tracking store, and the reader drops duplicates written differently."""

from __future__ import annotations

from pathlib import Path

from mailsflux.tracking.config import load_config, write_new_config
from tests._jobs import make_job, send_job
from tests._mail import RecordingHandler, SMTPServer

ROWS = [
    "anna@bücher.de",  # listed as anna@bücher.de (U-label)
    "bob@bücher.de",  # listed as BOB@XN--BCHER-KVA.DE.
    "zoe\u0308@example.com",  # listed as zoë@example.com (NFC); this is NFD
    "dora@xn--bcher-kva.de.",  # in the store as Dora@Bücher.de
    "carl@bücher.de",  # mailed
    "Carl@XN--BCHER-KVA.DE.",  # the same as carl: a duplicate
    "ANNA@xn--bcher-kva.de.",  # the same as anna: a duplicate
    "eve@example.com",  # mailed
]
LISTED = "anna@bücher.de\nBOB@XN--BCHER-KVA.DE.  # by phone\nzo\u00eb@example.com\n"


def test_suppressed_forms_are_not_mailed(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        job = make_job(tmp_path, [[e, "N", "F", "Pro"] for e in ROWS], relay=smtp.url)
        (job.parent / "suppressed.txt").write_text(LISTED, encoding="utf-8")
        tracking = job.parent / "tracking.toml"
        write_new_config(tracking, "https://t.sender.example")
        store = load_config(tracking).open_store()
        store.suppress("Dora@Bücher.de")
        store.close()
        text = job.read_text(encoding="utf-8").replace(
            'file = "recipients.csv"', 'file = "recipients.csv"\nsuppression = "suppressed.txt"'
        )
        text += '\n[tracking]\nconfig = "tracking.toml"\nbase_url = "https://t.sender.example"\n'
        job.write_text(text, encoding="utf-8")
        summary, problems = send_job(job)
    mailed = sorted(r.rcpt_tos[0] for r in handler.received)
    assert mailed == ["carl@xn--bcher-kva.de", "eve@example.com"]
    assert (summary.sent, summary.failed) == (2, 0)
    said = sorted(p.message.split(";")[0] for p in problems)
    assert said == [
        "anna@xn--bcher-kva.de: suppressed",
        "bob@xn--bcher-kva.de: suppressed",
        "dora@xn--bcher-kva.de: suppressed",
        "duplicate address ANNA@xn--bcher-kva.de",
        "duplicate address Carl@xn--bcher-kva.de",
        "zoe\u0308@example.com: suppressed",
    ]
