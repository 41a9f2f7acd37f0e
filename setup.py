"""Build the compiled hot path.

Every ``core/mailsflux/<stage>/_name.pyx`` becomes the extension
``mailsflux.<stage>._name``; the path mirrors the import path so Cython finds
each module's ``.pxd`` by its dotted name (``include_path=["core"]``).

``MAILSFLUX_BUILD_ONLY=_canon,_template`` limits a developer build to some
modules; ``MAILSFLUX_CYTHON_TRACE=1`` adds line tracing for coverage runs.
"""

from __future__ import annotations

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = Path(__file__).parent
CORE = ROOT / "core" / "mailsflux"


def _extensions() -> list[Extension]:
    only = {n for n in os.environ.get("MAILSFLUX_BUILD_ONLY", "").split(",") if n}
    trace = os.environ.get("MAILSFLUX_CYTHON_TRACE") == "1"
    macros = [("CYTHON_TRACE_NOGIL", "1")] if trace else []
    exts = []
    for pyx in sorted(CORE.rglob("*.pyx")):
        if only and pyx.stem not in only:
            continue
        dotted = ".".join(pyx.relative_to(CORE.parent).with_suffix("").parts)
        exts.append(
            Extension(
                dotted,
                [str(pyx.relative_to(ROOT))],
                define_macros=macros,
                extra_compile_args=["-O3"] if os.name != "nt" else [],
            )
        )
    return exts


setup(
    ext_modules=cythonize(
        _extensions(),
        include_path=["core"],
        compiler_directives={
            "language_level": 3,
            "embedsignature": True,
            "linetrace": os.environ.get("MAILSFLUX_CYTHON_TRACE") == "1",
        },
        quiet=True,
    ),
)
