"""Every sample in tests/data/bounces parses to what expected.json says."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.feedback import parse_report
from tests._bounces import DOMAIN, KEYS, expected, samples


def test_every_sample_has_an_expectation() -> None:
    names = {p.name for p in samples()}
    assert len(names) >= 20
    assert names == set(expected())


@pytest.mark.parametrize("path", samples(), ids=lambda p: p.name)
def test_sample(path: Path) -> None:
    want = expected()[path.name]
    report = parse_report(path.read_bytes())
    got = [[o.recipient, o.status, o.code, o.reason, o.hard] for o in report.recipients]
    assert (report.kind, got) == (want["kind"], want["recipients"])


def test_crlf_line_endings_parse_the_same() -> None:
    for path in samples():
        data = path.read_bytes()
        a = parse_report(data)
        b = parse_report(data.replace(b"\n", b"\r\n"))
        assert (a.kind, a.recipients) == (b.kind, b.recipients), path.name


def test_dsn_diagnostic_and_action_are_kept() -> None:
    report = parse_report((samples()[0].parent / "postfix-delayed.eml").read_bytes())
    (o,) = report.recipients
    assert o.action == "delayed"
    assert "Connection timed out" in o.diagnostic


def test_verp_return_path_is_found_in_the_report() -> None:
    from mailsflux.feedback import Verp

    verp = Verp(KEYS, "t1", DOMAIN)
    dsn = parse_report((samples()[0].parent / "verp-forwarded-user-unknown.eml").read_bytes())
    opened = [p for p in map(verp.open, dsn.return_paths) if p is not None]
    assert [(p.recipient, p.message_id, p.job, p.tenant) for p in opened] == [
        ("quinn@example.com", "<m20.welcome@sender.example>", "welcome", "acme")
    ]
    arf = parse_report((samples()[0].parent / "verp-arf-redacted.eml").read_bytes())
    opened = [p for p in map(verp.open, arf.return_paths) if p is not None]
    assert [p.recipient for p in opened] == ["uma@mailbox.example"]


def test_json_doc_shape() -> None:
    report = parse_report((samples()[0].parent / "postfix-two-recipients.eml").read_bytes())
    doc = report.to_json_doc("x.eml")
    assert list(doc) == ["file", "kind", "recipients"]
    assert doc["recipients"] == [
        {
            "recipient": "dave@example.com",
            "status": "5.1.1",
            "code": 550,
            "reason": "bad_mailbox",
            "hard": True,
        },
        {
            "recipient": "erin@example.com",
            "status": "5.7.1",
            "code": 554,
            "reason": "policy",
            "hard": False,
        },
    ]


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\xff" * 10, b"Subject: hi\n\nhello", b"From: MAILER-DAEMON@x.example\n\n"],
)
def test_odd_inputs_are_not_reports_or_empty_bounces(data: bytes) -> None:
    report = parse_report(data)
    assert report.kind in ("not-a-report", "bounce")
    assert report.recipients == []


def test_a_notification_from_noreply_is_not_a_bounce() -> None:
    report = parse_report(
        b"From: noreply@shop.example\nTo: bounces@bounce.sender.example\n"
        b"Subject: Your order\n\nThe user alice@example.com does not exist. 550 5.1.1\n"
    )
    assert (report.kind, report.recipients) == ("not-a-report", [])


def test_wording_alone_never_suppresses() -> None:
    # A mailer daemon's notice with no reply code and no status anywhere.
    report = parse_report(
        b"From: MAILER-DAEMON@mx.example.net\nTo: bounces@bounce.sender.example\n"
        b"Subject: failure notice\n\n<kim@example.net>:\nThe user does not exist here.\n"
    )
    assert report.kind == "bounce"
    (o,) = report.recipients
    assert (o.recipient, o.code, o.hard) == ("kim@example.net", None, False)
