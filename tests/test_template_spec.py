"""The Mustache spec (tests/data/mustache/*.json), one pytest case per spec test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mailsflux.compose import Template, render

SPEC_DIR = Path(__file__).parent / "data" / "mustache"
SPEC_FILES = sorted(SPEC_DIR.glob("*.json"))


def _load_cases() -> list[Any]:
    params = []
    for path in SPEC_FILES:
        spec = json.loads(path.read_text(encoding="utf-8"))
        for case in spec["tests"]:
            params.append(pytest.param(path.name, case, id=f"{path.stem}:{case['name']}"))
    return params


CASES = _load_cases()


def _with_lambdas(value: Any, namespace: dict[str, Any]) -> Any:
    """Replace the spec's ``{"__tag__": "code", "python": ...}`` by the lambda."""
    if isinstance(value, dict):
        if value.get("__tag__") == "code":
            return eval(value["python"], namespace)
        return {k: _with_lambdas(v, namespace) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_lambdas(v, namespace) for v in value]
    return value


def test_spec_files_present() -> None:
    names = {p.name for p in SPEC_FILES}
    assert {
        "comments.json",
        "delimiters.json",
        "interpolation.json",
        "inverted.json",
        "partials.json",
        "sections.json",
        "~lambdas.json",
    } <= names
    assert len(CASES) == 12 + 14 + 42 + 22 + 11 + 34 + 10


@pytest.mark.parametrize(("filename", "case"), CASES)
def test_spec(filename: str, case: dict[str, Any]) -> None:
    data = _with_lambdas(case["data"], {})  # a fresh namespace: lambdas keep call counts there
    tpl = Template(case["template"], partials=case.get("partials"), name=filename)
    assert tpl.render(data) == case["expected"], case["desc"]


@pytest.mark.parametrize(("filename", "case"), CASES)
def test_spec_bytes(filename: str, case: dict[str, Any]) -> None:
    data = _with_lambdas(case["data"], {})
    tpl = Template(case["template"], partials=case.get("partials"), name=filename)
    assert tpl.render_bytes(data) == case["expected"].encode("utf-8")


@pytest.mark.parametrize(("filename", "case"), [c for c in CASES if "lambdas" not in c.id])
def test_spec_module_render(filename: str, case: dict[str, Any]) -> None:
    assert render(case["template"], case["data"], case.get("partials")) == case["expected"]
