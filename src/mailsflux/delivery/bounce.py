"""Reply classification: SMTP code + enhanced status + text -> what happened.

:func:`classify` turns one reply into a :class:`Classification`: a
:class:`Category` (bad mailbox, mailbox full, policy block, rate limited,
...), whether it is permanent, and whether the recipient should be
suppressed (hard bounces only: a permanent bad mailbox or bad domain).
A refusal of our own setup (the sender address, RFC 3463 x.1.7/x.1.8 or
words about the sender, MAIL FROM or envelope sender; or the HELO/EHLO name)
is ``sender_config``: the recipient is not to blame. A greylisting or rate
reply is a wait even when it names our sender.

How it decides:

1. The basic reply code is taken as given, else from the start of the text
   (``"550 5.1.1 ..."``); the enhanced status (RFC 3463 ``class.subject.detail``)
   as given, else the first one anywhere in the text (``"550-5.1.1"``,
   ``"(#5.7.1)"``, not IP addresses).
2. 2xx (or an enhanced ``2.x.x`` without a code) is ``delivered``. No code
   and no enhanced status is a ``connection`` problem (refused, timed out,
   dropped).
3. Otherwise the rows of :data:`RULES` are tried in order; the first whose
   patterns all match decides the category. Provider-specific and
   text-precise rows come first, then enhanced status rows, then text rows.
4. No row: ``other_temporary`` / ``other_permanent`` by the code class.

Permanence always follows the basic code (5xx permanent, 4xx temporary;
RFC 3463 says the basic code wins when the two disagree), then the enhanced
class when there is no code. A ``4.1.1`` is a bad mailbox but temporary and
not suppressed.

The table is data: add rows with :class:`Rule` (each carries a real example
reply, and the test suite checks every row against its example)::

    classifier = Classifier(extra=[Rule("my-isp", Category.POLICY, text=r"\\bMYISP-17\\b",
                                        example=(554, "554 MYISP-17 rejected"))])
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import msgspec

from mailsflux.delivery._smtpfast import enhanced_prefix as _enhanced_prefix
from mailsflux.errors import MailsfluxError
from mailsflux.types import DeliveryResult

__all__ = [
    "RULES",
    "SUPPRESS",
    "Category",
    "Classification",
    "Classifier",
    "Reply",
    "Rule",
    "classify",
    "classify_error",
    "classify_result",
    "find_enhanced_status",
]


class Category(enum.StrEnum):
    DELIVERED = "delivered"
    BAD_MAILBOX = "bad_mailbox"
    BAD_DOMAIN = "bad_domain"
    MAILBOX_FULL = "mailbox_full"
    MESSAGE_TOO_LARGE = "message_too_large"
    POLICY = "policy"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    #: Our own setup was refused (the sender address, the HELO/EHLO name):
    #: never the recipient's fault, never suppresses them.
    SENDER_CONFIG = "sender_config"
    GREYLISTED = "greylisted"
    CONNECTION = "connection"
    OTHER_TEMPORARY = "other_temporary"
    OTHER_PERMANENT = "other_permanent"


#: Categories whose permanent failures suppress the recipient (hard bounces).
SUPPRESS: frozenset[Category] = frozenset({Category.BAD_MAILBOX, Category.BAD_DOMAIN})


class Reply(NamedTuple):
    """One SMTP reply as the classifier and the shaper see it."""

    code: int | None
    text: str = ""
    enhanced_status: str | None = None

    @classmethod
    def from_result(cls, result: DeliveryResult) -> Reply:
        return cls(result.code, result.reply, result.enhanced_status)


class Classification(msgspec.Struct, frozen=True):
    """What a reply means for the message and the recipient."""

    category: Category
    permanent: bool
    #: True for hard bounces: the address should not be mailed again.
    suppress: bool
    code: int | None
    enhanced_status: str | None
    #: The name of the table row that decided, or ``"class-4xx"`` and the like.
    rule: str

    @property
    def temporary(self) -> bool:
        return not self.permanent

    @property
    def delivered(self) -> bool:
        return self.category is Category.DELIVERED


class Rule(NamedTuple):
    """One row of the table. Every pattern given must match (``None``: any).

    ``code`` and ``enhanced`` are regular expressions matched against the
    whole basic code (``"421"``) and enhanced status (``"4.7.28"``); ``text``
    is searched in the reply text, case-insensitively; ``unless_enhanced``
    vetoes the row for an enhanced status it matches. ``example`` is a real
    reply that this row must classify (the tests check it); ``source`` says
    where the pattern comes from.
    """

    name: str
    category: Category
    code: str | None = None
    enhanced: str | None = None
    text: str | None = None
    example: tuple[int | None, str] = (None, "")
    source: str = ""
    #: The row does not apply when the enhanced status fullmatches this.
    unless_enhanced: str | None = None


# Enhanced status anywhere in a text: class 2/4/5, not part of a dotted quad
# or a longer number (Yahoo's "- 4.16.55.1" is an internal id, not a status).
_ENHANCED_ANY = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_LEADING_CODE = re.compile(r"^\s*([1-5]\d\d)(?:[ -]|$)")
# Replies longer than this are classified on their start (a 20 kB banner of
# HTML must not cost more than a normal reply).
_MAX_TEXT = 4000


# Enhanced statuses that name the recipient's mailbox or domain (RFC 3463).
_RECIPIENT_MAILBOX = r"[45]\.1\.(?:1|2|3|6|10)|[45]\.2\.1"

_SPAM_WORDS = (
    r"\bspam|\bblock(?:ed|ing)?\b|block ?list|black ?list|deny ?list|\bdenylist|"
    r"\breputation\b|\blisted\b|\bspamhaus\b|\bbarracuda\b|\bspamcop\b|\b(?:dns)?rbl\b|"
    r"\bpolicy\b|\bprohibit|not permitted|relay(?:ing)? (?:access )?denied|"
    r"\bunsolicited\b|\bbanned\b|\babuse\b|access denied|content (?:rejected|restrictions)"
)

#: The classification table, tried in order.
RULES: tuple[Rule, ...] = (
    # -- our HELO/EHLO name on a blocklist (Postfix reject_rhsbl_helo): a
    # reputation block like any other listing, not a configuration error.
    Rule(
        "helo-listed",
        Category.POLICY,
        text=(
            r"\b(?:helo|ehlo)\b[^\n]*?(?:blocked using|\blisted\b|block ?list|black ?list|"
            r"deny ?list|\bspamhaus\b|\b(?:rbl|dnsbl|dbl|surbl|uribl)\b)"
        ),
        example=(
            554,
            "554 5.7.1 <mail.sender.example>: Helo command rejected: Service unavailable; "
            "blocked using dbl.spamhaus.org",
        ),
        source="Postfix reject_rhsbl_helo; Spamhaus DBL",
    ),
    # -- our HELO/EHLO name refused: before the enhanced status rows (Postfix
    # answers 5.7.1 or 4.7.1 here, and says it at RCPT time by default), but
    # never over a status that names the recipient's mailbox (x.1.1 and kin):
    # a relayed "invalid HELO name or user unknown" with 5.1.1 is the mailbox.
    # The refusal word must follow the HELO words closely (a few words, no
    # punctuation between), so "rejected after HELO; invalid recipient" is not it.
    Rule(
        "helo-rejected",
        Category.SENDER_CONFIG,
        text=(
            r"\b(?:helo|ehlo)\b(?:/ehlo)?(?:[ \t]+[^\s;,.:]+){0,3}?[ \t:]+"
            r"(?:rejected|invalid|not allowed|verification failed|verify failed|refused)|"
            r"\b(?:invalid|bad|malformed|empty|bogus|forged)[ \t]+(?:helo|ehlo)\b|"
            r"need fully.qualified hostname"
        ),
        unless_enhanced=_RECIPIENT_MAILBOX,
        example=(
            504,
            "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname",
        ),
        source="Postfix reject_non_fqdn_helo_hostname and friends; Exim helo_verify; "
        "Google 501 5.5.4 HELO/EHLO argument invalid",
    ),
    # -- authentication: SPF, DKIM, DMARC, reverse DNS ---------------------
    Rule(
        "auth-enhanced",
        Category.AUTH,
        enhanced=r"[45]\.7\.(?:2[0-7]|509|515)",
        example=(
            550,
            "5.7.26 Unauthenticated email from example.com is not accepted due to domain's "
            "DMARC policy. Please contact the administrator of example.com domain. - gsmtp",
        ),
        source="RFC 7372 (5.7.20-5.7.26), RFC 7505 (5.7.27); Microsoft 5.7.509/5.7.515",
    ),
    Rule(
        "auth-text",
        Category.AUTH,
        text=(
            r"\bdmarc\b|\bspf\b|\bdkim\b|\bunauthenticated\b|not authenticated|"
            r"authentication (?:level|requirements?|fail)|\bptr record|reverse dns|"
            r"cannot find your (?:reverse )?hostname"
        ),
        example=(
            550,
            "550 5.7.9 This mail has been blocked because the sender is unauthenticated. "
            "Yahoo requires all senders to authenticate with either SPF or DKIM.",
        ),
        source="Yahoo sender requirements 2024; Postfix reject_unknown_client_hostname",
    ),
    # -- rate limits and throttling -----------------------------------------
    Rule(
        "gmail-rate",
        Category.RATE_LIMITED,
        enhanced=r"4\.7\.28|5\.7\.28",
        example=(
            421,
            "4.7.28 [192.0.2.1 15] Our system has detected an unusual rate of unsolicited mail "
            "originating from your IP address. To protect our users from spam, mail sent from "
            "your IP address has been temporarily rate limited. - gsmtp",
        ),
        source="Google Workspace SMTP error reference (support.google.com/a/answer/3726730)",
    ),
    Rule(
        "microsoft-rate",
        Category.RATE_LIMITED,
        enhanced=r"4\.7\.(?:500|65\d)",
        example=(
            451,
            "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP "
            "reputation. For e-mail delivery information, see https://postmaster.live.com (S775)",
        ),
        source="Microsoft Learn: Exchange Online 451 4.7.500-699 (ASxxx) errors",
    ),
    Rule(
        "rate-text",
        Category.RATE_LIMITED,
        text=(
            r"\brate\b|rate.?limit|throttl|too many (?:connections|concurrent|simultaneous|"
            r"messages|mails|e-?mails|recipients|requests|sessions)|too (?:fast|quickly)|"
            r"unexpected volume|temporarily deferred|reached (?:its|the|your) limit|"
            r"maximum number of (?:\w+ ){0,2}(?:connections|messages|sessions)|"
            r"server busy|\bTSS04\b"
        ),
        example=(
            421,
            "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected "
            "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
        ),
        source="Yahoo Sender Hub SMTP error codes (TSS04); common MTA throttling texts",
    ),
    # -- greylisting ----------------------------------------------------------
    Rule(
        "greylist",
        Category.GREYLISTED,
        code=r"4\d\d",
        text=r"gr[ae]y[- ]?list",
        example=(
            450,
            "450 4.2.0 <bob@example.com>: Recipient address rejected: Greylisted, see "
            "http://postgrey.schweikert.ch/help/example.com.html",
        ),
        source="postgrey, Exim greylisting ACLs",
    ),
    # -- our own sender address refused (never the recipient's fault). After
    # the rate and greylist rows: Postfix says "Sender address rejected:
    # Greylisted" or "...: Rate limit exceeded" for what is only a wait.
    Rule(
        "sender-rejected",
        Category.SENDER_CONFIG,
        # "Sender rejected by recipient's filter" is the recipient's choice: policy.
        text=r"\bsender (?:address )?(?:rejected|verify failed|verification failed)(?![ \t]+by\b)",
        example=(
            450,
            "450 4.1.8 <bounce@sender.example>: Sender address rejected: Domain not found",
        ),
        source="Postfix reject_unknown_sender_domain; Exim sender verify",
    ),
    Rule(
        "sender-enhanced",
        Category.SENDER_CONFIG,
        enhanced=r"[45]\.1\.[78]",
        example=(
            553,
            "553 5.1.8 <bounce@sender.example>... Domain of sender address does not exist",
        ),
        source="RFC 3463: x.1.7 bad sender's mailbox syntax, x.1.8 bad sender's system address",
    ),
    # Before the text rows: "Sender domain does not exist" is about our
    # domain, and the bad-domain text would otherwise suppress the recipient.
    Rule(
        "sender-text",
        Category.SENDER_CONFIG,
        text=(
            r"\b(?:envelope[- ]sender|envelope[- ]from|mail[- ]from|return[- ]path|sender(?:'s)?|"
            r"from[- ](?:address|domain))\b(?:[ \t]+(?:address|domain|mailbox|e-?mail|host))*"
            r"[ \t:]+(?:has been |is |was )?(?:does not exist|doesn't exist|not found|unknown|"
            r"does not resolve|must (?:exist|contain|be)|denied|invalid|not valid|unverifi|"
            r"could not be verified)|"
            r"\b(?:invalid|unknown|bad|non-?existent|unresolvable|unverifiable)[ \t]+"
            r"(?:envelope[- ])?(?:sender|mail[- ]from|from address|from domain|return[- ]path)\b|"
            r"\bdomain of (?:the )?sender\b"
        ),
        example=(553, "553 <news@sender.example>... Domain of sender address does not exist"),
        source="sendmail check_mail; qmail-smtpd; Exim and Postfix sender texts",
    ),
    # -- by enhanced status ---------------------------------------------------
    Rule(
        "null-mx",
        Category.BAD_DOMAIN,
        text=r"null mx",
        example=(556, "556 5.1.10 Recipient address has null MX"),
        source="RFC 7505 section 3",
    ),
    Rule(
        "bad-domain-enhanced",
        Category.BAD_DOMAIN,
        enhanced=r"[45]\.1\.2|[45]\.4\.[34]",
        example=(550, "550 5.1.2 Host unknown (Name server: example.invalid: host not found)"),
        source="RFC 3463: x.1.2 bad destination system, x.4.3 directory failure, x.4.4 no route",
    ),
    Rule(
        "bad-mailbox-enhanced",
        Category.BAD_MAILBOX,
        enhanced=r"[45]\.1\.(?:1|3|6|10)|5\.2\.1",
        example=(
            550,
            "5.1.1 The email account that you tried to reach does not exist. Please try\n"
            "5.1.1 double-checking the recipient's email address for typos or\n"
            "5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser - gsmtp",
        ),
        source="RFC 3463 x.1.1/x.1.3/x.1.6, x.2.1 disabled; Microsoft 5.1.10 RecipientNotFound",
    ),
    Rule(
        "microsoft-dbeb",
        Category.BAD_MAILBOX,
        enhanced=r"[45]\.4\.1",
        text=r"recipient address rejected",
        example=(
            550,
            "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) "
            "[BN8NAM11FT066.eop-nam11.prod.protection.outlook.com]",
        ),
        source="Microsoft Learn: Exchange Online 5.4.1 (directory based edge blocking)",
    ),
    Rule(
        "mailbox-full-enhanced",
        Category.MAILBOX_FULL,
        enhanced=r"[45]\.2\.2",
        example=(
            452,
            "4.2.2 The recipient's inbox is out of storage space. Please direct the recipient "
            "to https://support.google.com/mail/?p=OverQuotaTemp - gsmtp",
        ),
        source="RFC 3463 x.2.2 mailbox full",
    ),
    Rule(
        "too-large-enhanced",
        Category.MESSAGE_TOO_LARGE,
        enhanced=r"[45]\.3\.4|[45]\.2\.3",
        example=(552, "5.3.4 Your message exceeded Google's message size limits. - gsmtp"),
        source="RFC 3463 x.3.4 message too big for system, x.2.3 message length exceeds limit",
    ),
    Rule(
        "policy-enhanced",
        Category.POLICY,
        enhanced=r"[45]\.7\.(?:[1-9]|\d\d+)",
        example=(
            550,
            "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact "
            "your Internet service provider since part of their network is on our block list "
            "(S3150). You can also refer your provider to "
            "http://mail.live.com/mail/troubleshooting.aspx#errors.",
        ),
        source="RFC 3463 x.7.x security or policy status",
    ),
    # -- by text (no or generic enhanced status) ----------------------------
    Rule(
        "bad-domain-text",
        Category.BAD_DOMAIN,
        text=(
            r"domain (?:name )?not found|host (?:or domain name )?not found|host unknown|"
            r"unknown host|no such domain|domain \S+ does not exist|domain does not exist|"
            r"unroutable domain|unrouteable domain|\bno mx\b|name or service not known|"
            r"domain lookup failed|dns (?:lookup|error|failure)"
        ),
        example=(
            550,
            "550 Host or domain name not found. Name service error for "
            "name=nonexistent.example type=MX: Host not found",
        ),
        source="Postfix and sendmail DNS failure texts",
    ),
    Rule(
        "bad-mailbox-text",
        Category.BAD_MAILBOX,
        text=(
            r"user unknown|unknown user|no such (?:user|recipient|mailbox|account|address)|"
            r"(?:user|mailbox|recipient|address|account|e-?mail account)(?: address)? "
            r"(?:does not|doesn't|did not) exist|does not exist|recipient not found|"
            r"user not found|mailbox (?:unavailable|not found|is disabled|disabled|inactive)|"
            r"invalid (?:recipient|mailbox|address)|not a valid (?:mailbox|recipient)|"
            r"unrouteable address|account (?:has been |is )?disabled|"
            r"doesn't have an? [\w.-]+ account|no mailbox here|inactive (?:user|account|mailbox)"
        ),
        example=(
            554,
            "554 delivery error: dd This user doesn't have a yahoo.com account "
            "(bob@yahoo.com) [0] - mta1234.mail.bf1.yahoo.com",
        ),
        source="Yahoo, Exim, Postfix, sendmail, Outlook.com texts",
    ),
    Rule(
        "mailbox-full-text",
        Category.MAILBOX_FULL,
        text=(
            r"over ?quota|quota exceeded|exceeded (?:his|her|their|the|its) (?:storage|quota)|"
            r"mailbox (?:is )?full|inbox is (?:out of storage|full)|out of storage space"
        ),
        example=(552, "552 5.0.0 <bob@example.com>: mailbox is full"),
        source="Dovecot, Exim, sendmail texts",
    ),
    Rule(
        "too-large-text",
        Category.MESSAGE_TOO_LARGE,
        text=(
            r"too (?:large|big)|size (?:limit|exceeds)|exceeds? (?:the )?(?:maximum )?"
            r"(?:message )?size|message size"
        ),
        example=(552, "552 Message size exceeds fixed maximum message size"),
        source="Postfix message_size_limit, Exim message_size_limit",
    ),
    Rule(
        "policy-text",
        Category.POLICY,
        text=_SPAM_WORDS,
        example=(
            554,
            "554 5.7.0 Service unavailable; Client host [192.0.2.1] blocked using "
            "zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1",
        ),
        source="Postfix reject_rbl_client; common spam filter texts",
    ),
)


class _Compiled(NamedTuple):
    rule: Rule
    code: re.Pattern[str] | None
    enhanced: re.Pattern[str] | None
    text: re.Pattern[str] | None
    unless: re.Pattern[str] | None


def _compile(pattern: str | None, flags: int = 0) -> re.Pattern[str] | None:
    return re.compile(pattern, flags) if pattern is not None else None


def find_enhanced_status(text: str) -> str | None:
    """The first RFC 3463 enhanced status in ``text`` (not IP addresses), or None."""
    # Most replies start with it, one digit a part ("2.0.0 Ok"): that is what
    # the search finds there, and the result is the text itself (checked in
    # compiled code: this runs once a delivered message).
    return _enhanced_prefix(text) or _search_enhanced(text)


def _search_enhanced(text: str) -> str | None:
    m = _ENHANCED_ANY.search(text[:_MAX_TEXT])
    return f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}" if m else None


def _normal_enhanced(value: str | None) -> str | None:
    if not value:
        return None
    m = _ENHANCED_ANY.search(value)
    return f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}" if m else None


class Classifier:
    """A compiled table. ``rules`` replaces :data:`RULES`; ``extra`` rows go first."""

    def __init__(self, rules: Sequence[Rule] | None = None, *, extra: Iterable[Rule] = ()) -> None:
        self.rules: tuple[Rule, ...] = (*extra, *(RULES if rules is None else rules))
        self._table: tuple[_Compiled, ...] | None = None
        if rules is not None or extra:
            self._table = self._compile_table()  # a caller's bad pattern fails here

    def _compile_table(self) -> tuple[_Compiled, ...]:
        return tuple(
            _Compiled(
                rule,
                _compile(rule.code),
                _compile(rule.enhanced),
                _compile(rule.text, re.IGNORECASE),
                _compile(rule.unless_enhanced),
            )
            for rule in self.rules
        )

    @property
    def _compiled(self) -> tuple[_Compiled, ...]:
        # The built-in table (60 patterns, ~5 ms in every process that imports
        # this module) is compiled when the first reply that is not 2xx comes.
        if self._table is None:
            self._table = self._compile_table()
        return self._table

    def classify(
        self, code: int | None, text: str = "", enhanced_status: str | None = None
    ) -> Classification:
        """Classify one reply. Never raises, whatever the input."""
        text = text[:_MAX_TEXT] if isinstance(text, str) else ""
        if not isinstance(code, int) or isinstance(code, bool):
            code = None
        if code is None:
            m = _LEADING_CODE.match(text)
            code = int(m.group(1)) if m else None
        enhanced = _normal_enhanced(enhanced_status) or find_enhanced_status(text)
        klass = _klass(code, enhanced)
        permanent = klass == 5

        def result(category: Category, rule: str) -> Classification:
            return Classification(
                category=category,
                permanent=permanent,
                suppress=permanent and category in SUPPRESS,
                code=code,
                enhanced_status=enhanced,
                rule=rule,
            )

        if klass == 2:
            return result(Category.DELIVERED, "class-2xx")
        if code is None and enhanced is None:
            return result(Category.CONNECTION, "no-reply")
        code_text = f"{code:03d}" if code is not None else None
        for c in self._compiled:
            if c.code is not None and (code_text is None or not c.code.fullmatch(code_text)):
                continue
            if c.enhanced is not None and (enhanced is None or not c.enhanced.fullmatch(enhanced)):
                continue
            if c.text is not None and not c.text.search(text):
                continue
            if c.unless is not None and enhanced is not None and c.unless.fullmatch(enhanced):
                continue
            return result(c.rule.category, c.rule.name)
        if klass == 5:
            return result(Category.OTHER_PERMANENT, "class-5xx")
        if klass == 4:
            return result(Category.OTHER_TEMPORARY, "class-4xx")
        return result(Category.OTHER_TEMPORARY, "unknown-code")


def _klass(code: int | None, enhanced: str | None) -> int | None:
    if code is not None:
        return code // 100 if 100 <= code <= 599 else None
    if enhanced is not None:
        return int(enhanced[0])
    return None


_DEFAULT = Classifier()


def classify(
    code: int | None, text: str = "", enhanced_status: str | None = None
) -> Classification:
    """Classify one reply with the default table (:data:`RULES`)."""
    return _DEFAULT.classify(code, text, enhanced_status)


def classify_result(result: DeliveryResult) -> Classification:
    """Classify a :class:`~mailsflux.types.DeliveryResult` by its code and reply."""
    return _DEFAULT.classify(result.code, result.reply, result.enhanced_status)


def classify_error(error: MailsfluxError) -> Classification:
    """Classify an error (e.g. a routing failure) by its code, status and message."""
    return _DEFAULT.classify(error.code, error.message, error.enhanced_status)
