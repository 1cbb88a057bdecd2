"""Fewer bytes to the terminal: send only the changes between text styles (SGR deltas).

Textual writes every styled run of text as `ESC[<full style>m text ESC[0m`, so a row of ten
runs on one background repeats that background ten times and resets ten times. Over SSH at
3 a.m. those are most of the bytes. `SgrCompactor` rewrites the stream so that at every
character (and every other escape sequence) the terminal's text attributes are exactly what
the original stream would have set, but it only sends what changed since the previous run.

The driver Textual picks is wrapped by `compacting_driver`; `CANARY_TUI_OUTPUT=raw` turns it
off (for comparison, or a terminal that misbehaves).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

_TOKENS = re.compile(
    r"\x1b\[([0-9;:]*)m"  # SGR (also with colon sub-parameters): the only ones rewritten
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # any other CSI sequence
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\)"  # strings: OSC (titles), DCS, APC, PM, SOS
    r"|\x1b[ -/]*[0-~]"  # two-character escapes (ESC 7, ESC =, ESC ( B)
    r"|[^\x1b]+",
    re.DOTALL,
)
# Sequences that neither use nor change the text attributes (cursor moves, cursor shown or
# hidden, synchronised output): the pending style change can wait until the next text.
_MOVES = re.compile(r"\x1b\[[0-9;]*[ABCDEFGHdf]$|\x1b\[\?(25|2026)[hl]$")
# Sequences that use the attributes (erasing fills with the background) but keep them.
_KEEPS = re.compile(r"\x1b\[[0-9;]*[JKSTXLM@P]$")
_UNFINISHED = re.compile(r"\x1b(\[[0-?]*[ -/]*|[\]PX^_][^\x07\x1b]*\x1b?|[ -/]*)$")

# attribute on-code -> the off-code that clears it
_OFF = {1: 22, 2: 22, 3: 23, 4: 24, 21: 24, 5: 25, 6: 25, 7: 27, 8: 28, 9: 29, 53: 55}
# off-code -> the attributes it clears (22 clears bold and dim)
_CLEARS = {off: tuple(on for on, o in _OFF.items() if o == off) for off in set(_OFF.values())}
# attributes of which a terminal keeps one: setting one replaces the others
_FAMILY = {4: "underline", 21: "underline", 5: "blink", 6: "blink"}


def _head(flag: int | str) -> int | None:
    """The code a flag starts with: 4 for 4 and for '4:3' (curly underline)."""
    if isinstance(flag, int):
        return flag
    head = flag.split(":", 1)[0]
    return int(head) if head.isdigit() else None


@dataclass(frozen=True, slots=True)
class Attrs:
    """Text attributes as SGR parameters: flags (on-codes, or opaque strings) and colours."""

    flags: frozenset[int | str] = frozenset()
    fg: str = ""  # "" is the terminal's default; otherwise the parameters, e.g. "38;2;1;2;3"
    bg: str = ""
    ul: str = ""  # underline colour (58;...)

    def sgr(self) -> str:
        """The parameters that set these attributes from a reset."""
        parts = [str(f) for f in sorted(self.flags, key=str)]
        parts += [c for c in (self.fg, self.bg, self.ul) if c]
        return ";".join(parts)


DEFAULT = Attrs()


def apply_sgr(attrs: Attrs, params: str) -> Attrs:
    """The attributes after `ESC[<params>m`."""
    codes = params.split(";") if params else ["0"]
    flags, fg, bg, ul = set(attrs.flags), attrs.fg, attrs.bg, attrs.ul
    i = 0
    while i < len(codes):
        text = codes[i]
        code = int(text) if text.isdigit() else None
        i += 1
        if ":" in text:  # one parameter with sub-parameters: 38:2::1:2:3, 4:3
            head = _head(text)
            if head == 38:
                fg = text
            elif head == 48:
                bg = text
            elif head == 58:
                ul = text
            else:
                flags = _with_flag(flags, text)
            continue
        if code is None or code == 0:
            if code == 0 or text == "":
                flags, fg, bg, ul = set(), "", "", ""
            continue
        if code in (38, 48, 58):
            if i < len(codes) and codes[i] == "5":
                value, i = codes[i - 1 : i + 2], i + 2
            elif i < len(codes) and codes[i] == "2":
                value, i = codes[i - 1 : i + 4], i + 4
            else:
                flags.add(";".join(codes[i - 1 :]))  # malformed: keep it, opaque
                break
            joined = ";".join(value)
            if code == 38:
                fg = joined
            elif code == 48:
                bg = joined
            else:
                ul = joined
        elif 30 <= code <= 37 or 90 <= code <= 97:
            fg = text
        elif 40 <= code <= 47 or 100 <= code <= 107:
            bg = text
        elif code == 39:
            fg = ""
        elif code == 49:
            bg = ""
        elif code == 59:
            ul = ""
        elif code in _CLEARS:
            flags = {f for f in flags if _head(f) not in _CLEARS[code]}
        else:
            flags = _with_flag(flags, code if code in _OFF else text)
    return Attrs(frozenset(flags), fg, bg, ul)


def _with_flag(flags: set[int | str], flag: int | str) -> set[int | str]:
    """`flags` plus `flag`, which replaces any other member of its family (underline styles)."""
    head = _head(flag)
    family = _FAMILY.get(head) if head is not None else None
    if family is not None:
        flags = {f for f in flags if (h := _head(f)) is None or _FAMILY.get(h) != family}
    return flags | {flag}


def transition(have: Attrs | None, want: Attrs) -> str:
    """The shortest escape sequence taking the terminal from `have` (None: unknown) to `want`."""
    full = "\x1b[0m" if want == DEFAULT else f"\x1b[0;{want.sgr()}m"
    if have is None:
        return full
    if have == want:
        return ""
    dropped = have.flags - want.flags
    if any(not isinstance(f, int) or f not in _OFF for f in dropped):
        return full  # only a reset clears what we cannot name
    parts = sorted({str(_OFF[f]) for f in dropped if isinstance(f, int)})
    # switching a flag off may take a sibling with it (22 clears bold and dim): set it again
    kept_after_off = {f for f in have.flags & want.flags if isinstance(f, int)}
    lost = {f for f in kept_after_off for off in parts if f in _CLEARS.get(int(off), ())}
    parts += [str(f) for f in sorted(want.flags - have.flags | lost, key=str)]
    for now, then, reset in (
        (have.fg, want.fg, "39"),
        (have.bg, want.bg, "49"),
        (have.ul, want.ul, "59"),
    ):
        if now != then:
            parts.append(then or reset)
    delta = f"\x1b[{';'.join(parts)}m"
    return delta if len(delta) < len(full) else full


class SgrCompactor:
    """Rewrites a terminal stream chunk by chunk; keeps the terminal's state between chunks."""

    def __init__(self) -> None:
        self.terminal: Attrs | None = None  # what the terminal has (None: not known)
        self.wanted: Attrs = DEFAULT  # what the original stream has set so far
        self._carry = ""  # an escape sequence cut off at the end of the last chunk

    def feed(self, data: str) -> str:
        data = self._carry + data
        cut = _UNFINISHED.search(data)
        self._carry = cut.group(0) if cut else ""
        if cut:
            data = data[: cut.start()]
        out: list[str] = []
        for match in _TOKENS.finditer(data):
            params = match.group(1)
            if params is not None:
                self.wanted = apply_sgr(self.wanted, params)
                continue
            token = match.group(0)
            escape = token.startswith("\x1b")
            if escape and _MOVES.match(token):
                out.append(token)
                continue
            if self.terminal != self.wanted:
                out.append(transition(self.terminal, self.wanted))
                self.terminal = self.wanted
            out.append(token)
            if escape and not _KEEPS.match(token):
                self.terminal = None  # e.g. a screen switch may save or restore attributes
        out.append(transition(self.terminal, self.wanted))  # nothing pending between writes
        self.terminal = self.wanted
        return "".join(out)


def compacting_driver(base: type[Any]) -> type[Any]:
    """`base` (a Textual driver class) writing through an `SgrCompactor`."""
    if os.environ.get("CANARY_TUI_OUTPUT", "").lower() == "raw":
        return base

    class CompactingDriver(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._compactor = SgrCompactor()

        def write(self, data: str) -> None:
            super().write(self._compactor.feed(data))

    CompactingDriver.__name__ = f"Compacting{base.__name__}"
    CompactingDriver.__qualname__ = CompactingDriver.__name__
    return CompactingDriver
