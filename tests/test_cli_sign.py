"""`mailsflux sign` as a user runs it: stdin to stdout, the result verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.dkim.keygen import write_key_pair
from tests._cli import run_cli
from tests._mail import dkim_verify, txt_record

DOMAIN, SELECTOR = "example.com", "s1"
MESSAGE = (
    b"From: A <a@example.com>\nTo: b@example.net\nSubject: hello\n"
    b"Date: Fri, 27 Nov 2026 04:00:00 +0000\nMessage-ID: <1@example.com>\n\n"
    b"From here on it is the body.\n"
)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    pem, txt = write_key_pair(
        tmp_path_factory.mktemp("keys"), domain=DOMAIN, selector=SELECTOR, bits=1024
    )
    return pem, txt_record(txt)


def sign(key: Path, stdin: bytes) -> tuple[int, bytes, str]:
    """Exit code, output, stderr; run_cli reads text, so CRLF arrives as LF."""
    proc = run_cli(
        "sign", "--domain", DOMAIN, "--selector", SELECTOR, "--key", str(key), stdin=stdin
    )
    return proc.returncode, proc.stdout.encode(), proc.stderr


@pytest.mark.parametrize(
    "mbox_line",
    [b"From a@example.com Fri Nov 27 04:00:00 2026\n", b"From MAILER-DAEMON  Fri Nov 27\r\n"],
)
def test_an_mbox_from_line_is_removed_and_said_once(
    key: tuple[Path, bytes], mbox_line: bytes
) -> None:
    rc, out, err = sign(key[0], mbox_line + MESSAGE)
    assert rc == 0, err
    # Receivers end the header at a line that is not a field: it must be gone.
    assert not out.startswith(b"From ")
    assert b"\nFrom " not in out.split(b"\n\n", 1)[0]
    assert out.startswith(b"DKIM-Signature:")
    assert dkim_verify(out, key[1], selector=SELECTOR, domain=DOMAIN)
    lines = err.splitlines()
    assert len(lines) == 1 and "From " in lines[0] and "mbox" in lines[0], err
    # The body's own "From " line is content, not touched.
    assert out.endswith(b"\n\nFrom here on it is the body.\n")


@pytest.mark.parametrize("field", [b"From : A <a@example.com>", b"From \t: A <a@example.com>"])
def test_an_obsolete_from_field_is_kept(key: tuple[Path, bytes], field: bytes) -> None:
    """WSP before the colon is the obsolete field syntax (RFC 5322 4.5.1), not
    an mbox separator: dropping it would sign a message without its From."""
    message = MESSAGE.replace(b"From: A <a@example.com>", field)
    rc, out, err = sign(key[0], message)
    assert (rc, err) == (0, "")
    header = out.split(b"\n\n", 1)[0]
    assert out.startswith(b"DKIM-Signature:") and b"\n" + field + b"\n" in header
    # (dkimpy takes "From " for the field's name, so it cannot check this one.)


def test_a_plain_message_is_signed_silently(key: tuple[Path, bytes]) -> None:
    rc, out, err = sign(key[0], MESSAGE)
    assert (rc, err) == (0, "")
    assert dkim_verify(out, key[1], selector=SELECTOR, domain=DOMAIN)


@pytest.mark.parametrize(
    "stdin",
    [b"", b"\n", b"\r\nbody only\r\n", b"just some text\nand more: text\n", b"From x@y\n"],
    ids=["empty", "blank-line", "body-only", "text", "mbox-line-only"],
)
def test_input_without_a_header_is_refused(key: tuple[Path, bytes], stdin: bytes) -> None:
    rc, out, err = sign(key[0], stdin)
    assert rc == 2 and out == b""
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "stdin" in err and "no header" in err, err
