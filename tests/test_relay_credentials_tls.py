"""Relay credentials go only over TLS with a verified certificate.

``smtp://user:pass@relay`` requires STARTTLS and checks the relay's
certificate against its host name; a relay that does not offer STARTTLS
(or a man in the middle who strips it), a failed handshake or a certificate
that does not verify is a job error saying why, and the server never sees an
AUTH command. ``[delivery] tls_ca`` trusts a private CA. Only
``smtp+plain://`` (documented as unsafe) sends credentials in clear text.
The password never shows in output, errors or reprs.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path

import pytest

from mailsflux.delivery.relay import Relay
from mailsflux.delivery.smtp import SMTPSession
from mailsflux.errors import MailsfluxError, TemporaryDeliveryError
from mailsflux.jobs.jobfile import load_job
from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import RecordingHandler
from tests._scripted_smtp import ScriptedSMTP
from tests._tls import LoginRecorder, TLSServer, server_context

USER, PASSWORD = "mailer", "s3cr3t-Pa55"
SECRETS = [PASSWORD, base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()]


def relay_job(tmp_path: Path, port: int, scheme: str = "smtp", extra: str = "") -> Path:
    job = make_job(tmp_path, people(3), relay=f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{port}")
    job.write_text(job.read_text() + extra)
    return job


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_a_relay_without_starttls_never_gets_the_password(tmp_path: Path) -> None:
    with ScriptedSMTP(auth=True) as server:
        r = run_cli("send", str(relay_job(tmp_path, server.port)), "-q")
    assert r.returncode == 2, r.stderr
    assert "STARTTLS" in r.stderr and "verified certificate" in r.stderr
    assert not [line for line in server.lines if line.upper().startswith("AUTH")]
    assert_no_secret(r.stdout, r.stderr, "\n".join(server.lines))


def test_a_failed_handshake_does_not_fall_back_to_plain_text(tmp_path: Path) -> None:
    with ScriptedSMTP(auth=True, broken_starttls=True) as server:
        r = run_cli("send", str(relay_job(tmp_path, server.port)), "-q")
    assert r.returncode == 2, r.stderr
    assert "STARTTLS" in server.lines
    assert not [line for line in server.lines if line.upper().startswith("AUTH")]
    assert_no_secret(r.stdout, r.stderr, "\n".join(server.lines))


def test_an_unverified_certificate_never_gets_the_password(tmp_path: Path) -> None:
    logins, handler = LoginRecorder(), RecordingHandler()
    with TLSServer(handler, server_context(tmp_path, ["127.0.0.1"]), logins) as server:
        r = run_cli("send", str(relay_job(tmp_path, server.port)), "-q")
    assert r.returncode == 2, r.stderr
    assert "certificate" in r.stderr and "tls_ca" in r.stderr
    assert logins.logins == [] and handler.received == []
    assert_no_secret(r.stdout, r.stderr)


def test_a_certificate_from_the_configured_ca_is_trusted(tmp_path: Path) -> None:
    logins, handler = LoginRecorder(), RecordingHandler()
    ctx = server_context(tmp_path, ["127.0.0.1"], ca_file=tmp_path / "ca.pem")
    with TLSServer(handler, ctx, logins) as server:
        job = relay_job(tmp_path, server.port, extra=f'tls_ca = "{tmp_path / "ca.pem"}"\n')
        r = run_cli("send", str(job), "-q", "--json")
    assert r.returncode == 0, r.stderr
    assert len(handler.received) == 3
    assert logins.logins and set(logins.logins) == {("PLAIN", USER.encode(), PASSWORD.encode())}
    assert_no_secret(r.stdout, r.stderr)


def test_tls_ca_adds_to_the_system_store(tmp_path: Path) -> None:
    """A private CA is trusted beside the system's CAs, never instead of them
    (like Postfix's smtp_tls_CAfile): mail to public relays still verifies."""
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    if not system:
        pytest.skip("this machine's system trust store is empty")
    server_context(tmp_path, ["127.0.0.1"], ca_file=tmp_path / "ca.pem")
    job = load_job(relay_job(tmp_path, 1, extra=f'tls_ca = "{tmp_path / "ca.pem"}"\n'))
    ctx = job.tls_context()
    assert ctx is not None
    assert ctx.cert_store_stats()["x509_ca"] == system + 1
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_a_missing_ca_file_is_a_job_error_naming_the_field(tmp_path: Path) -> None:
    job = relay_job(tmp_path, 1, extra='tls_ca = "nowhere/ca.pem"\n')
    r = run_cli("send", str(job), "-q")
    assert r.returncode == 2
    assert "delivery.tls_ca: cannot load CA certificates" in r.stderr
    assert "Traceback" not in r.stderr


def test_smtp_plain_is_the_explicit_unsafe_opt_out(tmp_path: Path) -> None:
    with ScriptedSMTP(auth=True) as server:
        r = run_cli("send", str(relay_job(tmp_path, server.port, "smtp+plain")), "-q")
    assert r.returncode == 0, r.stderr
    assert any(line.startswith("AUTH PLAIN") for line in server.lines)


def test_the_session_itself_refuses_to_log_in_without_verified_tls(tmp_path: Path) -> None:
    """Embedders calling SMTPSession directly get the same rule."""
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    logins, handler = LoginRecorder(), RecordingHandler()

    async def login(port: int, tls: str, ctx: ssl.SSLContext | None = None) -> None:
        await SMTPSession.open(
            "127.0.0.1",
            port,
            tls=tls,  # type: ignore[arg-type]
            username=USER,
            password=PASSWORD,
            timeout=5,
            tls_context=ctx,
        )

    with TLSServer(handler, server_context(tmp_path, ["127.0.0.1"]), logins) as server:
        for tls, ctx in [("opportunistic", None), ("required", unverified)]:
            with pytest.raises(TemporaryDeliveryError, match="verified") as exc:
                asyncio.run(login(server.port, tls, ctx))
            assert_no_secret(str(exc.value), repr(exc.value))
    assert logins.logins == []
    with ScriptedSMTP(auth=True) as plain:
        with pytest.raises(TemporaryDeliveryError, match="not TLS"):
            asyncio.run(login(plain.port, "opportunistic"))
    assert not [line for line in plain.lines if line.startswith("AUTH")]


def test_the_password_is_in_no_repr_or_error(tmp_path: Path) -> None:
    relay = Relay.parse(f"smtp://{USER}:{PASSWORD}@relay.example:587")
    assert relay.password == PASSWORD and relay.tls == "starttls"
    assert relay.session_tls == "required"
    assert_no_secret(repr(relay), str(relay))
    assert Relay.parse("smtp://relay.example").session_tls == "opportunistic"
    for bad in (f"smtpx://{USER}:{PASSWORD}@h", f"smtp://{USER}:{PASSWORD}@h:99999"):
        with pytest.raises(ValueError) as exc:
            Relay.parse(bad)
        assert_no_secret(str(exc.value))
    job = make_job(tmp_path, people(1), relay=f"smtpx://{USER}:{PASSWORD}@h")
    with pytest.raises(MailsfluxError) as err:
        load_job(job).relay()
    assert "delivery.relay" == err.value.field
    assert_no_secret(str(err.value))
    r = run_cli("validate", str(job))
    assert r.returncode == 1
    assert_no_secret(r.stdout, r.stderr)


def test_a_per_domain_tls_override_cannot_downgrade_a_relay(tmp_path: Path) -> None:
    """``[delivery.domains.X] tls = "none"`` is for MX hosts; a relay's TLS is its URL's."""
    from mailsflux.jobs import Prepared, send

    with ScriptedSMTP(auth=True) as server:
        job = relay_job(
            tmp_path, server.port, extra='[delivery.domains."example.com"]\ntls = "none"\n'
        )
        prepared = Prepared.load(job)
        try:
            summary = asyncio.run(send(prepared, on_problem=print, check_relay=False))
        finally:
            prepared.close()
    assert summary.sent == 0 and summary.deferred == 3
    assert not [line for line in server.lines if line.startswith("AUTH")]


def test_a_bad_relay_option_is_one_line_without_the_password(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(1))
    for bad in (f"smtpx://{USER}:{PASSWORD}@h", f"smtp://{USER}:{PASSWORD}@h:99999"):
        r = run_cli("send", str(job), "-q", "--relay", bad)
        assert r.returncode == 2
        assert "Traceback" not in r.stderr and "relay 'smtp" in r.stderr
        assert_no_secret(r.stdout, r.stderr)
