"""The unsubscribe page in a real browser, JavaScript off: it names the sender,
the list and the masked address; "this list" and "everything" each do what
they say; later visits show the state; undo works for a while, then not;
every step is an event. Screenshots at 375 and 1000 px go under tmp_path."""

from __future__ import annotations

from pathlib import Path

from tests._browser import Browser, chromium
from tests._pages import RCPT, site

LIST = "Unsubscribe from “Welcome series”"
ALL = "Unsubscribe from everything Northwind Cloud sends"


def shots(b: Browser, out: Path, name: str) -> None:
    for width in (375, 1000):
        b.screenshot(out / f"{name}-{width}.png", width)
        assert (out / f"{name}-{width}.png").stat().st_size > 1000
    assert not b.overflows(320), f"{name}: scrolls sideways at 320 px"


def test_unsubscribe_from_a_list_undo_then_everything(tmp_path: Path) -> None:
    out = tmp_path / "screenshots"
    with site(tmp_path) as s, chromium(tmp_path) as b:
        url = s.unsubscribe_url()
        b.open(url)
        assert b.statuses[url] == 200
        text = b.text
        assert "Emails from Northwind Cloud" in text
        assert "“Welcome series”" in text
        assert "z…d@example.org" in text
        assert RCPT not in b.dom() and RCPT.lower() not in b.dom()
        assert b.js("document.scripts.length") == 0
        assert b.js("document.querySelector('meta[name=viewport]') !== null")
        shots(b, out, "1-ask")
        assert s.kinds() == []  # a GET changes nothing (link scanners follow links)

        # Keyboard only: Tab to the list button, its focus ring shows, Enter submits.
        focus = b.tab_to(LIST)
        assert focus["outline"] == "solid" and focus["width"] == "3px", focus
        b.press_enter()
        assert b.statuses[b.url] == 200
        text = b.text
        assert "You are unsubscribed from “Welcome series” since" in text
        assert "Other emails from Northwind Cloud still reach you." in text
        assert "You can undo this until" in text
        assert s.store.is_suppressed_for(RCPT, "welcome")
        assert not s.store.is_suppressed_for(RCPT, "news")
        assert not s.store.is_suppressed(RCPT)
        assert s.kinds() == [("unsubscribe-list", "welcome")]
        shots(b, out, "2-list-off")

        # A later visit shows the same state, and the GET still changes nothing.
        b.open(url)
        assert "You are unsubscribed from “Welcome series” since" in b.text
        assert s.kinds() == [("unsubscribe-list", "welcome")]

        b.click_button("Resubscribe to “Welcome series”")
        text = b.text
        assert "Welcome back: you are subscribed to “Welcome series” again." in text
        assert LIST in text  # the question is back
        assert not s.store.is_suppressed_for(RCPT, "welcome")
        assert s.kinds()[-1] == ("resubscribe-list", "welcome")
        shots(b, out, "3-undone")

        b.click_button(ALL)
        text = b.text
        assert "You are unsubscribed from everything Northwind Cloud sends since" in text
        assert s.store.is_suppressed(RCPT)
        assert s.store.is_suppressed_for(RCPT, "news")
        sup = s.store.suppression(RCPT)
        assert sup is not None and (sup.reason, sup.job) == ("unsubscribe", "welcome")
        assert s.kinds()[-1] == ("unsubscribe", "welcome")
        shots(b, out, "4-all-off")

        # Past the undo window (48 h) the page says so and offers no undo.
        s.clock.now += 49 * 3600
        b.open(url)
        text = b.text
        assert "You are unsubscribed from everything Northwind Cloud sends since" in text
        assert "can no longer be undone from this link" in text
        assert b.js("document.querySelectorAll('input[name=action]').length") == 0
        shots(b, out, "5-too-late")
        assert s.store.is_suppressed(RCPT)

    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n}-{w}.png"
        for n in ("1-ask", "2-list-off", "3-undone", "4-all-off", "5-too-late")
        for w in (375, 1000)
    )
