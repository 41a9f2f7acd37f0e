"""A result names its CPU by more than its marketing name ("AMD EPYC" covers
generations whose bare RSA sign differs threefold), and `bench compare` says
when two results come from different machines."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from mailsflux.benchmark.machine import CPU_FLAGS, cpu_info, machine
from mailsflux.benchmark.result import compare_table, new_result
from tests._cli import run_cli

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse2 avx2 bmi2 adx sha_ni aes hypervisor rdrand

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: avx512f avx512ifma
"""


def test_cpu_info_reads_the_first_processor() -> None:
    info = cpu_info(CPUINFO)
    assert info == {
        "cpu": "AMD EPYC",
        "cpu_id": "vendor_id AuthenticAMD, cpu family 25, model 1, stepping 1",
        "cpu_flags": ["adx", "aes", "avx2", "bmi2", "hypervisor", "sha_ni"],
    }
    assert cpu_info("") == {}
    assert set(info["cpu_flags"]) <= set(CPU_FLAGS)


def test_compare_notes_different_machines(tmp_path: Path) -> None:
    a = new_result("e2e", {"messages": 10})
    a["metrics"] = {"cpu_us_per_msg": 250.0}
    b = json.loads(json.dumps(a))
    b["machine"]["load_average"] = [9.0, 9.0, 9.0]  # the load alone is no other machine
    assert "different machines" not in compare_table(a, b)
    older = json.loads(json.dumps(a))  # saved before cpu_id and cpu_flags were recorded
    for key in ("cpu_id", "cpu_flags"):
        older["machine"].pop(key, None)
    assert "different machines" not in compare_table(a, older)

    b["machine"]["cpu_id"] = "vendor_id GenuineIntel, cpu family 6, model 143, stepping 8"
    b["machine"]["cpu_flags"] = ["avx512f", "avx512ifma"]
    paths = []
    for name, doc in (("a.json", a), ("b.json", b)):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(doc))
    proc = run_cli("bench", "compare", *map(str, paths))
    assert proc.returncode == 0, proc.stderr
    notes = [ln for ln in proc.stdout.splitlines() if "different machines" in ln]
    assert len(notes) == 1
    assert "cpu_id: " in notes[0] and "GenuineIntel, cpu family 6" in notes[0]
    assert "cpu_flags: " in notes[0] and "cores" not in notes[0]


def test_this_machine_is_described() -> None:
    m = machine()
    assert m["cores"] >= 1 and m["cpu"]
    if Path("/proc/cpuinfo").exists() and platform.machine() == "x86_64":
        assert m["cpu_id"].startswith("vendor_id ")
        assert set(m["cpu_flags"]) <= set(CPU_FLAGS)
