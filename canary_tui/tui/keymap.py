"""The dashboard's key bindings, each with an id so a config keymap can rebind it."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from canary_tui.core.actions import Verb


@dataclass(frozen=True, slots=True)
class ActionKey:
    """A canary action reachable by key and palette. `verbs` are what it may submit."""

    id: str
    key: str
    label: str
    help: str
    verbs: tuple[Verb, ...]


ACTION_KEYS: tuple[ActionKey, ...] = (
    ActionKey(
        "step_forward",
        "s",
        "Step",
        "step the canary forward to the next weight",
        (Verb.STEP_FORWARD,),
    ),
    ActionKey(
        "step_back", "S", "Back", "step the canary back to the previous weight", (Verb.STEP_BACK,)
    ),
    ActionKey(
        "toggle_pause",
        "p",
        "Pause",
        "pause or resume the ramp (auto-rollback stays armed)",
        (Verb.PAUSE, Verb.RESUME),
    ),
    ActionKey(
        "toggle_shadow",
        "h",
        "Shadow",
        "mirror traffic to the canary (shadow) on or off",
        (Verb.SHADOW_ON, Verb.SHADOW_OFF),
    ),
    ActionKey(
        "kill",
        "k",
        "Kill",
        "abort now: canary weight 0, mirror off (no confirmation)",
        (Verb.KILL,),
    ),
    ActionKey("promote", "P", "Promote", "promote the canary to 100% (asks y/n)", (Verb.PROMOTE,)),
    ActionKey(
        "annotate",
        "a",
        "Note",
        "write a note into the audit log and the recording",
        (Verb.ANNOTATE,),
    ),
    ActionKey(
        "toggle_armed",
        "d",
        "Disarm",
        "disarm (asks a reason) or re-arm auto-rollback",
        (Verb.DISARM, Verb.ARM),
    ),
)

ACTIONS_BY_ID = {a.id: a for a in ACTION_KEYS}


def action_bindings() -> list[Binding]:
    return [Binding(a.key, a.id, a.label, id=a.id) for a in ACTION_KEYS]


def app_bindings() -> list[Binding]:
    return [
        Binding("question_mark", "help", "Keys", id="help"),
        Binding("t", "change_theme", "Theme", id="theme", show=False),
        Binding("x", "detach", "Detach", id="detach"),
        Binding("q", "quit", "Quit", id="quit"),
    ]
