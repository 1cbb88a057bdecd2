"""The automated loop: tick -> metrics -> judge -> decide -> act -> audit -> publish."""

from canary_tui.engine.loop import ActionOutcome, Engine, EngineSettings

__all__ = ["ActionOutcome", "Engine", "EngineSettings"]
