"""What a step waits for once its hold is over: which proof the judge still lacks, and roughly
how much longer it needs at the current traffic.

The header's `1:52/0:30` alone reads as stuck. The loop advances a step only when its hold is
over AND every metric has passed; the judge calls a metric PASS when the upper end of its
confidence interval (this step's data) lies within the tolerance. That upper end comes down
roughly as one over the square root of the data behind it, so at steady traffic, with the
interval's upper end `hi` after `t` seconds of the step, the canary's current ratio `r` and the
tolerance `tol`, it reaches the tolerance after about `t * ((hi - r) / (tol - r))**2` seconds.
A rough figure (the interval also widens a little with every look), said as one: "about".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from canary_tui.core.frames import Frame
from canary_tui.core.state import Phase
from canary_tui.core.verdict import Status, Verdict

_REQUESTS = re.compile(r"(\d+) of (\d+) canary requests")


@dataclass(frozen=True, slots=True)
class Need:
    """What one metric still needs before it can pass: `what` (the proof, in words), `eta`
    (how long, in words) and `seconds` (for ranking: inf when it cannot pass at these rates,
    None when there is no estimate)."""

    metric: str
    what: str
    eta: str
    seconds: float | None
    short: str = ""  # `what` in a few words, for narrow terminals
    medium: str = ""  # `what` in fewer words


@dataclass(frozen=True, slots=True)
class WaitNote:
    """The line in three lengths: `text` where it fits, then `medium`, then `short`."""

    text: str
    medium: str
    short: str

    def fit(self, width: int) -> str:
        for form in (self.text, self.medium):
            if len(form) <= width:
                return form
        return self.short


def waiting_note(frame: Frame, canary_rps: float | None = None) -> WaitNote | None:
    """What the step waits for after its hold, or None when it is not waiting (still
    holding, paused, ended, no data, a FAIL, or every metric passing)."""
    s = frame.state
    if s.phase is not Phase.PROGRESSING or frame.no_data or not frame.verdicts:
        return None
    hold = frame.plan.step(s.step_index).hold_s
    in_step = s.time_in_step(frame.now)
    if in_step < hold:
        return None
    if any(v.status is Status.FAIL for v in frame.verdicts):
        return None  # the verdicts say it; the loop rolls back (or is disarmed)
    pending = [v for v in frame.verdicts if v.status is not Status.PASS and not v.no_data]
    if not pending:
        return None
    needs = [need_of(v, in_step, canary_rps) for v in pending]
    worst = max(needs, key=_rank)
    more = f" (and {len(needs) - 1} more)" if len(needs) > 1 else ""
    eta_short = worst.eta.removesuffix(" at this traffic")
    return WaitNote(
        f"hold over: waiting for {worst.what}{more}: {worst.eta}",
        f"hold over: waiting for {worst.medium or worst.what}{more}: {eta_short}",
        f"hold over, waiting: {worst.short or worst.metric}{more}, {eta_short}",
    )


def _rank(need: Need) -> float:
    """Longest wait first; an unknown wait ranks above any known finite one."""
    if need.seconds is None:
        return 1e300
    return need.seconds


def need_of(verdict: Verdict, in_step: float, canary_rps: float | None = None) -> Need:
    """What `verdict` (not PASS) needs, from its evidence, `in_step` seconds into the step."""
    e = verdict.evidence
    name = verdict.metric
    if e.rule == "calibrating":
        return Need(name, f"{name} to be judged", "learning the baseline's latency first", None)
    if not e.rule.startswith("sequential") or e.tolerance is None:
        return Need(name, f"{name} to pass", verdict.why, None)
    diff = e.effect_kind == "difference"
    tol = e.tolerance
    tol_text = f"{tol * 100:+.2g} pp" if diff else f"{tol:.3g}x"
    verb = "are" if name.endswith("s") else "is"
    what = f"proof that {name} {verb} within {tol_text} of the baseline"
    medium, short = f"proof that {name} {verb} within {tol_text}", f"{name} within {tol_text}"

    def need(eta: str, seconds: float | None) -> Need:
        return Need(name, what, eta, seconds, short=short, medium=medium)

    hi = e.interval[1] if e.interval is not None else math.inf
    if hi <= tol:  # proven within tolerance: short of canary requests in this step
        found = _REQUESTS.search(verdict.why)
        if found is None:
            return need("nearly there", 0.0)
        have, wanted = float(found.group(1)), float(found.group(2))
        what = f"the canary to serve {wanted:.0f} requests in this step ({have:.0f} so far)"
        short = medium = f"{wanted:.0f} canary requests ({have:.0f} so far)"
        if canary_rps is None:
            return need("no estimate yet", None)
        if canary_rps <= 0:
            return need("the canary is serving no traffic", None)
        seconds = max(0.0, wanted - have) / canary_rps
        return need(_about(seconds), seconds)
    if math.isinf(hi):
        return need("too few bad events yet to say how long", None)
    r = e.effect
    if r is None and not diff and e.canary_rate == 0:
        r = 0.0
    if r is None or in_step <= 0:
        return need("no estimate yet", None)
    if r >= tol:
        now = f"{r * 100:+.2g} pp" if diff else f"{r:.2f}x"
        return need(f"it is at {now} now: it passes only if that improves", math.inf)
    more = max(0.0, in_step * ((hi - r) / (tol - r)) ** 2 - in_step)
    if more > SQUARE_ROOT_LAW_LIMIT_S:
        # Far from its tolerance, the interval narrows faster than the square-root law says
        # (the judge's early caution lifts); a number this far out would mislead.
        return need("no estimate yet", None)
    return need(_about(more), more)


#: Beyond this the square-root extrapolation is not worth showing: with the judge's burst
#: handling, step 1 of the demo (seed 0) was estimated at over an hour 10 s past its hold and
#: passed 3.9 min later.
SQUARE_ROOT_LAW_LIMIT_S = 600.0


def _about(seconds: float) -> str:
    """A rough duration: 'about 40 s more at this traffic', 'about 3 min more ...'."""
    if seconds < 5:
        return "any moment now"
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5)} s more at this traffic"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min more at this traffic"
    return "more than an hour at this traffic"
