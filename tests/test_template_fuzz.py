"""Property and fuzz tests: the compiled renderer never crashes or hangs."""

from __future__ import annotations

import html
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsflux.compose import Template, render
from mailsflux.errors import MissingVariableError, TemplateSyntaxError

NAMES = ["a", "b", "c", "a.b", "b.a", ".", "x", "list"]

TOKENS = [
    *"{{ }} {{{ }}} {{= =}} { } = # ^ / > ! & . < \" ' <% %> | [ ] é € 𝄞".split(),
    *(" ", "  ", "\t", "\n", "\r\n", "\r", "\0", "&"),
    *"{{#a}} {{/a}} {{^b}} {{/b}} {{#list}} {{/list}} {{#.}} {{/.}} {{a}} {{{b}}}".split(),
    *"{{&c}} {{a.b}} {{.}} {{!note}} {{>p}} {{>q}} <%a%> |a| |#a| |/a|".split(),
    *("{{=<% %>=}}", "<%={{ }}=%>", "{{= | | =}}", "{{ & c }}", "{{! a\nb }}"),
    *NAMES,
]

source_text = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=4)), max_size=30).map(
    "".join
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
data_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.sampled_from(["a", "b", "c", "x", "list"]), inner, max_size=4),
    ),
    max_leaves=12,
)
root_data = st.dictionaries(st.sampled_from(["a", "b", "c", "x", "list"]), data_values, max_size=5)
partials = st.dictionaries(st.sampled_from(["p", "q", "r"]), source_text, max_size=3)

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROPS = settings(max_examples=300, deadline=None)


@FUZZ
@given(
    source=source_text,
    data=root_data,
    parts=partials,
    escape=st.booleans(),
    strict=st.booleans(),
)
def test_random_templates_render_or_raise_template_errors(
    source: str, data: dict[str, Any], parts: dict[str, str], escape: bool, strict: bool
) -> None:
    try:
        tpl = Template(source, partials=parts, escape=escape, strict=strict, name="fuzz")
    except TemplateSyntaxError as exc:
        assert exc.file is not None and exc.line is not None and exc.column is not None
        assert exc.line >= 1 and exc.column >= 1
        return
    assert isinstance(tpl.variables, frozenset)
    try:
        out = tpl.render(data, row=1)
    except (TemplateSyntaxError, MissingVariableError):
        return
    assert isinstance(out, str)
    assert tpl.render_bytes(data, row=1) == out.encode("utf-8")


@FUZZ
@given(source=st.text(alphabet=st.sampled_from("{}=#^/>!&. \n\rab<%|"), max_size=40))
def test_dense_braces_render_or_raise(source: str) -> None:
    try:
        out = Template(source).render({"a": [1, {"b": 2}], "b": "x"})
    except TemplateSyntaxError:
        return
    assert isinstance(out, str)


@PROPS
@given(text=st.text(st.characters(exclude_categories=["Cs"])))
def test_text_without_tags_renders_unchanged(text: str) -> None:
    if "{{" in text:
        text = text.replace("{{", "{ {")
    assert Template(text).render({}) == text
    assert Template(text, escape=False).render_bytes({"a": 1}) == text.encode("utf-8")


@PROPS
@given(value=st.text(st.characters(exclude_categories=["Cs"])))
def test_escaping_round_trip(value: str) -> None:
    escaped = render("{{x}}", {"x": value})
    assert not any(ch in escaped for ch in "<>\"'")
    assert html.unescape(escaped) == value
    assert render("{{{x}}}", {"x": value}) == value
    assert Template("{{x}}", escape=False).render({"x": value}) == value


@PROPS
@given(value=st.text(st.characters(exclude_categories=["Cs"])))
def test_values_are_not_re_interpolated(value: str) -> None:
    tpl = Template("[{{{x}}}]{{#s}}{{{x}}}{{/s}}")
    assert tpl.render({"x": value, "s": [1, 2]}) == f"[{value}]{value}{value}"
