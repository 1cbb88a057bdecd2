"""The demo's configuration: a synthetic checkout service on the embedded simulator."""

from __future__ import annotations

from typing import Any

from canary_tui.config.schema import Config


def demo_config(
    scenario: str = "healthy",
    seed: int = 0,
    *,
    rate: float = 400.0,
    onset_s: float = 45.0,
    tick_s: float = 2.0,
    judge: str = "sequential",
) -> Config:
    data: dict[str, Any] = {
        "canary": {
            "name": "checkout",
            "service": "checkout",
            "namespace": "shop",
            "stable_version": "v1.41.0",
            "canary_version": "v1.42.0",
        },
        "plan": [
            {"weight": w, "hold": h} for w, h in ((5, 30), (10, 30), (25, 45), (50, 45), (75, 45))
        ],
        "judge": {"kind": judge},
        # A simulator carries no real traffic: the demo follows its plan with nobody attached
        # too (`serve --demo`), where a real canary holds (and is not even started) unattended.
        "loop": {
            "tick": tick_s,
            "no_data": {"grace": 60, "action": "hold"},
            "unattended": "follow",
        },
        "source": {
            "kind": "simulator",
            "scenario": scenario,
            "seed": seed,
            "rate": rate,
            "onset_s": onset_s,
        },
        "router": {"kind": "simulator"},
    }
    return Config.model_validate(data)
