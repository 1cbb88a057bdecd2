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
    ActionKey(
        "cancel_kill",
        "K",
        "Cancel kill",
        "lift a pending kill the router has not confirmed (asks a reason; audited; the canary "
        "is then paused); shown only while a kill is pending",
        (Verb.CANCEL_KILL,),
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
        Binding("e", "evidence", "Evidence", id="evidence", show=False),
        Binding("t", "change_theme", "Theme", id="theme", show=False),
        Binding("x", "detach", "Detach", id="detach"),
        Binding("q", "quit", "Quit", id="quit"),
    ]


def binding_keys() -> dict[str, list[str]]:
    """Every rebindable binding id with its default keys."""
    out = {a.id: [a.key] for a in ACTION_KEYS}
    for binding in app_bindings():
        if binding.id is not None:  # every app binding has one (app_bindings above)
            out[binding.id] = binding.key.split(",")
    return out


def check_keymap(keymap: dict[str, str]) -> list[str]:
    """Problems with a user keymap (unknown ids, one key for two actions); empty when fine."""
    defaults = binding_keys()
    problems = [
        f"keys: unknown binding id {bid!r} (known: {', '.join(sorted(defaults))})"
        for bid in keymap
        if bid not in defaults
    ]
    effective = {bid: [k.strip() for k in keymap.get(bid, ",".join(keys)).split(",") if k.strip()]
                 for bid, keys in defaults.items()}  # fmt: skip
    owners: dict[str, str] = {}
    for bid, keys in effective.items():
        if not keys:
            problems.append(f"keys: {bid} has no key")
        for key in keys:
            if key in owners:
                problems.append(f"keys: {key!r} is bound to both {owners[key]} and {bid}")
            owners[key] = bid
    return problems
