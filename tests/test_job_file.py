"""Job file errors name the file and the line (and the field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.delivery.relay import Relay
from mailsflux.errors import JobFileError
from mailsflux.jobs.jobfile import load_job

GOOD = """\
name = "t"

[message]
from = "A <a@example.com>"
subject = "Hi {{first_name}}"
text = "t.txt"

[recipients]
file = "r.csv"

[dkim]
domain = "example.com"
selector = "s1"
key = "k.pem"

[delivery]
relay = "smtp://127.0.0.1:2525"
"""


def job(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "job.toml"
    p.write_text(text)
    return p


def test_good_job_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    j = load_job(job(tmp_path, GOOD))
    assert j.name == "t"
    assert j.text_path == tmp_path / "t.txt"
    assert j.recipients_path == tmp_path / "r.csv"
    assert j.relay() == Relay(host="127.0.0.1", port=2525, tls="starttls")


@pytest.mark.parametrize(
    ("old", "new", "line", "field"),
    [
        ('subject = "Hi {{first_name}}"\n', "", 3, "message.subject"),  # missing: table line
        ('selector = "s1"', "selector = 7", 13, "dkim.selector"),  # wrong type
        ('key = "k.pem"', 'key = "k.pem"\nkee = "typo"', 15, "dkim.kee"),  # unknown field
        ('relay = "smtp://127.0.0.1:2525"', "connections = 0", 17, "delivery.connections"),
    ],
)
def test_schema_errors_name_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str
) -> None:
    p = job(tmp_path, GOOD.replace(old, new))
    with pytest.raises(JobFileError) as err:
        load_job(p)
    e = err.value
    assert (e.file, e.line, e.field) == (str(p), line, field)
    assert str(e).startswith(f"{p}:{line}")
    assert field in str(e)


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    p = job(tmp_path, GOOD.replace('selector = "s1"', 'selector = "s1'))
    with pytest.raises(JobFileError) as err:
        load_job(p)
    assert err.value.line == 13
    assert err.value.column is not None
    assert "invalid TOML" in str(err.value)


def test_missing_job_file(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match="not found"):
        load_job(tmp_path / "absent.toml")


def test_bad_relay_url_names_its_line(tmp_path: Path) -> None:
    p = job(tmp_path, GOOD.replace("smtp://127.0.0.1:2525", "http://x"))
    with pytest.raises(JobFileError) as err:
        load_job(p).relay()
    assert err.value.line == 17 and err.value.field == "delivery.relay"


@pytest.mark.parametrize(
    ("url", "relay"),
    [
        ("smtp://mx.example.com", Relay("mx.example.com", 25, "starttls")),
        ("smtp+plain://127.0.0.1:2525", Relay("127.0.0.1", 2525, "none")),
        (
            "smtps://u%40x:p%3Aw@relay.example:465",
            Relay("relay.example", 465, "implicit", "u@x", "p:w"),
        ),
    ],
)
def test_relay_urls(url: str, relay: Relay) -> None:
    assert Relay.parse(url) == relay
