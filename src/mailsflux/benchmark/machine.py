"""What a result was measured on: the machine, the versions, how it was built.

Every benchmark result carries this, so two JSON files from different days
or machines say why their numbers differ.
"""

from __future__ import annotations

import os
import platform
from typing import Any


def package_version(pkg: str) -> str:
    # Imported here: this module is loaded for every `mailsflux` command.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return "-"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def compiled() -> bool:
    """Whether the compiled core is in use (it is always built; a pure
    fallback would make every number meaningless, so say it)."""
    try:
        import mailsflux.compose._template as t

        return not str(t.__file__).endswith(".py")
    except ImportError:
        return False


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "os": f"{platform.system()} {platform.release()}",
        "load_average": load_average(),
    }


def versions() -> dict[str, Any]:
    import ssl

    return {
        "python": platform.python_version(),
        "mailsflux": package_version("mailsflux"),
        "openssl": ssl.OPENSSL_VERSION,
        "cython": package_version("cython"),
        "compiled": compiled(),
        "cryptography": package_version("cryptography"),
        "uvloop": package_version("uvloop"),
        "dkimpy": package_version("dkimpy"),
        "aiosmtplib": package_version("aiosmtplib"),
        "hdrhistogram": package_version("hdrhistogram"),
    }


def describe() -> str:
    """One line for a terminal: machine and versions."""
    m, v = machine(), versions()
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['os']}, load {m['load_average']}; "
        f"Python {v['python']}, mailsflux {v['mailsflux']}"
        f" ({'compiled' if v['compiled'] else 'NOT compiled'}), {v['openssl']}, "
        f"Cython {v['cython']}, cryptography {v['cryptography']}, dkimpy {v['dkimpy']}, "
        f"aiosmtplib {v['aiosmtplib']}"
    )
