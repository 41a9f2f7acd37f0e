"""The preference page in a real browser, in German (Accept-Language), reached
from the unsubscribe page's link: the lists this person gets, changed with
checkboxes and a mouse, no JavaScript; the objection to tracking stops the
server recording their opens and clicks (the links still work)."""

from __future__ import annotations

from pathlib import Path

from tests._browser import chromium
from tests._pages import MID, RCPT, site


def test_change_lists_and_object_to_tracking_in_german(tmp_path: Path) -> None:
    out = tmp_path / "screenshots"
    with site(tmp_path) as s, chromium(tmp_path) as b:
        # An earlier campaign this person clicked in: the page lists it too.
        s.store.suppress_list(RCPT, "spring-sale", at=s.clock.now - 90 * 86400)
        b.languages("de-CH,de;q=0.9,en;q=0.5")
        b.open(s.unsubscribe_url())
        assert "Möchten Sie keine E-Mails „Welcome series“ von Northwind Cloud mehr" in b.text
        assert b.js("document.documentElement.lang") == "de"
        b.click('a[href^="../p/"]')
        assert "/p/" in b.url and b.statuses[b.url] == 200
        text = b.text
        assert "Ihre E-Mail-Einstellungen" in text
        assert "Wählen Sie, was Northwind Cloud an z…d@example.org sendet." in text
        for name in ("Welcome series", "Product news", "spring-sale"):
            assert name in text
        # Receiving: the sender's two lists; the old opt-out stays off, locked
        # (past the undo window only signing up again brings it back).
        assert b.checked("list-1") and b.checked("list-2") and not b.checked("list-3")
        assert b.js("document.getElementById('list-3').disabled")
        assert not b.checked("stop-all") and not b.checked("no-tracking")
        labels = b.js(
            "[...document.querySelectorAll('input[type=checkbox]')]"
            ".map(i => i.labels.length === 1 && i.labels[0].innerText.trim().length > 0)"
        )
        assert labels == [True] * 5
        for width in (375, 1000):
            b.screenshot(out / f"preferences-{width}.png", width)
        assert not b.overflows(320)

        # Clicking a label toggles its checkbox: the labels are wired up.
        b.click('label[for="list-2"]', navigates=False)
        b.click('label[for="no-tracking"]', navigates=False)
        assert not b.checked("list-2") and b.checked("no-tracking")
        b.click_button("Auswahl speichern")
        text = b.text
        assert "Ihre Auswahl ist gespeichert." in text
        assert b.checked("list-1") and not b.checked("list-2") and b.checked("no-tracking")
        assert s.store.is_suppressed_for(RCPT, "news")
        assert not s.store.is_suppressed_for(RCPT, "welcome")
        assert s.store.objects_to_tracking(RCPT)
        assert s.kinds() == [("unsubscribe-list", "news"), ("objection", "welcome")]
        for width in (375, 1000):
            b.screenshot(out / f"preferences-saved-{width}.png", width)

        # The objection holds on the server: opens and clicks are not recorded,
        # but the pixel still loads and the link still leads where it should.
        opened = s.tracker.token("open", message_id=MID, recipient=RCPT, job="welcome")
        status, _, _ = s.server.request("GET", f"/o/{opened}")
        assert status == 200
        click = s.tracker.click_url("https://northwind.example/x", message_id=MID, recipient=RCPT)
        status, headers, _ = s.server.request("GET", click[len(s.tracker.base_url) :])
        assert (status, headers["location"]) == (302, "https://northwind.example/x")
        other = s.tracker.token("open", message_id=MID, recipient="ann@example.org")
        assert s.server.request("GET", f"/o/{other}")[0] == 200
        s.store.flush()
        assert [e.recipient for e in s.store.events(kind="open")] == ["ann@example.org"]
        assert s.store.events(kind="click") == []

        # Taken back (within the undo window): news again, tracking allowed again.
        b.click('label[for="list-2"]', navigates=False)
        b.click('label[for="no-tracking"]', navigates=False)
        b.click_button("Auswahl speichern")
        assert b.checked("list-2") and not b.checked("no-tracking")
        assert not s.store.is_suppressed_for(RCPT, "news")
        assert not s.store.objects_to_tracking(RCPT)
        assert s.kinds()[-2:] == [("resubscribe-list", "news"), ("objection-withdrawn", "welcome")]
        s.server.request("GET", f"/o/{opened}")
        s.store.flush()
        assert len(s.store.events(kind="open", recipient=RCPT)) == 1

        # "Stop everything" from the same page.
        b.click('label[for="stop-all"]', navigates=False)
        b.click_button("Auswahl speichern")
        assert "Sie sind seit" in b.text and "von allen E-Mails von Northwind Cloud abgemeldet" in (
            b.text
        )
        assert b.checked("stop-all") and s.store.is_suppressed(RCPT)
