"""Outbound authentication: SPF, DKIM and DMARC of what a job sends, checked in DNS.

Before a job starts (and in ``mailsflux domains check``) the DNS must show:

- DKIM: ``selector._domainkey.d`` publishes the public half of the key the
  job signs with;
- SPF: the envelope domain's record authorises the relay (or
  ``[delivery] source_ip``), evaluated by pyspf;
- DMARC: ``_dmarc.FROM`` (or its organizational domain) has a record;
- alignment: the From domain aligns with the DKIM ``d=`` (strict or relaxed
  per ``adkim``, organizational domains from the Public Suffix List).

Each failing check names the record to publish::

    ident = identity(from_domain="shop.com", dkim_domain="shop.com", selector="s1",
                     key_pem=pem, relay_host="smtp.relay.net")
    report = check(ident)           # synchronous: DNS and pyspf
    for f in report.failures():
        print(f.line())             # "dkim: ...; publish s1._domainkey.shop.com TXT ..."

:class:`Checker` is what jobs use: enforce/warn/off, reserved-domain
exemption, one check per identity per run.
"""

from __future__ import annotations

from mailsflux.authcheck.check import Finding, Identity, Report, check, identity
from mailsflux.authcheck.lookup import DNSUnavailable
from mailsflux.authcheck.policy import (
    Checker,
    exemption,
    from_domain,
    job_identity,
    key_identity,
    refusal,
    reserved_notice,
    signing_key,
)
from mailsflux.authcheck.records import Record, organizational_domain, reserved

__all__ = [
    "Checker",
    "DNSUnavailable",
    "Finding",
    "Identity",
    "Record",
    "Report",
    "check",
    "exemption",
    "from_domain",
    "identity",
    "job_identity",
    "key_identity",
    "organizational_domain",
    "refusal",
    "reserved",
    "reserved_notice",
    "signing_key",
]
