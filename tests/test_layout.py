"""The package's shape: stages import each other only in one direction, never
another stage's compiled ``_*`` module, and no module imports form a cycle.

Read from the source tree (module-level imports, as Python runs them at
import time; imports inside functions and ``if TYPE_CHECKING:`` are lazy
by design and left out).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "mailsflux"
STAGES = (
    "compose",
    "dkim",
    "tracking",
    "delivery",
    "spool",
    "feedback",
    "jobs",
    "letters",
    "authcheck",
    "engine",
    "tenants",
    "gateway",
    "api",
    "submission",
    "webhooks",
    "server",
    "benchmark",
)
#: Which stages each stage may import (besides mailsflux.errors and .types).
ALLOWED = {
    "compose": set(),
    "dkim": set(),
    "delivery": set(),
    "tracking": {"compose"},
    "spool": set(),
    "feedback": {"compose", "dkim", "tracking", "delivery"},
    "jobs": {"compose", "dkim", "tracking", "delivery", "spool", "feedback"},
    # Physical mail: templates (compose), sealed addresses (spool), the job
    # file's line finder (jobs).
    "letters": {"compose", "spool", "jobs"},
    # SPF/DKIM/DMARC in DNS for a job: its key (dkim), relay and nameservers.
    # compose: the From domain taken exactly as the composer takes it.
    "authcheck": {"compose", "dkim", "delivery", "jobs"},
    "engine": {
        "compose",
        "dkim",
        "tracking",
        "delivery",
        "spool",
        "feedback",
        "jobs",
        "letters",
        "authcheck",
    },
    "tenants": {"dkim", "jobs"},
    "gateway": {"compose", "engine", "jobs", "letters", "spool", "tenants"},
    "api": {"engine", "gateway", "letters", "tenants"},
    # The SMTP listener: delivery for its per-credential rate limit
    # (LocalThrottles), compose to check each RCPT address as it comes.
    "submission": {"compose", "delivery", "gateway", "tenants"},
    "webhooks": {"gateway", "tenants"},
    "server": {
        "authcheck",
        "delivery",
        "engine",
        "jobs",
        "letters",
        "spool",
        "feedback",
        "tracking",
        "tenants",
        "gateway",
        "api",
        "submission",
        "webhooks",
    },
    # The harness measures every stage; nothing depends on it.
    "benchmark": {
        "authcheck",
        "compose",
        "dkim",
        "tracking",
        "delivery",
        "spool",
        "feedback",
        "jobs",
        "letters",
        "engine",
        "tenants",
        "gateway",
        "api",
        "submission",
        "webhooks",
        "server",
    },
}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports at import time: ``mailsflux.x.y`` names."""
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("mailsflux"):
                found.add(node.module)
                # ``from mailsflux.pkg import sub`` may name a submodule
                for alias in node.names:
                    found.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mailsflux")}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    modules |= {_module(p): p for p in SRC.rglob("*.pyi")}
    return {
        m: {i for i in _imports(p) if i in modules and i != m}
        for m, p in modules.items()
        if p.suffix == ".py"
    }


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_every_stage_is_a_package_with_a_public_face() -> None:
    for stage in STAGES:
        assert (SRC / stage / "__init__.py").is_file(), stage


def test_stages_import_only_the_stages_before_them() -> None:
    wrong = []
    for module, targets in _graph().items():
        stage = _stage(module)
        if stage is None:
            continue
        for target in targets:
            other = _stage(target)
            if other is not None and other != stage and other not in ALLOWED[stage]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_stage_reaches_into_another_stages_compiled_module() -> None:
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            leaf = target.rsplit(".", 1)[-1]
            if leaf.startswith("_") and _stage(target) not in (None, _stage(module)):
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_import_cycles() -> None:
    graph = _graph()
    # Importing ``mailsflux.a.b`` runs ``mailsflux/a/__init__.py`` first,
    # unless the importer sits inside ``mailsflux.a`` (then it is running).
    for module, targets in graph.items():
        ancestors = {module.rsplit(".", n)[0] for n in range(1, module.count(".") + 1)}
        for target in list(targets):
            parts = target.split(".")
            for n in range(2, len(parts)):
                parent = ".".join(parts[:n])
                if parent in graph and parent not in ancestors and parent != module:
                    targets.add(parent)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append([*path[path.index(t) :], t] if t in path else [m, t])
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []
