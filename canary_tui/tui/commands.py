"""Command palette provider: every canary action by name, greyed ones included (dimmed, with
the reason they cannot be used now), and the views."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from canary_tui.tui.keymap import ACTION_KEYS

# views that change nothing: (name, app action, help, key)
VIEWS = (
    (
        "Evidence",
        "evidence",
        "every verdict in full: rates, interval, tolerance, counts, p-value, rule",
        "e",
    ),
)


class CanaryCommands(Provider):
    def _why_not(self, action_id: str) -> str | None:
        """Why the dashboard greys `action_id` now (None: usable, or not over a dashboard)."""
        for screen in (self.screen, self.app.screen, *self.app.screen_stack):
            why = getattr(screen, "why_disabled", None)
            if why is not None:
                result = why(action_id)
                return str(result) if result else None
        return None

    def _entries(self) -> list[tuple[str, str, Callable[[], None], str, str | None]]:
        """(title, help, what it runs, key, why greyed) for every action, then every view."""
        out: list[tuple[str, str, Callable[[], None], str, str | None]] = [
            (
                action.label if action.id != "step_back" else "Step back",
                action.help,
                partial(self._run, action.id),
                action.key,
                self._why_not(action.id),
            )
            for action in ACTION_KEYS
        ]
        out += [
            (name, help_text, partial(self._view, act), key, None)
            for name, act, help_text, key in VIEWS
        ]
        return out

    @staticmethod
    def _help(help_text: str, key: str, why_not: str | None) -> str:
        if why_not:
            return f"greyed: {why_not} (key {key})"
        return f"{help_text} (key {key})"

    async def discover(self) -> Hits:
        for title, help_text, run, key, why_not in self._entries():
            display = Content(title).stylize("dim") if why_not else Content(title)
            yield DiscoveryHit(display, run, text=title, help=self._help(help_text, key, why_not))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run, key, why_not in self._entries():
            name = f"{title}: {help_text}"
            score = matcher.match(name)
            if score > 0:
                shown = matcher.highlight(name)
                if why_not:
                    shown = shown.stylize("dim")
                yield Hit(score, shown, run, text=name, help=self._help("", key, why_not).strip())

    def _run(self, action_id: str) -> None:
        request = getattr(self.screen, "request_action", None)
        if request is None:  # the palette was opened over another screen
            request = getattr(self.app.screen, "request_action", None)
        if request is not None:
            request(action_id, from_palette=True)

    def _view(self, app_action: str) -> None:
        self.app.call_later(self.app.run_action, app_action)
