"""Where a whole job's CPU goes, by the code that runs it (``bench e2e --profile``).

One more send of the job runs under Linux ``perf record``, which samples
every process of the send (the workers are its children) in the
processes and in the kernel. ``perf report --sort dso`` then gives each
shared object's share of the samples, and each object is put with the
part of the stack that ships it: the signing library, the Python
interpreter, the compiled core, the event loop, the spool's SQLite, the
C library, the kernel. A share times the CPU a message of the job's
unprofiled rounds is what that part costs a message.

The interpreter's share is the one number the other floors cannot give:
what the per-message path spends running Python between the compiled
stages, which only moving that path into compiled code removes.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

from mailsflux.benchmark.result import BenchError

#: Samples a second a CPU: about 3,000 for a second of a job's CPU, a share
#: to within a percent or so, and little of the job's own time spent on them.
FREQUENCY = 999

#: The parts, in the order they are shown, with what each holds.
PARTS: dict[str, str] = {
    "sign": "the DKIM sign (PyNaCl's libsodium, cryptography's OpenSSL)",
    "interpreter": "CPython (the interpreter and its C modules)",
    "core": "mailsflux compiled core (render, MIME, rewrite, DKIM canon., SMTP)",
    "uvloop": "uvloop (the event loop)",
    "msgspec": "msgspec (types, spool records)",
    "openssl": "system OpenSSL (hashlib's SHA-256, TLS)",
    "sqlite": "SQLite (the spool)",
    "libc": "C library (malloc, memcpy, the loader)",
    "kernel": "kernel (system calls; on loopback also the sink's TCP)",
    "other": "other",
}

# The Python packages whose compiled modules are parts of their own.
_PACKAGES = {
    "nacl": "sign",
    "cryptography": "sign",
    "mailsflux": "core",
    "uvloop": "uvloop",
    "msgspec": "msgspec",
}

# Shared objects outside those packages, by name.
_BY_NAME = (
    # The kernel and its modules ([ext4], [overlay], ...), as perf names them.
    (re.compile(r"^\[(?!unknown\]).+\]$"), "kernel"),
    (re.compile(r"^(libpython|python)\d"), "interpreter"),
    (re.compile(r"^(libc|libm|libpthread|ld-linux[^.]*)[.-]"), "libc"),
    (re.compile(r"^libsqlite3\."), "sqlite"),
    # PyNaCl built against the system's libsodium (SODIUM_INSTALL=system), or
    # a wheel with it vendored by auditwheel (libsodium-<hash>.so), signs in
    # it, not in its own _sodium.
    (re.compile(r"^libsodium[.-]"), "sign"),
    (re.compile(r"^(libcrypto|libssl)\."), "openssl"),
)

_LINE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)%\s+(\S.*?)\s*$")


def perf() -> str:
    """The ``perf`` program, or :class:`BenchError` saying why there is none."""
    found = shutil.which("perf")
    if found is None:
        raise BenchError(
            "--profile needs Linux perf (Debian: apt install linux-perf); it is not installed"
        )
    return found


def record_command(data: Path) -> list[str]:
    """What to put before a command to record its samples (children too) into ``data``.

    CPU-clock samples (one event, whatever the CPU's counters: time, as the
    CPU a message is), and no copy of each sampled object in ``~/.debug``."""
    cmd = [perf(), "record", "-q", "-N", "-e", "cpu-clock", "-F", str(FREQUENCY)]
    return [*cmd, "-o", str(data), "--"]


def check(where: Path) -> None:
    """:class:`BenchError` unless perf records here, the kernel included:
    said before a benchmark's rounds, not after them.

    Without the right to sample the kernel (``kernel.perf_event_paranoid``
    above 1 for a user other than root) perf falls back to the processes
    alone without a word, and the kernel's share would go to the others."""
    data = where / "perf-check.data"
    got = subprocess.run(
        [*record_command(data), "true"], capture_output=True, text=True, check=False
    )
    if got.returncode != 0 or not data.exists():
        why = _last_line(got.stderr) or f"status {got.returncode}"
        raise BenchError(f"perf cannot record here: {why}")
    events = subprocess.run(
        [perf(), "evlist", "-v", "-i", str(data)], capture_output=True, text=True, check=False
    )
    if events.returncode != 0:
        raise BenchError(f"perf evlist: {_last_line(events.stderr) or events.returncode}")
    if re.search(r"exclude_kernel:\s*1", events.stdout):
        raise BenchError(
            "perf may not sample the kernel here, so its share would go to the rest:"
            " run as root or set kernel.perf_event_paranoid to 1 or lower"
        )


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def dso_shares(data: Path) -> dict[str, float]:
    """Each shared object's share of the samples in ``data``, in percent."""
    cmd = [perf(), "report", "-i", str(data), "--stdio", "--no-children", "--sort", "dso"]
    cmd += ["-g", "none", "-q", "--percent-limit", "0"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BenchError(f"perf report: {_last_line(out.stderr) or out.returncode}")
    shares: dict[str, float] = {}
    for line in out.stdout.splitlines():
        m = _LINE.match(line)
        if m:
            shares[m.group(2)] = shares.get(m.group(2), 0.0) + float(m.group(1))
    if not shares:
        raise BenchError("perf report: no samples")
    return shares


def owners() -> dict[str, str]:
    """The part of each compiled module this Python can load, by file name:
    the packages' own, and the standard library's (the interpreter's)."""
    out: dict[str, str] = {}
    # The base install's lib-dynload (a venv's own paths hold none of it).
    dynload = sysconfig.get_config_var("DESTSHARED")
    for so in Path(dynload).glob("*.so") if dynload else ():
        out[so.name] = "interpreter"
    for package, part in _PACKAGES.items():
        spec = importlib.util.find_spec(package)
        for where in (spec.submodule_search_locations or []) if spec else []:
            for so in Path(where).rglob("*.so"):
                # Two packages shipping a module of one name: neither's.
                out[so.name] = part if out.get(so.name, part) == part else "other"
    return out


def part_of(dso: str, known: dict[str, str]) -> str:
    """The :data:`PARTS` key of the shared object named ``dso`` in a report."""
    if dso in known:
        return known[dso]
    for pattern, part in _BY_NAME:
        if pattern.match(dso):
            return part
    return "other"


def by_part(shares: dict[str, float], known: dict[str, str] | None = None) -> dict[str, float]:
    """``shares`` of shared objects summed by part, as fractions of all samples
    (every part of :data:`PARTS`, in its order, 0.0 where none ran)."""
    known = owners() if known is None else known
    total = sum(shares.values())
    out = dict.fromkeys(PARTS, 0.0)
    if total <= 0:
        return out
    for dso, pct in shares.items():
        out[part_of(dso, known)] += pct / total
    return out
