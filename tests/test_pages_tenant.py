"""A tenant's own pages: the tracking config names the sender, logo, colours,
lists and a directory of replacement templates and strings (a new language
included); `mailsflux track-server` serves them. A colour that would fail
WCAG AA is refused at load, in one line naming the file and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mailsflux.tracking import Tracker, load_config, write_new_config
from tests._browser import chromium
from tests._http import Server
from tests._pages import MID, RCPT

CUSTOM_UNSUBSCRIBE = """{{> head}}
<p class="from">{{t.from_line}}</p>
<h1>{{heading}}</h1>
<p id="custom">Northwind's own page. {{t.for_address}}</p>
{{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
{{#ask}}<form method="post" action="">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button class="btn" type="submit" name="scope" value="list">{{t.unsub_list}}</button>
</form>{{/ask}}
{{#list_off}}<p class="state">{{t.state_list}}</p>{{/list_off}}
{{> foot}}
"""

ITALIAN = """{
  "unsub_title": "Annulla l'iscrizione",
  "unsub_list": "Annulla l'iscrizione a “{list}”",
  "state_title": "Iscrizione annullata",
  "state_list": "Hai annullato l'iscrizione a “{list}” dal {since_list}."
}"""

TENANT = """
[sender]
name = "Northwind Cloud"
logo_url = "https://cdn.northwind.example/logo.png"
color = "#7a1f5c"
contact = "support@northwind.example"
templates = "pages"

[lists.welcome]
name = "Welcome series"
"""


def test_tenant_templates_language_logo_and_colour(tmp_path: Path) -> None:
    cfg = tmp_path / "tracking.toml"
    write_new_config(cfg, "https://t.northwind.example")
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "unsubscribe.mustache").write_text(CUSTOM_UNSUBSCRIBE, "utf-8")
    (tmp_path / "pages" / "it.json").write_text(ITALIAN, "utf-8")
    (tmp_path / "pages" / "de.json").write_text('{"unsub_title": "Abbestellen"}', "utf-8")
    cfg.write_text(cfg.read_text("utf-8") + TENANT, "utf-8")
    config = load_config(cfg)
    tracker = Tracker(config.base_url, config.keys, config.current_key, clock=lambda: 0)
    url = tracker.unsubscribe_url(MID, RCPT, "welcome")
    path = url[len(config.base_url) :]

    with Server(config.app()) as server, chromium(tmp_path) as b:
        status, headers, body = server.request("GET", path, headers={"Accept-Language": "de"})
        assert status == 200 and b"<title>Abbestellen</title>" in body  # one string overridden
        assert "Möchten Sie".encode() not in body  # the custom template asks nothing like that
        csp = headers["content-security-policy"]
        assert "img-src https://cdn.northwind.example/logo.png;" in csp
        assert "default-src 'none'" in csp

        b.call("Network.setBlockedURLs", urls=["https://*"])  # the logo host does not exist
        b.languages("it-IT,it;q=0.9,en;q=0.5")
        b.open(f"http://127.0.0.1:{server.port}{path}")
        assert b.js("document.documentElement.lang") == "it"
        text = b.text
        assert "Northwind's own page. Address: z…d@example.org" in text  # English fallback
        assert "Annulla l'iscrizione" in text
        assert b.js("document.querySelector('img.logo').getAttribute('src')") == (
            "https://cdn.northwind.example/logo.png"
        )
        assert b.js("document.querySelector('img.logo').alt") == "Northwind Cloud"
        bg = b.js("getComputedStyle(document.querySelector('.btn')).backgroundColor")
        assert bg == "rgb(122, 31, 92)"  # the tenant's colour
        for width in (375, 1000):
            b.screenshot(tmp_path / "screenshots" / f"tenant-{width}.png", width)
        b.click_button("Annulla l'iscrizione a “Welcome series”")
        assert "Hai annullato l'iscrizione a “Welcome series” dal" in b.text
        store = config.open_store()
        try:
            assert store.is_suppressed_for(RCPT, "welcome") and not store.is_suppressed(RCPT)
        finally:
            store.close()

    # Too light a colour: refused when the server starts, in one line.
    cfg.write_text(cfg.read_text("utf-8").replace('"#7a1f5c"', '"#8ab4f8"'), "utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "mailsflux", "track-server", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert str(cfg) in lines[0] and "sender.color" in lines[0], lines[0]
    assert "4.5:1" in lines[0] and "Traceback" not in run.stderr
