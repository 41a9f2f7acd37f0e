"""The small parts of the recipient pages: language choice, address masking,
contrast arithmetic, and the sealed preference token."""

from __future__ import annotations

import pytest

from mailsflux.errors import ConfigError
from mailsflux.tracking import Tracker
from mailsflux.tracking.pages import Pages, SenderSpec, contrast, mask_address, negotiate

HAVE = {"en": 1, "de": 1, "fr": 1}


@pytest.mark.parametrize(
    ("header", "want"),
    [
        ("", "en"),
        ("de", "de"),
        ("de-AT,de;q=0.9,en;q=0.8", "de"),
        ("it-IT,it;q=0.9,fr;q=0.7,en;q=0.5", "fr"),
        ("en;q=0.2, fr;q=0.9", "fr"),
        ("FR-ca", "fr"),
        ("it, *;q=0.1", "en"),
        ("de;q=0, fr", "fr"),
        ("de;q=bogus, fr;q=0.5", "fr"),
        ("x" * 5000, "en"),
        ("<script>", "en"),
    ],
)
def test_language_choice(header: str, want: str) -> None:
    assert negotiate(header, HAVE, "en") == want


def test_masked_addresses_show_little() -> None:
    assert mask_address("Zoe.Haddad@Example.org") == "z…d@example.org"
    assert mask_address("al@example.org") == "a…@example.org"
    assert mask_address("a@example.org") == "a…@example.org"
    assert "haddad" not in mask_address("zoe.haddad@example.org")


def test_contrast_matches_wcag_examples() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast("#8a9099", "#fff") < 4.5  # the example's old footer


def test_sender_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"sender\.color: .* 4\.5:1"):
        Pages(SenderSpec(color="#999999"))
    with pytest.raises(ConfigError, match=r"sender\.background"):
        Pages(SenderSpec(background="#333333"))
    with pytest.raises(ConfigError, match=r"sender\.color: 'red' is not"):
        Pages(SenderSpec(color="red"))
    with pytest.raises(ConfigError, match=r"sender\.logo_url"):
        Pages(SenderSpec(logo_url="http://x.example/logo.png"))
    with pytest.raises(ConfigError, match=r"sender\.logo_url"):
        Pages(SenderSpec(logo_url="https://x.example/a.png; script-src *"))
    with pytest.raises(ConfigError, match=r"sender\.language"):
        Pages(SenderSpec(language="xx"))
    assert (
        b"img-src https://x.example/l.png;"
        in Pages(SenderSpec(logo_url="https://x.example/l.png")).csp()
    )


def test_preference_tokens_are_sealed_and_checked() -> None:
    tr = Tracker("https://t.example", {"k1": b"1" * 32, "k2": b"2" * 32}, "k2", clock=lambda: 7)
    url = tr.preferences_url("Zoe@example.org", "welcome")
    tok = url.rsplit("/", 1)[1]
    assert url.startswith("https://t.example/p/k2.")
    p = tr.verifier.decode_preferences(tok)
    assert p is not None and (p.recipient, p.job, p.issued_at, p.key_id) == (
        "Zoe@example.org",
        "welcome",
        7,
        "k2",
    )
    assert tr.preferences_url("Zoe@example.org", "welcome") != url  # a fresh nonce each time
    kid, body = tok.split(".")
    flipped = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    other = Tracker("https://t.example", {"k2": b"3" * 32}, "k2")
    for bad in (f"{kid}.{flipped}", f"k1.{body}", tok[:-2], "", "k2.", f"k9.{body}"):
        assert tr.verifier.decode_preferences(bad) is None, bad
    assert other.verifier.decode_preferences(tok) is None
    # Neither kind of token passes for the other.
    unsub = tr.unsubscribe_url("m@x", "Zoe@example.org", "welcome").rsplit("/", 1)[1]
    assert tr.verifier.decode_preferences(unsub) is None
    assert tr.verifier.decode(tok) is None
