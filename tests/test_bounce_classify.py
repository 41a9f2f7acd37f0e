"""Reply classification: every table row, real-world replies, and no input that raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.delivery.bounce import (
    RULES,
    SUPPRESS,
    Category,
    Classifier,
    Reply,
    Rule,
    classify,
    classify_error,
    classify_result,
    find_enhanced_status,
)
from mailsflux.delivery.mx import PermanentRoutingError, TemporaryRoutingError
from mailsflux.types import DeliveryResult

C = Category


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_every_row_classifies_its_own_example(rule: Rule) -> None:
    code, text = rule.example
    assert text, f"row {rule.name} has no example"
    assert rule.source, f"row {rule.name} does not say where it comes from"
    got = classify(code, text)
    assert (got.rule, got.category) == (rule.name, rule.category)


def test_row_names_are_unique() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))


# (code, text, category, permanent, suppress). Texts as servers send them;
# Gmail's as aiosmtplib hands them over (codes stripped, lines joined by \n).
REAL_WORLD: list[tuple[int | None, str, Category, bool, bool]] = [
    # -- delivered --
    (250, "2.0.0 OK  1712345678 a1-20020a05.101 - gsmtp", C.DELIVERED, False, False),
    (
        250,
        "2.6.0 <id@sender.example> [InternalId=1] Queued mail for delivery",
        C.DELIVERED,
        False,
        False,
    ),
    (None, "250 2.0.0 Ok: queued as 4Xyz", C.DELIVERED, False, False),
    # -- Gmail --
    (
        550,
        "5.1.1 The email account that you tried to reach does not exist. Please try\n"
        "5.1.1 double-checking the recipient's email address for typos or\n"
        "5.1.1 unnecessary spaces. For more information, go to\n"
        "5.1.1  https://support.google.com/mail/?p=NoSuchUser 41sor.66 - gsmtp",
        C.BAD_MAILBOX,
        True,
        True,
    ),
    (
        550,
        "550-5.1.1 The email account that you tried to reach does not exist. - gsmtp",
        C.BAD_MAILBOX,
        True,
        True,
    ),
    (
        550,
        "5.2.1 The email account that you tried to reach is disabled. - gsmtp",
        C.BAD_MAILBOX,
        True,
        True,
    ),
    (
        450,
        "4.2.1 The user you are trying to contact is receiving mail too quickly. Please "
        "resend your message at a later time. - gsmtp",
        C.RATE_LIMITED,
        False,
        False,
    ),
    (
        552,
        "5.2.2 The email account that you tried to reach is over quota. Please direct "
        "the recipient to https://support.google.com/mail/?p=OverQuotaPerm - gsmtp",
        C.MAILBOX_FULL,
        True,
        False,
    ),
    (
        452,
        "4.2.2 The recipient's inbox is out of storage space. Please direct the recipient "
        "to https://support.google.com/mail/?p=OverQuotaTemp - gsmtp",
        C.MAILBOX_FULL,
        False,
        False,
    ),
    (
        552,
        "5.3.4 Your message exceeded Google's message size limits. - gsmtp",
        C.MESSAGE_TOO_LARGE,
        True,
        False,
    ),
    (
        550,
        "5.7.1 [192.0.2.1] Our system has detected that this message is likely unsolicited "
        "mail. To reduce the amount of spam sent to Gmail, this message has been blocked. - gsmtp",
        C.POLICY,
        True,
        False,
    ),
    (
        421,
        "4.7.28 [192.0.2.1 15] Our system has detected an unusual rate of unsolicited mail "
        "originating from your IP address. To protect our users from spam, mail sent from "
        "your IP address has been temporarily rate limited. - gsmtp",
        C.RATE_LIMITED,
        False,
        False,
    ),
    (
        421,
        "4.7.0 [192.0.2.1 15] Our system has detected that this message is suspicious due to "
        "the very low reputation of the sending IP address. To protect our users from spam, "
        "mail sent from your IP address has been temporarily rate limited. - gsmtp",
        C.RATE_LIMITED,
        False,
        False,
    ),
    (
        550,
        "5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail "
        "requires all senders to authenticate with either SPF or DKIM. - gsmtp",
        C.AUTH,
        True,
        False,
    ),
    (
        550,
        "5.7.25 [192.0.2.1] The IP address sending this message does not have a PTR record "
        "setup, or the corresponding forward DNS entry does not point to the sending IP. - gsmtp",
        C.AUTH,
        True,
        False,
    ),
    (
        421,
        "4.3.0 Temporary System Problem.  Try again later (10). - gsmtp",
        C.OTHER_TEMPORARY,
        False,
        False,
    ),
    # -- Outlook.com / Microsoft 365 --
    (
        550,
        "5.5.0 Requested action not taken: mailbox unavailable (S2017062302). "
        "[DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]",
        C.BAD_MAILBOX,
        True,
        True,
    ),
    (
        550,
        "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient bob@contoso.com not found by "
        "SMTP address lookup",
        C.BAD_MAILBOX,
        True,
        True,
    ),
    (
        550,
        "5.4.1 Recipient address rejected: Access denied. AS(201806281) "
        "[BN8NAM11FT066.eop-nam11.prod.protection.outlook.com]",
        C.BAD_MAILBOX,
        True,
        True,
    ),
    (
        550,
        "5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
        "Internet service provider since part of their network is on our block list (S3150).",
        C.POLICY,
        True,
        False,
    ),
    (
        451,
        "4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP "
        "reputation. For e-mail delivery information, see https://postmaster.live.com (S775)",
        C.RATE_LIMITED,
        False,
        False,
    ),
    (
        550,
        "5.7.515 Access denied, sending domain sender.example doesn't meet the required "
        "authentication level.",
        C.AUTH,
        True,
        False,
    ),
    (
        550,
        "5.7.509 Access denied, sending domain sender.example does not pass DMARC "
        "verification and has a DMARC policy of reject.",
        C.AUTH,
        True,
        False,
    ),
    (550, "5.7.606 Access denied, banned sending IP [192.0.2.1].", C.POLICY, True, False),
    (
        554,
        "5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException",
        C.MAILBOX_FULL,
        True,
        False,
    ),
    (
        421,
        "4.3.2 The maximum number of concurrent server connections has exceeded a limit, "
        "closing transmission channel",
        C.RATE_LIMITED,
        False,
        False,
    ),
    (452, "4.5.3 Too many recipients", C.RATE_LIMITED, False, False),
    # -- Yahoo / AOL --
    (
        554,
        "delivery error: dd This user doesn't have a yahoo.com account (bob@yahoo.com) [0] "
        "- mta1234.mail.bf1.yahoo.com",
        C.BAD_MAILBOX,
        True,
        True,
    ),
    (
        554,
        "delivery error: dd Sorry your message to bob@aol.com cannot be delivered. This "
        "mailbox is disabled (554.30). - mta4.mail.aol.com",
        C.BAD_MAILBOX,
        True,
        True,
    ),
    (
        421,
        "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume "
        "or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
        C.RATE_LIMITED,
        False,
        False,
    ),
    (
        553,
        "5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying "
        "will NOT succeed. See https://postmaster.yahooinc.com/error-codes",
        C.POLICY,
        True,
        False,
    ),
    (
        554,
        "Message not allowed - [PH01] Email not accepted for policy reasons. Please visit "
        "https://postmaster.yahooinc.com/error-codes",
        C.POLICY,
        True,
        False,
    ),
    (
        550,
        "5.7.9 This mail has been blocked because the sender is unauthenticated. Yahoo "
        "requires all senders to authenticate with either SPF or DKIM.",
        C.AUTH,
        True,
        False,
    ),
    # -- Postfix --
    (
        550,
        "5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual "
        "mailbox table",
        C.BAD_MAILBOX,
        True,
        True,
    ),
    (
        450,
        "4.1.1 <bob@example.com>: Recipient address rejected: unverified address: host "
        "mx.example.com[192.0.2.5] said: 550 5.1.1 user unknown",
        C.BAD_MAILBOX,
        False,
        False,
    ),
    (
        450,
        "4.1.2 <bob@nonexistent.example>: Recipient address rejected: Domain not found",
        C.BAD_DOMAIN,
        False,
        False,
    ),
    (
        550,
        "5.1.2 <bob@nonexistent.example>: Recipient address rejected: Domain not found",
        C.BAD_DOMAIN,
        True,
        True,
    ),
    (554, "5.7.1 <bob@elsewhere.example>: Relay access denied", C.POLICY, True, False),
    (
        554,
        "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; "
        "https://www.spamhaus.org/query/ip/192.0.2.1",
        C.POLICY,
        True,
        False,
    ),
    (
        450,
        "4.2.0 <bob@example.com>: Recipient address rejected: Greylisted, see "
        "http://postgrey.schweikert.ch/help/example.com.html",
        C.GREYLISTED,
        False,
        False,
    ),
    (
        450,
        "4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]",
        C.AUTH,
        False,
        False,
    ),
    (
        450,
        "4.1.8 <bounce@sender.example>: Sender address rejected: Domain not found",
        C.SENDER_CONFIG,
        False,
        False,
    ),
    (552, "5.3.4 Message size exceeds fixed limit", C.MESSAGE_TOO_LARGE, True, False),
    (
        421,
        "4.7.0 mx.example.com Error: too many connections from 192.0.2.1",
        C.RATE_LIMITED,
        False,
        False,
    ),
    (452, "4.3.1 Insufficient system storage", C.OTHER_TEMPORARY, False, False),
    (
        552,
        "5.2.2 <bob@example.com>: Quota exceeded (mailbox for user is full)",
        C.MAILBOX_FULL,
        True,
        False,
    ),
    (554, "5.4.6 Too many hops", C.OTHER_PERMANENT, True, False),
    # -- Exim / cPanel / qmail --
    (550, "Unrouteable address", C.BAD_MAILBOX, True, True),
    (550, "No Such User Here", C.BAD_MAILBOX, True, True),
    (
        550,
        "Verification failed for <bounce@sender.example>\nUnrouteable address\n"
        "Sender verify failed",
        C.SENDER_CONFIG,
        True,
        False,
    ),
    (451, "Temporary local problem - please try later", C.OTHER_TEMPORARY, False, False),
    (550, "Administrative prohibition", C.POLICY, True, False),
    (
        451,
        "The server has reached its limit for processing requests from your host.\n"
        "Please try again later.",
        C.RATE_LIMITED,
        False,
        False,
    ),
    (451, "4.7.1 Greylisting in action, please come back later", C.GREYLISTED, False, False),
    (552, "Message size exceeds maximum permitted", C.MESSAGE_TOO_LARGE, True, False),
    (550, "This message was classified as SPAM and may not be delivered", C.POLICY, True, False),
    (
        553,
        "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
        C.POLICY,
        True,
        False,
    ),
    (550, "5.1.10 Recipient address has null MX", C.BAD_DOMAIN, True, True),
    # -- no enhanced status: the basic code decides --
    (550, "Requested action not taken", C.OTHER_PERMANENT, True, False),
    (451, "Requested action aborted: local error in processing", C.OTHER_TEMPORARY, False, False),
    (421, "Service not available, closing transmission channel", C.OTHER_TEMPORARY, False, False),
    # -- no reply at all --
    (
        None,
        "TimeoutError: Timed out connecting to 192.0.2.1 on port 25",
        C.CONNECTION,
        False,
        False,
    ),
    (
        None,
        "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 25)",
        C.CONNECTION,
        False,
        False,
    ),
    (None, "SMTPServerDisconnected: Connection lost", C.CONNECTION, False, False),
    (None, "", C.CONNECTION, False, False),
    # -- our own setup refused: HELO/EHLO name, sender address (never suppresses) --
    (
        504,
        "5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname",
        C.SENDER_CONFIG,
        True,
        False,
    ),
    (550, "5.7.1 <bad>: Helo command rejected: Host not found", C.SENDER_CONFIG, True, False),
    (450, "4.7.1 <x>: Helo command rejected: Host not found", C.SENDER_CONFIG, False, False),
    (501, "Syntactically invalid EHLO argument(s)", C.SENDER_CONFIG, True, False),
    (550, "HELO/EHLO verification failed", C.SENDER_CONFIG, True, False),
    (
        501,
        "5.5.4 HELO/EHLO argument [x] invalid, closing connection.",
        C.SENDER_CONFIG,
        True,
        False,
    ),
    (
        501,
        "5.5.4 Empty HELO/EHLO argument not allowed, closing connection.",
        C.SENDER_CONFIG,
        True,
        False,
    ),
    (
        553,
        "5.1.8 <news@sender.example>: Sender address rejected: Domain not found",
        C.SENDER_CONFIG,
        True,
        False,
    ),
    (550, "5.1.7 Invalid sender address syntax", C.SENDER_CONFIG, True, False),
]


@pytest.mark.parametrize(
    ("code", "text", "category", "permanent", "suppress"),
    REAL_WORLD,
    ids=[f"{c}-{t[:40]}" for c, t, *_ in REAL_WORLD],
)
def test_real_world_replies(
    code: int | None, text: str, category: Category, permanent: bool, suppress: bool
) -> None:
    got = classify(code, text)
    assert (got.category, got.permanent, got.suppress) == (category, permanent, suppress), got
    assert got.temporary is not permanent


def test_enhanced_status_found_in_text_not_in_ip_addresses() -> None:
    assert find_enhanced_status("550-5.1.1 The email account") == "5.1.1"
    assert find_enhanced_status("rcpthosts (#5.7.1)") == "5.7.1"
    assert find_enhanced_status("from 192.0.2.1 deferred - 4.16.55.1; see") is None
    assert find_enhanced_status("host 5.6.7.8 said no") is None
    assert find_enhanced_status("5.1.10 RESOLVER") == "5.1.10"
    assert find_enhanced_status("4.7.028 padded") == "4.7.28"
    assert find_enhanced_status("3.1.1 not a class") is None


def test_given_enhanced_status_wins_over_text() -> None:
    got = classify(550, "something 5.7.1 looking", enhanced_status="5.1.1")
    assert (got.category, got.enhanced_status) == (C.BAD_MAILBOX, "5.1.1")


def test_basic_code_decides_permanence_when_classes_disagree() -> None:
    # RFC 3463: the basic code wins. A 4xx with 5.1.1 is not a hard bounce.
    soft = classify(450, "5.1.1 user unknown")
    assert (soft.category, soft.permanent, soft.suppress) == (C.BAD_MAILBOX, False, False)
    hard = classify(550, "4.2.2 mailbox full")
    assert (hard.category, hard.permanent) == (C.MAILBOX_FULL, True)


def test_enhanced_status_alone_decides_without_code() -> None:
    got = classify(None, "", enhanced_status="5.1.1")
    assert (got.category, got.permanent, got.suppress) == (C.BAD_MAILBOX, True, True)
    assert classify(None, "", "4.4.3").category is C.BAD_DOMAIN


def test_suppress_only_for_permanent_hard_bounces() -> None:
    assert SUPPRESS == {C.BAD_MAILBOX, C.BAD_DOMAIN}
    for code, text, category, permanent, suppress in REAL_WORLD:
        got = classify(code, text)
        assert got.suppress == (got.permanent and got.category in SUPPRESS)
        del code, text, category, permanent, suppress


def test_routing_errors_classify_as_bad_domain() -> None:
    nx = PermanentRoutingError(
        "domain x.example does not exist", domain="x.example", enhanced_status="5.1.2"
    )
    null = PermanentRoutingError("null MX", domain="n.example", enhanced_status="5.1.10", code=556)
    temp = TemporaryRoutingError("timed out", domain="t.example", enhanced_status="4.4.3")
    assert (classify_error(nx).category, classify_error(nx).suppress) == (C.BAD_DOMAIN, True)
    assert (classify_error(null).category, classify_error(null).suppress) == (C.BAD_DOMAIN, True)
    assert (classify_error(temp).category, classify_error(temp).permanent) == (C.BAD_DOMAIN, False)


def test_delivery_results_and_replies() -> None:
    result = DeliveryResult(
        recipient="gone@example.com",
        message_id="<1@x>",
        status="bounced",
        code=550,
        enhanced_status="5.1.1",
        reply="5.1.1 mailbox unavailable",
    )
    assert classify_result(result).category is C.BAD_MAILBOX
    assert Reply.from_result(result) == Reply(550, "5.1.1 mailbox unavailable", "5.1.1")


def test_extra_rows_go_first_and_rules_can_be_replaced() -> None:
    extra = Rule(
        "my-isp", C.POLICY, text=r"\bMYISP-17\b", example=(550, "550 MYISP-17 user unknown")
    )
    custom = Classifier(extra=[extra])
    assert classify(550, "550 MYISP-17 user unknown").category is C.BAD_MAILBOX
    assert custom.classify(550, "550 MYISP-17 user unknown").rule == "my-isp"
    bare = Classifier(rules=[])
    assert bare.classify(550, "5.1.1 user unknown").category is C.OTHER_PERMANENT
    assert bare.classify(451, "x").category is C.OTHER_TEMPORARY


def test_huge_reply_is_cut() -> None:
    got = classify(554, "5.7.1 " + "x" * 1_000_000 + " user unknown")
    assert got.category is C.POLICY


codes = st.one_of(st.none(), st.integers(min_value=-(10**6), max_value=10**6))
texts = st.one_of(
    st.text(),
    st.text(alphabet="0123456789.- #\n[]()abcdefgxyrZS", max_size=200),
    st.builds(
        lambda c, e, t: f"{c} {e} {t}",
        st.integers(100, 699),
        st.from_regex(r"[0-9]\.[0-9]{1,4}\.[0-9]{1,4}", fullmatch=True),
        st.text(max_size=80),
    ),
)


@settings(max_examples=500, deadline=None)
@given(codes, texts, st.one_of(st.none(), st.text(max_size=20)))
def test_never_raises(code: int | None, text: str, enhanced: str | None) -> None:
    got = classify(code, text, enhanced)
    assert isinstance(got.category, Category)
    assert got.suppress <= got.permanent
    if got.enhanced_status is not None:
        assert got.enhanced_status[0] in "245"
