"""MTA-STS enforce, and the MX host named by the policy offers STARTTLS with a
certificate valid for its name (issued by the job's tls_ca): delivered over
TLS, the session counted as a success of policy "sts", and the policy cached
in the spool directory for the next run."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests._policy import CA, MailRecorder, policy, send_mx, sts_zone
from tests._tls import TLSServer


def test_enforce_with_good_tls_delivers(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    with (
        TLSServer(handler, ca.server_context(["mx.example.com"])) as smtp,
        ca.policy_server(policy("enforce", "mx.example.com")) as web,
    ):
        summary = send_mx(tmp_path, sts_zone(web, txt_id="20261129"), smtp.port, ca)
    assert (summary.sent, summary.deferred) == (1, 0)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
    counts = summary.tls["example.com"]
    assert (counts.policy, counts.success, counts.failure) == ("sts", 1, 0)
    assert web.requests == 1
    cache = json.loads((Path(os.environ["MAILSFLUX_SPOOL"]) / "mta-sts.json").read_text())
    assert cache["example.com"]["mode"] == "enforce"
    assert cache["example.com"]["id"] == "20261129"
