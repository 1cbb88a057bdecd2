"""The dashboard's footer: Textual's Footer, but what does not fit the width is left out by
importance (kill, quit and keys stay longest), instead of quit falling off the right edge.

Every key left out is still listed by `?` and the command palette.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: Most important first: kept while there is room. Unlisted actions come last.
PRIORITY = (
    "kill",
    "cancel_kill",
    "quit",
    "help",
    "toggle_pause",
    "step_forward",
    "promote",
    "toggle_shadow",
    "toggle_armed",
    "step_back",
    "detach",
    "annotate",
)


def key_width(key_display: str, description: str) -> int:
    """Columns one compact footer key takes: "k Kill" and the one-column gap after it."""
    return len(key_display) + (1 + len(description) if description else 0) + 1


def keep_keys(keys: list[tuple[str, int]], width: int) -> set[str]:
    """Of (action, columns) pairs, the actions to show in `width` columns, by PRIORITY."""
    rank = {action: i for i, action in enumerate(PRIORITY)}
    ordered = sorted(keys, key=lambda k: rank.get(k[0], len(PRIORITY)))
    kept: set[str] = set()
    used = 0
    for action, columns in ordered:
        if used + columns <= width:
            kept.add(action)
            used += columns
    return kept


class CanaryFooter(Footer):
    """A compact Footer that hides the least important keys when they do not all fit.

    Textual composes it (groups included); once laid out, the ungrouped keys that do not
    fit beside everything else are hidden, by PRIORITY, and shown again when room returns.
    """

    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)

    def compose(self) -> ComposeResult:
        yield from super().compose()

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self.fit_keys)

    def on_mount(self) -> None:
        self.call_after_refresh(self.fit_keys)

    def on_resize(self, event: Resize) -> None:
        self.call_after_refresh(self.fit_keys)

    def fit_keys(self) -> None:
        """Show the ungrouped keys that fit, most important first; hide the rest."""
        width = self.size.width
        if not width:
            return
        keys = [child for child in self.children if isinstance(child, FooterKey)]
        fixed = sum(c.outer_size.width for c in self.children if not isinstance(c, FooterKey))
        kept = keep_keys(
            [(k.action, key_width(k.key_display, k.description)) for k in keys], width - fixed
        )
        for key in keys:
            key.display = key.action in kept


__all__ = ["PRIORITY", "CanaryFooter", "keep_keys", "key_width"]
