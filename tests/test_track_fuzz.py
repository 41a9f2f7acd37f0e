"""Fuzzing the compiled rewriter: random HTML-ish bytes never crash or hang it,
and the output is the input but for the rewritten hrefs, the dropped
``data-mf-notrack`` attributes and the pixel."""

from __future__ import annotations

import os
import re
import time
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailsflux.tracking import Tracker, _rewrite
from mailsflux.tracking._rewrite import attr_unescape

BASE = b"https://t.example.com"
T = Tracker(BASE.decode(), {"k1": b"f" * 32}, "k1", clock=lambda: 1_760_000_000)
RW = T._rw
MID, RCPT = "m.1@x.example", "r@y.example"

TOKENS = [
    *(b"<a ", b"<A ", b"<a", b"<area ", b"<v:roundrect ", b"<V:RECT ", b"<img ", b"<link "),
    *(b"href=", b"HREF=", b'href="', b"href='", b"href = ", b'"', b"'", b"`", b"=", b"/"),
    *(b" ", b"\t", b"\n", b"\r\n", b"\x0c", b">", b"<", b"/>", b"</a>", b"</", b"<!", b"<?"),
    *(b"https://e.com/x", b"http://E.com/?a=1&amp;b=2", b"HTTPS://e.com", b"https://", b"#top"),
    *(b"&amp;", b"&", b"&copy", b"&copy;", b"&#x26;", b"&#38", b"&#0;", b"&#xD800;", b"&quot;"),
    *(b"mailto:a@b", b"tel:1", b"https://t.example.com/c/k1.AAAA", b"https://t.example.com/u/x"),
    *(b"<!--", b"-->", b"--!>", b"<!-->", b"<!--->", b"-", b"!", b"[", b"]>", b"<![CDATA["),
    *(b"<!--[if mso]>", b"<!--[IF gte mso 9]>", b"<![endif]-->", b"<!--[if !mso]><!-->"),
    *(b"<!--<![endif]-->", b"<style>", b"</style>", b"</STYLE ", b"<script>", b"</script>"),
    *(b"<textarea>", b"</textarea>", b"<title>", b"<plaintext>", b"<xmp>"),
    *(b"data-mf-notrack", b"DATA-MF-NOTRACK=''", b"data-mf-unsubscribe", b"</body>", b"</BODY "),
    *(b"<body>", b"\x00", b"\xff", b"\x80", b"\xc3\xa9", b"\xe2\x82", b"\xf0\x9d\x84\x9e"),
]

html_bytes = st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=4)), max_size=60).map(
    b"".join
)

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_TOKEN = re.compile(rb"[A-Za-z0-9_.-]+")
_DROP = re.compile(
    rb"[\t\n\x0c\r /]*data-mf-notrack(?:[\t\n\x0c\r ]*=[\t\n\x0c\r ]*"
    rb"(?:\"[^\"]*\"|'[^']*'|[^\t\n\x0c\r >]*))?",
    re.I,
)
_PIXEL = re.compile(
    rb'<img src="https://t\.example\.com/o/([A-Za-z0-9_.-]+)" width="1" height="1" alt="" '
    rb'style="border:0" />'
)


def check(html: bytes, out: bytes, clicks: bool, opens: bool) -> int:
    """Walk the scanner's edits over input and output; return the rewritten count."""
    pi = po = 0
    rewritten = 0
    for start, end, kind in RW.edits(html, clicks, opens):
        gap = html[pi:start]
        assert out[po : po + len(gap)] == gap, (pi, po)
        po += len(gap)
        raw = html[start:end]
        if kind == "href":
            prefix = BASE + b"/c/"
            if out.startswith(prefix, po) and not raw.startswith(prefix):
                m = _TOKEN.match(out, po + len(prefix))
                assert m is not None
                p = T.decode(m.group(0).decode())
                assert p is not None and p.kind == "click"
                assert p.url.lower().startswith(("http://", "https://"))
                if b"&" not in raw:
                    cleaned = raw.strip(bytes(range(33))).replace(b"\t", b"")
                    cleaned = cleaned.replace(b"\n", b"").replace(b"\r", b"")
                    assert p.url.encode() == cleaned
                else:
                    assert p.url == attr_unescape(raw.decode()).strip(
                        "".join(map(chr, range(33)))
                    ).replace("\t", "").replace("\n", "").replace("\r", "")
                po = m.end()
                rewritten += 1
            else:
                assert out[po : po + len(raw)] == raw
                po += len(raw)
        elif kind == "drop":
            assert _DROP.fullmatch(raw), raw
        else:
            assert kind == "pixel" and start == end
            m = _PIXEL.match(out, po)
            assert m is not None
            p = T.decode(m.group(1).decode())
            assert p is not None and p.kind == "open" and p.recipient == RCPT
            po = m.end()
        pi = end
    assert out[po:] == html[pi:]
    return rewritten


@FUZZ
@given(html=html_bytes, clicks=st.booleans(), opens=st.booleans())
@example(html=b'<a href="https://e.com/" data-mf-notrack>', clicks=True, opens=True)
@example(
    html=b"<!--[if mso]><v:roundrect href=https://e.com/><![endif]--></body>",
    clicks=True,
    opens=True,
)
def test_random_html_rewrites_only_hrefs(html: bytes, clicks: bool, opens: bool) -> None:
    out = T.rewrite_html(html, message_id=MID, recipient=RCPT, clicks=clicks, opens=opens)
    if not clicks and not opens:
        assert out == html
        return
    check(html, out, clicks, opens)


@FUZZ
@given(html=st.binary(max_size=300))
def test_random_bytes(html: bytes) -> None:
    out = T.rewrite_html(html, message_id=MID, recipient=RCPT)
    check(html, out, True, True)
    assert T.rewrite_html(html, message_id=MID, recipient=RCPT, clicks=False, opens=False) == html


@settings(max_examples=300, deadline=None)
@given(text=st.binary(max_size=200))
def test_random_text_parts(text: bytes) -> None:
    out = T.rewrite_text(text, message_id=MID, recipient=RCPT)
    assert isinstance(out, bytes)


def test_large_and_pathological_inputs_finish_quickly() -> None:
    cases = [
        os.urandom(1 << 20),
        b"<" * 200_000,
        b"<!--" * 100_000,
        b"<a href='" * 50_000,
        b"<style>" + b"</styl" * 100_000,
        b"<!--[if mso]>" + b"<a href=https://e.com/x>" * 20_000 + b"<![endif]-->",
        b"<a " + b"x=1 " * 200_000 + b"href=https://e.com/>",
        b"&" * 100_000,
        b"<a href='https://e.com/?" + b"&amp;&copy=" * 20_000 + b"'>",
    ]
    for html in cases:
        t0 = time.perf_counter()
        out = T.rewrite_html(html, message_id=MID, recipient=RCPT)
        check(html, out, True, True)
        assert time.perf_counter() - t0 < 5.0


# -- the AES-256-SIV sealing in C ------------------------------------------------

_NI = _rewrite.aes_ni_available()
_ads = st.binary(max_size=40)


@pytest.mark.skipif(not _NI, reason="no AES-NI on this CPU")
@settings(max_examples=500, deadline=None)
@given(key=st.binary(min_size=64, max_size=64), ad=_ads, data=st.binary(max_size=600))
def test_c_siv_matches_cryptography(key: bytes, ad: bytes, data: bytes) -> None:
    assert _rewrite.siv_encrypt(key, ad, data) == AESSIV(key).encrypt(data, [ad])


_text = st.text(max_size=70)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mid=_text,
    rcpt=_text,
    job=_text,
    sent=st.integers(min_value=-(2**40), max_value=2**40),
    paths=st.lists(st.text(max_size=60), max_size=20),
    ni=st.booleans(),
)
def test_every_sealed_link_opens_to_its_fields(
    mid: str, rcpt: str, job: str, sent: int, paths: list[str], ni: bool
) -> None:
    """Random message fields (every alignment of the per-message CMAC state)
    and any number of links (sealed eight at a time): each token opens, with
    the cryptography package, to exactly what went in."""
    urls = ["https://e.example/" + quote(p) for p in paths]
    html = "".join(f'<a href="{u}">x</a>' for u in urls).encode() + b"</body>"
    t = Tracker(BASE.decode(), {"k1": b"f" * 32}, "k1", clock=lambda: sent)
    try:
        _rewrite.use_aes_ni(ni)
        out = t.rewrite_html(html, message_id=mid, recipient=rcpt, job=job)
    finally:
        _rewrite.use_aes_ni(True)
    got = []
    for route, tok in re.findall(rb"https://t\.example\.com/([co])/([A-Za-z0-9_.-]+)", out):
        p = T.verifier.decode(tok.decode())
        assert p is not None
        assert (p.message_id, p.recipient, p.job, p.sent_at) == (mid, rcpt, job, sent)
        assert p.kind == ("click" if route == b"c" else "open")
        if p.kind == "click":
            got.append(p.url)
    assert got == urls
