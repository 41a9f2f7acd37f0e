"""One letter per recipient: Mustache HTML with print CSS, laid out as a PDF
by WeasyPrint, the address placed where the envelope's window shows it.

The stage owns the page: its size, its margins and the window block, which
it puts first in the body (in the flow, so the letter's text starts below
it, as DIN 5008 has it). Its rules are a user stylesheet marked
``!important``, which the cascade puts above the template's own. The
template styles everything else (letterhead, text, footer) and may use
``{{address_lines}}`` and ``{{sender}}`` like any merge variable.

WeasyPrint embeds (subsets) every font it uses. It may fetch only files
under the template's folder: a template cannot make the renderer reach out
to the network (a tracking pixel in a letter would leak who opened it).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from mailsflux.compose import Template
from mailsflux.errors import MissingExtraError, RecipientError, TemplateError

if TYPE_CHECKING:
    from mailsflux.letters.recipients import LetterRecipient


class Paper(msgspec.Struct, frozen=True):
    """A sheet and where its envelope's window falls on it (millimetres,
    from the sheet's top left corner)."""

    size: str
    width: float
    height: float
    #: The window: left, top, width, height.
    window: tuple[float, float, float, float]
    #: The page margins the stage sets: top, right, bottom, left.
    margins: tuple[float, float, float, float]
    #: Inside the window the text keeps this far from its edges (a letter
    #: shifts a little in its envelope).
    inset: float
    #: The address's font size (pt) and line pitch (mm).
    font: float
    line: float


#: CSS pixels per millimetre (WeasyPrint lays out in CSS pixels).
_PX = 96 / 25.4
#: The return address line's height above the address (mm).
RETURN_ZONE = 5.0

PAPERS = {
    # DIN 5008 form B: the address field 85 x 45 mm, 20 mm from the left
    # edge and 45 mm from the top, which a C5/6 or DL window envelope shows.
    "A4": Paper(
        "A4", 210.0, 297.0, (20.0, 45.0, 85.0, 45.0), (27.0, 20.0, 20.0, 25.0),
        inset=4.0, font=10.0, line=4.2,
    ),
    # A #10 window envelope (window 4 1/2 x 1 1/8 in, 7/8 in from the left,
    # 1/2 in from the bottom) with the sheet tri-folded: the window falls
    # 2 in from the sheet's top. Smaller type: five lines must fit.
    "letter": Paper(
        "letter", 215.9, 279.4, (22.2, 50.8, 114.3, 28.6), (19.0, 19.0, 19.0, 25.4),
        inset=2.0, font=9.0, line=3.9,
    ),
}  # fmt: skip


def page_css(paper: Paper) -> str:
    top, right, bottom, left = paper.margins
    x, y, w, h = paper.window
    return f"""
@page {{ size: {paper.size} !important; margin: {top}mm {right}mm {bottom}mm {left}mm !important; }}
html, body {{ margin: 0 !important; padding: 0 !important; }}
.mf-window {{
  display: block !important; position: static !important; float: none !important;
  box-sizing: border-box !important; overflow: hidden !important;
  margin: {y - top}mm 0 8.46mm {x - left}mm !important;
  width: {w}mm !important; height: {h}mm !important;
  padding: {paper.inset}mm !important;
  font-family: "DejaVu Sans", sans-serif !important; color: #000 !important;
}}
.mf-return {{ font-size: 7pt !important; line-height: 3mm !important; height: 3mm !important;
  white-space: nowrap !important; overflow: hidden !important;
  border-bottom: 0.2pt solid #000 !important; margin-bottom: {RETURN_ZONE - 3}mm !important; }}
.mf-address {{ font-size: {paper.font}pt !important; line-height: {paper.line}mm !important; }}
.mf-address div {{ overflow-wrap: anywhere !important; }}
"""


_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def window_html(sender: str, lines: list[str]) -> str:
    # The return zone is kept without a sender too: the address stays put.
    ret = f'<div class="mf-return">{html.escape(sender)}</div>'
    addr = "".join(f"<div>{html.escape(line)}</div>" for line in lines)
    return f'<div class="mf-window">{ret}<div class="mf-address">{addr}</div></div>'


def _weasyprint() -> Any:
    try:
        import weasyprint
    except ImportError as exc:
        raise MissingExtraError(
            f"letters need WeasyPrint ({exc.name or exc}): pip install 'mailsflux[letters]'"
        ) from None
    return weasyprint


def local_fetcher(base: Path) -> Any:
    """A WeasyPrint URL fetcher (the ``URLFetcher`` API of WeasyPrint 70)
    that serves only files under ``base`` and ``data:`` URLs.

    Everything else (http, https, ftp, a file:// outside the folder, a
    symlink leading out of it) is refused before any byte is read or any
    connection made: WeasyPrint then leaves the image or font out and
    warns. The file is read here, not through urllib, so no handler of the
    opener is ever reached for a refused URL.
    """
    import mimetypes
    from urllib.parse import unquote, urlsplit

    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class LocalFetcher(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "file":
                path = Path(unquote(urlsplit(url).path)).resolve()
                if path.is_relative_to(base) and path.is_file():
                    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return URLFetcherResponse(
                        path.as_uri(), path.read_bytes(), {"Content-Type": kind}
                    )
            raise ValueError(f"letters load only files beside the template, not {url}")

    return LocalFetcher(allowed_protocols=("file", "data"), allow_redirects=False)


class LetterRenderer:
    """Compiles the template and the page rules once; renders PDFs."""

    def __init__(
        self,
        template: Path,
        *,
        source: str | None = None,
        paper: str = "A4",
        sender: str = "",
        origin_country: str = "",
        strict: bool = True,
        partials: dict[str, str] | None = None,
    ) -> None:
        wp = _weasyprint()
        from weasyprint.text.fonts import FontConfiguration

        self._wp = wp
        self.paper = PAPERS[paper]
        self.origin_country = origin_country
        self.base = template.parent.resolve()
        try:
            # ``source`` given (an API request's template): ``template`` only
            # names it and its folder, the only one it may load files from.
            source = template.read_text("utf-8") if source is None else source
        except OSError as exc:
            raise TemplateError(
                f"cannot read template: {exc.strerror}", file=str(template)
            ) from None
        self.template = Template(
            source, partials=partials, escape=True, strict=strict, name=str(template)
        )
        self.sender = Template(sender, escape=False, strict=True, name="letter.sender")
        self.fonts = FontConfiguration()
        self.css = wp.CSS(string=page_css(self.paper), font_config=self.fonts)
        self.fetcher = local_fetcher(self.base)

    def html(self, r: LetterRecipient) -> str:
        lines = r.address.lines(origin_country=self.origin_country)
        data: dict[str, Any] = dict(r.vars)
        sender = self.sender.render(data, row=r.row)
        data["address_lines"] = lines
        data["sender"] = sender
        body = self.template.render(data, row=r.row)
        block = window_html(sender, lines)
        m = _BODY.search(body)
        if m is None:
            return block + body
        return body[: m.end()] + block + body[m.end() :]

    def pdf(self, r: LetterRecipient) -> bytes:
        doc = self._wp.HTML(
            string=self.html(r), base_url=str(self.base) + "/", url_fetcher=self.fetcher
        )
        laid = doc.render(stylesheets=[self.css], font_config=self.fonts)
        self._check_fits(laid)
        out: bytes = laid.write_pdf()
        return out

    def _check_fits(self, laid: Any) -> None:
        """The window clips what overflows it: an address that would be cut
        (too many lines, a line wrapped once too often) is not sent."""
        _, y, _, h = self.paper.window
        limit = (y + h - self.paper.inset) * _PX
        for box in laid.pages[0]._page_box.descendants():
            element = getattr(box, "element", None)
            if element is not None and element.get("class") == "mf-address":
                bottom = box.position_y + box.margin_height()
                if bottom > limit + 0.5:
                    raise RecipientError(
                        f"the address does not fit the {self.paper.size} envelope window"
                        f" ({bottom / _PX - y:.0f} mm of {h - self.paper.inset:.0f}); row skipped"
                    )
                return
