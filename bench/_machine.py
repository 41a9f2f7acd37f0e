"""The machine and versions line every benchmark prints."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version


def _v(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "-"


def describe() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, mailsflux {_v('mailsflux')}, Cython {_v('cython')}, "
        f"cryptography {_v('cryptography')}, dkimpy {_v('dkimpy')}, aiosmtplib {_v('aiosmtplib')}"
    )
