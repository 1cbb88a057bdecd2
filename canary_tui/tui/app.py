"""The Textual application and `make_app`, the one factory shared by the CLI and the tests."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import CommandPalette, SearchIcon
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.theme import Theme

from canary_tui.core.frames import Frame
from canary_tui.session.base import Session
from canary_tui.tui.commands import CanaryCommands
from canary_tui.tui.keymap import ACTIONS_BY_ID, app_bindings
from canary_tui.tui.output import compacting_driver
from canary_tui.tui.screens.dashboard import DashboardScreen
from canary_tui.tui.screens.dialogs import LeaveScreen
from canary_tui.tui.screens.evidence import EvidenceScreen
from canary_tui.tui.screens.help import HelpScreen, help_rows
from canary_tui.tui.settings import DEFAULT_THEME, save_setting
from canary_tui.tui.themes import register_themes

#: Key names Textual draws with arrows and symbols, spelt out for ASCII-only terminals.
ASCII_KEYS = {"↑": "up", "↓": "down", "←": "left", "→": "right", "⏎": "enter", "⌫": "backspace",
              "⇥": "tab", "⇤": "shift+tab", "⎋": "esc"}  # fmt: skip


class AsciiScrollBarRender(ScrollBarRender):
    """Scrollbars without block glyphs: the thumb is drawn in reverse video only."""

    VERTICAL_BARS: ClassVar[list[str]] = [" "] * 8
    HORIZONTAL_BARS: ClassVar[list[str]] = [" "] * 8


class AsciiCommandPalette(CommandPalette):
    """Textual's palette without its emoji icon, ellipsis and half-block borders."""

    DEFAULT_CSS = """
    AsciiCommandPalette #--input { border: ascii $panel; }
    AsciiCommandPalette #--input.--list-visible { border-bottom: none; }
    AsciiCommandPalette CommandList { border-top: none; border-bottom: ascii $panel; }
    AsciiCommandPalette CommandList:focus { border: none; }
    AsciiCommandPalette LoadingIndicator { border-bottom: ascii $panel; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(placeholder="Search for commands...", id=id)

    def on_mount(self) -> None:
        for icon in self.query(SearchIcon):
            icon.icon = ">"


class CanaryApp(App[None]):
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "canary-tui"
    COMMAND_PALETTE_BINDING = "colon"
    COMMANDS: ClassVar = {CanaryCommands}
    BINDINGS: ClassVar[list[BindingType]] = [*app_bindings()]

    def __init__(
        self,
        session: Session,
        *,
        theme: str = DEFAULT_THEME,
        ascii_only: bool = False,
        keymap: dict[str, str] | None = None,
        persist_theme: bool = False,
    ) -> None:
        super().__init__()
        if os.environ.get("SSH_CONNECTION"):
            self.animation_level = "none"  # every animation frame costs bandwidth over SSH
        self.persist_theme = persist_theme
        if ascii_only:
            self.add_class("-ascii")
        self.session = session
        self.ascii_only = ascii_only
        self._theme_name = theme
        self._keymap = keymap or {}
        self._scrollbars: type[ScrollBarRender] = ScrollBar.renderer
        self.dashboard = DashboardScreen(session, ascii_only=ascii_only)

    def get_key_display(self, binding: Binding) -> str:
        """Textual's key names, in ASCII with --ascii (arrows become up/down/left/right)."""
        shown = super().get_key_display(binding)
        if self.ascii_only and not shown.isascii():
            return ASCII_KEYS.get(shown, shown.encode("ascii", "replace").decode())
        return shown

    def get_driver_class(self) -> Any:
        """The platform's driver, sending only style changes (see `tui.output`)."""
        return compacting_driver(super().get_driver_class())

    def on_mount(self) -> None:
        self._scrollbars = ScrollBar.renderer
        if self.ascii_only:  # class-wide in Textual: put back when this app ends
            ScrollBar.renderer = AsciiScrollBarRender
        for problem in register_themes(self):
            self.notify(f"theme ignored: {problem}", severity="warning", timeout=10)
        if self._theme_name in self.available_themes:
            self.theme = self._theme_name
        else:
            self.theme = DEFAULT_THEME
            self.notify(
                f"unknown theme {self._theme_name!r}: using {DEFAULT_THEME}",
                severity="warning",
                timeout=10,
            )
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        # Everything built so far (Textual, plotext, the widgets) lives as long as the app:
        # out of the collector's way, a full collection no longer stalls a key press.
        gc.freeze()
        if self._keymap:
            self.set_keymap(self._keymap)
        self.push_screen(self.dashboard)
        self.run_worker(self._attach_session(), group="session")

    def on_unmount(self) -> None:
        ScrollBar.renderer = self._scrollbars

    async def _attach_session(self) -> None:
        try:
            await self.session.attach(self._on_frame)
        except Exception as exc:  # shown to the person, not as a traceback
            self.exit(return_code=2, message=f"canary-tui: cannot attach: {exc}")

    def _on_frame(self, frame: Frame) -> None:
        self.dashboard.on_frame(frame)

    def _remember_theme(self, theme: Theme) -> None:
        if self.persist_theme:
            problem = save_setting("theme", theme.name)
            if problem:
                self.notify(problem, severity="warning")

    def action_help(self) -> None:
        bindings = [(self.get_key_display(active.binding), active.binding, active.enabled)
                    for active in self.screen.active_bindings.values()]  # fmt: skip
        why = getattr(self.screen, "why_disabled", None)
        reasons = {a: why(a) for a in ACTIONS_BY_ID} if why is not None else {}
        self.push_screen(HelpScreen(help_rows(bindings, reasons)))

    def action_command_palette(self) -> None:
        if not self.ascii_only:
            super().action_command_palette()
        elif self.use_command_palette and not CommandPalette.is_open(self):  # type: ignore[arg-type]
            self.push_screen(AsciiCommandPalette(id="--command-palette"))

    def action_evidence(self) -> None:
        frame = self.dashboard.model.frame
        if frame is None:
            self.push_screen(EvidenceScreen((), None))
        else:
            self.push_screen(EvidenceScreen(frame.verdicts, frame.now))

    @property
    def detachable(self) -> bool:
        return bool(getattr(self.session, "detachable", False))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "detach":
            return self.detachable
        return True

    async def action_detach(self) -> None:
        """Leave the session; its daemon (and the loop) carry on."""
        await self.session.detach()
        self.exit()

    async def action_quit(self) -> None:
        frame = self.dashboard.model.frame
        alone = frame is not None and len(frame.presence) <= 1
        if self.detachable and alone and not self.session.read_only:
            unattended = frame.unattended if frame else "hold"
            ended = frame.state.phase.label if frame and frame.state.terminal else None
            self.push_screen(LeaveScreen(unattended, ended), self._left)
            return
        await self.session.detach()
        self.exit()

    async def _left(self, choice: str | None) -> None:
        if choice is None:
            return
        if choice in ("kill", "hold"):
            stop = getattr(self.session, "stop_daemon", None)
            if stop is not None:
                try:
                    await stop(choice)
                except Exception as exc:
                    self.notify(f"could not stop the loop: {exc}", severity="error")
                    return
        await self.session.detach()
        self.exit()


def make_app(
    session: Session,
    *,
    theme: str = DEFAULT_THEME,
    ascii_only: bool = False,
    keymap: dict[str, str] | None = None,
    persist_theme: bool = False,
) -> CanaryApp:
    """The app for `session`: the CLI, the tests and the benchmarks all build it here."""
    return CanaryApp(session, theme=theme, ascii_only=ascii_only, keymap=keymap,
                     persist_theme=persist_theme)  # fmt: skip


__all__ = ["Binding", "CanaryApp", "make_app"]
