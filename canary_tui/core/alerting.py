"""Which alerts of one batch say something new: the rule the dashboard's toasts and the
webhooks share, so a rollback reaches people once, not once per FAIL verdict it quotes."""

from __future__ import annotations


def distinct_alerts(alerts: list[str]) -> list[str]:
    """The alerts of a batch that another alert of it does not already say in full.

    An alert is "ACTOR-ish prefix: words"; it is left out when another alert of the batch holds
    its words and more ("ROLLED BACK automatically: <why>; <why>" holds "verdict FAIL: <why>"),
    or the same words later on. The activity pane and the audit log keep every alert.
    """
    words = [text.split(": ", 1)[-1] for text in alerts]

    def said_by_another(i: int) -> bool:
        return any(
            words[i] in w and (len(w) > len(words[i]) or j > i)
            for j, w in enumerate(words)
            if j != i
        )

    out: list[str] = []
    for i, text in enumerate(alerts):
        if text not in out and not said_by_another(i):
            out.append(text)
    return out
