"""Type stub for the compiled tracking rewriter (core/mailsflux/tracking/_rewrite.pyx)."""

from typing import Final, final

#: Whether tokens are sealed with AES-NI here (else by the cryptography package).
AES_NI: Final[bool]
#: Longest token made (characters).
MAX_TOKEN: Final[int]
#: Bytes of the synthetic IV (the AES-SIV tag) in a token.
TAG_SIZE: Final[int]

@final
class Rewriter:
    """Seals tokens with one key and rewrites HTML parts to carry them."""

    @property
    def base(self) -> bytes: ...
    @property
    def key_id(self) -> bytes: ...
    def __init__(self, base: str, key_id: str, key: bytes) -> None:
        """``key``: the 64-byte AES-256-SIV key (``tokens.token_key`` of a tracking key)."""
    def token(
        self,
        kind: int,
        message_id: str,
        recipient: str,
        job: str,
        sent_at: int,
        url: str = "",
    ) -> str: ...
    def unsubscribe_pair(
        self,
        message_id: str,
        recipient: str,
        job: str,
        sent_at: int,
        mailto: str | None = None,
    ) -> tuple[str, str]:
        """The one-click URL and the ``List-Unsubscribe`` value, with one token;
        ``mailto``: a plain address the caller has checked."""
    def edits(
        self, html: bytes, clicks: bool = True, opens: bool = True
    ) -> list[tuple[int, int, str]]: ...
    def rewrite_html(
        self,
        html: bytes,
        message_id: str,
        recipient: str,
        job: str,
        sent_at: int,
        skip_prefix: bytes | None = None,
        clicks: bool = True,
        opens: bool = True,
    ) -> bytes: ...
    def rewrite_text(
        self,
        text: bytes,
        message_id: str,
        recipient: str,
        job: str,
        sent_at: int,
        skip_prefix: str | None = None,
    ) -> bytes: ...

def payload_prefix(message_id: str, recipient: str, job: str, sent_at: int) -> bytes: ...
def unsubscribe_value(url: str, token: str, mailto: str | None) -> str:
    """``List-Unsubscribe`` (RFC 2369): ``<url>``, and with ``mailto`` a mailto: alternative."""

def _trim_url(url: str) -> str: ...
def attr_unescape(value: str) -> str: ...
def siv_encrypt(key: bytes, ad: bytes, data: bytes) -> bytes: ...
def use_aes_ni(on: bool) -> bool: ...
def aes_ni_available() -> bool: ...
def use_b64_simd(on: bool) -> bool: ...
def b64_simd() -> bool: ...
def kept_scratch(rw: Rewriter) -> tuple[bool, int, int, int, int, int]: ...
def b64url(data: bytes) -> bytes: ...
