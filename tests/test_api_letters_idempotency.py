"""POST /v1/letters honours Idempotency-Key as the other POST routes do: an
unnamed request retried with its key gets the first answer (marked
replayed) and no second letter is printed; the key with another request
is 422."""

from __future__ import annotations

from pathlib import Path

import msgspec

from mailsflux.letters.jobfile import CarrierSpec
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config
from tests.test_api_letters import LETTERS as NAMED

# test_api_letters' request without its name and its bad row: unnamed, so
# only the key can tell a retry from a new request.
LETTERS = {
    **{k: v for k, v in NAMED.items() if k != "name"},
    "recipients": NAMED["recipients"][:1],  # type: ignore[index]
}


def test_a_retried_letters_post_prints_once(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    with SMTPServer(RecordingHandler()) as smtp:
        config = server_config(tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url))
        config = msgspec.structs.replace(config, letters=CarrierSpec(kind="file", dir=str(drop)))
        acme = new_key(config, "acme")
        with Running(config) as srv:
            key = {"Idempotency-Key": "letters-1"}
            s1, h1, b1 = srv.call("POST", "/v1/letters", LETTERS, key=acme, headers=key)
            assert s1 == 200 and b1["submitted"] == 1, b1
            assert "idempotent-replayed" not in h1
            s2, h2, b2 = srv.call("POST", "/v1/letters", LETTERS, key=acme, headers=key)
            assert (s2, b2) == (s1, b1)
            assert h2.get("idempotent-replayed") == "true"
            assert len(list((drop / "acme").glob("*.pdf"))) == 1
            other = {**LETTERS, "sender": "Acme GmbH"}
            s, _, b = srv.call("POST", "/v1/letters", other, key=acme, headers=key)
            assert s == 422 and b["error"]["code"] == "idempotency_key_reused"
            assert len(list((drop / "acme").glob("*.pdf"))) == 1
