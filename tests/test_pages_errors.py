"""A bad or expired link gets a page that says what happened and what to do
next, in the reader's language, readable on a phone; every answer (pixel,
redirect, page, 400, 404, 405, 410, 413) carries the same security headers,
and every text answer a charset."""

from __future__ import annotations

from pathlib import Path

from mailsflux.tracking.pages import SenderSpec
from mailsflux.tracking.server import MAX_BODY
from tests._browser import chromium
from tests._pages import MID, RCPT, SENDER, site

SECURITY = {
    "x-frame-options": "DENY",
    "cache-control": "no-store, private",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


def check_headers(status: int, headers: dict[str, str], what: str) -> None:
    for name, value in SECURITY.items():
        assert headers.get(name) == value, (what, status, name, headers)
    csp = headers.get("content-security-policy", "")
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, (what, csp)
    assert "form-action 'self'" in csp and "script-src" not in csp, (what, csp)
    ctype = headers.get("content-type", "")
    if ctype.startswith("text/"):
        assert "charset=utf-8" in ctype, (what, ctype)


def test_error_pages_and_headers_everywhere(tmp_path: Path) -> None:
    sender = SenderSpec(
        name=SENDER.name, contact=SENDER.contact, privacy_url=SENDER.privacy_url, link_days=30
    )
    out = tmp_path / "screenshots"
    with site(tmp_path, sender) as s, chromium(tmp_path) as b:
        good = s.unsubscribe_url()
        tok = good.rsplit("/", 1)[1]
        prefs = s.preferences_url()
        ptok = prefs.rsplit("/", 1)[1]
        click = s.tracker.click_url("https://e.example/", message_id=MID, recipient=RCPT)
        opened = s.tracker.token("open", message_id=MID, recipient=RCPT)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        cases: list[tuple[str, str, bytes | None, dict[str, str], int]] = [
            ("GET", f"/u/{tok}", None, {}, 200),
            ("HEAD", f"/u/{tok}", None, {}, 200),
            ("GET", f"/p/{ptok}", None, {}, 200),
            ("GET", f"/o/{opened}", None, {}, 200),
            ("GET", click[len(s.tracker.base_url) :], None, {}, 302),
            ("GET", f"/u/{tok[:-4]}", None, {}, 404),
            ("GET", f"/p/{ptok[:-4]}", None, {}, 404),
            ("GET", f"/p/{tok}", None, {}, 404),  # an unsubscribe token is no preference token
            ("GET", "/", None, {}, 404),
            ("GET", "/favicon.ico", None, {}, 404),
            ("POST", f"/o/{opened}", b"", {}, 405),
            ("DELETE", f"/u/{tok}", None, {}, 405),
            ("PUT", f"/p/{ptok}", b"", {}, 405),
            ("POST", f"/u/{tok}", b"x=1", form, 400),
            ("POST", f"/p/{ptok}", b"x=1", form, 400),
            ("POST", f"/u/{tok}", b"x" * (MAX_BODY + 1), form, 413),
        ]
        for method, path, body, hdrs, want in cases:
            status, headers, data = s.server.request(method, path, body=body, headers=hdrs)
            assert status == want, (method, path, status)
            check_headers(status, headers, f"{method} {path[:12]}")
            if status >= 400:
                assert headers["content-type"] == "text/html; charset=utf-8"
                if method != "HEAD":
                    assert b'<meta name="viewport"' in data and b"<h1>" in data
                    assert b"What you can do" in data
            if status == 405:
                assert headers["allow"]
        assert not s.store.is_suppressed(RCPT)
        assert s.kinds() == [("open", ""), ("click", "")]

        # In the browser: a mangled link, in French.
        b.languages("fr-FR,fr;q=0.9")
        bad = f"{s.origin}/u/{tok[:-4]}"
        b.open(bad)
        assert b.statuses[bad] == 404
        text = b.text
        assert "Ce lien ne fonctionne pas" in text
        assert "Ce que vous pouvez faire" in text
        assert "support@northwind.example" in text  # whom to write to
        assert b.js("document.documentElement.lang") == "fr"
        for width in (375, 1000):
            b.screenshot(out / f"error-bad-{width}.png", width)
        assert not b.overflows(320)

        # An expired preference link (link_days = 30): 410, nothing changed,
        # what to do next.
        s.clock.now += 31 * 86400
        b.languages("en")
        b.open(prefs)
        assert b.statuses[prefs] == 410
        text = b.text
        assert "This link has expired" in text and "Nothing was changed." in text
        assert "Open the most recent email from Northwind Cloud" in text
        for width in (375, 1000):
            b.screenshot(out / f"error-expired-{width}.png", width)
        status, headers, _ = s.server.request(
            "POST", f"/p/{ptok}", body=b"form=preferences&stop_all=1", headers=form
        )
        assert status == 410
        check_headers(status, headers, "expired POST")
        assert not s.store.is_suppressed(RCPT)
        # An opt-out always works, however old the link; links to content too.
        status, _, _ = s.server.request(
            "POST", f"/u/{tok}", body=b"List-Unsubscribe=One-Click", headers=form
        )
        assert status == 200 and s.store.is_suppressed(RCPT)
        assert s.server.request("GET", click[len(s.tracker.base_url) :])[0] == 302
