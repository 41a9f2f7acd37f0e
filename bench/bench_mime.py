"""Question: what does rendering + MIME-assembling one personalised message cost?

Mailsflux (compiled Mustache render of subject, text and HTML, then the
compiled MIME builder: RFC 2047 subject and To, quoted-printable parts,
multipart/alternative; no DKIM) against the stdlib ``email`` package building
the same message (``EmailMessage`` + ``set_content``/``add_alternative`` +
``as_bytes``) from the same templates rendered by pre-split string joins.
The message: ~7.5 KB multipart/alternative, non-ASCII subject, HTML ~4 KB
with 10 links, text ~1.5 KB. Run:

    .venv/bin/python -m pytest bench/bench_mime.py --benchmark-enable

or as a script for a quick table: ``.venv/bin/python bench/bench_mime.py [N]``.
"""

from __future__ import annotations

import html as htmlmod
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _machine import best_of, describe
from mailsflux.jobs.composer import Composer
from mailsflux.jobs.jobfile import load_job
from mailsflux.types import Recipient

SUBJECT = "Willkommen bei Nordwind, {{first_name}}! Ihr {{plan}}-Tarif ist bereit ☀"
SENDER = "Nordwind Cloud <hallo@nordwind.example>"
VARS = {
    "email": "zoe.haddad@example.org",
    "name": "Zoë Haddad",
    "first_name": "Zoë",
    "company": "Dunmore Freight & Söhne",
    "plan": "Enterprise",
    "city": "São Paulo",
}

_LINK = (
    '      <tr><td style="padding:6px 0;font-size:15px;line-height:22px">'
    '<a href="https://app.nordwind.example/{path}?u={{{{email}}}}&amp;ref=welcome" '
    'style="color:#1a73e8;text-decoration:none">{label}</a> &mdash; {blurb}</td></tr>\n'
)
_LINKS = [
    ("dashboard", "Open your dashboard", "everything for {{company}} in one place"),
    ("team/invite", "Invite your team", "bring colleagues from {{city}} along"),
    ("connect", "Connect a data source", "databases, buckets and queues"),
    ("guides/sso", "Set up single sign-on", "SAML and OIDC, ten minutes"),
    ("billing", "Billing for {{plan}}", "invoices, cards and receipts"),
    ("guides/retention", "Data retention", "keep what you need, drop the rest"),
    ("status", "Service status", "uptime and incident history"),
    ("api", "API reference", "every endpoint, with examples"),
    ("community", "Community forum", "ask, answer, share"),
    ("settings/notifications", "Email preferences", "choose what we send you"),
]


def html_template() -> str:
    rows = "".join(_LINK.format(path=p, label=lab, blurb=b) for p, lab, b in _LINKS)
    return (
        '<!DOCTYPE html>\n<html lang="de"><head><meta charset="utf-8">'
        "<title>Willkommen</title></head>\n"
        '<body style="margin:0;padding:0;background:#f4f5f7;'
        'font-family:Helvetica,Arial,sans-serif">\n'
        '<span style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
        "Ihr {{plan}}-Tarif ist bereit: Dashboard, Team, Datenquellen und Hilfe, "
        "alles an einem Ort.</span>\n"
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0">\n'
        '  <tr><td align="center" style="padding:24px">\n'
        '  <table role="presentation" width="600" style="background:#ffffff;border-radius:6px">\n'
        '    <tr><td style="padding:32px 40px 8px;font-size:22px;font-weight:bold">'
        "Hallo {{first_name}},</td></tr>\n"
        '    <tr><td style="padding:8px 40px;font-size:15px;line-height:22px">'
        "willkommen bei Nordwind Cloud! Ihr {{plan}}-Tarif für {{company}} ist aktiv, "
        "und Ihr erster Arbeitsbereich wartet schon auf Sie.</td></tr>\n"
        '    <tr><td style="padding:8px 40px"><table role="presentation" width="100%">\n'
        + rows
        + "    </table></td></tr>\n"
        '    <tr><td style="padding:16px 40px 32px;font-size:13px;color:#6b7280">'
        "Fragen? Antworten Sie einfach auf diese E-Mail; ein Mensch in {{city}} "
        "antwortet Ihnen.<br>Nordwind Cloud GmbH, Hafenstraße 1, Beispielstadt</td></tr>\n"
        '    <tr><td style="padding:0 40px 32px;font-size:12px;line-height:18px;color:#9ca3af">'
        "Sie erhalten diese E-Mail an {{email}}, weil Sie sich bei nordwind.example "
        "angemeldet haben. Diese Nachricht enthält Informationen zu Ihrem Konto und "
        "kann nicht abbestellt werden, solange das Konto besteht. Impressum: Nordwind "
        "Cloud GmbH, Geschäftsführung: A. Beispiel, Registergericht Beispielstadt HRB "
        "12345, USt-IdNr. DE000000000. Datenschutz: Wir verarbeiten Ihre Daten nur zur "
        "Bereitstellung des Dienstes; Einzelheiten finden Sie in unserer "
        "Datenschutzerklärung auf nordwind.example.</td></tr>\n"
        "  </table>\n  </td></tr>\n</table>\n</body></html>\n"
    )


TEXT = """Hallo {{first_name}},

willkommen bei Nordwind Cloud! Ihr {{plan}}-Tarif für {{company}} ist aktiv,
und Ihr erster Arbeitsbereich wartet schon auf Sie.

In drei Schritten loslegen:

  1. Dashboard öffnen: https://app.nordwind.example/dashboard?ref=welcome
  2. Team einladen: https://app.nordwind.example/team/invite
  3. Erste Datenquelle verbinden: https://docs.nordwind.example/connect

Unsere Anleitungen decken alles ab, von Single Sign-on bis Datenaufbewahrung:
https://docs.nordwind.example/guides

Abrechnung für Ihren {{plan}}-Tarif: https://app.nordwind.example/billing
Status: https://status.nordwind.example
API: https://docs.nordwind.example/api

Was als Nächstes kommt: In den ersten Tagen schicken wir Ihnen kurze Tipps
zu den Funktionen, die Teams wie {{company}} am häufigsten nutzen: geteilte
Arbeitsbereiche, automatische Berichte und Benachrichtigungen, wenn sich in
Ihren Daten etwas Wichtiges ändert. Jede dieser E-Mails lässt sich mit einem
Klick abbestellen, und Ihre Einstellungen können Sie jederzeit ändern:
https://app.nordwind.example/settings/notifications

Fragen? Antworten Sie einfach auf diese E-Mail; ein Mensch in {{city}}
antwortet Ihnen, meist noch am selben Tag.

Viele Grüße
Ihr Nordwind-Team

--
Nordwind Cloud GmbH, Hafenstraße 1, Beispielstadt
Sie erhalten diese E-Mail, weil Sie sich bei nordwind.example angemeldet haben.
Abmelden: https://nordwind.example/unsubscribe?u={{email}}
"""


def _split(src: str) -> list[str]:
    """Literal, name, literal, name, ... (a template compiled for str.join)."""
    return re.split(r"\{\{\s*(\w+)\s*\}\}", src)


def _render(parts: list[str], data: dict[str, str], escape: bool) -> str:
    out = []
    for i, p in enumerate(parts):
        if i % 2:
            v = data[p]
            out.append(htmlmod.escape(v) if escape else v)
        else:
            out.append(p)
    return "".join(out)


def setup() -> tuple[Callable[[], bytes], Callable[[], bytes]]:
    tmp = Path(tempfile.mkdtemp(prefix="mf-bench-mime-"))
    (tmp / "body.html").write_text(html_template(), encoding="utf-8")
    (tmp / "body.txt").write_text(TEXT, encoding="utf-8")
    (tmp / "rcpt.csv").write_text("email,name\n", encoding="utf-8")
    (tmp / "job.toml").write_text(
        "[message]\n"
        f"from = {SENDER!r}\nsubject = {SUBJECT!r}\n"
        'html = "body.html"\ntext = "body.txt"\n'
        '[recipients]\nfile = "rcpt.csv"\n'
        '[dkim]\ndomain = "nordwind.example"\nselector = "s"\nkey = "none.pem"\n',
        encoding="utf-8",
    )
    composer = Composer(load_job(tmp / "job.toml"), None)
    shutil.rmtree(tmp)
    recipient = Recipient(email=VARS["email"], vars=VARS, row=2)

    def mailsflux_one() -> bytes:
        return composer.compose(recipient).data

    subject_p, html_p, text_p = _split(SUBJECT), _split(html_template()), _split(TEXT)

    def stdlib_one() -> bytes:
        msg = EmailMessage()
        msg["From"] = SENDER
        msg["To"] = f"{VARS['name']} <{VARS['email']}>"
        msg["Subject"] = _render(subject_p, VARS, False)
        msg["Date"] = formatdate()
        msg["Message-ID"] = make_msgid(domain="nordwind.example")
        msg["MIME-Version"] = "1.0"
        msg.set_content(_render(text_p, VARS, False))
        msg.add_alternative(_render(html_p, VARS, True), subtype="html")
        return msg.as_bytes()

    return mailsflux_one, stdlib_one


try:
    import pytest

    from conftest import RATIOS, RESULTS

    RATIOS.append(
        (
            "render+MIME speed-up over stdlib email (target >= 30x)",
            "stdlib_render_mime",
            "mailsflux_render_mime",
        )
    )

    @pytest.fixture(scope="module")
    def pipelines() -> tuple[Callable[[], bytes], Callable[[], bytes]]:
        return setup()

    @pytest.mark.benchmark(group="render+mime")
    def test_mailsflux_render_mime(benchmark: Any, pipelines: Any) -> None:
        out = benchmark(pipelines[0])
        assert b"multipart/alternative" in out
        if benchmark.stats:
            RESULTS["mailsflux_render_mime"] = benchmark.stats.stats.mean

    @pytest.mark.benchmark(group="render+mime")
    def test_stdlib_render_mime(benchmark: Any, pipelines: Any) -> None:
        out = benchmark(pipelines[1])
        assert b"multipart/alternative" in out
        if benchmark.stats:
            RESULTS["stdlib_render_mime"] = benchmark.stats.stats.mean
except ImportError:  # run as a plain script without pytest
    pass


if __name__ == "__main__":
    ours, plain = setup()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    t_ours, t_plain = best_of(ours, n * 20), best_of(plain, n)
    print(describe())
    print(f"message size: {len(ours())} bytes (mailsflux), {len(plain())} bytes (stdlib)")
    print(f"mailsflux render+MIME:            {t_ours * 1e6:9.1f} us/message")
    print(f"stdlib email render+MIME:         {t_plain * 1e6:9.1f} us/message")
    print(f"ratio (stdlib / mailsflux):       {t_plain / t_ours:9.1f}x  (target >= 30x)")
