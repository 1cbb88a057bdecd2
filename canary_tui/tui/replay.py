"""Replay in the dashboard: the same screen and widgets, a one-line replay status, player keys.

`make_replay_app(session)` builds the live app around a ReplaySession, adds the player's
bindings (space plays and pauses, `,` `.` step a tick, `-` `+` change the speed, `g` goes to
a time, `n` `N` jump between actions, `b` `B` between verdict changes) and a status line
(REPLAY, the recorded wall-clock time, speed, playing or paused, position, cut short).
Playback runs on a Textual interval timer that exists only while playing: paused, nothing
repaints. Live action keys stay greyed out (the session is read-only) and are refused.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from rich.console import OverflowMethod
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.events import Key
from textual.timer import Timer
from textual.widget import Widget

from canary_tui.session.replay import SPEEDS, ReplaySession
from canary_tui.tui.app import CanaryApp
from canary_tui.tui.format import mmss
from canary_tui.tui.keymap import ACTIONS_BY_ID
from canary_tui.tui.screens.dashboard import DashboardScreen
from canary_tui.tui.screens.dialogs import TextScreen
from canary_tui.tui.screens.help import HelpScreen, help_rows
from canary_tui.tui.settings import DEFAULT_THEME
from canary_tui.tui.widgets.header import StatusHeader


@dataclass(frozen=True, slots=True)
class ReplayKey:
    """One player key: `id` lets a keymap rebind it; `action` is an app action; `label` is
    the footer's word, `title` and `help` the help screen's."""

    id: str
    key: str
    action: str
    label: str
    title: str
    help: str
    show: bool = True
    group: Binding.Group | None = None


_TICK = Binding.Group("Tick", compact=True)
_SPEED = Binding.Group("Speed", compact=True)
_ACTION = Binding.Group("Action", compact=True)
_VERDICT = Binding.Group("Verdict", compact=True)
_BACK = "show the dashboard as it was one tick earlier"
_ON = "play on to the next tick"


class ReplayControls:
    """The replay player's keys, in one place (footer, help screen and actions)."""

    KEYS: ClassVar[tuple[ReplayKey, ...]] = (
        ReplayKey(
            "replay_play",
            "space",
            "replay_toggle",
            "Play",
            "Play/pause",
            "play the recording at the current speed, or pause it",
        ),
        ReplayKey("replay_back", "comma", "replay_step(-1)", "◀", "Tick back", _BACK, group=_TICK),
        ReplayKey("replay_fwd", "full_stop", "replay_step(1)", "▶", "Tick on", _ON, group=_TICK),
        ReplayKey("replay_back_arrow", "left", "replay_step(-1)", "◀", "Tick back", _BACK, False),
        ReplayKey("replay_fwd_arrow", "right", "replay_step(1)", "▶", "Tick on", _ON, False),
        ReplayKey(
            "replay_slower",
            "minus",
            "replay_slower",
            "-",
            "Slower",
            "play slower: 60x, 10x, 2x, 1x",
            group=_SPEED,
        ),
        ReplayKey(
            "replay_faster",
            "plus",
            "replay_faster",
            "+",
            "Faster",
            "play faster: 1x, 2x, 10x, 60x",
            group=_SPEED,
        ),
        ReplayKey(
            "replay_faster_eq",
            "equals_sign",
            "replay_faster",
            "+",
            "Faster",
            "play faster (no shift needed)",
            False,
        ),
        *(
            ReplayKey(
                f"replay_speed_{n}",
                str(n),
                f"replay_speed({s:g})",
                f"{s:g}x",
                f"{s:g}x",
                f"play at {s:g} times the recorded pace",
                False,
            )
            for n, s in enumerate(SPEEDS, start=1)
        ),
        ReplayKey(
            "replay_goto",
            "g",
            "replay_goto",
            "Go to",
            "Go to",
            "go to a time: 09:31:05 (UTC), +30s, -2m, 1m30s from the start, 50%",
        ),
        ReplayKey(
            "replay_prev_action",
            "N",
            "replay_action(-1)",
            "N",
            "Previous action",
            "jump back to the previous action (anyone's, or a rule's)",
            group=_ACTION,
        ),
        ReplayKey(
            "replay_next_action",
            "n",
            "replay_action(1)",
            "n",
            "Next action",
            "jump to the next action (anyone's, or a rule's)",
            group=_ACTION,
        ),
        ReplayKey(
            "replay_prev_verdict",
            "B",
            "replay_verdict(-1)",
            "B",
            "Previous verdict",
            "jump back to the previous change of a verdict",
            group=_VERDICT,
        ),
        ReplayKey(
            "replay_next_verdict",
            "b",
            "replay_verdict(1)",
            "b",
            "Next verdict",
            "jump to the next change of a verdict (PASS, FAIL, WAIT)",
            group=_VERDICT,
        ),
        ReplayKey(
            "replay_start",
            "home",
            "replay_seek_start",
            "Start",
            "Start",
            "the beginning of the recording",
            False,
        ),
        ReplayKey(
            "replay_end", "end", "replay_seek_end", "End", "End", "the end of the recording", False
        ),
    )
    BY_ID: ClassVar[dict[str, ReplayKey]] = {k.id: k for k in KEYS}

    @classmethod
    def bindings(cls) -> list[Binding]:
        # priority: the focused activity pane would otherwise take the arrows and home/end;
        # the app's check_action lets keys through to dialogs (the go-to box takes typing).
        return [
            Binding(
                k.key,
                k.action,
                k.label,
                show=k.show,
                priority=True,
                tooltip=k.help,
                id=k.id,
                group=k.group,
            )
            for k in cls.KEYS
        ]

    ACTIONS: ClassVar[frozenset[str]] = frozenset(k.action.split("(")[0] for k in KEYS)


class ReplayStatus(Widget):
    """One line: REPLAY, the recorded wall-clock time, playing or paused, speed, position."""

    DEFAULT_CSS = "ReplayStatus { height: 1; background: $panel; padding: 0 1; }"

    def __init__(self, session: ReplaySession, *, ascii_only: bool = False) -> None:
        super().__init__()
        self.session = session
        self.ascii_only = ascii_only

    def render(self) -> Text:
        s, rec = self.session, self.session.recording
        when = datetime.fromtimestamp(s.current.now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if s.playing:
            state = ("> PLAYING" if self.ascii_only else "▶ PLAYING", "bold")
        else:
            state = ("|| PAUSED" if self.ascii_only else "❚❚ PAUSED", "")
        line = Text.assemble(
            (" REPLAY ", self._style("bold reverse $warning")),
            " ",
            (when, "bold"),
            "  ",
            state,
            f" {s.speed:g}x",
            ("  tick ", "dim"),
            f"{s.tick}/{s.ticks}",
            ("  ", "dim"),
            f"{mmss(s.current.now - rec.start_time)}/{mmss(rec.end_time - rec.start_time)}",
        )
        if s.problem:
            word = "CUT SHORT" if s.problem.startswith("cut short") else "DAMAGED"
            line.append("  ")
            line.append(f"{'!' if self.ascii_only else '⚠'} {word}", self._style("bold $error"))
        overflow: OverflowMethod = "crop" if self.ascii_only else "ellipsis"
        line.truncate(max(self.size.width - 2, 1), overflow=overflow)
        return line

    def _style(self, spec: str) -> str:
        variables = self.app.theme_variables
        return " ".join(
            variables.get(p[1:], "default") if p.startswith("$") else p for p in spec.split()
        )


class ReplayDashboard(DashboardScreen):
    """The dashboard, with the replay status line under its header."""

    def __init__(self, session: ReplaySession, *, ascii_only: bool = False) -> None:
        super().__init__(session, ascii_only=ascii_only)
        self.replay = session

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            yield widget
            if isinstance(widget, StatusHeader):
                yield ReplayStatus(self.replay, ascii_only=self.ascii_only)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The live action keys leave the footer to the player's keys; pressed, they are
        # refused with the reason (on_key), as greyed keys are on a live dashboard.
        return False if action in ACTIONS_BY_ID else super().check_action(action, parameters)

    def on_key(self, event: Key) -> None:
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if binding.action in ACTIONS_BY_ID:
                event.stop()
                self.request_action(binding.action)
                return


class ReplayApp(CanaryApp):
    """CanaryApp on a ReplaySession, with the player's keys and timer."""

    BINDINGS: ClassVar[list[BindingType]] = [*ReplayControls.bindings()]
    MAX_FPS = 30.0

    def __init__(
        self,
        session: ReplaySession,
        *,
        theme: str = DEFAULT_THEME,
        ascii_only: bool = False,
        keymap: dict[str, str] | None = None,
        persist_theme: bool = False,
        playing: bool = False,
    ) -> None:
        super().__init__(
            session, theme=theme, ascii_only=ascii_only, keymap=keymap, persist_theme=persist_theme
        )
        self.replay = session
        self.dashboard = ReplayDashboard(session, ascii_only=ascii_only)
        self._autoplay = playing
        self.timer: Timer | None = None
        self._timer_interval = 0.0
        self._last_tick = 0.0

    def on_mount(self) -> None:
        super().on_mount()
        self.replay.on_change = self._changed
        if self.replay.problem:
            self.notify(self.replay.problem, title="replay", severity="warning", timeout=20)
        if self._autoplay:
            self.replay.play()

    # --- keeping the timer and the status in step with the session -------------------------
    def _changed(self) -> None:
        self._sync_timer()
        with contextlib.suppress(NoMatches):  # not composed yet
            self.dashboard.query_one(ReplayStatus).refresh()

    def _interval(self) -> float:
        rec = self.replay.recording
        tick = rec.header.tick_s or (rec.end_time - rec.start_time) / max(rec.ticks - 1, 1) or 1.0
        return max(1.0 / self.MAX_FPS, min(0.25, tick / self.replay.speed))

    def _sync_timer(self) -> None:
        want = self._interval() if self.replay.playing else 0.0
        if self.timer is not None and want != self._timer_interval:
            self.timer.stop()
            self.timer = None
        if want and self.timer is None:
            self._last_tick = time.monotonic()
            self.timer = self.set_interval(want, self._on_timer)
        self._timer_interval = want

    def _on_timer(self) -> None:
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        self.replay.advance(elapsed)

    # --- the player's actions ----------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ReplayControls.ACTIONS:
            return self.screen is self.dashboard
        return super().check_action(action, parameters)

    def action_help(self) -> None:
        bindings = [(self.get_key_display(active.binding), active.binding, active.enabled)
                    for active in self.screen.active_bindings.values()]  # fmt: skip
        lead = {key.action: (key.title, key.help) for key in ReplayControls.KEYS}
        why = getattr(self.screen, "why_disabled", None)
        reasons = {a: why(a) for a in ACTIONS_BY_ID} if why is not None else {}
        self.push_screen(HelpScreen(help_rows(bindings, reasons, lead=lead)))

    def action_replay_toggle(self) -> None:
        self.replay.toggle()

    def action_replay_step(self, ticks: int) -> None:
        self.replay.step(ticks)

    def action_replay_faster(self) -> None:
        self.replay.faster()

    def action_replay_slower(self) -> None:
        self.replay.slower()

    def action_replay_speed(self, speed: float) -> None:
        self.replay.set_speed(speed)

    def action_replay_seek_start(self) -> None:
        self.replay.seek(0)

    def action_replay_seek_end(self) -> None:
        self.replay.seek(self.replay.frames - 1)

    def action_replay_action(self, direction: int) -> None:
        s = self.replay
        found = s.next_action() if direction > 0 else s.prev_action()
        if not found:
            self.notify(f"no {'later' if direction > 0 else 'earlier'} action", timeout=3)

    def action_replay_verdict(self, direction: int) -> None:
        s = self.replay
        found = s.next_verdict_change() if direction > 0 else s.prev_verdict_change()
        if not found:
            self.notify(f"no {'later' if direction > 0 else 'earlier'} verdict change", timeout=3)

    def action_replay_goto(self) -> None:
        self.replay.pause()
        self.push_screen(
            TextScreen(
                "Go to: HH:MM:SS (UTC), +30s / -2m from here, 1m30s from the start, or 50%",
                "e.g. " + datetime.fromtimestamp(self.replay.current.now, UTC).strftime("%H:%M:%S"),
            ),
            self._goto,
        )

    def _goto(self, text: str | None) -> None:
        if not text:
            return
        try:
            t = self.replay.parse_time(text)
        except ValueError as exc:
            self.notify(str(exc), title="go to", severity="error", timeout=6)
            return
        self.replay.seek_time(t)


def make_replay_app(
    session: ReplaySession,
    *,
    theme: str = DEFAULT_THEME,
    ascii_only: bool = False,
    keymap: dict[str, str] | None = None,
    persist_theme: bool = False,
    playing: bool = False,
) -> ReplayApp:
    """The dashboard replaying `session` (paused at its first frame unless `playing`)."""
    return ReplayApp(
        session,
        theme=theme,
        ascii_only=ascii_only,
        keymap=keymap,
        persist_theme=persist_theme,
        playing=playing,
    )


__all__ = ["ReplayApp", "ReplayControls", "ReplayDashboard", "ReplayStatus", "make_replay_app"]
