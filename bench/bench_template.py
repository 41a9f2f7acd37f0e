"""Template rendering speed: compiled Mustache vs a pure-Python renderer.

Renders a ~4 KB HTML newsletter with ~15 tags (escaped and raw interpolations,
a section over a list, an inverted section) per recipient.

    .venv/bin/python -m pytest bench/bench_template.py --benchmark-enable -p no:cacheprovider
    .venv/bin/python bench/bench_template.py      # prints us/message and the ratio

Timings are printed, never asserted.
"""

from __future__ import annotations

import re
import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe
from mailsflux.compose import Template

_FILLER = (
    '<tr><td style="padding:8px 24px;font-family:Helvetica,Arial,sans-serif;font-size:15px;'
    'line-height:22px;color:#333333">Lorem ipsum dolor sit amet, consectetur adipiscing elit, '
    "sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.</td></tr>\n"
)

SOURCE = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{{subject}}</title></head>\n'
    '<body style="margin:0;padding:0;background:#f4f4f4">\n'
    '<table role="presentation" width="100%" cellspacing="0" cellpadding="0">\n'
    "<tr><td><h1>Hello {{first_name}} {{last_name}},</h1></td></tr>\n"
    + _FILLER * 6
    + "<tr><td>Your account {{account_id}} ({{email}}) was renewed on {{date}}.</td></tr>\n"
    + _FILLER * 4
    + "<tr><td>Plan: {{plan}}, next invoice: {{amount}} {{currency}}.</td></tr>\n"
    + "{{#items}}<tr><td>{{name}}</td><td>{{price}}</td></tr>\n{{/items}}"
    + "{{^items}}<tr><td>No items this month.</td></tr>\n{{/items}}"
    + _FILLER * 4
    + "<tr><td>{{{signature}}}</td></tr>\n"
    + '<tr><td><a href="{{unsubscribe_url}}">Unsubscribe</a> | '
    '<a href="{{preferences_url}}">Preferences</a></td></tr>\n'
    "</table>\n</body></html>\n"
)

DATA: dict[str, Any] = {
    "subject": "Your March statement",
    "first_name": "Zoë",
    "last_name": "O'Brien & Sons",
    "account_id": 1234567,
    "email": "zoe@example.com",
    "date": "2025-03-01",
    "plan": "Pro <annual>",
    "amount": 129.5,
    "currency": "EUR",
    "items": [
        {"name": "Seats", "price": "99.00"},
        {"name": "Storage", "price": "30.50"},
    ],
    "signature": "<p>The <b>Example</b> team</p>",
    "unsubscribe_url": "https://example.com/u?id=1234567&t=abc",
    "preferences_url": "https://example.com/p?id=1234567&t=abc",
}

# --------------------------------------------------------------------------
# The pure-Python reference: a regex renderer supporting the same tags.

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})
_SECTION = re.compile(r"{{([#^])(\w+)}}(.*?){{/\2}}", re.S)
_TAG = re.compile(r"{{({)?(\w+)}?}}")


def _py_interpolate(source: str, data: dict[str, Any]) -> str:
    def one(m: re.Match[str]) -> str:
        value = data.get(m.group(2))
        text = "" if value is None or value is False else str(value)
        return text if m.group(1) else text.translate(_ESCAPES)

    return _TAG.sub(one, source)


def py_render(source: str, data: dict[str, Any]) -> str:
    def section(m: re.Match[str]) -> str:
        value = data.get(m.group(2))
        if m.group(1) == "^":
            return "" if value else m.group(3)
        if not value:
            return ""
        items = value if isinstance(value, list) else [data]
        return "".join(_py_interpolate(m.group(3), {**data, **item}) for item in items)

    return _py_interpolate(_SECTION.sub(section, source), data)


TEMPLATE = Template(SOURCE, name="newsletter.html")


try:
    import pytest

    from conftest import RATIOS, RESULTS

    RATIOS.append(
        (
            "Template.render speed-up over a pure-Python re.sub renderer",
            "template_pure_python",
            "template_compiled",
        )
    )

    def test_outputs_agree() -> None:
        assert TEMPLATE.render(DATA) == py_render(SOURCE, DATA)
        assert 3500 < len(SOURCE.encode()) < 5000

    @pytest.mark.benchmark(group="template")
    def test_template_compiled(benchmark: Any) -> None:
        benchmark(TEMPLATE.render, DATA)
        if benchmark.stats:
            RESULTS["template_compiled"] = benchmark.stats.stats.mean

    @pytest.mark.benchmark(group="template")
    def test_template_compiled_bytes(benchmark: Any) -> None:
        benchmark(TEMPLATE.render_bytes, DATA)
        if benchmark.stats:
            RESULTS["template_compiled_bytes"] = benchmark.stats.stats.mean

    @pytest.mark.benchmark(group="template")
    def test_template_pure_python(benchmark: Any) -> None:
        benchmark(py_render, SOURCE, DATA)
        if benchmark.stats:
            RESULTS["template_pure_python"] = benchmark.stats.stats.mean
except ImportError:  # run as a plain script without pytest
    pass


def _per_call_us(fn: Any, *args: Any) -> float:
    timer = timeit.Timer(lambda: fn(*args))
    number, _ = timer.autorange()
    return min(timer.repeat(5, number)) / number * 1e6


def main() -> None:
    print(describe())
    assert TEMPLATE.render(DATA) == py_render(SOURCE, DATA)
    print(
        f"template: {len(SOURCE.encode())} bytes, output {len(TEMPLATE.render_bytes(DATA))} bytes"
    )
    compiled = _per_call_us(TEMPLATE.render, DATA)
    as_bytes = _per_call_us(TEMPLATE.render_bytes, DATA)
    python = _per_call_us(py_render, SOURCE, DATA)
    print(f"Template.render        {compiled:8.2f} us/message")
    print(f"Template.render_bytes  {as_bytes:8.2f} us/message")
    print(f"pure-Python re.sub     {python:8.2f} us/message")
    print(f"ratio                  {python / compiled:8.1f}x faster")


if __name__ == "__main__":
    main()
