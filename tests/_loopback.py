"""Loopback HTTP peers for the letters tests: a server on port 0 served in
a thread, JSON replies, and the letter job file that points at one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, TypeVar

S = TypeVar("S", bound=HTTPServer)


@contextmanager
def serving(server: S) -> Iterator[S]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def reply_json(
    handler: BaseHTTPRequestHandler, code: int, doc: Any, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps(doc).encode()
    handler.send_response(code)
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def http_letter_job(folder: Path, url: str, template: str, csv: str, extra: str = "") -> Path:
    """A letter job in ``folder`` (template, recipients with an ``id``
    column) whose carrier is the HTTP API at ``url``, its key in the
    environment variable LETTERS_TEST_KEY."""
    (folder / "letter.html").write_text(template, "utf-8")
    (folder / "r.csv").write_text(csv, "utf-8")
    job = folder / "job.toml"
    job.write_text(
        '[letter]\nhtml = "letter.html"\norigin_country = "DE"\n'
        '[recipients]\nfile = "r.csv"\nid_column = "id"\n'
        f'[carrier]\nkind = "http"\nurl = "{url}"\napi_key_env = "LETTERS_TEST_KEY"\n' + extra,
        "utf-8",
    )
    return job
