"""`mailsflux render` writes finished, signed messages without sending."""

from __future__ import annotations

from pathlib import Path

from mailsflux.dkim.keyfiles import txt_path_for
from tests._cli import run_cli
from tests._mail import dkim_verify, parse, txt_record


def test_render_first_n(welcome_job: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("render", str(welcome_job), "--out", str(out), "--limit", "7")
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.glob("*.eml"))
    assert len(files) == 7
    assert "wrote 7 messages" in proc.stdout
    record = txt_record(txt_path_for(welcome_job.parent / "dkim" / "mf2026.northwind.example.pem"))
    rows = (welcome_job.parent / "recipients.csv").read_text("utf-8").splitlines()[1:8]
    for f, row in zip(files, rows, strict=True):
        data = f.read_bytes()
        assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        assert dkim_verify(data, record, selector="mf2026", domain="northwind.example")
        msg = parse(data)
        email_addr, name, first = row.split(",")[:3]
        assert msg["To"].addresses[0].addr_spec == email_addr.replace("bücher", "xn--bcher-kva")
        assert msg["To"].addresses[0].display_name == name
        assert first in msg["Subject"]
        assert f"Welcome aboard, {first}!" in msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
