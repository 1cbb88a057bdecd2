"""`--help` reads well at 80 columns: every command has a working example, the command lists
are not cut mid-phrase, and the words a newcomer meets (headless, shadow, judge) are explained."""

from __future__ import annotations

import shlex

import click
import pytest
from click.testing import CliRunner

from canary_tui.cli import HELP, cli


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        out.append((path, command))
        if isinstance(command, click.Group):
            out += _commands(command, f"{path} ")
    return out


COMMANDS = _commands(cli)


def _help(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_is_documented() -> None:
    assert {path for path, _ in COMMANDS} == set(HELP)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_one_example_that_parses(path: str, command: click.Command) -> None:
    text = _help(*path.split())
    assert "Example:" in text
    example = text.split("Example:", 1)[1].strip().splitlines()[0].strip()
    words = [w for w in shlex.split(example) if w not in ("nohup", "&")]
    assert words[: 1 + len(path.split())] == ["canary-tui", *path.split()]
    assert len(example) + 4 <= 80  # shown indented, it fits 80 columns
    # the example's options and arguments are real: click parses them (nothing runs)
    with command.make_context(path, words[1 + len(path.split()) :]) as ctx:
        assert ctx.command is command


@pytest.mark.parametrize("path", ["", *(p for p, c in COMMANDS if isinstance(c, click.Group))])
def test_command_lists_fit_80_columns_and_are_not_cut(path: str) -> None:
    text = _help(*path.split())
    listing = text.split("Commands:", 1)[1]
    for line in listing.strip().splitlines():
        assert len(line) <= 80 and not line.rstrip().endswith("..."), line


@pytest.mark.parametrize("path", ["", *(p for p, _ in COMMANDS)])
def test_every_help_fits_80_columns(path: str) -> None:
    for line in _help(*path.split()).splitlines():
        assert len(line) <= 80, line


def test_the_words_a_newcomer_meets_are_explained() -> None:
    text = _help()
    for word in ("headless", "shadow", "judge", "baseline", "session"):
        assert f"  {word} " in text, word
    assert "max" in _help("demo").split("--speed", 1)[1].split("--audit", 1)[0]
    serve = _help("serve")
    assert "--config FILE" in serve and "--demo" in serve.split("Options:")[0]
    tail = _help("audit", "tail")
    assert "How many of the last records" in tail


def test_every_option_has_help() -> None:
    for path, command in COMMANDS:
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{path} {param.opts}"
