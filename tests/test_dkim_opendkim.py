"""Signatures verify with OpenDKIM (``opendkim-testmsg``, Debian package opendkim-tools).

opendkim-testmsg looks keys up over DNS only (libc resolver), so the check
runs in a child process inside private network and mount namespaces
(``unshare --net --mount``, root only): loopback is brought up, a temporary
resolv.conf pointing at 127.0.0.1 is bind-mounted over /etc/resolv.conf, and
a minimal UDP DNS responder (written here, no dependency) answers TXT queries
with the records from :func:`mailsflux.dkim.keygen.dns_txt_record`.  Nothing leaves
the namespace and the host's resolv.conf is untouched.

Skipped, with the reason, where opendkim-testmsg or the namespaces are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailsflux.dkim import Signer, sign_all
from mailsflux.dkim.keygen import dns_txt_record, generate_private_key

TESTMSG = shutil.which("opendkim-testmsg") or (
    "/usr/sbin/opendkim-testmsg" if os.path.exists("/usr/sbin/opendkim-testmsg") else None
)
DOMAIN = "example.com"

pytestmark = pytest.mark.skipif(
    TESTMSG is None,
    reason="opendkim-testmsg not installed (apt-get install -y opendkim-tools)",
)

CHILD = r"""
import json, socket, struct, subprocess, sys, threading

spec = json.load(open(sys.argv[1]))
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["mount", "--bind", spec["resolv_conf"], "/etc/resolv.conf"], check=True)
records = {k.lower().rstrip("."): v.encode() for k, v in spec["records"].items()}

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))

def answer(query):
    qid, flags, qd = struct.unpack("!HHH", query[:6])
    i, labels = 12, []
    while query[i]:
        labels.append(query[i + 1 : i + 1 + query[i]].decode("ascii", "replace"))
        i += 1 + query[i]
    qtype, qclass = struct.unpack("!HH", query[i + 1 : i + 5])
    question = query[12 : i + 5]
    txt = records.get(".".join(labels).lower())
    rd = flags & 0x0100
    if txt is None or qtype != 16:
        rcode = 3 if txt is None else 0
        return struct.pack("!HHHHHH", qid, 0x8480 | rd | rcode, 1, 0, 0, 0) + question
    rdata = b"".join(bytes([len(txt[j : j + 255])]) + txt[j : j + 255]
                     for j in range(0, len(txt), 255))
    rr = struct.pack("!HHHIH", 0xC00C, 16, 1, 60, len(rdata)) + rdata
    return struct.pack("!HHHHHH", qid, 0x8480 | rd, 1, 1, 0, 0) + question + rr

def serve():
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            sock.sendto(answer(data), peer)
        except Exception as exc:  # a malformed query: no answer
            print("dns:", exc, file=sys.stderr)

threading.Thread(target=serve, daemon=True).start()
results = []
for path in spec["messages"]:
    with open(path, "rb") as fh:
        proc = subprocess.run([spec["testmsg"], "-C"], stdin=fh, capture_output=True,
                              timeout=30)
    results.append({"rc": proc.returncode, "out": (proc.stdout + proc.stderr).decode(
        "utf-8", "replace")})
print(json.dumps(results))
"""


def _run(tmp_path: Path, messages: list[bytes], records: dict[str, str]) -> list[dict[str, object]]:
    if os.geteuid() != 0:
        pytest.skip("needs root for unshare --net --mount (private DNS for opendkim-testmsg)")
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    paths = []
    for i, message in enumerate(messages):
        p = tmp_path / f"m{i}.eml"
        p.write_bytes(message)
        paths.append(str(p))
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "resolv_conf": str(resolv),
                "records": records,
                "messages": paths,
                "testmsg": TESTMSG,
            }
        )
    )
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    probe = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare --net --mount not permitted here: {probe.stderr.decode().strip()}")
    proc = subprocess.run(
        ["unshare", "--net", "--mount", sys.executable, str(child), str(spec)],
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    result: list[dict[str, object]] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


# opendkim-testmsg refuses messages without the fields RFC 5322 requires (From
# and Date) with "dkim_chunk(): Syntax error", so every message has a Date.
MESSAGES = [
    b"From: Shop <news@example.com>\r\nTo: Jane <jane@example.net>\r\nSubject: Hello\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\n"
    b"Hello   Jane,\r\n\r\nyour order  shipped.  \r\n\r\n\r\n",
    b"From: a@example.com\nTo: b@example.net,\n\tc@example.net\nSubject:  folded\n  subject\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\n\n"
    b"bare LF body\n" + b"long " * 300 + b"\n",
    "From: Zoë <zoe@example.com>\r\nSubject: 8bit\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    "\r\nGrüße ☃\r\nno final CRLF ".encode(),
]


@pytest.fixture(scope="module")
def keys() -> dict[str, bytes]:
    return {
        "rsa1024": generate_private_key("rsa-sha256", 1024),
        "rsa2048": generate_private_key("rsa-sha256", 2048),
        "ed": generate_private_key("ed25519-sha256"),
    }


def _signer(keys: dict[str, bytes], sel: str, canon: str) -> Signer:
    alg = "ed25519-sha256" if sel == "ed" else "rsa-sha256"
    return Signer(domain=DOMAIN, selector=sel, key=keys[sel], algorithm=alg, canonicalization=canon)


def _records(keys: dict[str, bytes]) -> dict[str, str]:
    return {
        f"{sel}._domainkey.{DOMAIN}": dns_txt_record(
            pem, algorithm="ed25519-sha256" if sel == "ed" else "rsa-sha256"
        )
        for sel, pem in keys.items()
    }


def test_opendkim_verifies(tmp_path: Path, keys: dict[str, bytes]) -> None:
    signed: list[bytes] = []
    labels: list[str] = []
    for canon in ("relaxed/relaxed", "simple/simple", "relaxed/simple"):
        for sel in ("rsa1024", "rsa2048", "ed"):
            for i, message in enumerate(MESSAGES):
                signed.append(_signer(keys, sel, canon).sign(message))
                labels.append(f"{sel} {canon} message {i}")
    # Controls: tampered messages must fail, or the check proves nothing.
    for sel in ("rsa2048", "ed"):
        tampered = _signer(keys, sel, "relaxed/relaxed").sign(MESSAGES[0])
        signed.append(tampered.replace(b"Hello   Jane", b"Hello   John"))
        labels.append(f"tampered {sel}")
    results = _run(tmp_path, signed, _records(keys))
    assert len(results) == len(labels)
    for label, result in zip(labels, results, strict=True):
        if label.startswith("tampered"):
            assert result["rc"] != 0, f"{label} passed: {result['out']}"
        else:
            assert result["rc"] == 0, f"{label}: {result['out']}"


def test_opendkim_dual_signed(tmp_path: Path, keys: dict[str, bytes]) -> None:
    """A message carrying RSA and Ed25519 signatures verifies."""
    both = [
        sign_all(
            m, [_signer(keys, "rsa2048", "relaxed/relaxed"), _signer(keys, "ed", "relaxed/relaxed")]
        )
        for m in MESSAGES
    ]
    results = _run(tmp_path, both, _records(keys))
    for i, result in enumerate(results):
        assert result["rc"] == 0, f"message {i}: {result['out']}"


def test_opendkim_rejects_headers_added_on_top(tmp_path: Path, keys: dict[str, bytes]) -> None:
    """Oversigned fields (RFC 6376 section 8.15): one added above the signed ones fails."""
    from tests.test_dkim_oversign import ADDED, WITH_LIST, WITHOUT_LIST, on_top

    signer = _signer(keys, "rsa2048", "relaxed/relaxed")
    signed = [signer.sign(m) for m in (WITH_LIST, WITHOUT_LIST)]
    forged = [on_top(s, field) for s in signed for field in ADDED.values()]
    results = _run(tmp_path, signed + forged, _records(keys))
    assert [r["rc"] for r in results[:2]] == [0, 0], results[:2]
    labels = [f"{which} + {name}" for which in ("with-list", "without-list") for name in ADDED]
    for label, result in zip(labels, results[2:], strict=True):
        assert result["rc"] != 0, f"{label} passed: {result['out']}"
