"""A sending job honours opt-outs of its own list (its name) as well as global
ones, and ignores opt-outs of other lists; its messages carry a sealed
``{{preferences_url}}`` for the recipient and this list, left untracked."""

from __future__ import annotations

import email
import re
from email.message import Message
from pathlib import Path

from mailsflux.tracking.config import load_config, write_new_config
from tests._jobs import TRACKING, make_job, send_job
from tests._mail import RecordingHandler, SMTPServer

HTML = (
    "<p>Hi {{first_name}}</p>"
    '<p><a href="{{preferences_url}}">Email preferences</a> '
    '<a href="{{unsubscribe_url}}">Unsubscribe</a> '
    '<a href="https://sender.example/blog">Blog</a></p>'
)
TEXT = "Hi {{first_name}}\nPreferences: {{preferences_url}}\n"


def html_of(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode("utf-8")
    raise AssertionError("no HTML part")


def test_list_opt_out_skips_this_job_only(tmp_path: Path) -> None:
    rows = [[f"{n}@example.org", n.title(), n.title(), "Pro"] for n in ("anna", "bob", "carl")]
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        job = make_job(tmp_path, rows, relay=smtp.url, html=HTML, text=TEXT)
        tracking = job.parent / "tracking.toml"
        write_new_config(tracking, "https://t.sender.example")
        store = load_config(tracking).open_store()
        store.suppress_list("Anna@Example.org", "job")  # this job's list (the file's stem)
        store.suppress_list("bob@example.org", "another-list")
        store.close()
        job.write_text(job.read_text("utf-8") + TRACKING, "utf-8")
        summary, problems = send_job(job)

    mailed = sorted(r.rcpt_tos[0] for r in handler.received)
    assert mailed == ["bob@example.org", "carl@example.org"]
    assert summary.sent == 2
    assert [p.message.split(";")[0] for p in problems] == ["anna@example.org: suppressed"]

    verifier = load_config(tracking).verifier()
    for r in handler.received:
        msg = email.message_from_bytes(r.data)
        html = html_of(msg)
        prefs = re.findall(r'href="https://t\.sender\.example/p/([^"]+)"', html)
        assert len(prefs) == 1, html  # our own URL: not rewritten into a click
        p = verifier.decode_preferences(prefs[0])
        assert p is not None and (p.recipient, p.job) == (r.rcpt_tos[0], "job")
        assert r.rcpt_tos[0].encode() not in prefs[0].encode()  # sealed, not just signed
        assert "https://t.sender.example/c/" in html  # other links are tracked as before
