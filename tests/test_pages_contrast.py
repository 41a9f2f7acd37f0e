"""WCAG AA contrast of the recipient pages and of the example job's templates.

Two checks, computed here (not by the package's own ``contrast``):
- from the CSS itself: every text colour the stylesheets and inline styles
  declare, against its own rule's background or, without one, against every
  background the document uses (no browser needed);
- in Chromium: every piece of text on each page, its computed colour
  against the computed background behind it.
"""

from __future__ import annotations

import re
from pathlib import Path

from mailsflux.compose import Template
from mailsflux.tracking.pages import Pages
from tests._browser import Browser, chromium, contrast_rgb, low_contrast
from tests._pages import site
from tests.conftest import EXAMPLE

_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_STYLE_ATTR = re.compile(r'style="([^"]*)"')
_COLOUR = re.compile(r"(?<![-\w])color\s*:\s*(#[0-9a-fA-F]{3,6})")
_BACKGROUND = re.compile(r"background(?:-color)?\s*:\s*(#[0-9a-fA-F]{3,6})")


def rgb(hex_colour: str) -> list[float]:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return [int(h[i : i + 2], 16) for i in (0, 2, 4)]


def declared_pairs(html: str, surfaces: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(where, text colour, background) for every text colour the document sets:
    against its own rule's background, or else against each surface's (the
    rules text sits on: page, card...) and white."""
    blocks: list[tuple[str, str]] = []
    for style in re.findall(r"<style>(.*?)</style>", html, re.S):
        style = re.sub(r"@media[^{]*\{((?:[^{}]*\{[^{}]*\})*)\s*\}", r"\1", style)
        blocks += [(sel.strip(), body) for sel, body in _RULE.findall(style)]
    blocks += [("style attribute", body) for body in _STYLE_ATTR.findall(html)]
    backgrounds = {
        m for sel, body in blocks if sel in surfaces for m in _BACKGROUND.findall(body)
    } | {"#ffffff"}
    assert len(backgrounds) > 1, "no surface found"
    pairs = []
    for where, body in blocks:
        for fg in _COLOUR.findall(body):
            own = _BACKGROUND.findall(body)
            for bg in own or sorted(backgrounds):
                pairs.append((where, fg, bg))
    return pairs


def below_aa(html: str, surfaces: tuple[str, ...]) -> list[str]:
    return [
        f"{where}: {fg} on {bg} is {contrast_rgb(rgb(fg), rgb(bg)):.2f}:1"
        for where, fg, bg in declared_pairs(html, surfaces)
        if contrast_rgb(rgb(fg), rgb(bg)) < 4.5
    ]


def example_html() -> str:
    source = (EXAMPLE / "welcome.html").read_text("utf-8")
    data = {
        "first_name": "Zoe",
        "plan": "Team",
        "company": "Haddad & Co",
        "trial": True,
        "trial_end": "1 March",
        "city": "Lyon",
        "email": "zoe@example.org",
        "unsubscribe_url": "https://t.example/u/x",
        "preferences_url": "https://t.example/p/x",
    }
    return Template(source).render(data)


def test_declared_colours_reach_aa() -> None:
    example = (".wrapper", ".content", "body")
    assert len(declared_pairs(example_html(), example)) > 5  # the parser sees them
    assert below_aa(example_html(), example) == []
    pages = Pages()
    loc = pages.locale("en")
    t = pages.texts(loc, {"address": "z…d@example.org", "list": "News"})
    for page in ("unsubscribe", "preferences", "error"):
        html = pages.render(page, loc, t, title="x", heading="x", ask=True, steps=["x"]).decode()
        surfaces = ("body", ".card", "footer")
        assert len(declared_pairs(html, surfaces)) > 5, page
        assert below_aa(html, surfaces) == [], page


def computed(b: Browser, what: str) -> None:
    bad = low_contrast(b)
    assert bad == [], f"{what}: {bad}"


def test_rendered_text_reaches_aa_in_chromium(tmp_path: Path) -> None:
    with site(tmp_path) as s, chromium(tmp_path) as b:
        url = s.unsubscribe_url()
        b.open(url)
        computed(b, "unsubscribe: ask")
        b.click_button("Unsubscribe from “Welcome series”")
        computed(b, "unsubscribe: list off, with notice")
        b.click_button("Unsubscribe from everything Northwind Cloud sends")
        computed(b, "unsubscribe: all off")
        b.open(s.preferences_url())
        computed(b, "preferences")
        b.click_button("Save my choices")
        computed(b, "preferences: saved")
        b.open(f"{s.origin}/u/nope")
        computed(b, "error")

        # The example job's message, as a mail program would show it (images off).
        page = tmp_path / "welcome.html"
        page.write_text(example_html(), "utf-8")
        b.call("Network.setBlockedURLs", urls=["http://*", "https://*"])
        b.open(page.as_uri())
        assert "Welcome aboard, Zoe!" in b.text
        computed(b, "examples/welcome/welcome.html")
