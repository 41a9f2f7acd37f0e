"""The SMTP layer refuses envelope addresses that are not addresses.

Embedders hand :class:`SMTPSession` messages directly, past the recipient
file's checks. An address with CR or LF would add commands of its own
(``bob@example.com>\\r\\nRCPT TO:<eve@evil.example>`` adds a recipient), and
NUL, ``<`` or ``>`` would end or corrupt the path (RFC 5321 4.1.2). Such a
message bounces, naming its recipient, and nothing of it reaches the wire;
the messages around it are delivered.
"""

from __future__ import annotations

import asyncio

import pytest

from mailsflux.compose import parse_address
from mailsflux.delivery.smtp import Outcome, SMTPSession
from mailsflux.errors import AddressError
from mailsflux.types import RenderedMessage
from tests._scripted_smtp import ScriptedSMTP

BAD_RECIPIENTS = [
    "bob@example.com>\r\nRCPT TO:<eve@evil.example",
    "bob@example.com\nRCPT TO:<eve@evil.example>",
    "bob@example.com\rRCPT TO:<eve@evil.example>",
    "bob\x00@example.com",
    "<bob@example.com>",
    "bob@example.com> SIZE=1",
    "Bob Smith <bob@example.com>",
    "not an address",
    "bob@",
    "@example.com",
    "",
]
BAD_SENDERS = ["s@sender.example>\r\nRCPT TO:<eve@evil.example", "s@sender.example\x00", "<>"]


BODY = b"Subject: x\r\n\r\nhi\r\n"
SIZE = len(BODY)


def msg(rcpt: str, mail_from: str = "s@sender.example", i: int = 0) -> RenderedMessage:
    return RenderedMessage(mail_from=mail_from, rcpt_to=rcpt, data=BODY, message_id=str(i))


def run(
    pipelining: bool, messages: list[RenderedMessage], smtputf8: bool = False
) -> tuple[list[Outcome], list[str]]:
    with ScriptedSMTP(pipelining=pipelining, smtputf8=smtputf8) as server:

        async def go() -> list[Outcome]:
            s = await SMTPSession.open("127.0.0.1", server.port, tls="none", timeout=5)
            out = await s.send(messages)
            await s.quit()
            return out

        out = asyncio.run(go())
        return out, list(server.lines)


@pytest.mark.parametrize("pipelining", [True, False])
def test_bad_envelopes_bounce_and_never_reach_the_wire(pipelining: bool) -> None:
    bad = [msg(r, i=i) for i, r in enumerate(BAD_RECIPIENTS)]
    bad += [msg("ok@example.com", f, i=100 + i) for i, f in enumerate(BAD_SENDERS)]
    good = [msg("first@example.com"), msg("last@example.com")]
    out, lines = run(pipelining, [good[0], *bad, good[1]])
    assert [o.status for o in out] == ["delivered", *["bounced"] * len(bad), "delivered"]
    for m, o in zip(bad, out[1:-1], strict=True):
        assert o.code is None
        assert repr(m.rcpt_to) in o.text  # names the recipient, escaped
    sent = [line.split(" SIZE=")[0] for line in lines if line[:4] in ("MAIL", "RCPT")]
    assert sent == [
        "MAIL FROM:<s@sender.example>",
        "RCPT TO:<first@example.com>",
        "MAIL FROM:<s@sender.example>",
        "RCPT TO:<last@example.com>",
    ]
    assert not any("evil" in line or "ok@example.com" in line for line in lines)


def test_real_addresses_pass() -> None:
    good = [
        "a@example.com",
        "first.last+tag@sub.example.co.uk",
        "o'neil!#$%&*/=?^_`{|}~-@example.org",
        "x@[192.0.2.1]",
        "x@[IPv6:2001:db8::1]",
    ]
    out, lines = run(True, [msg(r, i=i) for i, r in enumerate(good)])
    assert [o.status for o in out] == ["delivered"] * len(good)
    assert [line for line in lines if line.startswith("RCPT")] == [f"RCPT TO:<{r}>" for r in good]
    # The null reverse-path (RFC 5321 4.5.5) is a valid sender.
    out, lines = run(True, [msg("a@example.com", "")])
    assert out[0].status == "delivered"
    assert [line for line in lines if line.startswith("MAIL")] == [f"MAIL FROM:<> SIZE={SIZE}"]


def utf8(
    rcpt: str, mail_from: str = "s@sender.example", *, smtputf8: bool, i: int
) -> RenderedMessage:
    return RenderedMessage(
        mail_from=mail_from, rcpt_to=rcpt, data=BODY, message_id=str(i), smtputf8=smtputf8
    )


@pytest.mark.parametrize("pipelining", [True, False])
def test_utf8_addresses_go_only_with_smtputf8(pipelining: bool) -> None:
    """A non-ASCII address goes only in a message marked SMTPUTF8 (RFC 6531
    3.4), and never with a character the composer refuses: U+2028/U+2029
    (line ends to some readers), U+FFFE/U+FFFF, C1 controls. Such messages
    bounce and nothing of them reaches the wire, even at a server offering
    SMTPUTF8."""
    bad = [
        utf8("zoë@example.de", smtputf8=False, i=1),
        utf8("zoe@exämple.de", smtputf8=False, i=2),
        utf8("ok@example.com", "sändər@sender.example", smtputf8=False, i=3),
        *(
            utf8(r, smtputf8=True, i=10 + n)
            for n, r in enumerate(
                [
                    "a\u2028b@example.com",
                    "a\u2029b@example.com",
                    "a\ufffeb@example.com",
                    "a\uffffb@example.com",
                    "a\x85b@example.com",
                    "a@exa\u2028mple.com",
                    "a@ex\ufffeample.com",
                ]
            )
        ),
        utf8("ok@example.com", "s\u2028@sender.example", smtputf8=True, i=20),
    ]
    good = [
        utf8("first@example.com", smtputf8=False, i=0),
        utf8("zoë@exämple.de", smtputf8=True, i=30),
        utf8("last@example.com", "sändər@sender.example", smtputf8=True, i=31),
    ]
    out, lines = run(pipelining, [good[0], *bad, good[1], good[2]], smtputf8=True)
    expected = ["delivered", *(["bounced"] * len(bad)), "delivered", "delivered"]
    assert [o.status for o in out] == expected
    for m, o in zip(bad, out[1:-2], strict=True):
        assert o.code is None and repr(m.rcpt_to) in o.text, o.text
    envelope = [line.split(" SIZE=")[0] for line in lines if line[:4] in ("MAIL", "RCPT")]
    assert envelope == [
        "MAIL FROM:<s@sender.example>",
        "RCPT TO:<first@example.com>",
        "MAIL FROM:<s@sender.example> SMTPUTF8",
        "RCPT TO:<zoë@exämple.de>",
        "MAIL FROM:<sändər@sender.example> SMTPUTF8",
        "RCPT TO:<last@example.com>",
    ]
    # The composer refuses the same local parts (its domains are A-labels).
    for m in bad[3:8]:
        with pytest.raises(AddressError):
            parse_address(m.rcpt_to)


def test_the_scheduler_reports_a_plain_bounce_for_the_recipient() -> None:
    """Bounced, naming the recipient, with no made-up status code that would
    put the address on a suppression list (5.1.x) or defer it."""
    from mailsflux.delivery.mx import MXResolver
    from mailsflux.delivery.scheduler import Scheduler, SiteLimits
    from mailsflux.types import DeliveryResult

    results: list[DeliveryResult] = []
    bad = "bob@example.com>\r\nRCPT TO:<eve@evil.example"
    with ScriptedSMTP() as server:

        async def go() -> None:
            s = Scheduler(
                MXResolver(smarthost=("127.0.0.1", server.port)),
                results.append,
                default_limits=SiteLimits(tls="none"),
                local_hostname="mta.sender.example",
            )
            await s.submit(msg(bad))
            await s.submit(msg("good@example.com", i=1))
            await s.close()

        asyncio.run(go())
        lines = list(server.lines)
    got = {r.recipient: r for r in results}
    assert got[bad].status == "bounced" and got[bad].enhanced_status is None
    assert got[bad].attempts == 1 and repr(bad) in got[bad].reply
    assert got["good@example.com"].status == "delivered"
    assert not any("evil" in line for line in lines)
