"""The composer with the compiled MIME builder: job files with attachments,
inline images and List-Unsubscribe; the real HTML email templates; DKIM
signatures that verify; errors that name the job file, line and field, or
the row."""

from __future__ import annotations

import email.header
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsflux.compose import Template
from mailsflux.dkim.keyfiles import txt_path_for
from mailsflux.errors import ConfigError, HeaderInjectionError, JobFileError, MailsfluxError
from mailsflux.jobs import Prepared
from mailsflux.jobs.composer import Composer
from mailsflux.jobs.jobfile import load_job
from mailsflux.types import Problem, Recipient, RenderedMessage
from tests._jobs import make_job, people
from tests._mail import dkim_verify, parse, txt_record

HTML_DIR = Path(__file__).parent / "data" / "html"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 20

UNSUB = (
    'list_unsubscribe = "<mailto:unsub@sender.example?subject=unsub-{{email}}>, '
    '<https://sender.example/u?e={{email}}&p={{plan}}>"'
)


def rich_job(tmp_path: Path, algorithm: str = "rsa-sha256", **kw: Any) -> Path:
    html = '<html><body><img src="cid:logo"><p>Hello {{first_name}}</p></body></html>\n'
    path = make_job(
        tmp_path,
        kw.pop("rows", people(4)),
        html=html,
        algorithm=algorithm,
        extra_message="\n".join(
            [
                'attachments = ["files/price list.pdf"]',
                UNSUB,
                'headers = { X-Campaign = "spring" }',
                "",
                "[message.inline_images]",
                'logo = "files/logo.png"',
            ]
        ),
        **kw,
    )
    files = path.parent / "files"
    files.mkdir()
    (files / "price list.pdf").write_bytes(PDF)
    (files / "logo.png").write_bytes(PNG)
    return path


def compose_all(job: Prepared) -> tuple[list[RenderedMessage], list[Problem]]:
    problems: list[Problem] = []
    return list(job.messages(problems.append)), problems


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"])
def test_attachments_inline_images_and_unsubscribe_are_signed(
    tmp_path: Path, algorithm: str
) -> None:
    rows = [*people(3), ["o'brien+x@example.net", "Seán Ó Briain", "Seán", "Pro & Co"]]
    job = Prepared.load(rich_job(tmp_path, algorithm, rows=rows))
    msgs, problems = compose_all(job)
    assert not problems and len(msgs) == 4
    record = txt_record(txt_path_for(job.job.key_path))
    for m, row in zip(msgs, rows, strict=True):
        assert dkim_verify(m.data, record, selector="t1", domain="sender.example")
        signed = re.search(rb"h=([^;]*);", m.data.replace(b"\r\n\t", b"").replace(b"\r\n ", b""))
        assert signed and b"list-unsubscribe:list-unsubscribe-post" in signed.group(1).lower()
        msg = parse(m.data)
        assert msg.get_content_type() == "multipart/mixed"
        alt = msg.get_payload(0)
        assert alt.get_content_type() == "multipart/alternative"  # type: ignore[union-attr]
        related = alt.get_payload(1)  # type: ignore[union-attr]
        assert related.get_content_type() == "multipart/related"
        html_part, img = related.get_payload()
        assert f"Hello {row[2]}" in html_part.get_content()
        assert img["Content-ID"] == "<logo>" and img.get_content() == PNG
        (pdf,) = msg.iter_attachments()
        assert pdf.get_filename() == "price list.pdf"
        assert pdf.get_content_type() == "application/pdf" and pdf.get_content() == PDF
        assert msg["X-Campaign"] == "spring"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsub = msg["List-Unsubscribe"]
        assert unsub.startswith("<mailto:unsub@sender.example?subject=unsub-")
        assert msg["To"].addresses[0].display_name == row[1]
        assert m.smtputf8 is False
    last = parse(msgs[3].data)["List-Unsubscribe"]
    # merge values are percent-encoded inside the URIs
    assert "e=o%27brien%2Bx@example.net&p=Pro%20%26%20Co>" in last


def test_real_html_templates_through_the_composer(tmp_path: Path) -> None:
    for src in sorted(HTML_DIR.glob("*.html")):
        d = tmp_path / src.stem
        d.mkdir()
        tpl = src.read_text("utf-8")
        columns = ("email", "name", *sorted(Template(tpl).variables - {"name", "email"}))
        row = [
            "ana@example.org",
            "Anaïs Lindqvist",
            *[f"<{c}> Anaïs & Co {'x' * 90}" for c in columns[2:]],
        ]
        path = make_job(
            d, [row], columns=columns, html=tpl, text=None, subject="Bienvenue {{name}} ☀"
        )
        job = Prepared.load(path)
        msgs, problems = compose_all(job)
        assert not problems
        (m,) = msgs
        record = txt_record(txt_path_for(job.job.key_path))
        assert dkim_verify(m.data, record, selector="t1", domain="sender.example")
        msg = parse(m.data)
        expected = Template(tpl, escape=True).render(dict(zip(columns, row, strict=True)))
        body = msg.get_body(("html",))
        assert body is not None
        got = body.get_content().replace("\r\n", "\n")
        want = expected.replace("\r\n", "\n")
        assert got == (want if want.endswith("\n") else want + "\n")
        assert msg["Subject"] == "Bienvenue Anaïs Lindqvist ☀"
        for line in m.data.split(b"\r\n"):
            assert len(line) <= 998


names = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85"),
    max_size=80,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, plan=names)
def test_random_rows_round_trip_through_the_composer(
    composer: Composer, name: str, plan: str
) -> None:
    r = Recipient(
        email="zoë@bücher.example",
        vars={"email": "zoë@bücher.example", "name": name, "first_name": name, "plan": plan},
        row=7,
    )
    m = composer.compose(r)
    assert m.smtputf8 is True and m.rcpt_to == "zoë@xn--bcher-kva.example"
    msg = parse(m.data)
    assert msg["Subject"] == f"Hi {name}: your {plan} plan"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Your plan: {plan}." in text.replace("\r\n", "\n")
    if name.strip():
        raw = m.data.split(b"\r\nTo:", 1)[1].split(b"<", 1)[0].decode().replace("\r\n", "")
        if "=?utf-8?b?" in raw:  # RFC 2047 words: check with a conforming decoder
            got = str(email.header.make_header(email.header.decode_header(raw.strip())))
        else:  # plain ASCII, quoted when it holds specials
            got = msg["To"].addresses[0].display_name
        assert got == name.strip()


@pytest.fixture(scope="module")
def composer(tmp_path_factory: pytest.TempPathFactory) -> Composer:
    path = make_job(tmp_path_factory.mktemp("c"), people(1))
    return Composer(load_job(path), None)


def test_row_errors_name_the_row(tmp_path: Path) -> None:
    rows = [
        ["a@example.com", "Ann", "Ann", "Team"],
        ["b@example.com", "Bob", "Bob\r\nBcc: x@evil.example", "Team"],
        ["c@example.com", "Cy", "Cy", "Team"],
    ]
    job = Prepared.load(rich_job(tmp_path, rows=rows))
    composer = job.composer
    r = Recipient(
        email=rows[1][0],
        vars=dict(zip(("email", "name", "first_name", "plan"), rows[1], strict=True)),
        row=3,
    )
    with pytest.raises(HeaderInjectionError) as err:
        composer.compose(r)
    assert err.value.field == "Subject" and err.value.row == 3
    assert err.value.recipient == "b@example.com"
    # A variable the List-Unsubscribe template needs, missing from the row.
    r2 = Recipient(email="d@example.com", vars={"email": "d@example.com", "first_name": "D"}, row=9)
    with pytest.raises(MailsfluxError) as err2:
        composer.compose(r2)
    assert err2.value.row == 9
    msgs, problems = compose_all(job)
    assert len(msgs) == 2 and len(problems) == 1


def _job_error(tmp_path: Path, extra: str, **kw: Any) -> MailsfluxError:
    tmp_path.mkdir()
    path = make_job(tmp_path, people(1), extra_message=extra, **kw)
    with pytest.raises(MailsfluxError) as err:
        Prepared.load(path)
    return err.value


def test_job_errors_name_file_line_and_field(tmp_path: Path) -> None:
    err = _job_error(tmp_path / "a", 'attachments = ["missing.pdf"]')
    assert isinstance(err, ConfigError) and err.field == "message.attachments"
    assert err.file and err.file.endswith("job.toml") and err.line == 6
    assert "not found" in err.message

    err = _job_error(tmp_path / "b", '[message.inline_images]\nlogo = "nope.png"')
    assert err.field == "message.inline_images.logo" and err.line == 7

    err = _job_error(tmp_path / "c", '[message.inline_images]\nlogo = "job.toml"', html=None)
    assert err.field == "message.inline_images" and "HTML" in err.message

    err = _job_error(tmp_path / "d", 'headers = { "List-Unsubscribe" = "<mailto:x@y.example>" }')
    assert err.field == "message.headers.List-Unsubscribe"
    assert "list_unsubscribe" in err.message

    err = _job_error(tmp_path / "e", 'attachment = ["x.pdf"]')
    assert isinstance(err, JobFileError) and err.line == 6
    assert err.field == "message.attachment"

    err = _job_error(tmp_path / "f", "", sender="Sender <not-an-address>")
    assert isinstance(err, ConfigError) and err.field == "message.from" and err.line == 2


def test_bad_list_unsubscribe_skips_rows(tmp_path: Path) -> None:
    path = make_job(tmp_path, people(2), extra_message='list_unsubscribe = "https://x.example/u"')
    job = Prepared.load(path)
    msgs, problems = compose_all(job)
    assert not msgs and len(problems) == 2
    assert "List-Unsubscribe" in problems[0].message


def test_example_job_composes(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "examples" / "welcome"
    shutil.copytree(example, tmp_path / "job", ignore=shutil.ignore_patterns("dkim", "out"))
    job = Prepared.load(tmp_path / "job" / "job.toml")
    problems: list[Problem] = []
    record = txt_record(txt_path_for(job.job.key_path))
    for i, m in enumerate(job.messages(problems.append)):
        if i < 20:
            assert dkim_verify(m.data, record, selector="mf2026", domain="northwind.example")
        for line in m.data.split(b"\r\n"):
            assert len(line) <= 998
    assert len(problems) == 3  # bad on purpose
