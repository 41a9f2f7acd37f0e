"""Syntax errors, strict mode, values, escaping and limits of mailsflux.compose."""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from mailsflux.compose import Template, render
from mailsflux.errors import (
    MailsfluxError,
    MissingVariableError,
    TemplateError,
    TemplateSyntaxError,
)

# --------------------------------------------------------------------------
# syntax errors: message, file, 1-based line and column of the offending tag


@pytest.mark.parametrize(
    ("source", "line", "column", "fragment"),
    [
        ("Hello {{name", 1, 7, "unclosed tag"),
        ("a\nb {{{name}}", 2, 3, "unclosed tag"),
        ("x {{! never closed", 1, 3, "unclosed tag"),
        ("{{#items}}\n  {{name}}\n", 1, 1, "unclosed section 'items'"),
        ("{{#a}}{{#b}}{{/b}}", 1, 1, "unclosed section 'a'"),
        ("x\n  {{/items}}", 2, 3, "without an open section"),
        ("{{#a}}\n{{#b}}\n{{/a}}\n{{/b}}", 3, 1, "does not match section 'b'"),
        ("é {{=<% %>}}", 1, 3, "bad set-delimiter"),
        ("{{= a b c =}}", 1, 1, "bad set-delimiter"),
        ("{{==}}", 1, 1, "bad set-delimiter"),
        ("{{=}}", 1, 1, "bad set-delimiter"),
        ("{{}}", 1, 1, "empty variable name"),
        ("ab{{ }}", 1, 3, "empty variable name"),
        ("{{{ }}}", 1, 1, "empty variable name"),
        ("{{& }}", 1, 1, "empty variable name"),
        ("{{#}}{{/}}", 1, 1, "empty section name"),
        ("{{^ }}", 1, 1, "empty section name"),
        ("{{>}}", 1, 1, "empty partial name"),
        ("{{first name}}", 1, 1, "contains whitespace"),
        ("{{a..b}}", 1, 1, "invalid dotted name"),
        ("{{.a}}", 1, 1, "invalid dotted name"),
        ("{{#a.}}{{/a.}}", 1, 1, "invalid dotted name"),
        ("{{=<% %>=}}\n<%#a%>\n<%/b%>", 3, 1, "does not match"),
        ("{{=<% %>=}}<%name", 1, 12, "unclosed tag"),
    ],
)
def test_syntax_error_location(source: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        Template(source, name="welcome.html")
    err = info.value
    assert fragment in err.message
    assert (err.file, err.line, err.column) == ("welcome.html", line, column)
    assert str(err) == f"welcome.html:{line}:{column}: {err.message}"
    assert isinstance(err, TemplateError)
    assert isinstance(err, MailsfluxError)
    assert isinstance(err, ValueError)
    assert err.permanent


def test_syntax_error_default_name() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        Template("{{/x}}")
    assert info.value.file == "<template>"


def test_syntax_error_in_partial_names_the_partial() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        Template("{{>footer}}", partials={"footer": "ok\n{{#x}}"}, name="main.html")
    assert (info.value.file, info.value.line, info.value.column) == ("footer", 2, 1)


def test_unused_partial_is_not_compiled() -> None:
    Template("no partial here", partials={"broken": "{{#x}}"})


def test_module_render_raises_syntax_errors() -> None:
    with pytest.raises(TemplateSyntaxError):
        render("{{#a}}", {})


def test_partials_must_be_str() -> None:
    with pytest.raises(TypeError):
        Template("{{>a}}", partials={"a": 1})  # type: ignore[dict-item]


# --------------------------------------------------------------------------
# strict mode


def test_strict_missing_variable() -> None:
    tpl = Template("Hello {{first_name}}!", strict=True, name="welcome.html")
    with pytest.raises(MissingVariableError) as info:
        tpl.render({}, row=12, recipient="ann@example.com")
    err = info.value
    assert err.variable == "first_name"
    assert err.row == 12
    assert err.recipient == "ann@example.com"
    assert err.file == "welcome.html"
    assert "missing variable 'first_name' for row 12" in err.message
    assert str(err).startswith("welcome.html: missing variable 'first_name' for row 12")
    assert isinstance(err, KeyError)
    assert isinstance(err, TemplateError)


def test_strict_without_row() -> None:
    with pytest.raises(MissingVariableError) as info:
        Template("{{x}}", strict=True).render_bytes({})
    assert info.value.message == "missing variable 'x'"
    assert info.value.row is None and info.value.recipient is None


@pytest.mark.parametrize(
    "source", ["{{{x}}}", "{{&x}}", "{{a.x}}", "{{#s}}{{x}}{{/s}}", "{{>p}}", "{{a.b.c}}"]
)
def test_strict_every_interpolation_form(source: str) -> None:
    tpl = Template(source, partials={"p": "{{x}}"}, strict=True)
    with pytest.raises(MissingVariableError):
        tpl.render({"s": True, "a": {"b": {}}})


def test_strict_present_but_empty_values_are_not_missing() -> None:
    tpl = Template("[{{a}}{{b}}{{c}}{{d.e}}{{.}}]", strict=True)
    assert tpl.render({"a": None, "b": False, "c": "", "d": {"e": 0}}).startswith("[0")


def test_strict_missing_sections_are_falsy() -> None:
    tpl = Template("{{#nope}}x{{/nope}}{{^nope}}y{{/nope}}{{#a.b}}z{{/a.b}}", strict=True)
    assert tpl.render({}) == "y"


def test_strict_resolves_through_context_stack() -> None:
    tpl = Template("{{#items}}{{name}} {{greeting}};{{/items}}", strict=True)
    out = tpl.render({"greeting": "hi", "items": [{"name": "a"}, {"name": "b"}]})
    assert out == "a hi;b hi;"


def test_not_strict_missing_renders_empty() -> None:
    assert Template("[{{x}}{{{y}}}{{&z}}{{a.b}}]").render({}) == "[]"


# --------------------------------------------------------------------------
# escaping


def test_html_escaping() -> None:
    tpl = Template("{{v}}|{{{v}}}|{{&v}}")
    assert tpl.render({"v": "<a href=\"x\">'&'</a>"}) == (
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;|"
        "<a href=\"x\">'&'</a>|<a href=\"x\">'&'</a>"
    )


def test_escape_false_escapes_nothing() -> None:
    tpl = Template("{{v}}|{{{v}}}|{{&v}}", escape=False)
    assert tpl.render({"v": "<&>\"'"}) == "<&>\"'|<&>\"'|<&>\"'"
    assert not tpl.escape


def test_escaping_non_ascii_and_long_values() -> None:
    value = ("é<ü>€𝄞&" * 5000) + "tail"
    out = Template("{{v}}").render({"v": value})
    assert out == value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_literal_text_is_never_escaped() -> None:
    assert Template("<p>&amp; \"'</p>{{v}}").render({"v": "&"}) == "<p>&amp; \"'</p>&amp;"


# --------------------------------------------------------------------------
# values


def test_scalar_values() -> None:
    tpl = Template("{{s}}|{{i}}|{{f}}|{{t}}|{{fa}}|{{n}}|{{big}}")
    data = {"s": "x", "i": 42, "f": 1.5, "t": True, "fa": False, "n": None, "big": 10**30}
    assert tpl.render(data) == "x|42|1.5|True|||" + str(10**30)


def test_sections_over_tuples_and_falsy_values() -> None:
    tpl = Template("{{#xs}}<{{.}}>{{/xs}}{{^xs}}none{{/xs}}")
    assert tpl.render({"xs": (1, 2)}) == "<1><2>"
    falsies: list[Any] = [[], (), None, False, 0, "", {}]
    for falsy in falsies:
        assert tpl.render({"xs": falsy}) == "none"


def test_section_truthy_scalar_pushes_it() -> None:
    assert Template("{{#n}}[{{.}}]{{/n}}").render({"n": 7}) == "[7]"


class _Map(Mapping[str, Any]):
    def __init__(self, **kw: Any) -> None:
        self._d = kw

    def __getitem__(self, key: str) -> Any:
        return self._d[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


def test_mapping_and_dict_subclass_contexts() -> None:
    tpl = Template("{{a}}{{#m}}{{b}}{{a}}{{/m}}{{#o}}{{c}}{{/o}}")
    data = _Map(a="1", m=_Map(b="2"), o=OrderedDict(c="3"))
    assert tpl.render(data) == "12" + "1" + "3"


@dataclass
class _User:
    name: str
    _secret: str = "hidden"


def test_object_attributes_but_not_private_ones() -> None:
    tpl = Template("{{user.name}}|{{user._secret}}|{{user.__class__}}|{{#user}}{{name}}{{/user}}")
    assert tpl.render({"user": _User("Ann")}) == "Ann|||Ann"


def test_list_index_in_dotted_names() -> None:
    tpl = Template("{{items.0.name}}|{{items.1}}|{{items.9}}|{{t.1}}")
    assert tpl.render({"items": [{"name": "a"}, "b"], "t": ("x", "y")}) == "a|b||y"


def test_strings_are_not_objects() -> None:
    # "upper" must not resolve to str.upper when "." is a string
    assert Template("{{#xs}}{{upper}}{{/xs}}").render({"xs": ["a"]}) == ""


def test_render_bytes_is_utf8() -> None:
    tpl = Template("Grüße, {{name}} ✉")
    assert tpl.render_bytes({"name": "Zoë"}) == "Grüße, Zoë ✉".encode()


def test_large_output_grows_the_buffer() -> None:
    tpl = Template("{{#rows}}{{.}}\n{{/rows}}")
    rows = [f"row {i} " + "x" * 50 for i in range(20000)]
    assert tpl.render({"rows": rows}) == "".join(r + "\n" for r in rows)
    # and the size hint from a big render does not break a small one
    assert tpl.render({"rows": ["a"]}) == "a\n"


def test_non_mapping_root_data() -> None:
    assert Template("{{#.}}{{.}},{{/.}}").render([1, 2, 3]) == "1,2,3,"  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# partials beyond the stored spec file (cases from later spec versions)


def test_nested_partials() -> None:
    tpl = Template("{{>outer}}", partials={"outer": "*{{a}} {{>inner}}*", "inner": "{{b}}!"})
    assert tpl.render({"a": "hello", "b": "world"}) == "*hello world!*"


def test_nested_standalone_partial_indentation_accumulates() -> None:
    partials = {"outer": "<\n  {{>inner}}\n>\n", "inner": "a\nb\n"}
    tpl = Template("  {{>outer}}\n", partials=partials)
    assert tpl.render({}) == "  <\n    a\n    b\n  >\n"


def test_indented_partial_does_not_indent_data() -> None:
    tpl = Template("  {{>p}}\n", partials={"p": "[{{{v}}}]\n"})
    assert tpl.render({"v": "1\n2"}) == "  [1\n2]\n"


def test_standalone_indentation_variant_from_later_spec() -> None:
    tpl = Template(
        "\\\n {{>partial}}\n/\n", partials={"partial": "|\n{{{content}}}a b{{{content}}}c\n|\n"}
    )
    expected = "\\\n |\n <\n->a b<\n->c\n |\n/\n"
    assert tpl.render({"content": "<\n->"}) == expected


def test_partials_in_variables() -> None:
    tpl = Template(
        "{{a.b}} {{#list}}{{item}}{{/list}} {{^inv}}{{/inv}} {{.}} {{>p}} {{>missing}}",
        partials={"p": "{{from_partial}} {{>q}}", "q": "{{deep}}", "unused": "{{no}}"},
    )
    assert tpl.variables == frozenset({"a", "list", "item", "inv", "from_partial", "deep"})


def test_partial_names_use_their_own_delimiters() -> None:
    tpl = Template("{{=<% %>=}}<%>p%>", partials={"p": "{{x}}<%x%>"})
    assert tpl.render({"x": 1}) == "1<%x%>"


# --------------------------------------------------------------------------
# limits: no recursion without end, no crash


def test_self_including_partial_raises() -> None:
    tpl = Template("{{>a}}", partials={"a": "x{{>a}}"}, name="loop.html")
    with pytest.raises(TemplateSyntaxError) as info:
        tpl.render({})
    assert "nested more than" in info.value.message


def test_self_including_indented_partial_raises() -> None:
    tpl = Template("{{>a}}", partials={"a": "x\n  {{>a}}\n"})
    with pytest.raises(TemplateSyntaxError):
        tpl.render({})


def test_recursive_partial_over_data_is_fine() -> None:
    tree: dict[str, Any] = {"name": "0", "kids": []}
    node = tree
    for i in range(1, 60):
        child: dict[str, Any] = {"name": str(i), "kids": []}
        node["kids"].append(child)
        node = child
    tpl = Template("{{>n}}", partials={"n": "{{name}}({{#kids}}{{>n}}{{/kids}})"})
    assert tpl.render(tree).startswith("0(1(2(")


def test_deeply_nested_sections_raise_at_compile_time() -> None:
    source = "{{#a}}" * 1000 + "{{/a}}" * 1000
    with pytest.raises(TemplateSyntaxError) as info:
        Template(source)
    assert "nested" in info.value.message


def test_self_expanding_lambda_raises() -> None:
    tpl = Template("{{lam}}")
    with pytest.raises(TemplateSyntaxError):
        tpl.render({"lam": lambda: "{{lam}}"})


def test_lambda_section_uses_current_context() -> None:
    tpl = Template("{{#wrap}}{{name}}{{/wrap}}")
    assert tpl.render({"name": "Ann", "wrap": lambda text: f"<b>{text}</b>"}) == "<b>Ann</b>"


# --------------------------------------------------------------------------
# API details


def test_attributes_and_pickle() -> None:
    tpl = Template("{{x}}", partials={"p": "y"}, escape=False, strict=True, name="t.txt")
    assert (tpl.source, tpl.name, tpl.escape, tpl.strict) == ("{{x}}", "t.txt", False, True)
    clone = pickle.loads(pickle.dumps(tpl))
    assert (clone.source, clone.name, clone.escape, clone.strict) == ("{{x}}", "t.txt", False, True)
    assert clone.render({"x": "<"}) == "<"
    tpl.name = "renamed.txt"
    with pytest.raises(MissingVariableError) as info:
        tpl.render({})
    assert info.value.file == "renamed.txt"


def test_module_render() -> None:
    assert render("Hi {{n}}", {"n": "<Ann>"}) == "Hi &lt;Ann&gt;"
    assert render("Hi {{n}}", {"n": "Bob"}) == "Hi Bob"
    assert render("{{>p}}", {"n": 1}, {"p": "[{{n}}]"}) == "[1]"


def test_render_from_threads() -> None:
    tpl = Template("{{#xs}}{{.}}{{/xs}}")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(300):
                assert tpl.render({"xs": [i, "a"]}) == f"{i}a"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_runaway_expansion_stops_with_an_error_not_a_hang() -> None:
    # 100**4 section bodies: far beyond any email, and not bounded by depth.
    src = "{{#a}}{{#a}}{{#a}}{{#a}}{{.}}{{/a}}{{/a}}{{/a}}{{/a}}"
    with pytest.raises(TemplateError, match="template operations") as err:
        Template(src, name="runaway.html").render({"a": list(range(100))})
    assert err.value.file == "runaway.html" and err.value.line == 1
    # Small data through the same template is fine.
    assert Template(src).render({"a": [1]}) == "1"


def test_runaway_output_stops_with_an_error() -> None:
    big = "x" * (1 << 20)
    with pytest.raises(TemplateError, match="output larger than"):
        Template("{{#a}}{{{big}}}{{/a}}").render({"a": list(range(1000)), "big": big})
