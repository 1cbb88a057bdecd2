"""The SGR compactor: fewer bytes, the same screen (checked on pyte, a real VT emulator)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary_tui.tui.output import DEFAULT, SgrCompactor, apply_sgr, compacting_driver, transition
from tests.support.processes import read_pty, spawn_dashboard


def screen_of(chunks: list[str], cols: int = 40, rows: int = 6) -> list[list[pyte.screens.Char]]:
    screen = pyte.Screen(cols, rows)
    stream = pyte.Stream(screen)
    for chunk in chunks:
        stream.feed(chunk)
    return [[screen.buffer[y][x] for x in range(cols)] for y in range(rows)]


def compacted(chunks: list[str]) -> list[str]:
    compactor = SgrCompactor()
    return [compactor.feed(chunk) for chunk in chunks]


# --- attributes -------------------------------------------------------------------------------


def test_apply_sgr_reads_colours_flags_and_resets() -> None:
    a = apply_sgr(DEFAULT, "1;38;2;1;2;3;48;5;100")
    assert a.flags == {1} and a.fg == "38;2;1;2;3" and a.bg == "48;5;100"
    b = apply_sgr(a, "22;2;31;49")
    assert b.flags == {2} and b.fg == "31" and b.bg == ""
    assert apply_sgr(b, "0") == DEFAULT and apply_sgr(b, "") == DEFAULT


def test_transition_sends_only_the_change() -> None:
    have = apply_sgr(DEFAULT, "38;2;230;230;230;48;2;16;20;24")
    want = apply_sgr(have, "38;2;253;151;31")
    assert transition(have, want) == "\x1b[38;2;253;151;31m"
    assert transition(have, have) == ""
    assert transition(None, DEFAULT) == "\x1b[0m"  # unknown terminal state: reset first


def test_switching_off_dim_keeps_bold() -> None:
    """22 clears bold and dim together: bold must be set again."""
    have = apply_sgr(DEFAULT, "1;2;38;2;10;20;30")
    want = apply_sgr(DEFAULT, "1;38;2;10;20;30")
    assert transition(have, want) == "\x1b[22;1m"
    assert apply_sgr(have, "22;1") == want


def test_unknown_attributes_are_kept_and_cleared_by_a_reset() -> None:
    have = apply_sgr(DEFAULT, "51;31")  # framed: not a code the compactor knows how to undo
    assert "51" in have.flags
    assert transition(have, apply_sgr(DEFAULT, "31")) == "\x1b[0;31m"


def test_a_row_of_runs_on_one_background_sends_the_background_once() -> None:
    bg = "48;2;16;20;24"
    row = "".join(f"\x1b[38;2;{i};{i};{i};{bg}mword{i}\x1b[0m" for i in range(10)) + "\r\n"
    out = compacted([row])[0]
    assert out.count("48;2;16;20;24") == 1 and len(out) < 0.6 * len(row)
    assert screen_of([out]) == screen_of([row])


def test_state_carries_over_between_writes_and_other_sequences_force_a_reset() -> None:
    chunks = ["\x1b[1;31mred", "\x1b[1;31m more\x1b[0m", "\x1b[?1049h\x1b[1;31mx"]
    out = compacted(chunks)
    assert out[1] == " more\x1b[0m"  # nothing re-sent: the terminal is already bold red
    assert out[2].startswith("\x1b[?1049h\x1b[0;1;31m")  # after a screen switch: from a reset
    assert screen_of(out) == screen_of(chunks)


def test_erasing_uses_the_pending_background() -> None:
    chunks = ["\x1b[44m\x1b[2K\x1b[0mtext"]
    out = compacted(chunks)
    assert screen_of(out) == screen_of(chunks)
    assert out[0].index("44m") < out[0].index("\x1b[2K")


# --- property: the same screen, whatever the stream ---------------------------------------------

_sgr_params = st.lists(
    st.sampled_from(
        ["0", "1", "3", "4", "7", "9", "22", "23", "24", "27", "29", "31", "39", "42", "49",
         "94", "38;5;120", "48;5;17", "38;2;1;2;3", "48;2;200;100;0", ""]
    ),
    min_size=0,
    max_size=4,
).map(lambda codes: f"\x1b[{';'.join(codes)}m")  # fmt: skip
_text = st.text(alphabet="ab c", min_size=1, max_size=6)
_other = st.sampled_from(["\x1b[2;5H", "\x1b[K", "\x1b[1;1H", "\r\n", "\x1b[?25l", "\x1b[2J"])
_token = st.one_of(_sgr_params, _text, _other)


@given(st.lists(st.lists(_token, max_size=12), min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_compacted_stream_draws_the_same_screen(chunks_tokens: list[list[str]]) -> None:
    chunks = ["".join(tokens) for tokens in chunks_tokens]
    out = compacted(chunks)
    assert screen_of(out) == screen_of(chunks)
    assert sum(map(len, out)) <= sum(map(len, chunks)) + 4 * len(chunks) + 8


# --- the real dashboard's output ----------------------------------------------------------------

CONFIG = """
canary: {name: out, service: checkout, stable_version: v1, canary_version: v2}
plan: [{weight: 10, hold: 1h}]
judge: {kind: sequential}
loop: {tick: 1s}
audit: {path: AUDIT}
source: {kind: simulator, rate: 400, onset_s: 100000}
router: {kind: simulator}
"""


def dashboard_output(tmp_path: Path, cols: int, rows: int, seconds: float) -> Iterator[str]:
    """What the dashboard writes to a pty, raw (CANARY_TUI_OUTPUT=raw), read by chunks."""
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.replace("AUDIT", str(tmp_path / "audit.jsonl")))
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor",
           "LANG": "C.UTF-8", "CANARY_TUI_OUTPUT": "raw"}  # fmt: skip
    env.pop("NO_COLOR", None)
    pid, fd = spawn_dashboard(cols, rows, config, env)
    decoder = __import__("codecs").getincrementaldecoder("utf-8")()
    try:
        for data in read_pty(fd, seconds):
            yield decoder.decode(data)
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)


def test_the_live_dashboard_draws_the_same_screen_compacted(tmp_path: Path) -> None:
    cols, rows = 100, 30
    raw = [chunk for chunk in dashboard_output(tmp_path, cols, rows, 8.0) if chunk]
    assert len(raw) > 5 and any("PROGRESSING" in c for c in raw)
    out = compacted(raw)
    screen_raw, screen_out = pyte.Screen(cols, rows), pyte.Screen(cols, rows)
    stream_raw, stream_out = pyte.Stream(screen_raw), pyte.Stream(screen_out)
    for a, b in zip(raw, out, strict=True):  # the same screen after every write
        stream_raw.feed(a)
        stream_out.feed(b)
        assert screen_raw.buffer == screen_out.buffer
    assert "PROGRESSING" in "\n".join(screen_out.display)
    saved = 1 - sum(map(len, out)) / sum(map(len, raw))
    assert saved > 0.3, f"only {saved:.0%} fewer characters"


def test_raw_output_turns_the_compactor_off(monkeypatch: pytest.MonkeyPatch) -> None:
    class Base:
        def __init__(self) -> None:
            self.written: list[str] = []

        def write(self, data: str) -> None:
            self.written.append(data)

    monkeypatch.setenv("CANARY_TUI_OUTPUT", "raw")
    assert compacting_driver(Base) is Base
    monkeypatch.delenv("CANARY_TUI_OUTPUT")
    driver = compacting_driver(Base)()
    driver.write("\x1b[31ma\x1b[0m\x1b[31mb\x1b[0m")
    assert driver.written == ["\x1b[0;31mab\x1b[0m"]


def test_a_sequence_cut_between_chunks_is_joined() -> None:
    chunks = ["\x1b[1;3", "1mred\x1b", "[0m plain"]
    out = compacted(chunks)
    assert screen_of(out) == screen_of(chunks)
    assert "".join(out) == "\x1b[0m\x1b[1;31mred\x1b[0m plain"


def test_strings_pass_untouched_even_when_cut() -> None:
    title = "\x1b]0;canary-tui\x07"
    chunks = ["\x1b[31m\x1b]0;can", "ary-tui\x07x\x1b]2;t\x1b\\", "y"]
    out = "".join(compacted(chunks))
    assert title in out and "\x1b]2;t\x1b\\" in out
    assert out.endswith("y")


def test_colon_parameters_are_colours_and_underline_styles() -> None:
    red = apply_sgr(DEFAULT, "38:2::255:0:0;4:3")
    assert red.fg == "38:2::255:0:0" and red.flags == {"4:3"}
    assert apply_sgr(red, "24").flags == frozenset()  # 24 ends every underline style
    assert apply_sgr(red, "4").flags == {4}  # one underline style at a time
    assert apply_sgr(red, "39").fg == ""
    out = compacted(["\x1b[38:2::255:0:0mred\x1b[39m plain"])[0]
    assert out == "\x1b[0;38:2::255:0:0mred\x1b[0m plain"  # a reset is shorter than 39


def test_underline_styles_replace_each_other_in_order() -> None:
    assert apply_sgr(DEFAULT, "4;21").flags == {21}
    assert apply_sgr(DEFAULT, "21;4").flags == {4}
    assert transition(apply_sgr(DEFAULT, "4"), apply_sgr(DEFAULT, "21")) in (
        "\x1b[24;21m",
        "\x1b[0;21m",
    )
