"""Regenerate recipients.csv: 1,200 made-up recipients on reserved domains.

Deterministic (seeded), so the committed file can be checked against it.
Three rows are bad on purpose, to show that a bad row is reported and
skipped while the job goes on: an invalid address, a row missing its last
columns, and a name holding a line break (a header injection attempt).
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

FIRST = [
    "Ada",
    "Grace",
    "Linus",
    "Zoë",
    "José",
    "Mei",
    "Aarav",
    "Olga",
    "Kwame",
    "Sofía",
    "Hiroshi",
    "Fatima",
    "Liam",
    "Noor",
    "Émile",
    "Ingrid",
    "Tomasz",
    "Chidi",
    "Anaïs",
    "Ravi",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Okafor",
    "Müller",
    "García",
    "Chen",
    "Sharma",
    "Ivanova",
    "Mensah",
    "Nakamura",
    "Haddad",
    "O'Brien",
    "Kowalski",
    "Dubois",
    "Lindqvist",
    "Rossi",
]
COMPANIES = [
    "Acme Analytics",
    "Blue Fern Labs",
    "Cobalt & Co",
    "Dunmore Freight",
    "Elm Street Bakery",
    "Fjord Systems",
    "Granite Health",
    'Harbor "HQ" Ltd',
]
CITIES = ["Lisbon", "Osaka", "Nairobi", "Toronto", "Kraków", "São Paulo", "Oslo", "Pune"]
DOMAINS = [
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "inbox.test",
    "corp.example.com",
    "bücher.example",
    "post.example.org",
]
PLANS = ["Starter", "Team", "Business", "Enterprise"]


def rows(n: int = 1200) -> list[list[str]]:
    rnd = random.Random(2026)
    out = []
    for i in range(n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        local = f"{first}.{last}.{i}".lower()
        local = local.encode("ascii", "ignore").decode().replace("'", "")
        trial = rnd.random() < 0.4
        out.append(
            [
                f"{local}@{rnd.choice(DOMAINS)}",
                f"{first} {last}",
                first,
                rnd.choice(COMPANIES),
                rnd.choice(PLANS),
                rnd.choice(CITIES),
                "yes" if trial else "",
                f"2026-12-{rnd.randint(1, 28):02d}" if trial else "",
            ]
        )
    out[41][0] = "not-an-address"
    out[402] = out[402][:3]
    out[777][1] = "Mallory\r\nBcc: victim@example.com"
    return out


def main() -> int:
    path = Path(__file__).with_name("recipients.csv")
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["email", "name", "first_name", "company", "plan", "city", "trial", "trial_end"])
        w.writerows(rows())
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
