"""Question: what does tracking one HTML part cost?

Mailsflux (compiled scanner, tokens sealed with AES-256-SIV on AES-NI in C,
CMAC over a per-message prefix state) against plain Python doing the job the
way tokens were made before they were sealed: ``re.sub`` over the part with a
callback that decodes the href, builds the msgpack payload, signs it with
``hmac`` (HMAC-SHA256) and base64-encodes the token, then inserts the pixel.
A second plain way seals with ``cryptography``'s AESSIV instead, as the
compiled code does.  The part is ~4 KB of realistic email HTML with 10 links.
Run:

    .venv/bin/python -m pytest bench/bench_track.py --benchmark-enable

or as a script for a table of CPU time per part: ``.venv/bin/python
bench/bench_track.py [N] [--before DIR]``, where ``DIR`` holds another build
of ``_rewrite`` (say ``pip install --target DIR`` of an older commit) to
time in the same run, interleaved.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html as htmllib
import importlib.machinery
import importlib.util
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe
from mailsflux.tracking import Tracker
from mailsflux.tracking._rewrite import AES_NI
from mailsflux.tracking.tokens import token_key

BASE = "https://t.example.com"
KEY = b"K" * 32
MID, RCPT, JOB = "5f1c2a9e0b7d.1234@northwind.example", "zoe.haddad@example.org", "welcome"
SENT = 1_760_000_000


def make_html() -> bytes:
    links = "".join(
        f'<tr><td class="item" style="padding:8px 0;font-family:Arial,sans-serif;font-size:15px">'
        f'<a href="https://shop.northwind.example/products/{i}?utm_source=mail&amp;utm_medium=email'
        f'&amp;utm_campaign=welcome&amp;u=zoe.haddad%40example.org" style="color:#1e88e5;'
        f'text-decoration:none">Product {i}: a thing you will like</a></td></tr>\n'
        for i in range(9)
    )
    head = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Welcome</title>"
        "<style>body{margin:0;padding:0} .item a{color:#1e88e5} @media (max-width:600px)"
        "{table{width:100%!important}}</style></head>\n<body style='margin:0'>\n"
        "<!--[if mso]><table role='presentation' width='600'><tr><td><![endif]-->\n"
        "<table role='presentation' width='100%' cellpadding='0' cellspacing='0'>\n"
        "<tr><td style='padding:24px;font-family:Arial,sans-serif'><h1>Hello Zoë,</h1>"
        "<p>Thank you for joining Northwind. Your Enterprise trial runs until 2026-12-15, "
        "and everything below is ready for you in Pune.</p></td></tr>\n"
    )
    tail = (
        "<tr><td style='padding:24px'><a href='https://northwind.example/account' "
        "class='btn' style='background:#1e88e5;color:#fff;padding:12px 24px'>Open your account"
        "</a></td></tr>\n<tr><td style='font-size:12px;color:#777;padding:24px'>"
        "Northwind Traders, 1 Harbour Road. <a href='mailto:help@northwind.example'>Help</a> "
        "&middot; <a href='https://northwind.example/unsubscribe?u=zoe' data-mf-unsubscribe>"
        "Unsubscribe</a></td></tr>\n</table>\n<!--[if mso]></td></tr></table><![endif]-->\n"
        "</body></html>\n"
    )
    body = head + links + tail
    pad = 4096 - len(body.encode())
    if pad > 0:  # more copy text, to make it ~4 KB
        filler = "<p style='margin:0 0 12px'>" + ("Lorem ipsum dolor sit amet. " * 200)
        body = head + filler[: pad - 4] + "</p>" + links + tail
    return body.encode("utf-8")


HTML = make_html()

_HREF = re.compile(rb"(<a\s[^>]*?href\s*=\s*)([\"'])(.*?)\2([^>]*>)", re.I | re.S)
_BODY_END = re.compile(rb"</body", re.I)


def plain_rewrite(html: bytes) -> bytes:
    """The plain-Python way: re.sub + hmac per link."""
    kid = b"k1"

    def token(kind: int, url: str) -> bytes:
        payload = msgspec.msgpack.encode((MID, RCPT, JOB, SENT, kind, url))
        tag = hmac.new(KEY, kid + b"." + payload, hashlib.sha256).digest()[:16]
        return kid + b"." + base64.urlsafe_b64encode(payload + tag).rstrip(b"=")

    return _plain_html(html, token)


def _plain_html(html: bytes, token: Callable[[int, str], bytes]) -> bytes:
    def sub(m: re.Match[bytes]) -> bytes:
        tag = m.group(0)
        url = htmllib.unescape(m.group(3).decode()).strip()
        if b"data-mf-" in tag or not url.lower().startswith(("http://", "https://")):
            return tag
        q = m.group(2)
        return m.group(1) + q + BASE.encode() + b"/c/" + token(1, url) + q + m.group(4)

    out = _HREF.sub(sub, html)
    pixel = (
        b'<img src="'
        + BASE.encode()
        + b"/o/"
        + token(0, "")
        + b'" width="1" height="1" alt="" style="border:0" />'
    )
    ends = [m.start() for m in _BODY_END.finditer(out)]
    at = ends[-1] if ends else len(out)
    return out[:at] + pixel + out[at:]


def _sealed_plain() -> Callable[[bytes], bytes]:
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

    siv, kid = AESSIV(token_key(KEY)), b"k1"

    def token(kind: int, url: str) -> bytes:
        payload = msgspec.msgpack.encode((MID, RCPT, JOB, SENT, kind, url))
        return kid + b"." + base64.urlsafe_b64encode(siv.encrypt(payload, [kid])).rstrip(b"=")

    return lambda html: _plain_html(html, token)


TRACKER = Tracker(BASE, {"k1": KEY}, "k1", clock=lambda: SENT)


def mailsflux_rewrite() -> bytes:
    return TRACKER.rewrite_html(HTML, message_id=MID, recipient=RCPT, job=JOB)


def plain_one() -> bytes:
    return plain_rewrite(HTML)


def _links(out: bytes) -> int:
    return out.count(b"https://t.example.com/c/")


try:
    import pytest

    from conftest import RATIOS, RESULTS

    RATIOS.append(
        (
            "tracking rewrite speed-up over re.sub + hmac",
            "plain_track_rewrite",
            "mailsflux_track_rewrite",
        )
    )

    @pytest.mark.benchmark(group="track-rewrite")
    def test_mailsflux_track_rewrite(benchmark: Any) -> None:
        out = benchmark(mailsflux_rewrite)
        assert _links(out) == 10
        if benchmark.stats:
            RESULTS["mailsflux_track_rewrite"] = benchmark.stats.stats.mean

    @pytest.mark.benchmark(group="track-rewrite")
    def test_plain_track_rewrite(benchmark: Any) -> None:
        out = benchmark(plain_one)
        assert _links(out) == 10
        if benchmark.stats:
            RESULTS["plain_track_rewrite"] = benchmark.stats.stats.mean
except ImportError:  # run as a plain script without pytest
    pass


def _load_before(where: str) -> Any:
    """The ``_rewrite`` module of another build, loaded beside this one."""
    (path,) = Path(where).rglob("_rewrite.*.so")
    loader = importlib.machinery.ExtensionFileLoader("before._rewrite", str(path))
    spec = importlib.util.spec_from_file_location("before._rewrite", path, loader=loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def _cpu(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    """CPU seconds per call: the best of ``rounds`` runs of ``n`` calls."""
    for _ in range(max(1, n // 20)):
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n)
    return best


if __name__ == "__main__":
    args = sys.argv[1:]
    before_dir = None
    if "--before" in args:
        i = args.index("--before")
        before_dir = args[i + 1]
        del args[i : i + 2]
    n = int(args[0]) if args else 5000
    ours, plain = mailsflux_rewrite(), plain_one()
    assert _links(ours) == _links(plain) == 10, (_links(ours), _links(plain))
    sealed_plain = _sealed_plain()
    runs: dict[str, tuple[Callable[[], object], int]] = {
        "mailsflux rewrite_html (sealed)": (mailsflux_rewrite, n),
        "re.sub + hmac per link (Python)": (plain_one, n // 10),
        "re.sub + AESSIV per link (Python)": (lambda: sealed_plain(HTML), n // 10),
    }
    if before_dir is not None:
        old = _load_before(before_dir).Rewriter(BASE, "k1", KEY)
        before = old.rewrite_html(HTML, MID, RCPT, JOB, SENT, None, True, True)
        assert _links(before) == 10
        runs["before: rewrite_html (signed)"] = (
            lambda: old.rewrite_html(HTML, MID, RCPT, JOB, SENT, None, True, True),
            n,
        )
        print(f"URL length before: {len(before) - len(HTML)} bytes added to the part")
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(3):  # interleaved, so a change in load hits every line alike
        for name, (fn, count) in runs.items():
            best[name] = min(best[name], _cpu(fn, count))
    print(describe())
    print(f"AES path: {'AES-NI' if AES_NI else 'cryptography (no AES-NI)'}")
    print(f"HTML part: {len(HTML)} bytes, 10 tracked links + pixel -> {len(ours)} bytes")
    for name, t in best.items():
        print(f"{name + ':':40s} {t * 1e6:9.2f} us CPU/part")
    ref = best["mailsflux rewrite_html (sealed)"]
    for name, t in best.items():
        if not name.startswith("mailsflux"):
            print(f"ratio ({name} / mailsflux): {t / ref:6.1f}x")
