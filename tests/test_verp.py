"""VERP addresses: sealed, case-proof, and only a key holder makes or opens them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.errors import ConfigError
from mailsflux.feedback import Verp, VerpPayload

KEY1 = b"k" * 32
KEY2 = b"q" * 32


def verp(**kw: object) -> Verp:
    return Verp({"k1": KEY1, "K2": KEY2}, "k1", "Bounce.Example.COM.", **kw)  # type: ignore[arg-type]


def test_round_trip_and_shape() -> None:
    v = verp()
    a = v.make("<m1@sender.example>", "Zoë@Example.com", "welcome", "acme")
    local, domain = a.split("@")
    assert domain == "bounce.example.com"
    assert re.fullmatch(r"bounces\+[a-z2-7]+", local)
    assert v.open(a) == VerpPayload(
        "<m1@sender.example>", "Zoë@Example.com", "welcome", "acme", "k1"
    )


def test_nothing_readable_in_the_token() -> None:
    a = verp().make("<m1@sender.example>", "alice@example.com", "welcome", "acme")
    for word in ("alice", "example", "welcome", "acme", "m1"):
        assert word not in a.split("@")[0][len("bounces+") :]


def test_case_folding_and_brackets_survive() -> None:
    v = verp()
    a = v.make("m", "r@example.com")
    assert v.open(a.upper()) is not None
    assert v.open(f"<{a}>") is not None
    assert v.open(a.replace("@bounce.example.com", "@bounce.example.com.")) is not None


def test_tampering_other_domains_and_junk_are_refused() -> None:
    v = verp()
    a = v.make("m", "r@example.com")
    local, _ = a.split("@")
    flipped = local[:-1] + ("a" if local[-1] != "a" else "b")
    assert v.open(f"{flipped}@bounce.example.com") is None
    assert v.open(f"{local[:-3]}@bounce.example.com") is None
    assert v.open(f"{local}@other.example") is None
    assert v.open(a.replace("bounces+", "bouncez+")) is None
    for junk in (
        "",
        "@",
        "bounces+@bounce.example.com",
        "bounces+1@bounce.example.com",
        "x" * 5000,
    ):
        assert v.open(junk) is None


def test_rotation_keeps_old_tokens_and_foreign_keys_fail() -> None:
    old = verp()
    a = old.make("m", "r@example.com", "j", "t")
    rotated = Verp({"k1": KEY1, "K2": KEY2}, "K2", "bounce.example.com")
    assert rotated.open(a) == old.open(a)
    b = rotated.make("m", "r@example.com", "j", "t")
    assert old.open(b) is not None and old.open(b).key_id == "K2"  # type: ignore[union-attr]
    stranger = Verp({"k1": b"z" * 32}, "k1", "bounce.example.com")
    assert stranger.open(a) is None


def test_bad_settings() -> None:
    with pytest.raises(ConfigError):
        Verp({"k1": KEY1}, "k1", "not a domain")
    with pytest.raises(ConfigError):
        Verp({"k1": KEY1}, "k1", "bounce.example.com", prefix="a+b")
    with pytest.raises(ConfigError):
        Verp({"k1": b"short"}, "k1", "bounce.example.com")
    with pytest.raises(ConfigError):
        Verp({"k1": KEY1}, "k9", "bounce.example.com")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80), st.text(max_size=20), st.text(max_size=20))
def test_any_payload_round_trips(mid: str, rcpt: str, job: str, tenant: str) -> None:
    v = verp()
    mid, rcpt = mid.encode("utf-8", "replace").decode(), rcpt.encode("utf-8", "replace").decode()
    job, tenant = (
        job.encode("utf-8", "replace").decode(),
        tenant.encode("utf-8", "replace").decode(),
    )
    got = v.open(v.make(mid, rcpt, job, tenant).lower())
    assert got is not None and (got.message_id, got.recipient, got.job, got.tenant) == (
        mid,
        rcpt,
        job,
        tenant,
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_open_never_raises(text: str) -> None:
    assert verp().open(text) is None or True
