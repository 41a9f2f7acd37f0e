"""Every option of every command has help text and a place in the README's CLI section."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from mailsflux import cli
from mailsflux.tracking.serve import build_parser as track_parser
from tests._cli import run_cli

README = Path(__file__).parent.parent / "README.md"


def _parsers() -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(name: str, p: argparse.ArgumentParser) -> None:
        found[name] = p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub, sp in a.choices.items():
                    walk(f"{name} {sub}".strip(), sp)

    walk("", cli.build_parser())
    found["track-server"] = track_parser()
    return found


def _options(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in p._actions
        if a.option_strings and not isinstance(a, argparse._HelpAction | argparse._VersionAction)
    ]


def test_every_option_has_help_text() -> None:
    missing = [
        f"{name} {(a.option_strings or [a.dest])[-1]}"
        for name, p in _parsers().items()
        for a in p._actions
        if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
        and (not a.help or a.help == argparse.SUPPRESS)
    ]
    assert missing == []


def _readme_rows() -> set[tuple[str, str]]:
    """(command, option) of each row of the README's CLI options table."""
    text = README.read_text("utf-8")
    section = text[text.index("## The CLI") :]
    section = section[: section.index("\n## ", 1)]
    rows: set[tuple[str, str]] = set()
    command = ""
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("command", "---"):
            continue
        command = cells[0].strip("`") or command
        rows.update((command, o) for o in re.findall(r"`(-[-\w]+)", cells[1]))
    return rows


def test_every_option_is_in_the_readme_cli_table() -> None:
    rows = _readme_rows()
    missing = [
        f"{name} {o}"
        for name, p in _parsers().items()
        if name
        for a in _options(p)
        for o in a.option_strings
        if o.startswith("--") and (name, o) not in rows
    ]
    assert missing == []


def test_help_runs_for_every_command() -> None:
    for name in _parsers():
        proc = run_cli(*name.split(), "--help")
        assert proc.returncode == 0, (name, proc.stderr)
        assert "usage: mailsflux" in proc.stdout


def test_single_command_parsers_match_the_whole() -> None:
    # `send` and `worker` build only their own command (each worker process
    # runs one): its options and help must be the whole parser's.
    whole = _parsers()
    for only in ("send", "worker"):
        alone = cli.build_parser(only)
        subs = next(a for a in alone._actions if isinstance(a, argparse._SubParsersAction))
        assert list(subs.choices) == [only]
        assert subs.choices[only].format_help() == whole[only].format_help()
        top = [a.option_strings for a in _options(alone)]
        assert top == [a.option_strings for a in _options(whole[""])]
