"""A letter template's images load from its own folder and nowhere else.

``<img src="logo.png">`` beside the template is embedded in the PDF; an
image on a real loopback HTTP server is never requested (the server counts
zero requests), and neither a ``file://`` URL outside the folder nor a
``../`` path leaving it is read: the PDF then has the one image only.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from struct import pack
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest

from mailsflux.letters import LetterRenderer
from mailsflux.letters.pool import render_one
from mailsflux.letters.recipients import recipient_of
from tests._loopback import serving


def _png(rgb: tuple[int, int, int]) -> bytes:
    """A 4x4 PNG of one colour (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return pack(">I", len(data)) + kind + data + pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(rgb) * 4 for _ in range(4))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


class Counting(ThreadingHTTPServer):
    requests = 0


class Handler(BaseHTTPRequestHandler):
    server: Counting

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests += 1
        body = _png((255, 0, 0))
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def web() -> Iterator[Counting]:
    with serving(Counting(("127.0.0.1", 0), Handler)) as server:
        yield server


def _images(pdf: bytes) -> int:
    page = pdfium.PdfDocument(pdf)[0]
    return len(list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])))


def test_template_assets_only_from_its_folder(tmp_path: Path, web: Counting) -> None:
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "logo.png").write_bytes(_png((0, 0, 255)))
    outside = tmp_path / "outside.png"
    outside.write_bytes(_png((0, 255, 0)))
    port = web.server_address[1]
    source = (
        '<html><body><img src="logo.png" style="width:20mm">'
        f'<img src="http://127.0.0.1:{port}/x.png" style="width:20mm">'
        f'<img src="{outside.as_uri()}" style="width:20mm">'
        '<img src="../outside.png" style="width:20mm">'
        '<img src="file:///etc/passwd" style="width:20mm">'
        "<p>Dear {{name}}</p></body></html>"
    )
    renderer = LetterRenderer(folder / "letter.html", source=source, strict=False)
    r = recipient_of(
        "x", 2, "r1",
        {"name": "Max Muster", "street_address": "Hauptstr. 1", "city": "Berlin",
         "postal_code": "10115", "country_code": "DE"},
        {"name": "Max"},
    )  # fmt: skip
    assert not isinstance(r, str) and hasattr(r, "address")
    pdf = render_one(renderer, r)  # type: ignore[arg-type]
    assert isinstance(pdf, bytes), pdf
    assert _images(pdf) == 1  # the logo; nothing from outside the folder
    assert web.requests == 0
