"""Counts over windows of time, and what one look at one window's counts says.

One job: hold the running counts of bad events and requests of both variants (`_Counts`),
remember them every few seconds so that a verdict can quote a recent window (`_Recent`), and
give the one-look statistics of a single window: its rate ratio, its log e-value against a
ratio on the grid and its upper bound on the ratio (display only: a window chosen after the
fact), and its counts shrunk by an index of dispersion.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

from canary_tui.core.judging.confseq import Grid

_SNAPSHOT_EVERY_S = 5.0
_DISPLAY_LOOKBACKS_S = (600.0, 300.0, 120.0, 60.0, 30.0, 15.0, 5.0)
_RAW_WINDOWS = 12  # the last windows, one by one, for quoting a sharp change


@dataclass(frozen=True, slots=True)
class _Counts:
    canary_bad: float = 0.0
    canary_n: float = 0.0
    baseline_bad: float = 0.0
    baseline_n: float = 0.0

    def __add__(self, other: _Counts) -> _Counts:
        return _Counts(
            self.canary_bad + other.canary_bad,
            self.canary_n + other.canary_n,
            self.baseline_bad + other.baseline_bad,
            self.baseline_n + other.baseline_n,
        )

    def __sub__(self, other: _Counts) -> _Counts:
        return _Counts(
            self.canary_bad - other.canary_bad,
            self.canary_n - other.canary_n,
            self.baseline_bad - other.baseline_bad,
            self.baseline_n - other.baseline_n,
        )

    @property
    def canary_rate(self) -> float | None:
        return self.canary_bad / self.canary_n if self.canary_n > 0 else None

    @property
    def baseline_rate(self) -> float | None:
        return self.baseline_bad / self.baseline_n if self.baseline_n > 0 else None


class _Recent:
    """Running totals noted every few seconds, so a verdict can quote the rates of a recent
    window (about the last 10, 5, 2, 1 min, 30, 15 or 5 s, or since the last note) as well as
    the whole canary's; and after each of the last few windows, so that a sharp change
    between two notes can be quoted from exactly where it began."""

    def __init__(self) -> None:
        self._snaps: deque[tuple[float, _Counts]] = deque(
            maxlen=int(_DISPLAY_LOOKBACKS_S[0] / _SNAPSHOT_EVERY_S) + 2
        )
        self._raw: deque[tuple[float, _Counts]] = deque(maxlen=_RAW_WINDOWS + 1)
        self._now = 0.0

    def __len__(self) -> int:
        return len(self._snaps)

    def note(self, end: float, total: _Counts) -> None:
        self._now = end
        self._raw.append((end, total))
        if not self._snaps or end - self._snaps[-1][0] >= _SNAPSHOT_EVERY_S:
            self._snaps.append((end, total))

    def windows(self, total: _Counts) -> list[tuple[_Counts, str]]:
        """The whole canary ("") and each recent window it can tell from it, longest first,
        each labelled with the span it really covers (up to the latest count)."""
        return [(w, label) for w, label, _ in self.spans(total)]

    def spans(self, total: _Counts) -> list[tuple[_Counts, str, float]]:
        """`windows`, each with the seconds it covers (inf for the whole canary)."""
        out: list[tuple[_Counts, str, float]] = [(total, "", math.inf)]
        snaps, now = self._snaps, self._now
        used: set[float] = set()
        for lookback in (*_DISPLAY_LOOKBACKS_S, 0.0):
            # the latest note at least `lookback` old (strictly older than now for the last)
            i = bisect.bisect_right(snaps, now - lookback, key=lambda snap: snap[0]) - 1
            if lookback == 0.0 and i >= 0 and snaps[i][0] >= now:
                i -= 1
            if i < 0:
                continue
            t, snap = snaps[i]
            if t in used or snap == total:
                continue
            used.add(t)
            out.append((total - snap, f"last {_span_text(now - t)}", now - t))
        for t, snap in self._raw:
            if t in used or t >= now or snap == total:
                continue
            used.add(t)
            out.append((total - snap, f"last {_span_text(now - t)}", now - t))
        out[1:] = sorted(out[1:], key=lambda w: -w[2])  # longest first
        return out


def _span_text(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.2g} min"


def _shrunk(counts: _Counts, phi: float) -> _Counts:
    if phi == 1.0:
        return counts
    return _Counts(
        counts.canary_bad / phi,
        counts.canary_n / phi,
        counts.baseline_bad / phi,
        counts.baseline_n / phi,
    )


def _window_ll(window: _Counts, u: float) -> float:
    c, b = window.canary_bad, window.baseline_bad
    return c * u - (c + b) * math.log(math.exp(u) * window.canary_n + window.baseline_n)


def _window_log_e(
    window: _Counts, grid: Grid, index: int, up: bool = True, phi: float = 1.0
) -> float:
    """One look at one window's totals: log e-value against rho <= (or >=) nulls[index]."""
    if window.canary_bad + window.baseline_bad <= 0 or window.canary_n <= 0:
        return 0.0
    if window.baseline_n <= 0:
        return 0.0
    u0 = grid.log_nulls[index] if index < len(grid.log_nulls) else grid.log_nulls[-1]
    return _window_log_e_at(window, grid, u0, up, phi)


def _window_log_e_at(window: _Counts, grid: Grid, u0: float, up: bool, phi: float = 1.0) -> float:
    """One look at one window: the mixture's log e-value, the likelihood tempered by `phi`."""
    base = _window_ll(window, u0)
    sign = 1.0 if up else -1.0
    terms = [
        lw + (_window_ll(window, u0 + sign * k * grid.step) - base) / phi
        for k, lw in zip(grid.offsets, grid.log_weights, strict=True)
    ]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def _window_upper(
    window: _Counts, alpha: float, grid: Grid, phi: float = 1.0
) -> tuple[float, bool]:
    """Upper bound on rho from one window's totals, and whether it lies beyond the grid.

    Display only (a single look at a window chosen after the fact).
    """
    top = grid.nulls[-1]
    if window.canary_bad + window.baseline_bad <= 0 or window.canary_n <= 0:
        return top, True
    if window.baseline_n <= 0:
        return top, True
    limit = math.log(1.0 / alpha)
    lo_u, hi_u = grid.log_nulls[0], grid.log_nulls[-1]
    if _window_log_e_at(window, grid, hi_u, False, phi) < limit:
        return top, True
    for _ in range(30):  # the e-value against rho >= e^u rises with u
        mid = 0.5 * (lo_u + hi_u)
        if _window_log_e_at(window, grid, mid, False, phi) >= limit:
            hi_u = mid
        else:
            lo_u = mid
    return math.exp(hi_u), False


def _ratio(window: _Counts) -> float | None:
    c, b = window.canary_rate, window.baseline_rate
    if c is None or b is None:
        return None
    if b <= 0:
        return None if c <= 0 else math.inf
    return c / b
