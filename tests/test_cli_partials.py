"""Partials come from the job file; a partial that is not there is an error."""

from __future__ import annotations

from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import parse

HTML = "<p>Hello {{first_name}}</p>\n{{> footer}}\n"
TEXT = "Hello {{first_name}}\n{{> footer}}\n"


def _bodies(out: Path) -> list[tuple[str, str]]:
    found = []
    for f in sorted(out.iterdir()):
        msg = parse(f.read_bytes())
        html = msg.get_body(("html",))
        text = msg.get_body(("plain",))
        assert html is not None and text is not None
        found.append((html.get_content(), text.get_content()))
    return found


def test_partials_table_renders_in_send(tmp_path: Path) -> None:
    job = make_job(
        tmp_path,
        people(3),
        html=HTML,
        text="Hello {{first_name}}\n",
        extra_message='partials = { footer = "parts/footer.html" }',
    )
    (job.parent / "parts").mkdir()
    (job.parent / "parts" / "footer.html").write_text("<p>Bye {{plan}}</p>\n")
    assert run_cli("validate", str(job)).returncode == 0
    saved = tmp_path / "got"
    proc = run_cli("send", str(job), "--local-sink", "--sink-save", str(saved), "-q")
    assert proc.returncode == 0, proc.stderr
    bodies = _bodies(saved)
    assert len(bodies) == 3
    assert all("<p>Bye Team</p>" in h or "<p>Bye Pro</p>" in h for h, _ in bodies)


def test_partials_dir_takes_the_body_suffix(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(2), html=HTML, text=TEXT, extra_message='partials_dir = "p"')
    (job.parent / "p").mkdir()
    (job.parent / "p" / "footer.html").write_text("<i>html footer {{> sign}}</i>\n")
    (job.parent / "p" / "footer.txt").write_text("-- text footer {{> sign}}\n")
    (job.parent / "p" / "sign.mustache").write_text("The Team")
    out = tmp_path / "out"
    proc = run_cli("render", str(job), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for html, text in _bodies(out):
        assert "<i>html footer The Team</i>" in html and "text footer" not in html
        assert "-- text footer The Team" in text and "html footer" not in text


def test_missing_partial_is_an_error_naming_file_line_and_partial(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(2), html="<p>Hi</p>\n<p>{{> nopartial}}</p>\n")
    body = job.parent / "body.html"
    proc = run_cli("validate", str(job))
    assert proc.returncode == 1
    assert f"{body}:2:" in proc.stderr and "'nopartial'" in proc.stderr
    proc = run_cli("send", str(job), "--local-sink")
    assert proc.returncode == 2
    assert f"{body}:2:" in proc.stderr and "'nopartial'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_partial_inside_a_partial_names_the_partial_file(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(2), html=HTML, text=None, extra_message='partials_dir = "p"')
    (job.parent / "p").mkdir()
    (job.parent / "p" / "footer.html").write_text("<hr>\n{{> gone}}\n")
    proc = run_cli("validate", str(job))
    assert proc.returncode == 1
    assert f"{job.parent / 'p' / 'footer.html'}:2:" in proc.stderr and "'gone'" in proc.stderr


def test_partials_file_not_found_names_the_job_field(tmp_path: Path) -> None:
    job = make_job(
        tmp_path, people(2), html=HTML, extra_message='partials = { footer = "nope.html" }'
    )
    proc = run_cli("send", str(job), "--local-sink")
    assert proc.returncode == 2
    assert f"{job}:" in proc.stderr and "nope.html" in proc.stderr
