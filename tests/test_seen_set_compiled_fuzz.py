"""The compiled ``SeenSet.add`` against a plain ``set``: any strings (ASCII,
non-ASCII, lone surrogates from undecodable bytes, too long to store), with
Python's hash or one that makes most of them collide, through growth of the
table; it answers as the set does and never crashes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.jobs.seen import SeenSet

_keys = st.one_of(
    st.text(alphabet=st.characters(codec="ascii"), max_size=40),
    st.text(max_size=40),  # any code point, lone surrogates included
    st.sampled_from(["a@b.example", "A@b.example", "zoë@bücher.example", "\udcff@x", ""]),
    st.builds(lambda n, c: c * n, st.integers(65_530, 65_540), st.sampled_from(["x", "ä"])),
)

_HASHES: dict[str, Callable[[str], int]] = {
    "python": hash,
    "collide": lambda s: len(s) % 3,  # nearly everything probes past others
    "negative": lambda s: -1 - len(s),  # sign bits: the entry keeps its top 24
}


@pytest.mark.parametrize("which", sorted(_HASHES))
@settings(max_examples=100, deadline=None)
@given(keys=st.lists(_keys, max_size=120))
def test_add_answers_as_a_set_does(which: str, keys: list[str]) -> None:
    model: set[str] = set()
    # 40 more keys past the random ones: the table (16 slots) doubles at least
    # twice, moving every entry, whatever hypothesis drew.
    keys = keys + [f"fill{i}@example.com" for i in range(40)] + keys
    with SeenSet(capacity=16, hash=_HASHES[which]) as seen:
        for key in keys:
            if len(key.encode("utf-8", "surrogatepass")) > 0xFFFF:
                with pytest.raises(ValueError, match="longer than 65,535 bytes"):
                    seen.add(key)
                continue
            assert seen.add(key) == (key not in model)
            model.add(key)
            assert len(seen) == len(model)
        for key in model:  # all still there, after any growth
            assert not seen.add(key)


def test_add_takes_only_str() -> None:
    with SeenSet() as seen, pytest.raises(TypeError):
        seen.add(b"a@b.example")  # type: ignore[arg-type]
