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


#: CPU features that move the floor itself: OpenSSL's RSA takes its fastest
#: path with AVX-512 IFMA, else ADX and BMI2; AES and SHA have instructions.
#: "hypervisor": a virtual machine, whose cores neighbours may share.
CPU_FLAGS = (
    "adx", "aes", "avx2", "avx512f", "avx512ifma", "bmi2", "hypervisor", "sha_ni", "vaes",
)  # fmt: skip


def cpu_info(text: str) -> dict[str, Any]:
    """The first processor of a ``/proc/cpuinfo`` text: its model name, its
    identity (vendors reuse one marketing name, "AMD EPYC", across
    generations whose floors differ threefold), and which of
    :data:`CPU_FLAGS` it has."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block is enough
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    out: dict[str, Any] = {}
    if "model name" in fields:
        out["cpu"] = fields["model name"]
    ident = [
        f"{k} {fields[k]}" for k in ("vendor_id", "cpu family", "model", "stepping") if k in fields
    ]
    if ident:
        out["cpu_id"] = ", ".join(ident)
    flags = set(fields.get("flags", "").split())
    if flags:
        out["cpu_flags"] = [f for f in CPU_FLAGS if f in flags]
    return out


def _proc_cpuinfo() -> dict[str, Any]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            return cpu_info(fh.read())
    except OSError:
        return {}


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
    info = _proc_cpuinfo()
    out: dict[str, Any] = {
        "cpu": info.get("cpu") or platform.processor() or platform.machine(),
        "cores": os.cpu_count() or 1,
        "os": f"{platform.system()} {platform.release()}",
        "load_average": load_average(),
    }
    out.update({k: v for k, v in info.items() if k != "cpu"})
    return out


#: What makes two results' machines different ones (the load is not).
SAME_MACHINE = ("cpu", "cpu_id", "cpu_flags", "cores")


def machine_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The keys of :data:`SAME_MACHINE` on which two ``machine`` records
    differ; one that only one of them records (a result saved before it was
    recorded) says nothing either way."""
    return [k for k in SAME_MACHINE if k in a and k in b and a[k] != b[k]]


def versions() -> dict[str, Any]:
    import ssl

    return {
        "python": platform.python_version(),
        "mailsflux": package_version("mailsflux"),
        "openssl": ssl.OPENSSL_VERSION,
        "cython": package_version("cython"),
        "compiled": compiled(),
        "cryptography": package_version("cryptography"),
        "pynacl": package_version("pynacl"),
        "ed25519_signs_with": _ed25519_library(),
        "uvloop": package_version("uvloop"),
        "dkimpy": package_version("dkimpy"),
        "aiosmtplib": package_version("aiosmtplib"),
        "hdrhistogram": package_version("hdrhistogram"),
    }


def _ed25519_library() -> str:
    """The library a job's Ed25519 signer signs with here."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from mailsflux.dkim.sodium import ed25519_signer

    return ed25519_signer(ed25519.Ed25519PrivateKey.generate())[1]


def describe() -> str:
    """One line for a terminal: machine and versions."""
    m, v = machine(), versions()
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['os']}, load {m['load_average']}; "
        f"Python {v['python']}, mailsflux {v['mailsflux']}"
        f" ({'compiled' if v['compiled'] else 'NOT compiled'}), {v['openssl']}, "
        f"Cython {v['cython']}, cryptography {v['cryptography']}, PyNaCl {v['pynacl']}"
        f" (Ed25519 signs with {v['ed25519_signs_with']}), dkimpy {v['dkimpy']}, "
        f"aiosmtplib {v['aiosmtplib']}"
    )
