"""Bad [submission] settings are one clear error naming the setting or
file: no certificate, a missing or broken one, a port already taken, an
unknown key."""

from __future__ import annotations

import asyncio
import socket
import tomllib
from pathlib import Path

import msgspec
import pytest

from mailsflux.errors import ConfigError
from mailsflux.gateway import Gateway
from mailsflux.submission import SubmissionSpec, start_submission
from mailsflux.tenants import KeyStore
from tests._gateway import two_tenants
from tests._tls import server_context


def test_bad_settings_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        SubmissionSpec()
    assert exc.value.field == "submission.cert_file"
    with pytest.raises(ConfigError) as exc:
        SubmissionSpec(listen="", cert_file="c", key_file="k")
    assert exc.value.field == "submission.listen"
    for bad in ("587", "host:70000", ":587", "host:port"):
        with pytest.raises(ConfigError) as exc:
            SubmissionSpec(implicit_tls_listen=bad, cert_file="c", key_file="k")
        assert exc.value.field == "submission.implicit_tls_listen"
    with pytest.raises(msgspec.ValidationError, match="max_sise"):
        msgspec.convert(tomllib.loads("cert_file='c'\nkey_file='k'\nmax_sise=1"), SubmissionSpec)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.max_size"):
        msgspec.convert({"cert_file": "c", "key_file": "k", "max_size": 10}, SubmissionSpec)
    spec = SubmissionSpec(
        listen="[::1]:587", implicit_tls_listen="0.0.0.0:465", cert_file="c", key_file="k"
    )
    assert spec.addresses() == {"starttls": ("::1", 587), "implicit_tls": ("0.0.0.0", 465)}

    server_context(tmp_path, ["localhost"])
    spec = SubmissionSpec(cert_file="server-cert.pem", key_file="nowhere.pem")
    with pytest.raises(ConfigError) as exc:
        spec.tls_context(tmp_path)
    assert exc.value.file == str(tmp_path / "nowhere.pem")
    (tmp_path / "other-key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nbroken\n")
    with pytest.raises(ConfigError, match="cannot load the certificate"):
        SubmissionSpec(cert_file="server-cert.pem", key_file="other-key.pem").tls_context(tmp_path)

    async def taken() -> None:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            spec = SubmissionSpec(
                listen=f"127.0.0.1:{port}", cert_file="server-cert.pem", key_file="server-key.pem"
            )
            async with Gateway(two_tenants(tmp_path), data_dir=tmp_path / "data") as gw:
                with KeyStore(tmp_path / "keys.db") as keys, pytest.raises(ConfigError) as exc:
                    await start_submission(gw, keys, spec, base=tmp_path)
            assert exc.value.field == "submission.listen"
            assert f"127.0.0.1:{port}" in str(exc.value)

    asyncio.run(taken())
