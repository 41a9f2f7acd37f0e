"""Every message the compiled MIME builder writes parses back with the stdlib
``email`` package (policy=default) to what went in: sender, recipient,
subject, text, HTML and attachments; and keeps the wire rules (CRLF only,
no line over 998 octets, ASCII headers except a UTF-8 local part)."""

from __future__ import annotations

import email
import email.header
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsflux.compose import Attachment, MessageBuilder
from mailsflux.errors import HeaderInjectionError

HTML_DIR = Path(__file__).parent / "data" / "html"
DATE = "Tue, 10 Mar 2026 10:00:00 +0000"


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def utf8(s: str) -> str:
    """Undo the email package's surrogateescape of raw UTF-8 header bytes
    (it reads RFC 6532 headers that way)."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8")


def check_wire(data: bytes) -> None:
    """CRLF everywhere, every line at most 998 octets, headers ASCII but for
    an address's local part."""
    assert data.endswith(b"\r\n")
    lines = data.split(b"\r\n")
    for line in lines:
        assert b"\r" not in line and b"\n" not in line
        assert len(line) <= 998
    head = data[: data.index(b"\r\n\r\n")]
    for line in head.split(b"\r\n"):
        if not line.isascii():
            # only inside <local@domain> of an address header (RFC 6532)
            assert re.match(rb"^(From|To|Reply-To):|^ <", line), line


def raw_header(data: bytes, name: str) -> str:
    """The unfolded raw value of header ``name``."""
    head = data[: data.index(b"\r\n\r\n")].decode("utf-8")
    m = re.search(rf"^{name}:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.M | re.I)
    assert m, name
    return m.group(1).replace("\r\n", "")


def normal(body: str) -> str:
    """A body as the receiver sees it: line ends as LF, ending in one."""
    out = body.replace("\r\n", "\n").replace("\r", "\n")
    return out if out.endswith("\n") else out + "\n"


def content(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body((subtype,))
    assert part is not None, subtype
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def check_display(data: bytes, header: str, parsed: str, name: str) -> None:
    """Display names: exact with an RFC 2047 decoder; the email package
    agrees up to white space (it collapses runs of white space inside a
    phrase and inserts a space between adjacent encoded words)."""
    name = name.strip()
    raw = raw_header(data, header)
    phrase = raw[: raw.rindex("<")].strip()
    if "=?utf-8?b?" in phrase:
        decoded = str(email.header.make_header(email.header.decode_header(phrase)))
        assert decoded == name
    assert "".join(parsed.split()) == "".join(name.split())


# ---------------------------------------------------------------------------
# Strategies

# Header text: any character but surrogates and CR/LF/NUL (refused).
header_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00")
names = st.text(header_chars, max_size=120)
subjects = st.text(header_chars, max_size=400)

body_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
special_lines = st.sampled_from(
    [
        ".",
        "..",
        ".hidden",
        "From here",
        "From ",
        "from x",
        "trailing   ",
        "tab\t",
        " ",
        "=_mfa",
        "=3D",
        "=",
        "--=_mfa",
        "x" * 1200,
        "é" * 700,
        "a=" * 600,
        "\x01\x02\x1b[0m",
        "",
    ]
)
lines = st.one_of(
    st.text(body_chars, max_size=200),
    special_lines,
    st.text(max_size=3000).filter(
        lambda s: "\x00" not in s and not any("\ud800" <= c <= "\udfff" for c in s)
    ),
)
endings = st.sampled_from(["\n", "\r\n", "\r", "\n\r"])


@st.composite
def bodies(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(lines, endings), max_size=12))
    body = "".join(a + b for a, b in parts)
    if draw(st.booleans()):
        body += draw(lines)  # no final line end
    return body


filenames = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60
).filter(lambda s: s.strip() != "")
ctypes = st.sampled_from(["application/pdf", "image/png", "application/octet-stream", "audio/ogg"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    from_name=names,
    to_name=names,
    subject=subjects,
    text=st.one_of(st.none(), bodies()),
    html=st.one_of(st.none(), bodies()),
    files=st.lists(st.tuples(st.binary(max_size=3000), filenames, ctypes), max_size=3),
    token=st.from_regex(r"[A-Za-z0-9._-]{0,64}", fullmatch=True),
)
def test_random_messages_round_trip(
    from_name: str,
    to_name: str,
    subject: str,
    text: str | None,
    html: str | None,
    files: list[tuple[bytes, str, str]],
    token: str,
) -> None:
    if text is None and html is None:
        text = ""
    attachments = [Attachment(data, fn, ct) for data, fn, ct in files]
    builder = MessageBuilder(
        # A quoted-string display name: backslash and quote are escaped (RFC 5322 3.2.4).
        sender=f'"{_quote(from_name)}" <news@b\u00fccher.example>',
        attachments=attachments,
    )
    sender = None if builder.sender is not None else "news@b\u00fccher.example"
    data, mail_from, rcpt_to, smtputf8 = builder.build(
        to="Zo\u00eb@Example.ORG",
        to_name=to_name,
        subject=subject,
        date=DATE,
        message_id="id1@example.org",
        text=text.encode("utf-8") if text is not None else None,
        html=html.encode("utf-8") if html is not None else None,
        sender=sender,
        boundary=token,
    )
    check_wire(data)
    assert mail_from == "news@xn--bcher-kva.example"
    assert rcpt_to == "Zo\u00eb@example.org"
    assert smtputf8 is True
    msg = parse(data)
    assert not msg.defects
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].addr_spec == "news@xn--bcher-kva.example"
    assert utf8(msg["To"].addresses[0].addr_spec) == "Zo\u00eb@example.org"
    if builder.sender is not None and from_name.strip():
        check_display(data, "From", msg["From"].addresses[0].display_name, from_name)
    if to_name.strip():
        check_display(data, "To", msg["To"].addresses[0].display_name, to_name)
    if text is not None:
        assert content(msg, "plain") == normal(text)
    if html is not None:
        assert content(msg, "html") == normal(html)
    kind = {
        (True, True): "multipart/alternative",
        (True, False): "text/plain",
        (False, True): "text/html",
    }[(text is not None, html is not None)]
    if files:
        assert msg.get_content_type() == "multipart/mixed"
        assert msg.get_payload(0).get_content_type() == kind  # type: ignore[union-attr]
    else:
        assert msg.get_content_type() == kind
    got = list(msg.iter_attachments())
    assert len(got) == len(files)
    for part, (blob, fn, ct) in zip(got, files, strict=True):
        assert part.get_content_type() == ct
        assert part.get_content() == blob
        assert part.get_filename() == fn.strip()  # get_filename() strips
        assert part["Content-Transfer-Encoding"] == "base64"
    for part in msg.walk():
        assert not part.defects


def test_base64_lines_are_76_characters() -> None:
    blob = bytes(range(256)) * 40
    data, *_ = MessageBuilder(
        sender="a@example.com", attachments=[Attachment(blob, "x.bin")]
    ).build(to="b@example.com", subject="s", date=DATE, message_id="i@x", text=b"t")
    body = data.split(b'Content-Disposition: attachment;\r\n filename="x.bin"\r\n\r\n')[1]
    b64 = body.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert all(len(line) == 76 for line in b64[:-1]) and 0 < len(b64[-1]) <= 76
    assert next(iter(parse(data).iter_attachments())).get_content() == blob


def test_inline_images_sit_in_multipart_related() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
    b = MessageBuilder(
        sender="Shop <shop@example.com>",
        inline=[Attachment(png, "logo.png", "image/png", cid="logo@shop.example")],
        attachments=[Attachment(b"%PDF-1.4", "invoice.pdf", "application/pdf")],
    )
    html = b'<p><img src="cid:logo@shop.example" alt="logo"></p>'
    for text in (b"plain version", None):
        data, *_ = b.build(
            to="a@example.com", subject="s", date=DATE, message_id="i@x", text=text, html=html
        )
        check_wire(data)
        msg = parse(data)
        assert msg.get_content_type() == "multipart/mixed"
        first = msg.get_payload(0)
        assert isinstance(first, EmailMessage)
        related = first.get_payload(1) if text is not None else first
        assert isinstance(related, EmailMessage)
        if text is not None:
            assert first.get_content_type() == "multipart/alternative"
        assert related.get_content_type() == "multipart/related"
        assert related.get_param("type") == "text/html"
        html_part, img = related.get_payload()  # type: ignore[misc]
        assert html_part.get_content_type() == "text/html"
        assert img["Content-ID"] == "<logo@shop.example>"
        assert img.get_content_disposition() == "inline"
        assert img.get_content() == png
        assert content(msg, "html") == html.decode() + "\n"
        assert [a.get_filename() for a in msg.iter_attachments()] == ["invoice.pdf"]


def test_inline_images_need_html() -> None:
    from mailsflux.errors import ConfigError

    b = MessageBuilder(sender="a@example.com", inline=[Attachment(b"x", "a.png", cid="a")])
    with pytest.raises(ConfigError, match="HTML"):
        b.build(to="b@example.com", subject="s", date=DATE, message_id="i@x", text=b"t")


@pytest.mark.parametrize("path", sorted(HTML_DIR.glob("*.html")), ids=lambda p: p.name)
def test_real_html_templates_round_trip(path: Path) -> None:
    html = path.read_bytes()
    b = MessageBuilder(sender="Northwind Cloud <hello@northwind.example>")
    data, *_ = b.build(
        to="ana@example.org",
        to_name="Anaïs Lindqvist",
        subject="Bienvenue, Anaïs — votre essai commence",
        date=DATE,
        message_id="i@northwind.example",
        text=b"Plain version\n",
        html=html,
    )
    check_wire(data)
    msg = parse(data)
    assert content(msg, "html") == normal(html.decode("utf-8"))
    assert msg["Subject"] == "Bienvenue, Anaïs — votre essai commence"


def test_list_unsubscribe_and_one_click() -> None:
    b = MessageBuilder(sender="a@example.com")

    def head(value: str) -> EmailMessage:
        data, *_ = b.build(
            to="b@example.com",
            subject="s",
            date=DATE,
            message_id="i@x",
            text=b"t",
            list_unsubscribe=value,
        )
        check_wire(data)
        return parse(data)

    msg = head("<mailto:unsub@x.example?subject=b@example.com>, <https://x.example/u?e=zoë>")
    assert msg["List-Unsubscribe"] == (
        "<mailto:unsub@x.example?subject=b@example.com>, <https://x.example/u?e=zo%C3%AB>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    msg = head("<mailto:unsub@x.example>")
    assert msg["List-Unsubscribe"] == "<mailto:unsub@x.example>"
    assert msg["List-Unsubscribe-Post"] is None
    long = "<https://x.example/" + "a" * 500 + ">, <mailto:u@x.example>"
    assert head(long)["List-Unsubscribe"] == long
    for bad in ("mailto:u@x.example", "<u@x>", "<a>, b", "<https://x/\r\nBcc: e@x>"):
        with pytest.raises(Exception) as err:
            head(bad)
        assert err.value.field == "List-Unsubscribe"  # type: ignore[attr-defined]
        if "\r" in bad:
            assert isinstance(err.value, HeaderInjectionError)


def test_custom_headers_and_reply_to() -> None:
    b = MessageBuilder(
        sender="a@example.com",
        reply_to="Équipe support <help@b\u00fccher.example>",
        headers={"X-Campaign": "spring-2026", "X-Note": "Grüße aus Köln"},
    )
    data, *_ = b.build(to="b@example.com", subject="s", date=DATE, message_id="i@x", text=b"t")
    msg = parse(data)
    assert msg["X-Campaign"] == "spring-2026"
    assert msg["X-Note"] == "Grüße aus Köln"
    assert msg["Reply-To"].addresses[0].display_name == "Équipe support"
    assert msg["Reply-To"].addresses[0].addr_spec == "help@xn--bcher-kva.example"
    assert msg["MIME-Version"] == "1.0"


def test_smtputf8_only_for_a_non_ascii_local_part() -> None:
    b = MessageBuilder(sender="Zoë <zoe@b\u00fccher.example>")
    common = {"subject": "Ünïcödé", "date": DATE, "message_id": "i@x", "text": "é".encode()}
    assert b.build(to="a@b\u00fccher.example", to_name="Jörg", **common)[3] is False  # type: ignore[arg-type]
    assert b.build(to="j\u00f6rg@example.org", **common)[3] is True  # type: ignore[arg-type]
    b2 = MessageBuilder(sender="a@example.com", reply_to="j\u00f6rg@example.org")
    assert b2.build(to="b@example.com", **common)[3] is True  # type: ignore[arg-type]


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')
