"""Type stub for the compiled DKIM canonicalizer (core/mailsflux/dkim/_canon.pyx)."""

from collections.abc import Callable
from typing import TypeVar, final

_E = TypeVar("_E")

@final
class Policy:
    """A parsed ``c=`` value (RFC 6376 section 3.5)."""

    header_relaxed: bool
    body_relaxed: bool
    header: str
    body: str
    value: str
    def __init__(self, value: str) -> None: ...

@final
class Message:
    """A message normalized to CRLF, with header fields located by offset."""

    data: bytes
    body_start: int
    def __init__(self, data: bytes) -> None: ...
    @property
    def header_count(self) -> int: ...
    @property
    def body(self) -> bytes: ...
    def counts(self, names: tuple[bytes, ...]) -> tuple[int, ...]: ...
    def header_hash_input(
        self, names: tuple[bytes, ...], relaxed: bool, signature: bytes | None = None
    ) -> bytes: ...
    def signing_input(
        self,
        names: tuple[bytes, ...],
        head: bytes,
        tx: bytes,
        h: bytes,
        header_relaxed: bool,
        body_relaxed: bool,
        prehash: bool,
    ) -> tuple[bytes, bytes]: ...
    def canonical_body(self, relaxed: bool) -> bytes: ...
    def body_hash(self, relaxed: bool) -> bytes: ...

@final
class SigningPlan:
    """One signer's per-message work up to the private-key operation."""

    def __init__(
        self,
        counted: tuple[bytes, ...] | None,
        from_index: int,
        h_for: Callable[[tuple[int, ...]], tuple[tuple[bytes, ...], bytes]],
        h_cache: dict[tuple[int, ...], tuple[tuple[bytes, ...], bytes]],
        fixed: tuple[tuple[bytes, ...], bytes] | None,
        head: bytes,
        expire_after: int | None,
        header_relaxed: bool,
        body_relaxed: bool,
        prehash: bool,
    ) -> None: ...
    def counts(self, msg: Message) -> tuple[int, ...] | None: ...
    def prepare(self, msg: Message, timestamp: int | None) -> tuple[bytes, bytes] | None: ...
    def sign_many(
        self,
        messages: list[tuple[bytes, int | None]],
        sign_data: Callable[[bytes], bytes],
        first: int,
        width: int,
        to_message: Callable[[bytes], Message],
        no_from: Callable[[], _E],
    ) -> list[bytes | _E]: ...

def normalize_crlf(data: bytes) -> bytes: ...
def block_skips(data: bytes, at: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]: ...
def name_blocks(data: bytes, at: int) -> tuple[tuple[int, bytes], tuple[int, bytes]]: ...
def uri_blocks(data: bytes, at: int) -> tuple[int, int]: ...

BLOCKS_SSE2: bool
BLOCKS_SWAR_EXACT: bool
BLOCKS_SIMD_OFF: bool

def canonicalize_body(body: bytes, relaxed: bool) -> bytes: ...
def canonicalize_header(field: bytes, relaxed: bool) -> bytes: ...
def fold_value(value: bytes, first: int, width: int) -> bytes: ...
def dkim_field(unsigned: bytes, sig: bytes, first: int, width: int, tail: bytes) -> bytes: ...
