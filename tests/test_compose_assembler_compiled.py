"""The compiled assembler (``mailsflux.compose._assemble``) makes the messages
that composing in Python made, byte for byte, and refuses the same rows with
the same errors.

The reference below is the composer's Python path as it was before it moved
into compiled code, written against the public parts (templates, the MIME
builder, the tracker, the signer). Rows are drawn at random: names, plans and
subjects with non-ASCII text, CR/LF, quotes and empty values, addresses good
and bad; jobs tracked and not, with a From template, a List-Unsubscribe
template (with and without row data), a mailto alternative, text links and a
preference page link.
"""

from __future__ import annotations

import email.policy
import email.utils
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsflux.errors import HeaderError, MailsfluxError
from mailsflux.jobs import Prepared
from mailsflux.jobs.composer import Composer
from mailsflux.types import Recipient, RenderedMessage
from tests._jobs import TRACKING, make_job

NOW = 1_790_000_000.0
TOKEN = "0123456789abcdef0123"
BODY = """<html><body><p>Hello {{first_name}} ({{plan}}),</p>
<a href="https://example.com/start?u={{email}}">Start</a> <a href="{{unsubscribe_url}}">Leave</a>
{{#preferences_url}}<a href="{{preferences_url}}">Preferences</a>{{/preferences_url}}
</body></html>
"""
TEXT = "Hello {{first_name}}, see https://example.com/plan/{{plan}} now.\n"

PLAIN = BODY.split('<a href="{{unsubscribe_url}}')[0] + "</body></html>\n"
# The preference link's token is sealed with a random nonce: that job is
# checked apart (test_the_preference_link_is_the_recipients).
TRACKED = BODY.replace(
    '{{#preferences_url}}<a href="{{preferences_url}}">Preferences</a>{{/preferences_url}}', ""
)

JOBS: dict[str, dict[str, Any]] = {
    "plain": {},
    "from-template": {"sender": "{{name}} <news@sender.example>", "text": None},
    "unsubscribe-template": {
        "extra_message": 'list_unsubscribe = "<https://sender.example/u?e={{email}}&p={{plan}}>"'
    },
    "unsubscribe-static": {
        "extra_message": 'list_unsubscribe = "<mailto:leave@sender.example>"',
        "html": None,
    },
    "tracked": {"tracking": "", "html": TRACKED},
    "tracked-mailto-text-links": {
        "tracking": 'unsubscribe_mailto = "leave@sender.example"\ntext_links = true\n',
        "algorithm": "rsa-sha256",
        "html": TRACKED,
    },
    "tracked-text-only": {"tracking": "opens = false\n", "html": None},
    "tracked-clicks-only": {"tracking": "opens = false\n", "html": TRACKED},
    "tracked-opens-only": {"tracking": "clicks = false\n", "html": TRACKED},
}
PREFERENCES = {"tracking": "", "html": BODY}


@pytest.fixture(scope="module")
def composers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Composer]]:
    loaded: list[Prepared] = []
    out: dict[str, Composer] = {}
    for name, opts in [*JOBS.items(), ("preferences", PREFERENCES)]:
        opts = dict(opts)
        tracking = opts.pop("tracking", None)
        kw: dict[str, Any] = {"html": PLAIN, "text": TEXT, "algorithm": "ed25519-sha256"}
        kw.update(opts)
        job = make_job(tmp_path_factory.mktemp(name), [["a@example.com", "A", "A", "P"]], **kw)
        if tracking is not None:
            job.write_text(job.read_text() + TRACKING + tracking)
        prepared = Prepared.load(job)
        loaded.append(prepared)
        composer = prepared.composer
        composer.clock = lambda: NOW
        if composer.tracker is not None:
            composer.tracker.clock = lambda: NOW
        out[name] = composer
    yield out
    for p in loaded:
        p.close()


def reference(c: Composer, r: Recipient, token: str) -> RenderedMessage:
    """Composer.compose as it was in Python (its _assemble and _finish)."""
    data: dict[str, Any] = r.vars
    row, rcpt = r.row, r.email
    msgid = f"{token}.{row}@{c.id_domain}"
    unsubscribe: str | None = None
    tr, tracking = c.tracker, c.tracking
    try:
        if tr is not None and tracking is not None:
            try:
                url, unsubscribe = tr.unsubscribe_pair(
                    msgid, rcpt, c.job.name, mailto=tracking.unsubscribe_mailto
                )
            except ValueError as exc:
                if isinstance(exc, MailsfluxError):
                    raise
                raise HeaderError(f"List-Unsubscribe: {exc}", field="List-Unsubscribe") from None
            data = {**data, "unsubscribe_url": url}
            if "preferences_url" in c.variables:
                data["preferences_url"] = tr.preferences_url(rcpt, c.job.name)
        subject = c.subject.render(data, row=row, recipient=rcpt)
        sender = (
            None if "{{" not in c.sender.source else c.sender.render(data, row=row, recipient=rcpt)
        )
        text = c.text.render_bytes(data, row=row, recipient=rcpt) if c.text is not None else None
        html = c.html.render_bytes(data, row=row, recipient=rcpt) if c.html is not None else None
        if tr is not None and tracking is not None:
            sent = c.clock()
            if html is not None and (tracking.clicks or tracking.opens):
                html = tr.rewrite_html(
                    html,
                    message_id=msgid,
                    recipient=rcpt,
                    job=c.job.name,
                    clicks=tracking.clicks,
                    opens=tracking.opens,
                    sent_at=sent,
                )
            if text is not None and tracking.clicks and tracking.text_links:
                text = tr.rewrite_text(
                    text, message_id=msgid, recipient=rcpt, job=c.job.name, sent_at=sent
                )
        else:
            unsubscribe = c._unsubscribe(data, row, rcpt)
        dated = int(c.clock())
        raw, mail_from, rcpt_to, smtputf8 = c.builder.build(
            to=rcpt,
            to_name=data.get(c.name_column, ""),
            subject=subject,
            date=email.utils.formatdate(dated),
            message_id=msgid,
            text=text,
            html=html,
            sender=sender,
            list_unsubscribe=unsubscribe,
            boundary=token,
        )
    except MailsfluxError as exc:
        exc.row = r.row
        exc.recipient = r.email
        raise
    assert c.signer is not None
    raw = c.signer.sign(raw, timestamp=dated)
    if c.verp is not None:
        mail_from = c.verp.make(msgid, rcpt_to, c.job.name)
    return RenderedMessage(mail_from, rcpt_to, raw, msgid, row, smtputf8)


def outcome(make: Any) -> object:
    try:
        return make()
    except MailsfluxError as exc:
        return (type(exc), exc.message, exc.field, exc.row, exc.recipient)


values = st.one_of(
    st.sampled_from(["", "Ada", "Zoë Ünal", 'Quote "me"', "a\r\nBcc: x@evil.example", "x" * 300]),
    st.text(max_size=40),
)
addresses = st.one_of(
    st.sampled_from(
        [
            "ada@example.com",
            "ZOË@Bücher.example",
            "user+tag@sub.example.org",
            "not an address",
            "a@b\r\nBcc: c@d",
            "@example.com",
            "a" * 70 + "@example.com",
        ]
    ),
    st.emails(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    job=st.sampled_from(sorted(JOBS)),  # not "preferences": see below
    email=addresses,
    name=values,
    first=values,
    plan=values,
    row=st.integers(min_value=1, max_value=10**7),
)
def test_compiled_messages_and_errors_are_the_python_ones(
    composers: dict[str, Composer],
    job: str,
    email: str,
    name: str,
    first: str,
    plan: str,
    row: int,
) -> None:
    c = composers[job]
    r = Recipient(
        email=email, vars={"email": email, "name": name, "first_name": first, "plan": plan}, row=row
    )
    want = outcome(lambda: reference(c, r, TOKEN))
    got = outcome(lambda: c.compose(r, TOKEN))
    assert got == want
    # And in a batch, between good rows.
    good = Recipient(
        email="ok@example.com",
        vars={"email": "ok@example.com", "name": "N", "first_name": "F", "plan": "P"},
        row=1,
    )
    many = c.compose_many([(good, TOKEN), (r, TOKEN + "b"), (good, TOKEN + "c")])
    assert many[0] == reference(c, good, TOKEN)
    assert many[2] == reference(c, good, TOKEN + "c")
    second = many[1]
    want_b = outcome(lambda: reference(c, r, TOKEN + "b"))
    if isinstance(second, MailsfluxError):
        assert (type(second), second.message, second.field, second.row, second.recipient) == want_b
    else:
        assert second == want_b


def test_every_job_makes_a_message(composers: dict[str, Composer]) -> None:
    # The jobs above are what the random test draws from: each must compose.
    r = Recipient(
        email="ada@example.com",
        vars={"email": "ada@example.com", "name": "Ada", "first_name": "Ada", "plan": "Pro"},
        row=3,
    )
    for name in JOBS:
        c = composers[name]
        msg = c.compose(r, TOKEN)
        assert msg == reference(c, r, TOKEN), name
        assert b"DKIM-Signature:" in msg.data
        tracked = c.tracker is not None
        assert (b"https://t.sender.example/u/" in msg.data) == tracked, name


def _html_and_headers(m: RenderedMessage) -> tuple[str, list[tuple[str, str]], list[str]]:
    """The HTML part with its preference tokens cut out, the header fields
    but the signature (which covers the token), and those tokens."""
    parsed = email.message_from_bytes(m.data, policy=email.policy.default)
    html = next(p for p in parsed.walk() if p.get_content_type() == "text/html").get_content()
    tokens = re.findall(r"/p/([A-Za-z0-9._-]+)", html)
    fields = [(k, str(v)) for k, v in parsed.items() if k.lower() != "dkim-signature"]
    return re.sub(r"/p/[A-Za-z0-9._-]+", "/p/TOKEN", html), fields, tokens


def test_the_preference_link_is_the_recipients(composers: dict[str, Composer]) -> None:
    c = composers["preferences"]
    assert c.tracker is not None
    r = Recipient(
        email="zoë@bücher.example",
        vars={"email": "zoë@bücher.example", "name": "Z", "first_name": "Zoë", "plan": "P"},
        row=9,
    )
    got, want = c.compose(r, TOKEN), reference(c, r, TOKEN)
    html, fields, tokens = _html_and_headers(got)
    assert (html, fields) == _html_and_headers(want)[:2]
    assert len(tokens) == 1
    opened = c.tracker.verifier.decode_preferences(tokens[0])
    assert opened is not None
    assert (opened.recipient, opened.job, opened.issued_at) == (r.email, c.job.name, int(NOW))
