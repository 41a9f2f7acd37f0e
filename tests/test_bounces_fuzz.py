"""parse_report never raises: arbitrary bytes, and real samples mutated."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsflux.feedback import Outcome, Report, parse_report
from tests._bounces import samples

SAMPLES = [p.read_bytes() for p in samples()]
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(report: Report) -> None:
    assert report.kind in ("bounce", "complaint", "auto-reply", "not-a-report")
    for o in report.recipients:
        assert isinstance(o, Outcome) and isinstance(o.recipient, str)
        assert isinstance(o.hard, bool) and isinstance(o.reason, str)
        assert o.code is None or 200 <= o.code <= 599
    report.to_json_doc("x")


@_SETTINGS
@given(st.binary(max_size=4000))
def test_arbitrary_bytes(data: bytes) -> None:
    _check(parse_report(data))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            j = draw(st.integers(i, min(len(data), i + 400)))
            del data[i:j]
        elif op == "insert":
            data[i:i] = draw(
                st.sampled_from(
                    [
                        b"\n\n",
                        b"--",
                        b"Content-Type: multipart/mixed; boundary=x\n",
                        b"Content-Type: message/delivery-status\n\n",
                        b"Content-Transfer-Encoding: base64\n",
                        b"=?utf-8?b?\xff\xfe?=",
                        b"Final-Recipient: rfc822;\n",
                        b"\x00",
                        b"<" * 50,
                        "ü@ü.example".encode(),
                    ]
                )
            )
        else:
            j = draw(st.integers(i, min(len(data), i + 200)))
            data[i:i] = data[i:j] * draw(st.integers(1, 20))
    return bytes(data)


@_SETTINGS
@given(mutated())
def test_mutated_samples(data: bytes) -> None:
    _check(parse_report(data))


def test_deep_nesting_and_many_parts() -> None:
    deep = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(300)
    )
    _check(parse_report(b"From: MAILER-DAEMON@x.example\n" + deep))
    many = b"Content-Type: multipart/report; report-type=delivery-status; boundary=z\n\n" + (
        b"--z\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@b.example\n"
        b"Action: failed\nStatus: 5.1.1\n\n" * 2000
    )
    _check(parse_report(many))
