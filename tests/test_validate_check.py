"""`validate` checks rows without composing them: it must refuse exactly the
rows that composing for `send` refuses."""

from __future__ import annotations

from pathlib import Path

from mailsflux.errors import MailsfluxError
from mailsflux.jobs import make_signer
from mailsflux.jobs.composer import Composer
from mailsflux.jobs.jobfile import load_job
from mailsflux.types import Recipient
from tests._jobs import make_job

ROWS: list[dict[str, str]] = [
    {"email": "ok@example.com", "name": "Ok", "first_name": "Ok", "plan": "Team"},
    {"email": "zoe@bücher.example", "name": "Zoë", "first_name": "Zoë", "plan": "Pro"},
    {
        "email": "inj@example.com",
        "name": "Eve\r\nBcc: x@evil.example",
        "first_name": "E",
        "plan": "P",
    },
    {"email": "subj@example.com", "name": "S", "first_name": "S\nX-Evil: 1", "plan": "P"},
    {"email": "short@example.com", "name": "S", "first_name": "S"},
    {"email": "long@example.com", "name": "L", "first_name": "L" * 2000, "plan": "P"},
    {"email": "uni@example.com", "name": "Ünï", "first_name": "名前", "plan": "プロ"},
    {"email": "from@example.com", "name": "F", "first_name": "F", "plan": "P", "who": "a\rb"},
]


def _refused(fn: object, r: Recipient) -> str | None:
    try:
        fn(r)  # type: ignore[operator]
    except MailsfluxError as exc:
        return type(exc).__name__
    return None


def test_check_refuses_exactly_what_compose_refuses(tmp_path: Path) -> None:
    path = make_job(
        tmp_path,
        [],
        columns=("email", "name", "first_name", "plan", "who"),
        sender="{{who}} Co <news@sender.example>",
        extra_message='list_unsubscribe = "<https://u.example/u?e={{email}}>"',
    )
    job = load_job(path)
    composer = Composer(job, make_signer(job))
    for n, vars in enumerate(ROWS, 2):
        r = Recipient(email=vars["email"], vars={"who": "Ann", **vars}, row=n)
        assert _refused(composer.check, r) == _refused(composer.compose, r), vars["email"]
    refused = [
        v["email"]
        for n, v in enumerate(ROWS, 2)
        if _refused(composer.check, Recipient(email=v["email"], vars={"who": "A", **v}, row=n))
    ]
    assert refused == [
        "inj@example.com",
        "subj@example.com",
        "short@example.com",
        "from@example.com",
    ]
