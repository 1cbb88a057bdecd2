"""The automated loop: tick -> metrics -> judge -> decide -> act -> audit -> publish."""

from canary_tui.core.actions import ActionOutcome
from canary_tui.engine.loop import Engine, EngineSettings

__all__ = ["ActionOutcome", "Engine", "EngineSettings"]
