"""Judges: turn windows of counts into per-metric verdicts with evidence."""

from canary_tui.core.judging.base import Judge, StepContext, bad_and_total
from canary_tui.core.judging.sequential import SequentialJudge
from canary_tui.core.judging.threshold import ThresholdJudge

__all__ = ["Judge", "SequentialJudge", "StepContext", "ThresholdJudge", "bad_and_total"]
