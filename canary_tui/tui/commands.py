"""Command palette provider: every canary action by name, greyed ones included, and the views."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

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
    def _entries(self) -> list[tuple[str, str, Callable[[], None], str]]:
        """(title, help, what it runs, key) for every action, then every view."""
        out: list[tuple[str, str, Callable[[], None], str]] = [
            (
                action.label if action.id != "step_back" else "Step back",
                action.help,
                partial(self._run, action.id),
                action.key,
            )
            for action in ACTION_KEYS
        ]
        out += [
            (name, help_text, partial(self._view, act), key) for name, act, help_text, key in VIEWS
        ]
        return out

    async def discover(self) -> Hits:
        for title, help_text, run, _ in self._entries():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run, key in self._entries():
            name = f"{title}: {help_text}"
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=f"key {key}")

    def _run(self, action_id: str) -> None:
        request = getattr(self.screen, "request_action", None)
        if request is None:  # the palette was opened over another screen
            request = getattr(self.app.screen, "request_action", None)
        if request is not None:
            request(action_id, from_palette=True)

    def _view(self, app_action: str) -> None:
        self.app.call_later(self.app.run_action, app_action)
