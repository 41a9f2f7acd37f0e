"""A DKIM key record whose h= leaves out sha256, or whose s= is not for
email, is useless to receivers and fails; k= is compared case-insensitively."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._auth import DKIM_NAME, _txt, check_at, write_key, zone
from tests._dns import DNSServer


@pytest.mark.parametrize(
    ("change", "ok", "why"),
    [
        (("v=DKIM1;", "v=DKIM1; h=sha1;"), False, "allows only h=sha1"),
        (("v=DKIM1;", "v=DKIM1; h=sha1:sha256;"), True, ""),
        (("v=DKIM1;", "v=DKIM1; s=other;"), False, "is not for email"),
        (("v=DKIM1;", "v=DKIM1; s=other:email;"), True, ""),
        (("k=rsa", "k=RSA"), True, ""),
    ],
)
def test_key_record_flags(tmp_path: Path, change: tuple[str, str], ok: bool, why: str) -> None:
    key, dkim = write_key(tmp_path)
    assert change[0] in dkim
    records = zone(dkim)
    records[DKIM_NAME] = {"TXT": [_txt(dkim.replace(*change))]}
    with DNSServer(records) as dns:
        finding = check_at(dns.port, key).findings[0]
    assert finding.check == "dkim"
    assert finding.ok is ok, finding.line()
    assert why in finding.detail
