"""The tokens' shared payload prefix, written in compiled code, is byte for
byte what msgspec.msgpack.encode gives for (message id, recipient, job,
sent at), with the 6-element array's first byte: the tracking server
decodes tokens with msgspec, and a token sealed the old way must not differ
from one sealed now. Every msgpack str and int form is crossed: lengths at
31/32, 255/256, 65535/65536 bytes (UTF-8), integers at each width's edges.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.tracking._rewrite import payload_prefix

_EDGES = [0, 1, 31, 32, 255, 256]
_INT_EDGES = [
    0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63),
]  # fmt: skip


def _reference(message_id: str, recipient: str, job: str, sent_at: int) -> bytes:
    enc = msgspec.msgpack.encode((message_id, recipient, job, sent_at))
    if len(enc) > 2048:
        raise ValueError("too long")
    return b"\x96" + enc[1:]


def _check(message_id: str, recipient: str, job: str, sent_at: int) -> None:
    try:
        want = _reference(message_id, recipient, job, sent_at)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            payload_prefix(message_id, recipient, job, sent_at)
        return
    except ValueError:
        with pytest.raises(ValueError, match="too long for a tracking token"):
            payload_prefix(message_id, recipient, job, sent_at)
        return
    assert payload_prefix(message_id, recipient, job, sent_at) == want


_text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(_EDGES).map(lambda n: "a" * n),
    st.sampled_from(_EDGES).map(lambda n: "é" * (n // 2) + "a" * (n % 2)),  # n UTF-8 bytes
)
_int = st.one_of(st.sampled_from(_INT_EDGES), st.integers(-(2**63), 2**63 - 1))


@settings(max_examples=2000, deadline=None)
@given(_text, _text, _text, _int)
@example("<1.2@example.org>", "zoe@example.org", "job-4b3e517d884bd8cc", 1764600000)
@example("\ud800", "", "", 0)  # a lone surrogate does not encode, as in msgspec
@example("a" * 700, "b" * 700, "c" * 700, 0)  # past the prefix's 2048 bytes
def test_payload_prefix_is_msgspecs_encoding(
    message_id: str, recipient: str, job: str, sent_at: int
) -> None:
    _check(message_id, recipient, job, sent_at)


@pytest.mark.parametrize("n", [65535, 65536])
def test_the_str_16_and_32_forms(n: int) -> None:
    # Only reached past the 2048-byte limit: the size check still refuses them.
    with pytest.raises(ValueError, match="too long"):
        payload_prefix("a" * n, "", "", 0)


@pytest.mark.parametrize("sent_at", _INT_EDGES)
@pytest.mark.parametrize("n", _EDGES)
def test_each_form_at_its_edges(n: int, sent_at: int) -> None:
    _check("m" * n, "r" * n, "j" * n, sent_at)
