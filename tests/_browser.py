"""A real headless Chromium for the page tests, driven over the DevTools
protocol on a pipe (``--remote-debugging-pipe``: NUL-separated JSON on file
descriptors 3 and 4), so no WebSocket client or browser-driver package is needed.

JavaScript is switched off for the pages (``Emulation.setScriptExecutionDisabled``):
forms are submitted by real key presses and mouse clicks, as a person would.
The driver's own ``Runtime.evaluate`` still reads the DOM and computed styles.

Without Chromium the tests skip, saying so; with ``CI=true`` they fail
instead, like the Redis tests: a skip there hides a missing install step.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    env = os.environ.get("MAILSFLUX_TEST_CHROMIUM")
    if env:
        return env
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def need_chromium() -> str:
    exe = find_chromium()
    if exe is None:
        why = (
            "chromium is not installed (./scripts/test.sh installs Debian's chromium package;"
            " or set MAILSFLUX_TEST_CHROMIUM=/path/to/chromium)"
        )
        if IN_CI:
            pytest.fail(f"CI: {why}", pytrace=False)
        pytest.skip(why)
    return exe


def _high(fd: int) -> int:
    """The same pipe end on a descriptor >= 10, so bash's 3<&/4>& cannot clash."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Browser:
    """One headless Chromium with one page (tab)."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_r, to_w = (_high(fd) for fd in os.pipe())
        from_r, from_w = (_high(fd) for fd in os.pipe())
        args = [
            "--headless=new",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--mute-audio",
            "--font-render-hinting=none",
            "about:blank",
        ]
        if os.geteuid() == 0:
            args.insert(0, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        script = f'exec "$0" "$@" 3<&{to_r} 4>&{from_w} {to_r}<&- {from_w}>&-'
        log = open(profile / "chromium.log", "wb")  # the child writes it; closed here below
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", script, exe, *args],
            pass_fds=(to_r, from_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        os.close(to_r)
        os.close(from_w)
        self._w = to_w
        self._r = from_r
        self._id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = ""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable")
        self.call("Network.enable")
        self.call("Emulation.setScriptExecutionDisabled", value=True)
        self.statuses: dict[str, int] = {}

    # -- protocol --------------------------------------------------------------

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._r, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._replies[-1] = {}
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._replies[msg["id"]] = msg
                        self._cond.notify_all()
                else:
                    self._events.put(msg)

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self._id += 1
        mid = self._id
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._replies:
                assert -1 not in self._replies, "chromium exited"
                left = deadline - time.monotonic()
                assert left > 0, f"no answer to {method}"
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        assert "error" not in reply, f"{method}: {reply['error']}"
        return dict(reply.get("result", {}))

    def _drain(self) -> None:
        while True:
            try:
                self._event_seen(self._events.get_nowait())
            except queue.Empty:
                return

    def _event_seen(self, ev: dict[str, Any]) -> None:
        if ev.get("method") == "Network.responseReceived":
            p = ev["params"]
            if p.get("type") == "Document":
                self.statuses[p["response"]["url"]] = p["response"]["status"]

    def wait_load(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "page did not load"
            ev = self._events.get(timeout=left)
            self._event_seen(ev)
            if ev.get("method") == "Page.loadEventFired":
                return

    # -- what the tests use ---------------------------------------------------------

    def set_width(self, width: int, height: int = 900) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )

    def languages(self, accept_language: str) -> None:
        self.call("Network.setExtraHTTPHeaders", headers={"Accept-Language": accept_language})

    def open(self, url: str) -> None:
        self._drain()
        self.call("Page.navigate", url=url)
        self.wait_load()

    def reload(self) -> None:
        self._drain()
        self.call("Page.reload", ignoreCache=True)
        self.wait_load()

    def js(self, expression: str) -> Any:
        """Evaluate in the page (the driver's own reading: the page runs no script)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    @property
    def text(self) -> str:
        return str(self.js("document.body.innerText"))

    @property
    def url(self) -> str:
        return str(self.js("location.href"))

    def dom(self) -> str:
        return str(self.js("document.documentElement.outerHTML"))

    def screenshot(self, path: Path, width: int) -> None:
        """A full-page PNG at ``width`` CSS pixels."""
        self.set_width(width)
        height = int(self.js("document.documentElement.scrollHeight"))
        self.set_width(width, max(height, 200))
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))
        self.set_width(1000)

    def overflows(self, width: int) -> bool:
        """Does the page scroll sideways at ``width`` CSS pixels?"""
        self.set_width(width)
        wide = bool(self.js("document.documentElement.scrollWidth > window.innerWidth"))
        self.set_width(1000)
        return wide

    def key(self, key: str, code: str, keycode: int, text: str = "") -> None:
        for kind in ("keyDown", "keyUp"):
            params: dict[str, Any] = {
                "type": kind,
                "key": key,
                "code": code,
                "windowsVirtualKeyCode": keycode,
            }
            if kind == "keyDown" and text:
                params["text"] = text
            self.call("Input.dispatchKeyEvent", **params)

    def tab(self) -> None:
        self.key("Tab", "Tab", 9)

    def focused(self) -> dict[str, str]:
        """The focused element's text and its focus outline, as computed."""
        return dict(
            self.js(
                "(() => { const e = document.activeElement, s = getComputedStyle(e);"
                " return {tag: e.tagName, text: (e.innerText || e.value || '').trim(),"
                " id: e.id, outline: s.outlineStyle, width: s.outlineWidth,"
                " colour: s.outlineColor}; })()"
            )
        )

    def tab_to(self, text: str, limit: int = 30) -> dict[str, str]:
        """Press Tab until the element showing ``text`` (or with that id) has focus."""
        for _ in range(limit):
            self.tab()
            f = self.focused()
            if text in (f["text"], f["id"]):
                return f
        raise AssertionError(f"Tab never reached {text!r}")

    def press_enter(self) -> None:
        """Enter on the focused button: the browser submits its form."""
        self._drain()
        self.key("Enter", "Enter", 13, "\r")
        self.wait_load()

    def click(self, selector: str, *, navigates: bool = True) -> None:
        """A real mouse click in the middle of the element ``selector`` names."""
        box = self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        assert box is not None, selector
        x, y = box
        self._drain()
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        if navigates:
            self.wait_load()

    def click_button(self, text: str) -> None:
        n = self.js(
            "[...document.querySelectorAll('button')].filter(b => b.innerText.trim() === "
            f"{json.dumps(text)}).length"
        )
        assert n == 1, f"{n} buttons {text!r} in {self.text!r}"
        self.js(
            "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === "
            f"{json.dumps(text)}).setAttribute('data-test-target', '1')"
        )
        self.click('[data-test-target="1"]')

    def checked(self, element_id: str) -> bool:
        return bool(self.js(f"document.getElementById({json.dumps(element_id)}).checked"))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except AssertionError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        self._reader.join(5)
        os.close(self._r)


#: Reads every text element's colour, font size and effective background
#: (the first non-transparent background up its ancestors).
TEXT_COLOURS_JS = """
(() => {
  const rgb = s => (s.match(/[0-9.]+/g) || []).map(Number);
  const bg = e => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const e = n.parentElement, s = getComputedStyle(e);
    if (s.visibility === 'hidden' || s.display === 'none') continue;
    out.push({text: n.textContent.trim().slice(0, 40), tag: e.tagName,
              fg: rgb(s.color).slice(0, 3), bg: bg(e),
              size: parseFloat(s.fontSize), weight: parseInt(s.fontWeight, 10)});
  }
  return out;
})()
"""


def contrast_rgb(a: list[float], b: list[float]) -> float:
    """WCAG 2.x contrast ratio, computed here independently of the package."""

    def lum(c: list[float]) -> float:
        def ch(v: float) -> float:
            s = v / 255
            return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

        return 0.2126 * ch(c[0]) + 0.7152 * ch(c[1]) + 0.0722 * ch(c[2])

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def low_contrast(browser: Browser) -> list[str]:
    """Every text on the page below WCAG AA (4.5:1; 3:1 for large text)."""
    bad = []
    for item in browser.js(TEXT_COLOURS_JS):
        ratio = contrast_rgb(item["fg"], item["bg"])
        large = item["size"] >= 24 or (item["size"] >= 18.66 and item["weight"] >= 700)
        if ratio < (3.0 if large else 4.5):
            bad.append(
                f"{item['tag']} {item['text']!r}: {ratio:.2f}:1 ({item['fg']} on {item['bg']})"
            )
    return bad


@contextlib.contextmanager
def chromium(tmp_path: Path) -> Iterator[Browser]:
    """A headless Chromium for one test (skips, or fails in CI, without one)."""
    exe = need_chromium()
    profile = Path(tempfile.mkdtemp(prefix="mf-chromium-", dir=tmp_path))
    b = Browser(exe, profile)
    b.set_width(1000)
    try:
        yield b
    finally:
        b.close()
