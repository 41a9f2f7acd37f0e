"""Oversigning (RFC 6376 sections 5.4 and 8.15): a header whose meaning matters
cannot be added above the signed ones, whether the message has it or not.

A replayed message with a second Subject (or To, Reply-To, Cc,
List-Unsubscribe, ...) on top would still verify if h= named each field
only as often as the message had it, and most readers show the top one.
"""

from __future__ import annotations

import pytest

from mailsflux.dkim import OVERSIGNED, Signer
from mailsflux.dkim.keygen import dns_txt_record, generate_private_key
from tests._mail import dkim_verify

DOMAIN, SELECTOR = "example.com", "s1"

WITH_LIST = (
    b"From: Shop <news@example.com>\r\n"
    b"To: Jane <jane@example.net>\r\n"
    b"Subject: Hello\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"List-Unsubscribe: <https://example.com/u/abc>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 7bit\r\n"
    b"\r\n"
    b"Hello Jane.\r\n"
)
# Without Reply-To, Cc, List-Unsubscribe: their absence is what gets signed.
WITHOUT_LIST = b"".join(
    line + b"\r\n" for line in WITH_LIST.split(b"\r\n") if not line.startswith(b"List-")
)[:-2]

ADDED = {
    "From": b"From: Bank <security@example.com>",
    "Sender": b"Sender: security@example.com",
    "Reply-To": b"Reply-To: thief@evil.example",
    "To": b"To: victim@example.org",
    "Cc": b"Cc: victim@example.org",
    "Subject": b"Subject: Your account is locked",
    "Date": b"Date: Tue, 02 Jan 2024 10:00:00 +0000",
    "Message-ID": b"Message-ID: <2@example.com>",
    "In-Reply-To": b"In-Reply-To: <0@example.com>",
    "References": b"References: <0@example.com>",
    "MIME-Version": b"MIME-Version: 1.0",
    "Content-Type": b"Content-Type: text/html; charset=utf-8",
    "Content-Transfer-Encoding": b"Content-Transfer-Encoding: base64",
    "List-Unsubscribe": b"List-Unsubscribe: <https://evil.example/u>",
    "List-Unsubscribe-Post": b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
}


@pytest.fixture(scope="module")
def signer_and_record() -> tuple[Signer, bytes]:
    pem = generate_private_key("rsa-sha256", 1024)
    record = dns_txt_record(pem).encode()
    return Signer(domain=DOMAIN, selector=SELECTOR, key=pem), record


def on_top(signed: bytes, field: bytes) -> bytes:
    """``field`` inserted right below the DKIM-Signature, above every signed field."""
    at = signed.index(b"\r\nFrom:") + 2
    return signed[:at] + field + b"\r\n" + signed[at:]


def test_policy_names_the_headers_that_matter() -> None:
    low = {n.lower() for n in OVERSIGNED}
    assert {n.lower() for n in ADDED} <= low


@pytest.mark.parametrize("message", [WITH_LIST, WITHOUT_LIST], ids=["with-list", "without-list"])
@pytest.mark.parametrize("name", list(ADDED))
def test_adding_an_oversigned_header_breaks_the_signature(
    signer_and_record: tuple[Signer, bytes], message: bytes, name: str
) -> None:
    signer, record = signer_and_record
    signed = signer.sign(message)
    assert dkim_verify(signed, record, selector=SELECTOR, domain=DOMAIN)
    forged = on_top(signed, ADDED[name])
    assert not dkim_verify(forged, record, selector=SELECTOR, domain=DOMAIN), name


def test_unlisted_headers_may_still_be_added(signer_and_record: tuple[Signer, bytes]) -> None:
    # Relays add trace fields (Received, ARC, X-*): those must not break it.
    signer, record = signer_and_record
    signed = signer.sign(WITH_LIST)
    for field in (b"Received: by mx.example.net", b"X-Spam-Score: 0"):
        assert dkim_verify(on_top(signed, field), record, selector=SELECTOR, domain=DOMAIN)
