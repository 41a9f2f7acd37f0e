"""What comes back: bounces (DSNs and the servers' own texts), complaints, auto-replies.

:func:`parse_report` takes the bytes of one received message and says what
it is (:class:`Report`): a ``bounce``, a ``complaint``, an ``auto-reply`` or
``not-a-report``, with one :class:`Outcome` per recipient it names.  It never
raises: whatever cannot be understood is ``not-a-report`` (or a bounce
without recipients), which the ingest path keeps in quarantine.

How it decides, in order:

1. A ``message/feedback-report`` part (RFC 5965 ARF): a complaint.  The
   recipient is ``Original-Rcpt-To`` (or ``Removal-Recipient``), else the
   ``To`` of the attached original message.
2. A ``message/delivery-status`` part (RFC 3464): a bounce, one outcome per
   per-recipient block (``Final-Recipient``, ``Action``, ``Status``,
   ``Diagnostic-Code``).
3. A message that looks like a bounce (from MAILER-DAEMON or postmaster, an
   ``X-Failed-Recipients`` header, a bounce subject) whose text is one of
   the servers' own formats (qmail, Exim, Sendmail, Postfix without DSN,
   legacy Exchange, Yahoo): each address in the text with the paragraph that
   follows it as the diagnostic.
4. RFC 3834 and its folklore (``Auto-Submitted`` other than ``no``,
   ``X-Autoreply``, ``X-Autorespond``, ``Precedence: auto_reply``, an
   out-of-office subject): an auto-reply, never a bounce.

Each diagnostic goes through the delivery stage's reply classifier
(:func:`mailsflux.delivery.classify`), so a ``550 5.1.1`` means the same
whether it came back during the SMTP conversation or a day later in a DSN;
``reason`` is its category (``bad_mailbox``, ``mailbox_full``,
``policy``, ...), or ``expired`` when the message timed out in a queue.
``hard`` is the classifier's ``suppress`` (a permanent bad mailbox or
domain): the address should not be mailed again.  Complaints are hard too.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from typing import Final, Literal

import msgspec

from mailsflux.delivery import Category, Classification, Rule
from mailsflux.delivery import Classifier as _ReplyClassifier

ReportKind = Literal["bounce", "complaint", "auto-reply", "not-a-report"]

#: Bytes of a report looked at; the rest (a huge returned attachment) is cut.
MAX_REPORT: Final = 4 * 1024 * 1024
#: MIME parts looked at, a bound on work for pathological nesting.
MAX_PARTS: Final = 200
#: Recipients taken from one report.
MAX_RECIPIENTS: Final = 1000
_MAX_TEXT: Final = 64 * 1024
# The reply table is made for one SMTP reply; a diagnostic is classified on
# its start (the reply and the words around it), not a whole notice.
_CLASSIFY_TEXT: Final = 300


class Outcome(msgspec.Struct, frozen=True):
    """What a report says about one recipient."""

    recipient: str
    #: Enhanced status (RFC 3463), e.g. ``"5.1.1"``; ``None`` when unknown.
    status: str | None
    #: The SMTP reply code when the report gives one.
    code: int | None
    reason: str
    #: Suppress the address: a permanent bad mailbox or domain, or a complaint.
    hard: bool
    #: The DSN action (``failed``, ``delayed``, ``delivered``...) or ``""``.
    action: str = ""
    diagnostic: str = ""


class Report(msgspec.Struct, frozen=True):
    kind: ReportKind
    recipients: list[Outcome]
    #: Addresses the report was sent to or names as the original return path
    #: (envelope, ``To``, ``Delivered-To``, the original's ``Return-Path``):
    #: where a VERP token is looked for.
    return_paths: list[str] = []
    #: ARF ``Feedback-Type`` (``abuse``, ``fraud``...), or ``""``.
    feedback_type: str = ""
    #: Why a report is ``not-a-report`` or has no recipients, for the quarantine.
    note: str = ""

    def to_json_doc(self, file: str) -> dict[str, object]:
        return {
            "file": file,
            "kind": self.kind,
            "recipients": [
                {
                    "recipient": o.recipient,
                    "status": o.status,
                    "code": o.code,
                    "reason": o.reason,
                    "hard": o.hard,
                }
                for o in self.recipients
            ],
        }


# Phrases of bounce texts the reply table does not know; tried before it.
_EXTRA_RULES: Final = (
    Rule(
        "yahoo-no-account",
        Category.BAD_MAILBOX,
        text=r"doesn't have an? [\w.-]+ account|this user doesn't have",
        example=(554, "554 delivery error: dd This user doesn't have a yahoo.com account"),
        source="Yahoo bounce text",
    ),
    Rule(
        "qmail-no-mailbox",
        Category.BAD_MAILBOX,
        text=r"no mailbox here by that name|recipient address rejected: user unknown",
        example=(550, "Sorry, no mailbox here by that name. (#5.1.1)"),
        source="qmail-local",
    ),
    Rule(
        "over-quota",
        Category.MAILBOX_FULL,
        code=r"5\d\d|4\d\d",
        text=r"over ?quota|quota exceeded|mailbox (?:is )?full|insufficient (?:disk )?space|"
        r"exceeded (?:the|their|its) storage",
        example=(552, "552 5.2.2 user is over quota"),
        source="qmail, Exim, Exchange, Gmail",
    ),
    Rule(
        "domain-not-found",
        Category.BAD_DOMAIN,
        code=r"5\d\d",
        text=r"host or domain name not found|domain (?:name )?not found|no mx (?:record|host)|"
        r"unrouteable (?:mail )?domain|all relevant mx records point to non-existent hosts",
        example=(550, "Host or domain name not found. Name service error for name=x.invalid"),
        source="Postfix, Exim",
    ),
)
_CLASSIFIER: Final = _ReplyClassifier(
    extra=(
        *_EXTRA_RULES,
        # A DSN for a host that never answered: no reply code, only the
        # reporting MTA's words (the reply table leaves that to no-code cases).
        Rule(
            "no-connection",
            Category.CONNECTION,
            text=r"connection (?:timed out|refused|reset)|network is unreachable|no route to host",
            unless_enhanced=r"[45]\.[1-37]\.\d{1,3}",
            example=(None, "connect to mx.example.org[198.51.100.44]:25: Connection timed out"),
            source="Postfix X-Postfix diagnostics",
        ),
    )
)

_REASON = {
    Category.DELIVERED: "delivered",
    Category.OTHER_PERMANENT: "other",
    Category.OTHER_TEMPORARY: "other",
}

_ADDR = re.compile(
    r"(?<![\w.+=-])([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,512}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})(?![\w-])"
)
# The first digit is matched before the look-behind: Python's re tries a
# pattern at every position, and a leading look-behind made these the
# slowest part of a parse.
_CODE = re.compile(r"([245](?<![\w.#].)\d\d)(?=[ \-:]|$)(?!\.\d)", re.M)
_STATUS = re.compile(r"([245])(?<![\d.].)\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_EXPIRED = re.compile(
    r"\b(?:expired|retry time(?:out)? (?:not reached|exceeded)|too long in (?:the )?queue|"
    r"could not be delivered for \d+|has not been delivered for|delivery time expired|"
    r"timed? ?out .{0,40}giving up|message expired)\b",
    re.I,
)


def _has_any(text: str, words: tuple[str, ...]) -> bool:
    """A cheap filter before a costly regex: ``str.find`` runs in C."""
    low = text.lower()
    return any(w in low for w in words)


_EXPIRED_KEYS = ("expir", "retry time", "too long", "delivered for", "giving up", "time")
_PERMANENT_KEYS = (
    "permanent", "deliver", "giving up", "fatal", "reached", "unable", "exist", "returned",
)  # fmt: skip
_TEMPORARY_KEYS = ("delay", "will ", "still", "temporar", "not yet", "deferred")
_ORIGINAL_KEYS = (
    "original message", "copy of the message", "below this line", "returned message",
    "message headers follow", "undelivered message", "headers of the", "forwarded message",
)  # fmt: skip
_PERMANENT_WORDS = re.compile(
    r"permanent(?:ly)? (?:error|fail)|could not be delivered|couldn't be delivered|"
    r"wasn't delivered|was not delivered|undeliverable|delivery (?:has )?failed|"
    r"failed permanently|giving up|delivery failure|fatal error|cannot be reached|"
    r"unable to deliver|does not exist|doesn't exist|returned to sender",
    re.I,
)
_TEMPORARY_WORDS = re.compile(
    r"delayed|will (?:continue|keep) (?:to )?(?:try|retry)|still (?:being )?retr|"
    r"temporar(?:y|ily)|not yet been delivered|deferred|will retry",
    re.I,
)
# Who sends bounces. Not "noreply@" and the like: a notification from one
# must never be read as a bounce that suppresses the addresses it mentions.
_BOUNCE_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery (?:sub)?system", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|delivery status notification|mail delivery (?:failed|failure)|"
    r"returned mail|failure notice|delivery failure|delivery has failed|"
    r"message not delivered|could not send message|non[- ]?remis|unzustellbar|"
    r"warning: message .* delayed|delayed mail|delivery delayed|mail system error",
    re.I,
)
_DELAY_SUBJECT = re.compile(
    r"\bdelayed\b|warning: could not send|delivery delayed|still being retried", re.I
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?(?:reply|response|antwort)|auto:|autoreply|"
    r"out of (?:the )?office|abwesenheit|r[ée]ponse automatique|absence|vacation|"
    r"respuesta autom[áa]tica|risposta automatica|on leave)",
    re.I,
)
# Where a bounce text stops and the copy of the original message starts.
_ORIGINAL_STARTS = re.compile(
    r"^[ \t-]*(?:-{2,}|_{3,}).{0,10}(?:original message|this is a copy of the message|"
    r"below this line is a copy|original message follows|returned message|"
    r"message headers follow|undelivered message|headers of the (?:original|returned))|"
    r"^[ \t]*-+ ?(?:original message|forwarded message)|"
    r"^\s*--- Below this line is a copy of the message\.|"
    r"^Original message headers:|^------ This is a copy of the message|"
    r"^\s*-{5,} Original message -{5,}",
    re.I | re.M,
)
_TAG = re.compile(r"<[^>]{0,2000}>")
_ENTITY = {"&lt;": "<", "&gt;": ">", "&amp;": "&", "&nbsp;": " ", "&quot;": '"', "&#39;": "'"}
_ENTITY_RE = re.compile("|".join(map(re.escape, _ENTITY)))

# Who the text names but never as a failed recipient.
_NOT_RECIPIENT = re.compile(
    r"^(?:mailer-daemon|postmaster|abuse|root|noreply|no-reply|double-bounce)@", re.I
)

# compat32, not policy.default: the default policy's header objects cost
# about 5 ms a report (its registry builds a class per header fetched, then
# parses every structured header), twenty times the 2,000 reports/s budget
# for the whole parse. compat32 gives the raw values; encoded words are
# decoded here where they matter (the subject).
_PARSER: Final = BytesParser(policy=policy.compat32)


def _text(value: object) -> str:
    try:
        return " ".join(str(value).split()) if value is not None else ""
    except Exception:
        return ""


def _hmap(msg: Message) -> dict[str, list[object]]:
    """The message's headers by lower-case name, built once: ``Message.get``
    scans every header on every call, and a parse asks for a dozen names."""
    cached: dict[str, list[object]] | None = getattr(msg, "_mailsflux_headers", None)
    if cached is None:
        cached = {}
        for k, v in msg.items():
            cached.setdefault(str(k).lower(), []).append(v)
        setattr(msg, "_mailsflux_headers", cached)  # noqa: B010 - Message has no slot for it
    return cached


def _header(msg: Message, name: str) -> str:
    try:
        values = _hmap(msg).get(name)
        value = _text(values[0]) if values else ""
        if "=?" in value:
            value = _text(make_header(decode_header(value)))
        return value
    except Exception:
        return ""


def _headers(msg: Message, name: str) -> list[str]:
    try:
        return [_text(v) for v in _hmap(msg).get(name, [])]
    except Exception:
        return []


def _bare(value: str) -> str:
    """``rfc822; <a@b>`` or ``"X" <a@b>`` -> ``a@b`` (``""`` if no address)."""
    if ";" in value:
        kind, _, rest = value.partition(";")
        if "@" not in kind:
            value = rest
    m = _ADDR.search(value)
    return m.group(1) if m else ""


def _parts(msg: Message) -> list[Message]:
    out: list[Message] = []
    with contextlib.suppress(Exception):  # a broken part ends the walk, not the parse
        for i, part in enumerate(msg.walk()):
            if i >= MAX_PARTS:
                break
            out.append(part)
    return out


def _payload_text(part: Message) -> str:
    try:
        raw = part.get_payload(decode=True)
    except Exception:
        raw = None
    if isinstance(raw, bytes):
        charset = "utf-8"
        with contextlib.suppress(Exception):
            charset = part.get_content_charset() or "utf-8"
        try:
            text = raw[:_MAX_TEXT].decode(charset, "replace")
        except (LookupError, ValueError):
            text = raw[:_MAX_TEXT].decode("utf-8", "replace")
    else:
        payload = part.get_payload()
        text = payload[:_MAX_TEXT] if isinstance(payload, str) else ""
    if part.get_content_type() == "text/html":
        text = _ENTITY_RE.sub(lambda m: _ENTITY[m.group(0)], _TAG.sub(" ", text))
    return text


def _ctype(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _human_text(msg: Message) -> str:
    """The report's own words: its text parts, not the attached original."""
    plain: list[str] = []
    html: list[str] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        ctype = _ctype(part)
        if ctype.startswith("message/"):
            continue  # the returned original, or the machine-readable fields
        if part.is_multipart():
            try:
                children = part.get_payload()
            except Exception:
                children = []
            if isinstance(children, list) and depth < 20:
                stack.extend((c, depth + 1) for c in reversed(children) if isinstance(c, Message))
            continue
        if ctype == "text/plain":
            plain.append(_payload_text(part))
        elif ctype == "text/html":
            html.append(_payload_text(part))
    return "\n".join(plain or html)


def _header_block(text: str) -> Message:
    """A header block (text/rfc822-headers) as a Message, without the parser."""
    msg = Message()
    name = ""
    value: list[str] = []
    for line in text.splitlines()[:500]:
        if not line.strip():
            break
        if line[:1] in (" ", "\t"):
            value.append(line.strip())
            continue
        if name:
            msg[name] = " ".join(value)
        k, colon, v = line.partition(":")
        name, value = (k.strip(), [v.strip()]) if colon and k.strip() else ("", [])
    if name:
        msg[name] = " ".join(value)
    return msg


def _original(parts: list[tuple[Message, str]]) -> Message | None:
    """The returned original (its headers at least), if the report carries it."""
    for part, ctype in parts[1:]:
        if ctype in ("message/rfc822", "message/global"):
            try:
                inner = part.get_payload()
            except Exception:
                return None
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers", "text/rfc822-header"):
            return _header_block(_payload_text(part))
    return None


def _status_of(value: str) -> str | None:
    m = _STATUS.search(value)
    return f"{m.group(1)}.{m.group(2)}.{m.group(3)}" if m else None


def _code_of(text: str) -> int | None:
    m = _CODE.search(text)
    return int(m.group(1)) if m else None


def _temporary_words(text: str) -> bool:
    return _has_any(text, _TEMPORARY_KEYS) and bool(_TEMPORARY_WORDS.search(text))


def _permanent_words(text: str) -> bool:
    return _has_any(text, _PERMANENT_KEYS) and bool(_PERMANENT_WORDS.search(text))


def _outcome(
    recipient: str,
    *,
    action: str,
    status: str | None,
    code: int | None,
    diagnostic: str,
    context: str = "",
) -> Outcome:
    """One recipient's result from what the report says about it."""
    action = action.lower()
    if action in ("delivered", "relayed", "expanded"):
        return Outcome(recipient, status or "2.0.0", code, "delivered", False, action, diagnostic)
    words = f"{diagnostic}\n{context}" if context else diagnostic
    given = code
    if code is None and status is None:
        # A text without any code: its words tell permanent from temporary.
        if action == "delayed" or (_temporary_words(words) and not _permanent_words(words)):
            code = 450
        else:
            code = 550
    elif code is None and status is not None:
        code = 550 if status[0] == "5" else 450 if status[0] == "4" else None
    elif code is not None and status is not None and status[0] != str(code)[0]:
        # RFC 3464: the Status field is the verdict; a quoted reply may be stale.
        code_for_class = 550 if status[0] == "5" else 450
        c = _CLASSIFIER.classify(code_for_class, (diagnostic or context)[:_CLASSIFY_TEXT], status)
        return _finish(recipient, action, status, given, diagnostic, c, words)
    if action == "delayed" and code is not None and code >= 500:
        code = 450  # a delay is never final, whatever the quoted reply said
    c = _CLASSIFIER.classify(code, (diagnostic or context)[:_CLASSIFY_TEXT], status)
    return _finish(recipient, action, status, given, diagnostic, c, words)


def _finish(
    recipient: str,
    action: str,
    status: str | None,
    code: int | None,
    diagnostic: str,
    c: Classification,
    words: str,
) -> Outcome:
    status = status or c.enhanced_status
    if status is None and c.code is not None:
        status = f"{c.code // 100}.0.0"
    # A failure with a temporary status gave up after retrying: the queue expired.
    expired = (
        (status is not None and status[2:] == "4.7")
        or (action == "failed" and status is not None and status[0] == "4")
        or (_has_any(words[:4000], _EXPIRED_KEYS) and bool(_EXPIRED.search(words[:4000])))
    )
    if expired and not c.suppress:
        return Outcome(recipient, status, code, "expired", False, action, diagnostic)
    reason = _REASON.get(c.category, c.category.value)
    # Suppress only on evidence: a reply code or a status from the report,
    # not on the wording of a notice alone (c.code is ours when it had none).
    hard = c.suppress and (code is not None or c.enhanced_status is not None)
    return Outcome(recipient, status, code, reason, hard, action, diagnostic[:1000])


def _fields(part: Message) -> list[dict[str, str]]:
    """The field blocks of a message/delivery-status or feedback-report part."""
    blocks: list[dict[str, str]] = []
    try:
        payload = part.get_payload()
    except Exception:
        return blocks
    if isinstance(payload, list):
        for block in payload[:MAX_RECIPIENTS]:
            if isinstance(block, Message):
                fields: dict[str, str] = {}
                try:
                    items = block.items()
                except Exception:
                    items = []
                for k, v in items:
                    fields.setdefault(str(k).lower(), _text(v))
                if fields:
                    blocks.append(fields)
        return blocks
    text = _payload_text(part) if not isinstance(payload, str) else payload[:_MAX_TEXT]
    for chunk in re.split(r"\r?\n\s*\r?\n", text)[:MAX_RECIPIENTS]:
        fields = {}
        name = ""
        for line in chunk.splitlines():
            if line[:1] in (" ", "\t") and name:
                fields[name] += " " + line.strip()
                continue
            k, colon, v = line.partition(":")
            if colon and k.strip() and " " not in k.strip():
                name = k.strip().lower()
                fields.setdefault(name, v.strip())
        if fields:
            blocks.append(fields)
    return blocks


def _all_fields(part: Message) -> dict[str, list[str]]:
    """A feedback report's fields; a field may repeat (Original-Rcpt-To)."""
    out: dict[str, list[str]] = {}
    try:
        payload = part.get_payload()
    except Exception:
        return out
    if isinstance(payload, list):
        for block in payload:
            if isinstance(block, Message):
                with contextlib.suppress(Exception):
                    for k, v in block.items():
                        out.setdefault(str(k).lower(), []).append(_text(v))
        return out
    text = payload if isinstance(payload, str) else _payload_text(part)
    for line in text[:_MAX_TEXT].splitlines():
        k, colon, v = line.partition(":")
        if colon and k.strip() and " " not in k.strip():
            out.setdefault(k.strip().lower(), []).append(v.strip())
    return out


def _paragraph_for(text: str, address: str) -> str:
    """The lines about ``address`` in a human-readable text, for a diagnostic."""
    i = text.lower().find(address.lower())
    if i < 0:
        return ""
    start = text.rfind("\n", 0, i) + 1
    end = text.find("\n\n", i)
    if end < 0:
        end = len(text)
    para = text[start : min(end, start + 2000)]
    if _CODE.search(para[len(address) :]) or _STATUS.search(para):
        return para.strip()
    # The address stands alone on its line (qmail, Exim, Sendmail): the
    # diagnostic is the next paragraph when this one says nothing.
    nxt = text.find("\n\n", end + 2) if end < len(text) else -1
    more = text[end : nxt if nxt > 0 else min(len(text), end + 2000)]
    if not _ADDR.search(more):
        para = para + "\n" + more
    return para.strip()


def _dsn(msg: Message, part: Message, human: Callable[[], str]) -> list[Outcome]:
    out: list[Outcome] = []
    blocks = _fields(part)
    for fields in blocks[1:] if len(blocks) > 1 else blocks:
        recipient = _bare(fields.get("final-recipient", "")) or _bare(
            fields.get("original-recipient", "")
        )
        if not recipient:
            continue
        action = fields.get("action", "failed").strip().lower() or "failed"
        status = _status_of(fields.get("status", ""))
        diag = fields.get("diagnostic-code", "")
        dtype, semi, dtext = diag.partition(";")
        if semi and " " not in dtype.strip():
            diag = dtext.strip()
            code = _code_of(diag[:12]) if dtype.strip().lower() == "smtp" else None
        else:
            code = _code_of(diag[:12])
        context = "" if diag else _paragraph_for(human(), recipient)
        out.append(
            _outcome(
                recipient,
                action=action,
                status=status,
                code=code,
                diagnostic=diag or context,
                context=context,
            )
        )
        if len(out) >= MAX_RECIPIENTS:
            break
    return out


def _arf(msg: Message, part: Message, original: Message | None) -> tuple[list[Outcome], str]:
    fields = _all_fields(part)
    ftype = (fields.get("feedback-type") or [""])[0].strip().lower()
    addrs: list[str] = []
    for name in ("original-rcpt-to", "removal-recipient"):
        for value in fields.get(name, []):
            a = _bare(value)
            if a and a.lower() not in (x.lower() for x in addrs):
                addrs.append(a)
    if not addrs:
        if original is not None:
            for name in ("to", "x-hmxmroriginalrecipient", "x-original-to"):
                a = _bare(_header(original, name))
                if a:
                    addrs.append(a)
                    break
    reason = "complaint" if ftype in ("", "abuse", "fraud", "virus", "other") else ftype
    return [Outcome(a, None, None, reason, True, "", ftype) for a in addrs], ftype


def _looks_like_bounce(msg: Message) -> bool:
    """From a mailer daemon, or naming failed recipients, or a bounce subject
    on a message with the null return path that bounces travel with."""
    sender = _header(msg, "from")
    if _BOUNCE_FROM.search(sender) or _header(msg, "x-failed-recipients"):
        return True
    null_sender = _header(msg, "return-path").strip() in ("<>", "")
    return null_sender and bool(_BOUNCE_SUBJECT.search(_header(msg, "subject")))


def _auto_reply(msg: Message) -> bool:
    auto = _header(msg, "auto-submitted").lower()
    if auto and not auto.startswith("no"):
        return True
    if _header(msg, "x-autoreply") or _header(msg, "x-autorespond"):
        return True
    if _header(msg, "x-autogenerated").lower() == "reply":
        return True
    precedence = _header(msg, "precedence").lower()
    if precedence == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.search(_header(msg, "subject")))


def _from_text(msg: Message, human: str) -> list[Outcome]:
    """Recipients and diagnostics of a bounce in one of the servers' own texts."""
    cut = _ORIGINAL_STARTS.search(human) if _has_any(human, _ORIGINAL_KEYS) else None
    text = human[: cut.start()] if cut else human
    text = text.replace("\r\n", "\n")
    own = {_bare(_header(msg, h)).lower() for h in ("from", "to", "reply-to", "sender")}
    candidates: list[str] = []
    for value in _headers(msg, "x-failed-recipients"):
        for a in value.split(","):
            bare = _bare(a)
            if bare:
                candidates.append(bare)
    for m in _ADDR.finditer(text):
        candidates.append(m.group(1))
    # A warning (Exim's "message delayed", Sendmail's "Warning: could not send")
    # is a delay for every address it names.
    delayed = bool(_DELAY_SUBJECT.search(_header(msg, "subject"))) or bool(
        _temporary_words(text) and not _permanent_words(text)
    )
    out: list[Outcome] = []
    seen: set[str] = set()
    for a in candidates:
        key = a.lower().strip(".")
        if key in seen or key in own or _NOT_RECIPIENT.match(key):
            continue
        seen.add(key)
        para = _paragraph_for(text, a)
        status = _status_of(para)
        code = _reply_code(para, a)
        out.append(
            _outcome(
                a.strip("."),
                action="delayed" if delayed else "failed",
                status=status,
                code=code,
                diagnostic=para,
                context="" if (status or code) else text[:4000],
            )
        )
        if len(out) >= MAX_RECIPIENTS:
            break
    return out


def _reply_code(para: str, address: str) -> int | None:
    return _code_of(para.replace(address, " "))


def _return_paths(msg: Message, envelope: list[str], original: Message | None) -> list[str]:
    found = [a for a in envelope if a]
    for name in ("to", "delivered-to", "x-original-to", "envelope-to", "x-envelope-to"):
        for value in _headers(msg, name):
            a = _bare(value)
            if a:
                found.append(a)
    if original is not None:
        for name in ("return-path", "x-return-path", "errors-to"):
            a = _bare(_header(original, name))
            if a:
                found.append(a)
    dedup: list[str] = []
    for a in found:
        if a.lower() not in (x.lower() for x in dedup):
            dedup.append(a)
    return dedup


def parse_report(data: bytes, *, envelope_to: list[str] | None = None) -> Report:
    """What one received message is, and what it says per recipient. Never raises.

    ``envelope_to`` are the RCPT TO addresses it arrived for (the listener
    knows them): the VERP token is looked for there first.
    """
    try:
        return _parse(bytes(data[:MAX_REPORT]), list(envelope_to or ()))
    except Exception as exc:  # the contract: any input gives an answer
        return Report("not-a-report", [], note=f"unreadable: {type(exc).__name__}")


_ORIGINAL_PART = re.compile(
    rb"^content-type:[ \t]*(?:message/(?:rfc822|global)|text/rfc822-headers?)\b", re.I | re.M
)


def _blank_line(data: bytes, start: int) -> int:
    """Index just past the first empty line at or after ``start``; -1 if none."""
    ends = [
        i + n
        for i, n in ((data.find(b"\n\n", start), 2), (data.find(b"\n\r\n", start), 3))
        if i >= 0
    ]
    return min(ends) if ends else -1


def _trim(data: bytes) -> bytes:
    """Cut the returned original after its headers: its body (often most of
    the bytes, an HTML newsletter) says nothing about the failure."""
    m = _ORIGINAL_PART.search(data)
    if m is None:
        return data
    part_headers_end = _blank_line(data, m.end())
    if part_headers_end < 0:
        return data
    original_headers_end = _blank_line(data, part_headers_end)
    return data if original_headers_end < 0 else data[:original_headers_end]


def _parse(data: bytes, envelope: list[str]) -> Report:
    msg = _PARSER.parsebytes(_trim(data))
    if not msg.keys() and not msg.get_payload():
        return Report("not-a-report", [], note="no headers")
    parts = [(p, _ctype(p)) for p in _parts(msg)]
    original = _original(parts)
    feedback = next((p for p, t in parts if t == "message/feedback-report"), None)
    if feedback is not None:
        outcomes, ftype = _arf(msg, feedback, original)
        return Report(
            "complaint",
            outcomes,
            _return_paths(msg, envelope, original),
            feedback_type=ftype,
            note="" if outcomes else "complaint without a recipient",
        )
    status = next(
        (p for p, t in parts if t in ("message/delivery-status", "message/global-delivery-status")),
        None,
    )
    text: list[str] = []

    def human() -> str:  # only read when the fields do not say it all
        if not text:
            text.append(_human_text(msg))
        return text[0]

    if status is not None:
        outcomes = _dsn(msg, status, human)
        if not outcomes:
            outcomes = _from_text(msg, human())
        return Report(
            "bounce",
            outcomes,
            _return_paths(msg, envelope, original),
            note="" if outcomes else "delivery status without a recipient",
        )
    if _looks_like_bounce(msg):
        outcomes = _from_text(msg, human())
        if outcomes or not _auto_reply(msg) or _header(msg, "x-failed-recipients"):
            return Report(
                "bounce",
                outcomes,
                _return_paths(msg, envelope, original),
                note="" if outcomes else "bounce text without a recipient",
            )
    if _auto_reply(msg):
        who = _bare(_header(msg, "from"))
        outcomes = [Outcome(who, None, None, "auto_reply", False)] if who else []
        return Report("auto-reply", outcomes, _return_paths(msg, envelope, original))
    return Report("not-a-report", [], _return_paths(msg, envelope, original), note="not a report")


__all__ = ["MAX_REPORT", "Outcome", "Report", "ReportKind", "parse_report"]
