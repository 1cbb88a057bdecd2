"""The README stays short and true to the code; the generated reference pages stay complete."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from canary_tui.tui.app import CanaryApp
from canary_tui.tui.keymap import ACTION_KEYS, app_bindings
from canary_tui.tui.screens import dashboard

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
sys.path.insert(0, str(REPO / "scripts"))
import gen_docs  # noqa: E402


def _key_table() -> set[str]:
    """The keys in the first column of the README's key table."""
    section = README.split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
    keys: set[str] = set()
    for row in section.splitlines():
        if row.startswith("| `"):
            keys.update(re.findall(r"`([^`]+)`", row.split("|")[1]))
    return keys


def test_readme_is_short() -> None:
    assert len(README.encode("utf-8")) <= 12 * 1024


def test_readme_key_table_has_every_default_key() -> None:
    names = {"question_mark": "?", "colon": ":"}
    wanted = {a.key for a in ACTION_KEYS}
    for binding in app_bindings():
        wanted.update(names.get(k, k) for k in binding.key.split(","))
    wanted.add(names[CanaryApp.COMMAND_PALETTE_BINDING])
    assert wanted <= _key_table(), wanted - _key_table()


def test_readme_terminal_sizes_are_the_codes() -> None:
    small = f"{dashboard.MIN_WIDTH}x{dashboard.MIN_HEIGHT}"
    compact = f"{dashboard.COMPACT_WIDTH}x{dashboard.COMPACT_HEIGHT}"
    sizes = set(re.findall(r"\b(\d+x\d+)\b", README.split("## Keys")[0]))
    assert {small, compact} <= sizes
    from canary_tui.cli import common as cli

    assert (cli.MIN_WIDTH, cli.MIN_HEIGHT) == (dashboard.MIN_WIDTH, dashboard.MIN_HEIGHT)
    # every size the README names is one the code knows (or a documented layout step)
    assert sizes <= {small, compact, "80x24", "120x40", "100x30"}, sizes


def test_readme_speaks_to_users() -> None:
    for word in (r"\bissue \d", r"\bPilot\b", r"ports\.py"):
        assert not re.search(word, README), word
    assert "\n## What you can rely on\n" in README


def test_readme_has_the_two_contributor_commands() -> None:
    block = README.split("\n## Contributing", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split()[0] for line in block.splitlines()] == [
        "scripts/demo.sh",
        "scripts/test.sh",
    ]


def test_configuration_page_covers_every_field() -> None:
    page = gen_docs.configuration_page()
    for section in ("`plan[]`", "`loop.no_data`", "`alerts.webhooks[]`"):
        assert f"## {section}" in page
    assert "| `tolerance_ratio` | float | `1.5` | >= `1.0` |" in page


def test_an_undescribed_field_fails_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    described = dict(gen_docs.DESCRIPTIONS)
    del described["loop.tick"]
    described["loop.tik"] = "a field that does not exist"
    monkeypatch.setattr(gen_docs, "DESCRIPTIONS", described)
    with pytest.raises(SystemExit, match=r"without a description: loop\.tick;.*exist: loop\.tik"):
        gen_docs.configuration_page()


def test_cli_page_is_every_commands_help() -> None:
    from click.testing import CliRunner

    from canary_tui.cli import cli

    page = gen_docs.cli_page()
    for name, command in cli.commands.items():
        assert f"## `canary-tui {name}`" in page
        shown = CliRunner().invoke(
            cli, [name, "--help"], prog_name="canary-tui", terminal_width=100, max_content_width=100
        )
        assert shown.exit_code == 0
        assert shown.output.rstrip() in page, shown.output
        if hasattr(command, "commands"):
            for sub in command.commands:  # type: ignore[attr-defined]
                assert f"## `canary-tui {name} {sub}`" in page


def test_keys_page_lists_every_binding_id() -> None:
    page = gen_docs.keys_page()
    for action in ACTION_KEYS:
        assert f"| `{action.key}` | `{action.id}` |" in page
    for binding in app_bindings():
        assert f"`{binding.id}`" in page


def test_readme_links_point_at_files_that_exist() -> None:
    """mkdocs checks the site's links; the README is outside the site, so check its own here."""
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    assert links
    for target in links:
        if "://" not in target:
            assert (REPO / target).exists(), target
