"""A Unicode From domain is checked as its IDNA 2008 A-label: it aligns with
the same domain written as d=xn--..., and its records are asked for there."""

from __future__ import annotations

from pathlib import Path

from tests._auth import RELAY_IP, SELECTOR, _txt, check_at, write_key
from tests._dns import DNSServer

IDN = "bücher-mail.co.uk"
ALABEL = "xn--bcher-mail-9db.co.uk"


def test_unicode_from_aligns_with_its_a_label(tmp_path: Path) -> None:
    key, dkim = write_key(tmp_path)
    records = {
        ALABEL: {"TXT": [f'"v=spf1 ip4:{RELAY_IP} -all"']},
        f"{SELECTOR}._domainkey.{ALABEL}": {"TXT": [_txt(dkim)]},
        f"_dmarc.{ALABEL}": {"TXT": ['"v=DMARC1; p=reject"']},
    }
    with DNSServer(records) as dns:
        report = check_at(dns.port, key, IDN, ALABEL)
    assert report.ok, [f.line() for f in report.failures()]
    assert report.domain == ALABEL
