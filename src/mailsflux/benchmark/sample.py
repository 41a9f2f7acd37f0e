"""Realistic sample mail for the benchmarks: a welcome campaign.

Templates with a subject, a text and an HTML part, personalised rows, links
to track; :func:`write_job` lays it out as a job directory (what ``mailsflux
send`` reads) and :func:`signed_messages` pre-renders signed messages in
memory for the load generator, with a throwaway key that never touches disk.
"""

from __future__ import annotations

import csv
import time
from email.utils import formatdate
from pathlib import Path
from typing import NamedTuple

from mailsflux.compose import MessageBuilder, Template
from mailsflux.dkim import Signer, generate_private_key

SENDER = "Northwind Cloud <hello@northwind.example>"
SENDER_ADDRESS = "hello@northwind.example"
DOMAIN = "northwind.example"
SELECTOR = "bench"
SUBJECT = "Welcome to Northwind, {{first_name}}! Your {{plan}} plan is ready"
TEXT = """Hello {{first_name}},

welcome to Northwind Cloud. Your {{plan}} plan for {{company}} is ready, and
your workspace in {{city}} has been set up.

{{#trial}}Your trial runs until {{trial_end}}: upgrade any time at
https://northwind.example/billing?plan={{plan}}
{{/trial}}
Getting started: https://northwind.example/docs/start
Your dashboard:  https://app.northwind.example/
{{filler}}
--
Northwind Cloud, 1 Harbour Street, Portsmouth
"""
HTML = """<!doctype html>
<html><body style="font-family: sans-serif">
<h1>Welcome, {{first_name}}!</h1>
<p>Your <b>{{plan}}</b> plan for {{company}} is ready, and your workspace in
{{city}} has been set up.</p>
{{#trial}}<p>Your trial runs until {{trial_end}}:
<a href="https://northwind.example/billing?plan={{plan}}">upgrade any time</a>.</p>{{/trial}}
<p><a href="https://northwind.example/docs/start">Getting started</a> &middot;
<a href="https://app.northwind.example/">Your dashboard</a></p>
<p>{{filler}}</p>
<p style="color: #888">Northwind Cloud, 1 Harbour Street, Portsmouth</p>
</body></html>
"""
FIRST = ("Zoë", "Ade", "Mia", "Liam", "Ana", "Kenji", "Priya", "Omar", "Elif", "Jonas", "Sofía")
LAST = ("Haddad", "Okafor", "Müller", "Brennan", "Silva", "Tanaka", "Iyer", "Nasser", "Kaya")
COMPANIES = ("Dunmore Freight", "Acme Rocketry", "Blue Finch", "Kestrel Labs", "Orchard & Co")
CITIES = ("Pune", "Lagos", "Berlin", "Cork", "São Paulo", "Osaka", "Izmir", "Oslo")
PLANS = ("Starter", "Team", "Business", "Enterprise")
FILLER = "Northwind keeps your data in the region you chose, encrypted at rest and in transit. "
COLUMNS = ("email", "name", "first_name", "company", "city", "plan", "trial", "trial_end")


def row(i: int) -> dict[str, str]:
    first = FIRST[i % len(FIRST)]
    last = LAST[(i // len(FIRST)) % len(LAST)]
    return {
        "email": f"{first.lower().replace('ë', 'e').replace('í', 'i')}.{i}@example{i % 7}.org",
        "name": f"{first} {last}",
        "first_name": first,
        "company": COMPANIES[i % len(COMPANIES)],
        "city": CITIES[i % len(CITIES)],
        "plan": PLANS[i % len(PLANS)],
        "trial": "yes" if i % 3 else "",
        "trial_end": "2026-12-15",
    }


def filler(nbytes: int) -> str:
    """About ``nbytes`` of prose (each of the two parts carries it once)."""
    if nbytes <= 0:
        return ""
    return (FILLER * (nbytes // len(FILLER) + 1))[:nbytes]


class Prerendered(NamedTuple):
    recipient: str
    data: bytes


def signed_messages(
    count: int, *, size: int = 0, algorithm: str = "rsa-sha256"
) -> list[Prerendered]:
    """``count`` personalised, DKIM-signed messages of about ``size`` bytes
    (0: as the templates come, about 2.5 kB), signed with a key made here."""
    signer = Signer(
        domain=DOMAIN,
        selector=SELECTOR,
        key=generate_private_key(algorithm),
        algorithm=algorithm,
    )
    subject, text, html = (
        Template(SUBJECT, escape=False),
        Template(TEXT, escape=False),
        Template(HTML),
    )
    builder = MessageBuilder(sender=SENDER, headers={"X-Campaign": "bench"})
    date = formatdate(time.time())
    pad = ""

    def one(i: int) -> bytes:
        r = dict(row(i), filler=pad)
        raw, _, _, _ = builder.build(
            to=r["email"],
            to_name=r["name"],
            subject=subject.render(r),
            date=date,
            message_id=f"bench.{i}@{DOMAIN}",
            text=text.render_bytes(r),
            html=html.render_bytes(r),
        )
        return signer.sign(raw)

    if size > 0:
        # Two parts carry the filler, and quoted-printable grows it a little.
        pad = filler((size - len(one(0))) * 45 // 100)
    return [Prerendered(row(i)["email"], one(i)) for i in range(count)]


def write_job(
    directory: Path,
    rows: int,
    *,
    algorithm: str = "rsa-sha256",
    relay: str = "smtp+plain://127.0.0.1:25",
    connections: int = 8,
    tracking: bool = True,
    spool: str | None = None,
) -> Path:
    """A job directory with ``rows`` recipients; returns the job file.

    ``spool``: the job's ``[spool] dir`` (relative to the job file); None
    leaves the user's default spool."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "welcome.txt").write_text(TEXT.replace("{{filler}}", ""), encoding="utf-8")
    (directory / "welcome.html").write_text(HTML.replace("{{filler}}", ""), encoding="utf-8")
    with (directory / "recipients.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        for i in range(rows):
            r = row(i)
            w.writerow([r[c] for c in COLUMNS])
    track = (
        '[tracking]\nconfig = "tracking.toml"\ngenerate = true\n'
        'base_url = "http://127.0.0.1:8025"\nopens = true\nclicks = true\n'
        'unsubscribe_mailto = "unsubscribe@northwind.example"\n\n'
        if tracking
        else ""
    )
    (directory / "job.toml").write_text(
        f"""name = "bench"

[message]
from = "{SENDER}"
subject = "{SUBJECT}"
html = "welcome.html"
text = "welcome.txt"

[recipients]
file = "recipients.csv"
email_column = "email"
name_column = "name"

[dkim]
domain = "{DOMAIN}"
selector = "{SELECTOR}"
key = "dkim/{SELECTOR}.pem"
algorithm = "{algorithm}"
generate = true

{track}[delivery]
relay = "{relay}"
connections = {connections}
messages_per_connection = 100000
"""
        + (f'\n[spool]\ndir = "{spool}"\n' if spool is not None else ""),
        encoding="utf-8",
    )
    return directory / "job.toml"
