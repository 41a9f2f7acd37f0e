"""A letter's address lands in the envelope's window, on A4 and US Letter.

The PDF is rendered to pixels with PDFium (another engine than the one that
made it), twice: with the address and with an empty one. The pixels dark
only in the first are the address: all of them must fall inside the
window rectangle, and there must be some. Nothing else of the letter may
reach into the window's band either.
"""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest

from mailsflux.errors import RecipientError
from mailsflux.letters import PAPERS, LetterRenderer, PostalAddress, check_address
from mailsflux.letters.jobfile import AddressColumns
from mailsflux.letters.recipients import LetterRecipient

#: Pixels per millimetre of the rendering.
SCALE = 4.0
MM = 72 / 25.4  # PDF points per millimetre


def _letter(tmp_path: Path, paper: str, country: str, *, blank: bool = False) -> bytes:
    tpl = tmp_path / "letter.html"
    # A body only under the window (DIN 5008's text starts below it), plus
    # a letterhead at the top right: neither may reach into the window.
    tpl.write_text(
        "<html><head><style>.head{position:absolute;top:0;right:0}</style></head><body>"
        '<div class="head">Letterhead {{plan}}</div><p>Dear {{name}},</p>'
        + "<p>Body text of the letter, long enough to fill lines.</p>" * 8
        + "</body></html>",
        "utf-8",
    )
    rows = {
        "DE": {"name": "Erika Mustermann", "street": "Hauptstraße 5", "city": "Berlin",
               "postal_code": "10115", "country": "DE"},
        "US": {"name": "John Smith", "company": "Acme Corp", "street": "1600 Amphitheatre Pkwy",
               "city": "Mountain View", "state": "CA", "postal_code": "94043", "country": "US"},
    }  # fmt: skip
    row = {**rows[country], "plan": "Pro"}
    addr = check_address(row, AddressColumns())
    if blank:  # at home, so not even the country's name
        addr = PostalAddress(country_code="DE")
    r = LetterRecipient(ref="c1", row=2, address=addr, vars=row)
    renderer = LetterRenderer(
        tpl, paper=paper, sender="Sender Ltd, 1 Road, Town", origin_country="DE"
    )
    return renderer.pdf(r)


def _dark_pixels(pdf: bytes) -> tuple[list[tuple[int, int]], tuple[float, float]]:
    doc = pdfium.PdfDocument(pdf)
    page = doc[0]
    w_pt, h_pt = page.get_size()
    img = page.render(scale=SCALE / MM, grayscale=True).to_pil().convert("L")
    px = img.load()
    assert px is not None
    dark = [(x, y) for y in range(img.height) for x in range(img.width) if px[x, y] < 128]
    return dark, (w_pt / MM, h_pt / MM)


def _fonts_embedded(pdf: bytes) -> list[bool]:
    doc = pdfium.PdfDocument(pdf)
    page = doc[0]
    out = []
    for obj in page.get_objects():
        if obj.type == pdfium_c.FPDF_PAGEOBJ_TEXT:
            font = pdfium_c.FPDFTextObj_GetFont(obj.raw)
            out.append(bool(pdfium_c.FPDFFont_GetIsEmbedded(font)))
    return out


@pytest.mark.parametrize(("paper", "country"), [("A4", "DE"), ("letter", "US")])
def test_address_block_inside_the_window(tmp_path: Path, paper: str, country: str) -> None:
    pdf = _letter(tmp_path, paper, country)
    spec = PAPERS[paper]
    dark, (w_mm, h_mm) = _dark_pixels(pdf)
    assert abs(w_mm - spec.width) < 1 and abs(h_mm - spec.height) < 1
    x, y, w, h = spec.window
    without, _ = _dark_pixels(_letter(tmp_path, paper, country, blank=True))
    address = set(dark) - set(without)
    assert len(address) > 500, "no address on the page"
    outside = [
        (px, py)
        for px, py in address
        if not (x * SCALE <= px <= (x + w) * SCALE and y * SCALE <= py <= (y + h) * SCALE)
    ]
    assert outside == [], f"{len(outside)} of the address's dark pixels outside the window"
    # The band of the page the window spans, top to bottom.
    band = [(px, py) for px, py in dark if y * SCALE - 8 <= py <= (y + h) * SCALE + 8]
    inside = [
        (px, py)
        for px, py in band
        if x * SCALE <= px <= (x + w) * SCALE and y * SCALE <= py <= (y + h) * SCALE
    ]
    assert len(inside) > 500, "no address in the window"
    assert len(inside) == len(band), f"{len(band) - len(inside)} dark pixels outside the window"
    # The address is in the window's left part (a reader's eye, a scanner's OCR).
    assert min(px for px, _ in inside) < (x + 10) * SCALE
    # The letter's own text is there too, below the window.
    assert any(py > (y + h + 5) * SCALE for _, py in dark)
    fonts = _fonts_embedded(pdf)
    assert fonts and all(fonts), "every font embedded"


def test_domestic_letter_has_no_country_line(tmp_path: Path) -> None:
    addr = check_address(
        {"name": "Erika", "street": "Hauptstraße 5", "city": "Berlin", "postal_code": "10115",
         "country": "de"}, AddressColumns()
    )  # fmt: skip
    assert addr.lines(origin_country="DE") == ["Erika", "Hauptstraße 5", "10115 BERLIN"]
    assert addr.lines(origin_country="US")[-1] == "GERMANY"


def test_an_address_the_window_would_cut_is_refused(tmp_path: Path) -> None:
    tpl = tmp_path / "letter.html"
    tpl.write_text("<p>Dear {{name}}</p>", "utf-8")
    row = {"name": "John Smith", "company": "Acme Corp", "street": "Suite 100\nBuilding 4\n1600"
           " Amphitheatre Parkway West", "city": "Mountain View", "state": "CA",
           "postal_code": "94043", "country": "US"}  # fmt: skip
    r = LetterRecipient(ref="c1", row=7, address=check_address(row, AddressColumns()), vars=row)
    with pytest.raises(RecipientError, match="does not fit the letter envelope window"):
        LetterRenderer(tpl, paper="letter", origin_country="DE").pdf(r)
    # A4's window is taller: the same address fits there.
    assert LetterRenderer(tpl, paper="A4", origin_country="DE").pdf(r).startswith(b"%PDF")
