"""DKIM signing speed: mailsflux vs a bare ``cryptography`` sign vs dkimpy.

Targets (checked by eye, never asserted): signing a ~7.5 KB message with
RSA-2048 costs at most ~1.15x one bare RSA-2048 sign of the same bytes;
with Ed25519 at most ~20 us more than a bare Ed25519 sign.

    .venv/bin/python -m pytest bench/bench_dkim.py --benchmark-enable   # pytest-benchmark
    .venv/bin/python bench/bench_dkim.py                                # plain table
"""

from __future__ import annotations

import base64
import os
import platform
import sys
import timeit
from collections.abc import Callable
from typing import Any

import cryptography
import dkim
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from mailsflux.dkim import Signer
from mailsflux.dkim.keygen import generate_private_key

HEADER = (
    b"From: Example Shop <news@shop.example.com>\r\n"
    b"To: Jane Doe <jane.doe@example.net>\r\n"
    b"Subject: Your weekly digest: 12 new items you might like\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <20240101100000.abc123@shop.example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1_5f3a"\r\n'
    b"List-Unsubscribe: <https://shop.example.com/u/abc123>, <mailto:u+abc123@shop.example.com>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"Feedback-ID: digest:weekly:shop\r\n"
    b"\r\n"
)
LINE = b"Lorem ipsum dolor sit amet,  consectetur adipiscing elit, sed do eiusmod tempor. \r\n"


def make_message(size: int = 7500) -> bytes:
    parts = [HEADER, b"--b1_5f3a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"]
    while sum(map(len, parts)) + len(LINE) + 14 < size:
        parts.append(LINE)
    parts.append(b"\r\n--b1_5f3a--\r\n")
    return b"".join(parts)


MESSAGE = make_message()
DOMAIN, SELECTOR = "shop.example.com", "bench"
PAD, SHA256 = padding.PKCS1v15(), hashes.SHA256()


class Setup:
    def __init__(self) -> None:
        self.rsa_pem = generate_private_key("rsa-sha256", 2048)
        self.ed_pem = generate_private_key("ed25519-sha256")
        rsa_key = serialization.load_pem_private_key(self.rsa_pem, None)
        ed_key = serialization.load_pem_private_key(self.ed_pem, None)
        assert isinstance(rsa_key, rsa.RSAPrivateKey)
        assert isinstance(ed_key, ed25519.Ed25519PrivateKey)
        self.rsa_key, self.ed_key = rsa_key, ed_key
        self.rsa_signer = Signer(domain=DOMAIN, selector=SELECTOR, key=self.rsa_pem)
        self.ed_signer = Signer(
            domain=DOMAIN, selector=SELECTOR, key=self.ed_pem, algorithm="ed25519-sha256"
        )
        # dkimpy takes the Ed25519 key as the base64 32-byte seed.
        self.ed_seed_b64 = base64.b64encode(
            ed_key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )

    def cases(self) -> dict[str, Callable[[], Any]]:
        m, rk, ek = MESSAGE, self.rsa_key, self.ed_key
        heads = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
                 b"content-type", b"list-unsubscribe", b"list-unsubscribe-post",
                 b"feedback-id"]  # fmt: skip
        return {
            "bare RSA-2048 sign (message bytes)": lambda: rk.sign(m, PAD, SHA256),
            "mailsflux Signer.sign RSA-2048": lambda: self.rsa_signer.sign(m),
            "dkimpy sign RSA-2048": lambda: dkim.sign(
                m,
                SELECTOR.encode(),
                DOMAIN.encode(),
                self.rsa_pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=heads,
            ),
            "bare Ed25519 sign (message bytes)": lambda: ek.sign(m),
            "bare Ed25519 sign (32-byte hash)": lambda: ek.sign(m[:32]),
            "mailsflux Signer.sign Ed25519": lambda: self.ed_signer.sign(m),
            "dkimpy sign Ed25519": lambda: dkim.sign(
                m,
                SELECTOR.encode(),
                DOMAIN.encode(),
                self.ed_seed_b64,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=heads,
                signature_algorithm=b"ed25519-sha256",
            ),
        }


def machine() -> str:
    return (
        f"{platform.platform()}; {platform.processor() or platform.machine()}; "
        f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
        f"cryptography {cryptography.__version__}; OpenSSL "
        f"{_openssl_version()}; dkimpy {_dkimpy_version()}"
    )


def _openssl_version() -> str:
    from cryptography.hazmat.backends.openssl.backend import backend

    return str(backend.openssl_version_text())


def _dkimpy_version() -> str:
    from importlib.metadata import version

    return version("dkimpy")


def measure(setup: Setup, seconds: float = 0.3) -> dict[str, float]:
    """Best-of-7 microseconds per call for each case."""
    out = {}
    for name, fn in setup.cases().items():
        n = max(1, int(seconds / max(timeit.timeit(fn, number=3) / 3, 1e-7)))
        out[name] = min(timeit.repeat(fn, number=n, repeat=7)) / n * 1e6
    return out


def report(us: dict[str, float]) -> str:
    lines = [f"machine: {machine()}", f"message: {len(MESSAGE)} bytes", ""]
    lines += [f"{us[k]:10.1f} us  {k}" for k in us]
    rsa_ratio = us["mailsflux Signer.sign RSA-2048"] / us["bare RSA-2048 sign (message bytes)"]
    ed_msg = us["mailsflux Signer.sign Ed25519"] - us["bare Ed25519 sign (message bytes)"]
    ed_32 = us["mailsflux Signer.sign Ed25519"] - us["bare Ed25519 sign (32-byte hash)"]
    dk_rsa = us["dkimpy sign RSA-2048"] / us["mailsflux Signer.sign RSA-2048"]
    dk_ed = us["dkimpy sign Ed25519"] / us["mailsflux Signer.sign Ed25519"]
    lines += [
        "",
        f"RSA-2048: Signer.sign / bare sign = {rsa_ratio:.3f}x (target <= ~1.15x)",
        f"Ed25519: Signer.sign - bare sign of the message = {ed_msg:+.1f} us (target <= ~20 us)",
        f"Ed25519: Signer.sign - bare sign of 32 bytes     = {ed_32:+.1f} us",
        f"dkimpy / mailsflux: RSA {dk_rsa:.1f}x, Ed25519 {dk_ed:.1f}x",
    ]
    return "\n".join(lines)


# -- pytest-benchmark --------------------------------------------------------

_SETUP: Setup | None = None


def _setup() -> Setup:
    global _SETUP
    if _SETUP is None:
        _SETUP = Setup()
    return _SETUP


CASES = [
    "bare RSA-2048 sign (message bytes)",
    "mailsflux Signer.sign RSA-2048",
    "dkimpy sign RSA-2048",
    "bare Ed25519 sign (message bytes)",
    "bare Ed25519 sign (32-byte hash)",
    "mailsflux Signer.sign Ed25519",
    "dkimpy sign Ed25519",
]


@pytest.mark.parametrize("case", CASES)
def test_sign(benchmark: Any, case: str) -> None:
    benchmark.group = "RSA-2048" if "RSA" in case else "Ed25519"
    benchmark(_setup().cases()[case])


def test_summary(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    """Ratios from one in-process timeit run (skipped unless --benchmark-enable)."""
    opt = request.config.getoption
    if not (opt("benchmark_enable", default=False) or not opt("benchmark_disable", default=True)):
        pytest.skip("benchmarks disabled (pass --benchmark-enable)")
    text = report(measure(_setup()))
    with capsys.disabled():
        print("\n" + text)


if __name__ == "__main__":
    print(report(measure(_setup())))
