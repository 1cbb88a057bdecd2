"""Command palette provider: every canary action by name, greyed ones included, and the views."""

from __future__ import annotations

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
    async def discover(self) -> Hits:
        for action in ACTION_KEYS:
            yield DiscoveryHit(
                action.label if action.id != "step_back" else "Step back",
                partial(self._run, action.id),
                help=action.help,
            )
        for name, app_action, help_text, _ in VIEWS:
            yield DiscoveryHit(name, partial(self._view, app_action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action in ACTION_KEYS:
            name = f"{action.label}: {action.help}"
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(name),
                    partial(self._run, action.id),
                    help=f"key {action.key}",
                )
        for view, app_action, help_text, key in VIEWS:
            name = f"{view}: {help_text}"
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(name),
                    partial(self._view, app_action),
                    help=f"key {key}",
                )

    def _run(self, action_id: str) -> None:
        request = getattr(self.screen, "request_action", None)
        if request is None:  # the palette was opened over another screen
            request = getattr(self.app.screen, "request_action", None)
        if request is not None:
            request(action_id, from_palette=True)

    def _view(self, app_action: str) -> None:
        self.app.call_later(self.app.run_action, app_action)
