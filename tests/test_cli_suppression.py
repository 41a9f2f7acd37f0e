"""`mailsflux suppression ...` on the store sends check: suppress, a real send
skips the address, remove, the next send mails it; import and export."""

from __future__ import annotations

import json
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import TRACKING, make_job
from tests._mail import RecordingHandler, SMTPServer


def _tracking(job: Path) -> str:
    cfg = job.parent / "tracking.toml"
    r = run_cli("track-server", "--new-config", str(cfg), "--base-url", "https://t.sender.example")
    assert r.returncode == 0, r.stderr
    job.write_text(job.read_text() + TRACKING)
    return str(cfg)


def _received(handler: RecordingHandler) -> list[str]:
    return sorted(a for m in handler.received for a in m.rcpt_tos)


def test_remove_makes_the_next_send_mail_it_again(tmp_path: Path) -> None:
    rows = [
        ["keep@example.com", "Keep", "Kim", "Pro"],
        ["Gone@Example.COM", "Gone", "Gus", "Team"],
    ]
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url)
        cfg = _tracking(job)
        # Another spelling than the row's: one form everywhere.
        r = run_cli("suppression", "add", "gone@EXAMPLE.com.", "--reason", "complaint",
                    "--tracking", cfg)  # fmt: skip
        assert (r.returncode, r.stdout) == (0, "g***@example.com: suppressed (complaint)\n")

        r = run_cli("suppression", "check", "GONE@example.com", "keep@example.com",
                    "--tracking", cfg)  # fmt: skip
        assert r.returncode == 1, r.stderr
        gone, keep = r.stdout.splitlines()
        assert gone.startswith("g***@example.com: suppressed (complaint, 20")
        assert keep == "k***@example.com: not suppressed"  # masked by default
        assert (
            run_cli("suppression", "check", "keep@example.com", "--tracking", cfg).returncode == 0
        )

        r = run_cli("send", str(job), "-q")
        assert r.returncode == 0, r.stderr
        assert "recipients.csv:3: warning: G***@example.com: suppressed; row skipped" in r.stderr
        assert _received(handler) == ["keep@example.com"]

        r = run_cli("suppression", "remove", "Gone@example.com", "--tracking", cfg)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "g***@example.com: removed; it will be mailed again\n"
        assert (
            run_cli("suppression", "check", "gone@example.com", "--tracking", cfg).returncode == 0
        )

        handler.received.clear()
        # The earlier run settled the row as suppressed: a new run of the job sends it.
        r = run_cli("send", str(job), "-q", "--restart")
        assert r.returncode == 0, r.stderr
        assert "suppressed" not in r.stderr
        assert _received(handler) == ["Gone@example.com", "keep@example.com"]


def test_list_import_export(tmp_path: Path) -> None:
    job = make_job(tmp_path, [["a@example.com", "A", "A", "Pro"]])
    cfg = _tracking(job)
    src = tmp_path / "in.csv"
    src.write_bytes(
        b"address,reason\n"
        b"one@example.com,hard bounce\n"
        b"two@example.com\n"
        b"three@@example.com\n"
        b"four@example.com,complaint,2024-05-06,welcome\n"
    )
    r = run_cli("suppression", "import", str(src), "--reason", "unsubscribe", "--tracking", cfg)
    assert r.returncode == 1  # a bad line, reported, the rest imported
    assert r.stderr.splitlines() == [f"{src}:4: address 't***@example.com': invalid local part"]
    assert r.stdout == "4 entries: 3 added, 0 already suppressed, 1 bad lines (reported above)\n"

    r = run_cli("--show-addresses", "suppression", "list", "--json", "--tracking", cfg)
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(d["address"], d["reason"], d["list"]) for d in docs] == [
        ("one@example.com", "hard-bounce", ""),
        ("two@example.com", "unsubscribe", ""),
        ("four@example.com", "complaint", "welcome"),
    ]
    assert docs[2]["date"] == "2024-05-06T00:00:00Z"
    r = run_cli(
        "--show-addresses", "suppression", "list", "--reason", "hard-bounce", "--tracking", cfg
    )
    assert r.returncode == 0 and r.stdout.split() == [
        docs[0]["date"],
        "hard-bounce",
        "one@example.com",
    ]
    r = run_cli("suppression", "list", "--list", "welcome", "--tracking", cfg)  # masked
    assert r.stdout.split()[1:] == ["complaint", "f***@example.com", "list=welcome"]

    out = tmp_path / "out.csv"
    r = run_cli("suppression", "export", "--out", str(out), "--tracking", cfg)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_mode & 0o777 == 0o600  # it names people
    r2 = run_cli("suppression", "export", "--reason", "complaint", "--tracking", cfg)
    assert (
        r2.stdout
        == "address,reason,date,list\nfour@example.com,complaint,2024-05-06T00:00:00Z,welcome\n"
    )
    assert out.read_text().splitlines()[0] == "address,reason,date,list"
    assert len(out.read_text().splitlines()) == 4
    # Importing the export again adds nothing.
    r = run_cli("suppression", "import", str(out), "--tracking", cfg)
    assert (r.returncode, r.stdout) == (0, "3 entries: 0 added, 3 already suppressed\n")


def test_bad_input_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    job = make_job(tmp_path, [["a@example.com", "A", "A", "Pro"]])
    cfg = _tracking(job)
    r = run_cli("suppression", "add", "ok@example.com", "nobody", "--tracking", cfg)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == "mailsflux: error: address 'nobody' has no @\n"
    assert run_cli("suppression", "check", "ok@example.com", "--tracking", cfg).returncode == 0
    r = run_cli("suppression", "import", str(tmp_path / "missing.txt"), "--tracking", cfg)
    assert r.returncode == 2
    assert (
        r.stderr
        == f"mailsflux: error: {tmp_path / 'missing.txt'}: cannot read: No such file or directory\n"
    )
    r = run_cli("suppression", "list", "--tracking", str(tmp_path / "nope.toml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "tracking config not found" in r.stderr
