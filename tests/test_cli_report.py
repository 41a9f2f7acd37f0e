"""``mailsflux report JOB``: per-domain outcomes, engagement and bounce reasons,
as a table, JSON, and a self-contained HTML page whose charts render."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mailsflux.tracking.config import load_config
from mailsflux.tracking.events import TrackEvent
from tests._bounces import write_tracking_config
from tests._browser import chromium
from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer, parse


def reply(address: str, n: int) -> str | None:
    if address.startswith("user3@") or address.startswith("user7@"):
        return "550 5.1.1 <x>: user unknown"
    if address.startswith("user5@"):
        return "452 4.2.2 mailbox full"
    return None


def test_report_counts_rates_reasons_and_charts(tmp_path: Path) -> None:
    handler = RecordingHandler(reply)
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, people(10), relay=server.url, attempts=1)
        run_cli("send", str(job), "-q")
    cfg = write_tracking_config(tmp_path / "tracking.toml")
    delivered = [m for m in handler.received]
    with load_config(cfg).open_store() as store:
        for m in delivered[:3]:  # three people open, one of them twice; one clicks
            mid = parse(m.data)["Message-ID"].strip("<>")
            for _ in range(2):
                store.record(TrackEvent(kind="open", at=time.time(), message_id=mid,
                                        recipient=m.rcpt_tos[0], job="job"))  # fmt: skip
        m = delivered[0]
        store.record(TrackEvent(kind="click", at=time.time(), message_id="x", job="job",
                                recipient=m.rcpt_tos[0], url="https://e.example/"))  # fmt: skip
        bot = TrackEvent(kind="open", at=time.time(), message_id="y", job="job",
                         recipient="bot@example.com", machine=True, reason="proxy")  # fmt: skip
        store.record(bot)
        store.flush()

    out = run_cli("report", "job", "--json", "--tracking", str(cfg))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    t = doc["totals"]
    assert (t["messages"], t["delivered"], t["bounced"], t["deferred"]) == (10, 7, 2, 1)
    assert (t["opened"], t["clicked"]) == (3, 1)  # people, once per message; the proxy not
    assert doc["bounce_reasons"] and sum(n for _, n in doc["bounce_reasons"]) == 2
    by = {r["domain"]: r for r in doc["domains"]}
    assert set(by) == {"example.com", "example.org"}
    assert by["example.org"]["bounced"] == 2  # user3 and user7 are odd rows: example.org

    page = tmp_path / "report.html"
    table = run_cli("report", "job", "--tracking", str(cfg), "--html", str(page))
    assert table.returncode == 0 and "example.org" in table.stdout
    assert "top bounce reasons:" in table.stdout
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # nothing fetched from outside
    with chromium(tmp_path) as b:
        b.open(page.as_uri())
        assert b.js("document.images.length") == 3
        assert b.js("[...document.images].every(i => i.complete && i.naturalWidth > 300)")
        assert "Top bounce reasons" in b.text
