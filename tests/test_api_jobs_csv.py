"""POST /v1/jobs as a form: the recipients CSV streams to disk (past the JSON body limit)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config

BOUNDARY = "----mailsfluxtest7d2f"


def form(fields: dict[str, bytes], csv_bytes: bytes | None) -> bytes:
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value + b"\r\n"
        )  # fmt: skip
    if csv_bytes is not None:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="recipients";'
            ' filename="people.csv"\r\nContent-Type: text/csv\r\n\r\n'.encode()
            + csv_bytes + b"\r\n"
        )  # fmt: skip
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def test_an_uploaded_csv_becomes_a_job(tmp_path: Path) -> None:
    handler = RecordingHandler()
    n = 3000
    csv_bytes = b"email,first\r\n" + b"".join(
        f"p{i}@example.net,P{i}\r\n".encode() for i in range(n)
    )
    template = json.dumps({"sender": "a@acme.example", "subject": "Hi {{first}}",
                           "text": "{{first}}"}).encode()  # fmt: skip
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    with SMTPServer(handler) as smtp:
        # The JSON body limit is far below the upload: the CSV is not a body held whole.
        config = server_config(
            tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url), max_job_body=4096
        )
        key = new_key(config, "acme")
        with Running(config) as srv:
            body = form({"template": template, "name": b"csv"}, csv_bytes)
            assert len(body) > 10 * 4096
            s, _, b = srv.call("POST", "/v1/jobs", raw=body, key=key, headers=headers)
            assert s == 202, b
            jid = b["id"]
            deadline = time.monotonic() + 120
            while True:
                s, _, job = srv.call("GET", f"/v1/jobs/{jid}", key=key)
                if job["state"] == "finished" and job["pending"] == 0:
                    break
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
            assert job["name"] == "csv" and job["rows"] == n
            assert job["counts"] == {"queued": n, "delivered": n}

            # No email column; no file; a template field wrong: each named.
            bad = form({"template": template}, b"mail,first\r\nx@example.net,X\r\n")
            s, _, b = srv.call("POST", "/v1/jobs", raw=bad, key=key, headers=headers)
            assert s == 422 and b["error"]["field"] == "recipients"
            s, _, b = srv.call("POST", "/v1/jobs", raw=form({"template": template}, None),
                               key=key, headers=headers)  # fmt: skip
            assert s == 422 and b["error"]["field"] == "recipients"
            wrong = json.dumps({"sender": "a@acme.example", "subject": 5}).encode()
            s, _, b = srv.call("POST", "/v1/jobs", raw=form({"template": wrong}, csv_bytes),
                               key=key, headers=headers)  # fmt: skip
            assert s == 422 and b["error"]["field"] == "template.$.subject"
            # Uploads leave nothing behind, and no address was on disk in the clear.
            tenant = tmp_path / "data" / "tenants" / "acme"
            assert list((tenant / "uploads").iterdir()) == []
            for f in tenant.rglob("*"):
                if f.is_file():
                    assert b"p1234@example.net" not in f.read_bytes(), f
    got = {r for m in handler.received for r in m.rcpt_tos}
    assert len(got) == n
