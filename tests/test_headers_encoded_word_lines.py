"""RFC 2047 section 2: a header line holding an encoded word is at most 76
characters, whatever the header name, value or display name; and the value
still decodes to what was given (stdlib ``email``)."""

from __future__ import annotations

import email
import email.header
import email.policy
from email.message import EmailMessage

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.compose._mimebuild import MessageBuilder, encode_unstructured, format_mailbox

# Text that forces encoded words: non-ASCII from several scripts and widths
# (1 to 4 UTF-8 bytes), mixed with ASCII and spaces, stripped and without
# double spaces so the stdlib's unfolding gives back exactly the input.
CHARS = st.characters(
    blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85\u2028\u2029"
)
encoded_text = (
    st.tuples(st.text(CHARS, min_size=0, max_size=200), st.sampled_from("éЖ中😀"))
    .map(lambda t: t[0] + t[1] if len(t[0]) % 2 else t[1] + t[0])
    .map(lambda s: " ".join(s.split()))
)
names = st.text(st.sampled_from("ABCXYZabcxyz-0123"), min_size=1, max_size=80).map(
    lambda s: "X-" + s
)


def encoded_lines(text: str) -> list[str]:
    return [line for line in text.split("\r\n") if "=?" in line]


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def decode_phrase(line: str, name: str) -> str:
    """The display name with the RFC-conforming decoder (words joined without
    the folding white space, RFC 2047 section 6.2)."""
    phrase = line[len(name) + 1 : line.rindex("<")].strip()
    return str(email.header.make_header(email.header.decode_header(phrase)))


@settings(max_examples=400, deadline=None)
@given(name=names, value=encoded_text)
@example(name="X-" + "0" * 53, value="é")  # found by hypothesis: the words start on line 2
@example(name="X-" + "0" * 50, value="é")
def test_unstructured_lines_with_encoded_words_fit_76(name: str, value: str) -> None:
    line = encode_unstructured(name, value)
    assert "=?" in line
    for physical in encoded_lines(line):
        assert len(physical) <= 76, (len(physical), physical)
    raw = (line + "\r\n\r\nbody\r\n").encode("ascii")
    got = parse(raw)[name]
    if line.split("\r\n", 1)[0].endswith(":"):
        # A name too long for even one word beside it (55+ characters): the
        # words start on a continuation line, the only way to keep every
        # line with a word within 76 columns, and unfolding (RFC 5322
        # 2.2.3) leaves that fold's space before them, which the stdlib keeps.
        assert len(name) >= 50 and got == " " + value
    else:
        assert got == value


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(["To", "From", "Reply-To"]).map(str) | names, display=encoded_text)
def test_mailbox_lines_with_encoded_words_fit_76(name: str, display: str) -> None:
    line, _ = format_mailbox(name, display, "jane@b\u00fccher.example")
    for physical in encoded_lines(line):
        assert len(physical) <= 76, (len(physical), physical)
    assert decode_phrase(line, name) == display


@settings(max_examples=200, deadline=None)
@given(subject=encoded_text, to_name=encoded_text, sender=encoded_text, custom=encoded_text)
def test_whole_messages_keep_the_limit_and_round_trip(
    subject: str, to_name: str, sender: str, custom: str
) -> None:
    builder = MessageBuilder(
        sender=f"{sender} <news@example.com>",
        reply_to=f"{to_name} <help@example.com>",
        headers={"X-Campaign-Description": custom},
    )
    raw, *_ = builder.build(
        to="jane@example.net",
        to_name=to_name,
        subject=subject,
        date="Mon, 01 Jan 2024 10:00:00 +0000",
        message_id="1@example.com",
        text=b"hello\n",
    )
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    for physical in encoded_lines(head):
        assert len(physical) <= 76, (len(physical), physical)
    msg = parse(raw)
    assert msg["Subject"] == subject
    assert msg["X-Campaign-Description"] == custom
    fields = dict(f.split(":", 1) for f in head.replace("\r\n ", " ").split("\r\n"))
    assert decode_phrase("To:" + fields["To"], "To") == to_name
    assert decode_phrase("From:" + fields["From"], "From") == sender
