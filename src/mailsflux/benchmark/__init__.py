"""The benchmark harness: ``mailsflux bench smtp|e2e|pipeline|compare``.

The last stage: it may use every other one, and nothing uses it.

* :func:`run_smtp` loads any SMTP server with personalised, DKIM-signed
  messages, open loop at a fixed rate or as fast as it answers, and reports
  throughput, per-phase latency percentiles (HDR histogram) and reply codes.
* :func:`run_e2e` sends a whole job through ``mailsflux send`` into a sink
  and reports CPU per message of every process, next to the floor.
* :func:`run_pipeline` costs each stage per message, Mailsflux against the
  plain-Python way, next to the floor.

Every result is one JSON-able document (:mod:`mailsflux.benchmark.result`)
recording the machine, the versions and the settings; :func:`compare_table`
lines two up with ratios.
"""

from typing import TYPE_CHECKING, Any

from mailsflux.benchmark.command import add_parser
from mailsflux.benchmark.result import BenchError, compare_table, flatten, load, save

if TYPE_CHECKING:
    from mailsflux.benchmark.e2e import run_e2e
    from mailsflux.benchmark.floors import floor
    from mailsflux.benchmark.loadgen import Settings, intended_offsets, parse_target, run_smtp
    from mailsflux.benchmark.machine import describe
    from mailsflux.benchmark.pipeline import run_pipeline
    from mailsflux.benchmark.sample import signed_messages, write_job
    from mailsflux.benchmark.sinks import builtin_sink, smtp_sink, smtp_sink_path

#: Loaded on first use: `mailsflux --help` (which builds the bench parser)
#: should not pay for the load generator, cryptography and the job stages.
_LAZY = {
    "run_e2e": "e2e",
    "floor": "floors",
    "Settings": "loadgen",
    "intended_offsets": "loadgen",
    "parse_target": "loadgen",
    "run_smtp": "loadgen",
    "describe": "machine",
    "run_pipeline": "pipeline",
    "signed_messages": "sample",
    "write_job": "sample",
    "builtin_sink": "sinks",
    "smtp_sink": "sinks",
    "smtp_sink_path": "sinks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"mailsflux.benchmark.{module}"), name)


__all__ = [
    "BenchError",
    "Settings",
    "add_parser",
    "builtin_sink",
    "compare_table",
    "describe",
    "flatten",
    "floor",
    "intended_offsets",
    "load",
    "parse_target",
    "run_e2e",
    "run_pipeline",
    "run_smtp",
    "save",
    "signed_messages",
    "smtp_sink",
    "smtp_sink_path",
    "write_job",
]
