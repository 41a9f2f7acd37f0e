"""Two DMARC records at the From domain end policy discovery (RFC 7489
6.6.3): no policy applies, even though the organizational domain has one."""

from __future__ import annotations

from pathlib import Path

from tests._auth import DOMAIN, RELAY_IP, SELECTOR, _txt, check_at, write_key, zone
from tests._dns import DNSServer

SUB = f"news.{DOMAIN}"


def test_two_records_at_the_from_domain_mean_no_policy(tmp_path: Path) -> None:
    key, dkim = write_key(tmp_path)
    records = zone(dkim)
    records[f"{SELECTOR}._domainkey.{SUB}"] = {"TXT": [_txt(dkim)]}
    records[SUB] = {"TXT": [f'"v=spf1 ip4:{RELAY_IP} -all"']}
    records[f"_dmarc.{SUB}"] = {"TXT": ['"v=DMARC1; p=none"', '"v=DMARC1; p=reject"']}
    with DNSServer(records) as dns:
        report = check_at(dns.port, key, SUB)
    [failure] = report.failures()
    assert failure.check == "dmarc"
    assert f"_dmarc.{SUB} has 2 DMARC records" in failure.detail
