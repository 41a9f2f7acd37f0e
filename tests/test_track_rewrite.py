"""The compiled link rewriter, the open pixel, tokens and unsubscribe headers."""

from __future__ import annotations

import base64
import hmac
import os
import re

import msgspec
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from mailsflux.errors import ConfigError, HeaderError
from mailsflux.tracking import LIST_UNSUBSCRIBE_POST, TokenVerifier, Tracker
from mailsflux.tracking import _rewrite as _track
from mailsflux.tracking.tokens import token_key

BASE = "https://t.example.com"
KEY = b"k" * 32
MID = "0a1b2c.7@sender.example"
RCPT = "ada@example.org"
SENT = 1_760_000_000

TOKEN_RE = re.compile(rb"https://t\.example\.com/([coui])/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")


def tracker(**kw: object) -> Tracker:
    return Tracker(BASE, {"k1": KEY}, "k1", clock=lambda: SENT, **kw)  # type: ignore[arg-type]


def rewrite(html: bytes, **kw: object) -> bytes:
    return tracker().rewrite_html(html, message_id=MID, recipient=RCPT, job="j", **kw)  # type: ignore[arg-type]


def clicks(out: bytes) -> list[str]:
    t = tracker()
    urls = []
    for route, tok in TOKEN_RE.findall(out):
        if route == b"c":
            p = t.decode(tok.decode())
            assert p is not None and p.kind == "click"
            urls.append(p.url)
    return urls


def no_pixel(html: bytes) -> bytes:
    return rewrite(html, opens=False)


# -- AES-256-SIV in C -----------------------------------------------------------


needs_ni = pytest.mark.skipif(not _track.aes_ni_available(), reason="no AES-NI on this CPU")


@needs_ni
def test_c_aes_siv_matches_cryptography() -> None:
    for n in [*range(0, 100), 127, 128, 129, 255, 1000, 8200]:
        for ad in (b"k1", b"", b"x" * 16, b"y" * 33):
            key, data = os.urandom(64), os.urandom(n)
            assert _track.siv_encrypt(key, ad, data) == AESSIV(key).encrypt(data, [ad]), (n, ad)


@pytest.mark.parametrize("ni", [False, True])
def test_tokens_are_aes_siv_of_the_payload(ni: bool) -> None:
    if ni and not _track.aes_ni_available():
        pytest.skip("no AES-NI on this CPU")
    try:
        _track.use_aes_ni(ni)
        for raw_key in (b"s" * 16, os.urandom(32), os.urandom(100)):
            key = token_key(raw_key)
            rw = _track.Rewriter(BASE, "kid", key)
            # message ids of every length around the 16-byte blocks the
            # per-message CMAC state covers, and URLs on both sides of 16 bytes
            for mid in ("", *("m" * i for i in range(1, 40)), "m" * 300):
                for url in ("", "h", "https://x.example/", "https://x.example/" + "p" * 300):
                    tok = rw.token(1, mid, RCPT, "job", SENT, url)
                    body = tok.partition(".")[2]
                    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
                    payload = AESSIV(key).decrypt(raw, [b"kid"])
                    assert msgspec.msgpack.decode(payload) == [mid, RCPT, "job", SENT, 1, url]
            tiny = rw.token(0, "", "", "", 0, "")  # a payload shorter than one block
            raw = base64.urlsafe_b64decode(tiny[4:] + "=" * (-len(tiny[4:]) % 4))
            assert msgspec.msgpack.decode(AESSIV(key).decrypt(raw, [b"kid"])) == [
                "",
                "",
                "",
                0,
                0,
                "",
            ]
    finally:
        _track.use_aes_ni(True)


@pytest.mark.parametrize("ni", [False, True])
def test_every_link_of_a_part_is_sealed_whatever_the_count(ni: bool) -> None:
    """Links are sealed eight at a time: every count and length mix opens."""
    if ni and not _track.aes_ni_available():
        pytest.skip("no AES-NI on this CPU")
    try:
        _track.use_aes_ni(ni)
        for count in range(0, 20):
            urls = [f"https://e.example/{'x' * (i * 7 % 40)}?n={i}" for i in range(count)]
            html = "".join(f'<a href="{u}">{i}</a>' for i, u in enumerate(urls)).encode()
            for opens in (False, True):
                out = rewrite(html, opens=opens)
                assert clicks(out) == urls
                pixels = re.findall(rb'src="https://t\.example\.com/o/([^"]+)"', out)
                assert len(pixels) == opens
                for tok in pixels:
                    p = tracker().decode(tok.decode(), "open")
                    assert p is not None and (p.recipient, p.url) == (RCPT, "")
            text = " ".join(urls).encode()
            out = tracker().rewrite_text(text, message_id=MID, recipient=RCPT, job="j")
            assert clicks(out) == urls
    finally:
        _track.use_aes_ni(True)


def test_a_token_reveals_neither_address_nor_target() -> None:
    t = tracker()
    for kind in ("open", "click", "unsubscribe"):
        tok = t.token(kind, message_id=MID, recipient=RCPT, job="j", url="https://a.example/x")  # type: ignore[arg-type]
        body = tok.partition(".")[2]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        for secret in (RCPT, "ada", "example.org", "a.example", MID):
            assert secret.encode() not in raw


def _signed(key: bytes, kind: int, sent_at: int, url: str = "") -> str:
    """A token as made before tokens were sealed: payload || HMAC-SHA256 tag."""
    payload = msgspec.msgpack.encode((MID, RCPT, "j", sent_at, kind, url))
    tag = hmac.digest(key, b"k1." + payload, "sha256")[:16]
    return "k1." + base64.urlsafe_b64encode(payload + tag).decode().rstrip("=")


def test_signed_tokens_of_mail_already_sent_are_accepted_for_a_while() -> None:
    now = SENT + 10 * 86400
    v = TokenVerifier({"k1": KEY}, signed_days=90, clock=lambda: now)
    click = _signed(KEY, 1, SENT, "https://a.example/")
    p = v.decode(click, "click")
    assert p is not None and (p.recipient, p.url) == (RCPT, "https://a.example/")
    assert v.decode(_signed(KEY, 0, SENT), "open") is not None
    assert v.decode(_signed(b"o" * 32, 1, SENT, "https://a.example/")) is None  # wrong key
    assert v.decode(click[:-2] + ("A" if click[-2] != "A" else "B") + click[-1]) is None
    # after the transition period, opens and clicks are refused; unsubscribes never are
    late = TokenVerifier({"k1": KEY}, signed_days=90, clock=lambda: SENT + 91 * 86400)
    assert late.decode(click) is None and late.decode(_signed(KEY, 0, SENT)) is None
    assert late.decode(_signed(KEY, 2, SENT), "unsubscribe") is not None
    off = TokenVerifier({"k1": KEY}, signed_days=0, clock=lambda: now)
    assert off.decode(click) is None
    assert off.decode(_signed(KEY, 2, SENT), "unsubscribe") is not None
    # sealed tokens do not expire
    sealed = tracker().token("click", message_id=MID, recipient=RCPT, url="h")
    assert late.decode(sealed) is not None


# -- tokens -------------------------------------------------------------------


def test_tokens_round_trip_every_kind() -> None:
    t = tracker()
    for kind in ("open", "click", "unsubscribe"):
        tok = t.token(kind, message_id=MID, recipient=RCPT, job="j", url="https://a.example/?x=é")  # type: ignore[arg-type]
        p = t.decode(tok)
        assert p is not None
        assert (p.kind, p.message_id, p.recipient, p.job, p.sent_at, p.key_id) == (
            kind,
            MID,
            RCPT,
            "j",
            SENT,
            "k1",
        )
        assert t.decode(tok, kind) == p  # type: ignore[arg-type]
    assert t.decode(t.token("open", message_id=MID, recipient=RCPT), "click") is None


def test_forged_truncated_rekeyed_and_garbled_tokens_are_rejected() -> None:
    t = tracker()
    tok = t.token("click", message_id=MID, recipient=RCPT, url="https://good.example/")
    kid, body = tok.split(".")
    assert t.decode(tok) is not None
    bad = [
        "",
        ".",
        kid,
        kid + ".",
        body,
        tok[:-1],
        tok[:-4],
        tok[: len(tok) // 2],
        tok + "A",
        tok + "=",
        "k2." + body,  # unknown key id
        "K1." + body,
        tok.replace(".", ".."),
        tok + "/x",
        kid + "." + body[::-1],
        kid + "." + base64.urlsafe_b64encode(b"x" * 40).decode().rstrip("="),
        "k1." + "A" * 5000,
        "k1." + "A" * 10000,
    ]
    # every single-character change anywhere in the body
    for i in range(len(body)):
        for c in "A_-z0":
            if body[i] != c:
                bad.append(f"{kid}.{body[:i]}{c}{body[i + 1 :]}")
                break
    for b in bad:
        assert t.decode(b) is None, b
    # a token made with another key, under our key id
    other = Tracker(BASE, {"k1": b"o" * 32}, "k1", clock=lambda: SENT)
    assert (
        t.decode(other.token("click", message_id=MID, recipient=RCPT, url="https://evil.example/"))
        is None
    )
    # forging: CTR lets one who knows the payload flip its bytes ("good" to
    # "evil" in the URL), but the synthetic IV no longer matches
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    plain = msgspec.msgpack.encode((MID, RCPT, "", SENT, 1, "https://good.example/"))
    at = 16 + plain.index(b"good")
    flip = bytes(a ^ b for a, b in zip(b"good", b"evil", strict=True))
    evil = raw[:at] + bytes(a ^ b for a, b in zip(raw[at : at + 4], flip, strict=True))
    evil += raw[at + 4 :]
    forged = kid + "." + base64.urlsafe_b64encode(evil).decode().rstrip("=")
    assert t.decode(forged) is None


def test_non_canonical_base64_is_rejected() -> None:
    t = tracker()
    tok = t.token("open", message_id=MID, recipient=RCPT)
    kid, body = tok.split(".")
    if len(body) % 4 in (2, 3):  # unused low bits in the last character
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(body[-1])
        twin = body[:-1] + alphabet[last | 1]
        if twin != body:
            assert t.decode(f"{kid}.{twin}") is None


def test_key_rotation_keeps_old_links_working() -> None:
    old = Tracker(BASE, {"k1": KEY}, "k1", clock=lambda: SENT)
    tok = old.token("click", message_id=MID, recipient=RCPT, url="https://a.example/")
    new = Tracker(BASE, {"k1": KEY, "k2": b"n" * 32}, "k2", clock=lambda: SENT)
    assert new.decode(tok) is not None
    fresh = new.token("click", message_id=MID, recipient=RCPT, url="https://a.example/")
    assert fresh.startswith("k2.")
    assert TokenVerifier({"k1": KEY}).decode(fresh) is None  # old servers don't know k2
    retired = Tracker(BASE, {"k2": b"n" * 32}, "k2")
    assert retired.decode(tok) is None


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigError):
        Tracker("ftp://t.example.com", {"k1": KEY}, "k1")
    with pytest.raises(ConfigError):
        Tracker('https://t.example.com/"x', {"k1": KEY}, "k1")
    with pytest.raises(ConfigError):
        Tracker(BASE, {"k1": b"short"}, "k1")
    with pytest.raises(ConfigError):
        Tracker(BASE, {"k.1": KEY}, "k.1")
    with pytest.raises(ConfigError):
        Tracker(BASE, {"k1": KEY}, "k2")
    assert Tracker(BASE + "/t/", {"k1": KEY}, "k1").base_url == BASE + "/t"


# -- the HTML rewriter --------------------------------------------------------


def test_links_are_rewritten_and_everything_else_is_kept() -> None:
    html = (
        b"<!doctype html><html><head><title>x <a href='https://t/'></title></head>\n"
        b'<body><p class="x">Hi <a href="https://example.com/a">A</a>,\n'
        b"<A HREF='http://Example.com/B?x=1'>B</A> <a href=https://e.com/c>C</a>\n"
        b'<a class=btn  href = "https://e.com/d" target="_blank">D</a>\n'
        b'<area shape="rect" href="https://e.com/area">\n'
        b'<a href="mailto:x@example.com">m</a> <a href="tel:+100">t</a> <a href="#top">f</a>\n'
        b'<a href="/relative">r</a> <a href="ftp://e.com/">ftp</a> <a name="n">n</a>\n'
        b"<a href>e</a>\n"
        b'<img src="https://e.com/img.png"> <link href="https://e.com/s.css">\n'
        b"</body></html>"
    )
    out = no_pixel(html)
    assert clicks(out) == [
        "https://example.com/a",
        "http://Example.com/B?x=1",
        "https://e.com/c",
        "https://e.com/d",
        "https://e.com/area",
    ]
    # remove the rewritten values: the rest is the input, byte for byte
    assert TOKEN_RE.sub(b"@", out) == re.sub(
        rb"https://example\.com/a|http://Example\.com/B\?x=1|https://e\.com/(c|d|area)(?=[\"'>])",
        b"@",
        html,
    )


def test_quotes_and_case_are_preserved() -> None:
    out = no_pixel(b"<a HrEf='https://a.example/'>x</a><a\thref=\"https://b.example/\">y</a>")
    assert re.fullmatch(
        rb"<a HrEf='https://t\.example\.com/c/[^']+'>x</a><a\thref=\"https://t\.example\.com/c/[^\"]+\">y</a>",
        out,
    )


def test_entities_are_decoded_before_signing() -> None:
    html = (
        b'<a href="https://e.com/?a=1&amp;b=2&amp;u=ada%40example.org">1</a>'
        b'<a href="https://e.com/?a=1&#38;b=2&#x26;c=&quot;3&quot;">2</a>'
        b'<a href="https://e.com/?x=1&copy=2&reg;">3</a>'
        b"<a href=' https://e.com/spaced \n'>4</a>"
        b'<a href="https://e.com/a\tb\nc">5</a>'
        b'<a href="https://e.com/caf\xc3\xa9">6</a>'
        b'<a href="&#104;ttps://e.com/encoded-scheme">7</a>'
    )
    assert clicks(no_pixel(html)) == [
        "https://e.com/?a=1&b=2&u=ada%40example.org",
        'https://e.com/?a=1&b=2&c="3"',
        "https://e.com/?x=1&copy=2®",
        "https://e.com/spaced",
        "https://e.com/abc",
        "https://e.com/café",
        "https://e.com/encoded-scheme",
    ]


def test_comments_style_and_script_are_never_rewritten() -> None:
    html = (
        b'<!-- <a href="https://c1.example/"> -->'
        b'<!--> <a href="https://after-abrupt.example/">a</a>'
        b'<!---> <a href="https://after-abrupt2.example/">b</a>'
        b'<!-- x --!> <a href="https://after-bang.example/">c</a>'
        b'<style>a[href="https://s.example/"] { } <a href="https://s2.example/"></style>'
        b"<script>var s = \"<a href='https://j.example/'>\"; // </scripty> </script >"
        b'<a href="https://after-script.example/">d</a>'
        b'<textarea><a href="https://ta.example/"></textarea>'
        b'<!DOCTYPE html><?xml x="<a href=https://pi.example/>"?>'
        b'<![CDATA[<a href="https://cdata.example/">]]>'
        b'<!-- unterminated <a href="https://tail.example/">'
    )
    assert clicks(no_pixel(html)) == [
        "https://after-abrupt.example/",
        "https://after-abrupt2.example/",
        "https://after-bang.example/",
        "https://after-script.example/",
    ]


def test_outlook_conditional_comments_and_vml_buttons() -> None:
    html = (
        b'<!--[if mso]>\n<v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" '
        b'href="https://e.com/button" style="height:40px" arcsize="10%" fillcolor="#1e88e5">'
        b"<w:anchorlock/><center>Go</center></v:roundrect>\n"
        b'<style>a[href="https://in-style.example/"]{}</style><![endif]-->\n'
        b'<!--[if !mso]><!--><a href="https://e.com/button" class="btn">Go</a><!--<![endif]-->\n'
        b'<!--[if gte mso 9]><a href="https://e.com/mso9">x</a><![endif]-->'
        b'<!-- [if mso]><a href="https://not-conditional.example/"><![endif] -->'
    )
    out = no_pixel(html)
    assert clicks(out) == ["https://e.com/button", "https://e.com/button", "https://e.com/mso9"]
    assert b"<!--[if mso]>" in out and b"<![endif]-->" in out and b"<!--<![endif]-->" in out


def test_unsubscribe_and_notrack_links() -> None:
    t = tracker()
    unsub = t.unsubscribe_url(MID, RCPT, "j")
    html = (
        b'<a href="https://e.com/keep" data-mf-notrack>k</a>'
        b'<a data-MF-notrack="" href="https://e.com/keep2">k2</a>'
        b'<a href="https://e.com/unsub?id=1">u</a>'
        b'<a href="https://e.com/other" data-mf-unsubscribe>u2</a>'
        + f'<a href="{unsub}">u3</a>'.encode()
        + b'<a href="https://e.com/tracked">t</a>'
    )
    out = t.rewrite_html(
        html, message_id=MID, recipient=RCPT, unsubscribe_prefix="https://e.com/unsub", opens=False
    )
    assert clicks(out) == ["https://e.com/tracked"]
    assert out.startswith(
        b'<a href="https://e.com/keep">k</a><a href="https://e.com/keep2">k2</a>'
        b'<a href="https://e.com/unsub?id=1">u</a>'
        b'<a href="https://e.com/other" data-mf-unsubscribe>u2</a>'
    )
    assert unsub.encode() in out


def test_open_pixel_goes_before_the_last_body_end_tag() -> None:
    t = tracker()
    out = t.rewrite_html(
        b"<html><body><p>x</p><!-- </body> --></BODY ></html>",
        message_id=MID,
        recipient=RCPT,
        clicks=False,
    )
    m = re.fullmatch(
        rb'<html><body><p>x</p><!-- </body> --><img src="https://t\.example\.com/o/([^"]+)" '
        rb'width="1" height="1" alt="" style="border:0" /></BODY ></html>',
        out,
    )
    assert m is not None
    p = t.decode(m.group(1).decode())
    assert p is not None and (p.kind, p.recipient, p.url) == ("open", RCPT, "")
    tail = t.rewrite_html(b"<p>fragment</p>", message_id=MID, recipient=RCPT)
    assert tail.startswith(b"<p>fragment</p><img src=") and tail.endswith(b" />")


def test_tracking_disabled_is_identity() -> None:
    html = b'<a href="https://e.com/" data-mf-notrack>x</a></body>'
    assert (
        tracker().rewrite_html(html, message_id=MID, recipient=RCPT, clicks=False, opens=False)
        is html
    )


def test_cut_off_tags_and_odd_bytes_are_left_alone() -> None:
    for html in (
        b'<a href="https://e.com/',
        b"<a href='https://e.com/'",
        b"<a href=",
        b"<",
        b"</",
        b"<!",
        b"<!-",
        b"\x00<a\x00href=https://e.com/\x00>",
        b"\xff\xfe<a href='https://e.com/\xff'>",
    ):
        out = no_pixel(html)
        if b"\x00href" in html:
            assert out == html  # the attribute name is "\x00href", not "href"
        elif b"\xff'" in html:
            assert out == html  # not UTF-8: not signed, not rewritten
        else:
            assert out == html


# -- text parts ---------------------------------------------------------------


def test_text_part_urls() -> None:
    t = tracker()
    text = (
        "See https://e.com/a?x=1&y=2. Or (https://e.com/b) or <https://e.com/c>,\n"
        "mailto:x@e.com and https://e.com/unsub/1 and " + BASE + "/u/abc\n"
    ).encode()
    out = t.rewrite_text(
        text, message_id=MID, recipient=RCPT, unsubscribe_prefix="https://e.com/unsub"
    )
    assert clicks(out) == ["https://e.com/a?x=1&y=2", "https://e.com/b", "https://e.com/c"]
    assert TOKEN_RE.sub(b"@", out).decode() == (
        "See @. Or (@) or <@>,\nmailto:x@e.com and https://e.com/unsub/1 and " + BASE + "/u/abc\n"
    )


# -- unsubscribe headers -------------------------------------------------------


def test_unsubscribe_headers() -> None:
    t = tracker()
    (h1, v1), (h2, v2) = t.unsubscribe_headers(MID, RCPT, "j", mailto="unsub@sender.example")
    assert (h1, h2, v2) == ("List-Unsubscribe", "List-Unsubscribe-Post", LIST_UNSUBSCRIBE_POST)
    assert v2 == "List-Unsubscribe=One-Click"
    m = re.fullmatch(
        r"<https://t\.example\.com/u/([^>]+)>, "
        r"<mailto:unsub@sender\.example\?subject=unsubscribe-([^>]+)>",
        v1,
    )
    assert m is not None and m.group(1) == m.group(2)
    p = t.decode(m.group(1), "unsubscribe")
    assert p is not None and (p.recipient, p.message_id, p.job) == (RCPT, MID, "j")
    assert "\r" not in v1 and "\n" not in v1
    assert t.unsubscribe_headers(MID, RCPT)[0][1].count("<") == 1
    for bad in ("a@b\r\nBcc: x@y", "x y@z", "<a@b>", "nobody"):
        with pytest.raises(HeaderError):
            t.unsubscribe_headers(MID, RCPT, mailto=bad)


def test_unsubscribe_pair_is_the_url_and_header_of_one_token() -> None:
    # The composer's one call must give what unsubscribe_url and
    # list_unsubscribe give together: tokens of one key and time are
    # deterministic (AES-SIV), so the strings are equal, not only alike.
    t = tracker()
    for mailto in (None, "unsub@sender.example", "mailto:unsub@sender.example"):
        url, value = t.unsubscribe_pair(MID, RCPT, "j", mailto=mailto)
        assert url == t.unsubscribe_url(MID, RCPT, "j")
        assert value == t.list_unsubscribe(url, mailto=mailto)[0][1]
        assert value == t.unsubscribe_headers(MID, RCPT, "j", mailto=mailto)[0][1]
    for bad in ("a@b\r\nBcc: x@y", "x y@z", "<a@b>", "nobody"):
        with pytest.raises(HeaderError) as got:
            t.unsubscribe_pair(MID, RCPT, mailto=bad)
        with pytest.raises(HeaderError) as old:
            t.list_unsubscribe(t.unsubscribe_url(MID, RCPT), mailto=bad)
        assert got.value.message == old.value.message
    with pytest.raises(ValueError, match="too long for a tracking token"):
        t.unsubscribe_pair(MID, "a" * 10_000 + "@example.org", "j")
