"""Anytime-valid confidence sequences for bad-event rates: the mathematics, in pure Python.

One job: turn a stream of per-window counts into e-values and confidence bounds that stay valid
however often, and for however long, they are looked at.

The building block is a likelihood-ratio martingale: for a null value v0 and an alternative v1,
the product over windows of L(v1) / L(v0) has expectation at most 1 while the null holds, so by
Ville's inequality it ever reaches 1/alpha with probability at most alpha. Two mixtures make it
practical (Robbins' mixture sequential probability ratio test, as used for canaries by Lindon,
Sanden and Shirikian, KDD 2022, and for count data by Lindon and Malek, 2022):

- over alternatives: a fixed prior over multipliers v1 = v0 * exp(k * step), for a few
  offsets k (fine near v0, coarse far from it), placed above v0 (evidence that the value is
  larger) or below it (evidence that it is smaller). A one-sided alternative keeps the
  martingale a supermartingale for every value on the null's side, even one that drifts over
  time, and makes the e-value monotone in v0, so the values rejected are always one end of
  the grid and the rest an interval;
- over start times (Shiryaev-Roberts, `ShiryaevRobertsGrid`; `MixtureGrid` is the plain
  test from the first window): every window starts a fresh test with a prior weight
  fixed in advance (half on the very first window, the rest spread over time with a scale of
  `restart_scale_s`), so a regression that begins an hour into a canary is not diluted by the
  healthy hour before it. The weights sum to at most 1, so the sum is still a test
  supermartingale and alpha still holds for the whole canary, not per look or per hour.

Two likelihoods feed it:

- `RatioSequence`: the rate ratio rho = p_canary / p_baseline. Given how many requests each
  variant really served in a window (n_c, n_b) and how many bad events there were in total (m),
  the canary's share of the bad events is binomial with probability
  theta = rho * n_c / (rho * n_c + n_b) when bad events are Poisson. The baseline's rate cancels:
  the test is valid when load, and with it both variants' rates, rise and fall together, and it
  uses the realised traffic split, not the router's requested weight. (With binomial counts the
  conditional law is hypergeometric, which is less spread than this binomial, so the test is
  conservative.)
- `RateSequence`: one variant's own rate p, a binomial likelihood per window (the SLO guard).

`rate_lower_bound` / `rate_upper_bound` give anytime-valid bounds on one rate from cumulative
counts alone (no start times), and `chernoff_lower_bound` a fixed-sample bound for one window.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

DEFAULT_STEP = math.log(1.1)  # the lattice: neighbouring values differ by 10%
DEFAULT_NULL_EVERY = 2  # nulls every other lattice value: 1.1**2 = 1.21 apart
DEFAULT_HALF_WIDTH = 12  # nulls from anchor / 1.21**12 (x0.10) to anchor * 1.21**12 (x9.8)
# alternatives at these lattice offsets from the null: x1.1, 1.21, 1.33, 1.61, 2.14, 3.45
# and 7.4 (fine near the null, where the decisions are close, coarse far from it)
DEFAULT_OFFSETS = (1, 2, 3, 5, 8, 13, 21)
DEFAULT_PRIOR_SD = 1.0  # half-normal prior on log(alternative / null)
DEFAULT_RESTART_SCALE_S = 600.0
DEFAULT_FIRST_WEIGHT = 0.5

_TINY = 1e-100  # statistics this small are scaled back up (exactly, through the log scale)
_RENORMALISE_EVERY = 16
#: A window whose log-likelihood spans less than this many nats over the grid cannot push a
#: statistic of at least _TINY below the smallest float (e^-400 * 1e-100 > 1e-300).
_SAFE_SPREAD = 400.0
_NEAR_UNDERFLOW = 1e-200
_P_MAX = 1.0 - 1e-12


def multiplier_weights(
    offsets: Sequence[int], step: float, sd: float = DEFAULT_PRIOR_SD
) -> tuple[float, ...]:
    """Prior weights for multipliers exp(k * step), k in `offsets` (increasing), summing to 1.

    A half-normal density on log(multiplier) times the log-spacing each offset stands for, so
    that unevenly spaced alternatives approximate one continuous prior.
    """
    if not offsets or step <= 0 or sd <= 0 or any(k <= 0 for k in offsets):
        raise ValueError("need positive offsets, a positive step and a positive sd")
    if any(b <= a for a, b in itertools.pairwise(offsets)):
        raise ValueError("offsets must increase")
    edges = [0.0]
    edges += [0.5 * (a + b) for a, b in itertools.pairwise(offsets)]
    edges.append(offsets[-1] + 0.5 * (offsets[-1] - (offsets[-2] if len(offsets) > 1 else 0)))
    raw = [
        math.exp(-0.5 * (k * step / sd) ** 2) * (hi - lo)
        for k, lo, hi in zip(offsets, edges, edges[1:], strict=False)
    ]
    total = sum(raw)
    return tuple(r / total for r in raw)


_DEFAULT_WEIGHTS = multiplier_weights(DEFAULT_OFFSETS, DEFAULT_STEP)


def restart_weight(elapsed_s: float, duration_s: float, scale_s: float, share: float) -> float:
    """Prior weight of a test started for the window [elapsed, elapsed + duration).

    share * scale * (1/(t + scale) - 1/(t + d + scale)): the weights of consecutive windows
    telescope, so all of them together never exceed `share`, however long the canary runs.
    """
    if duration_s <= 0 or share <= 0:
        return 0.0
    t = max(0.0, elapsed_s)
    return share * scale_s * (1.0 / (t + scale_s) - 1.0 / (t + duration_s + scale_s))


Sides = Literal["greater", "less", "both"]


@dataclass(frozen=True, slots=True)
class GridSettings:
    """The shape of a grid of null values and of the prior over alternatives and start times."""

    step: float = DEFAULT_STEP
    null_every: int = DEFAULT_NULL_EVERY
    half_width: int = DEFAULT_HALF_WIDTH
    offsets: tuple[int, ...] = DEFAULT_OFFSETS
    prior_sd: float = DEFAULT_PRIOR_SD
    restart_scale_s: float = DEFAULT_RESTART_SCALE_S
    first_weight: float = DEFAULT_FIRST_WEIGHT


Prepared = tuple[float, list[float]]


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def p_value_of(log_e: float) -> float:
    """The p-value an e-value implies (1 / e, at most 1), for any log e-value, even -inf."""
    return math.exp(-min(max(log_e, 0.0), 700.0))


def prepare(loglik: Sequence[float]) -> Prepared:
    """The largest log-likelihood and every point's likelihood relative to it (<= 1)."""
    top = max(loglik)
    return top, [math.exp(v - top) for v in loglik]


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of a confidence interval.

    `conservative` is the bound itself: for a lower bound, the largest grid value rejected
    (every value at or below it is rejected); for an upper bound, the smallest one rejected.
    `value` interpolates (in log scale) towards the first value not rejected, for display.
    `index` is the first null not rejected (lower) or the last one not rejected (upper);
    `open_end` is True when the bound lies beyond the grid (nothing, or everything, was
    rejected on that side).
    """

    value: float
    index: int
    open_end: bool
    conservative: float


class Grid:
    """E-values for every null value on a log grid; the confidence bounds they imply.

    Values live on a lattice anchor * exp(step * j). The nulls are every `null_every`-th
    lattice value, `half_width` on each side of the anchor; the alternatives of a null are the
    lattice values `offsets` above and below it. The caller supplies, for each window, the
    log-likelihood at every lattice value of `points`; any additive constant cancels.
    Subclasses say how windows combine: one test from the start (`MixtureGrid`) or a test
    restarted at every window (`ShiryaevRobertsGrid`).
    """

    def __init__(self, anchor: float, settings: GridSettings | None = None) -> None:
        cfg = settings or GridSettings()
        if anchor <= 0 or not math.isfinite(anchor):
            raise ValueError("the grid's anchor must be a positive number")
        if cfg.half_width < 0 or cfg.null_every < 1:
            raise ValueError("half_width must not be negative and null_every must be positive")
        self.anchor = anchor
        self.step = cfg.step
        self.half_width = cfg.half_width
        self.null_every = cfg.null_every
        self.offsets = cfg.offsets
        self.alternatives = len(cfg.offsets)
        self.weights = multiplier_weights(cfg.offsets, cfg.step, cfg.prior_sd)
        self.log_weights = tuple(math.log(w) for w in self.weights)
        n_null = 2 * cfg.half_width + 1
        reach = cfg.offsets[-1]
        span = 2 * cfg.half_width * cfg.null_every
        log_anchor = math.log(anchor)
        first = -cfg.half_width * cfg.null_every - reach  # lattice index of points[0]
        self.log_points = tuple(
            log_anchor + cfg.step * (first + j) for j in range(span + 2 * reach + 1)
        )
        self.points = tuple(math.exp(u) for u in self.log_points)
        # points[centres[i]] is nulls[i]
        self.centres = tuple(reach + i * cfg.null_every for i in range(n_null))
        self.log_nulls = tuple(self.log_points[c] for c in self.centres)
        self.nulls = tuple(self.points[c] for c in self.centres)
        self.anchor_index = cfg.half_width
        self.updates = 0
        self._memo: dict[int, float] = {}  # (index + 1) * side -> log e-value, until new data
        self._hints = {1: self.anchor_index, -1: self.anchor_index}  # where bounds last were

    def add_time(self, elapsed_s: float, duration_s: float) -> None:
        """A window has passed (call once per window, data or not)."""
        self._memo.clear()

    def update(self, loglik: Sequence[float], prepared: Prepared | None = None) -> None:
        """Fold in one window: `loglik[j]` is its log-likelihood at `points[j]`.

        `prepared` (from `prepare(loglik)`) saves work when grids share one likelihood.
        """
        raise NotImplementedError

    def log_e_greater(self, index: int) -> float:
        """log of the e-value against "the value is at most nulls[index]"."""
        return self._log_e_memo(index, 1)

    def log_e_less(self, index: int) -> float:
        """log of the e-value against "the value is at least nulls[index]"."""
        return self._log_e_memo(index, -1)

    def _log_e_memo(self, index: int, side: int) -> float:
        key = (index + 1) * side
        value = self._memo.get(key)
        if value is None:
            value = self._log_e(index, side)
            self._memo[key] = value
        return value

    def _log_e(self, index: int, side: int) -> float:
        """log e-value against the null's side: 1 for "at most", -1 for "at least"."""
        raise NotImplementedError

    def e_greater(self, index: int) -> float:
        """E-value against "the value is at most nulls[index]" (capped at e^700)."""
        return math.exp(min(self.log_e_greater(index), 700.0))

    def lower(self, alpha: float) -> Bound:
        """The lower confidence bound: every grid value below `index` is rejected at `alpha`.

        The e-values fall as the null rises (see the module's docstring), so the first grid
        value not rejected is found by walking from where it was last time.
        """
        limit = math.log(1.0 / alpha)
        last = len(self.nulls) - 1
        i = self._first_not(1, limit)  # first i with log_e_greater(i) < limit, or last + 1
        if i == 0:
            return Bound(self.nulls[0], 0, True, 0.0)
        if i > last:
            return Bound(self.nulls[last], last + 1, True, self.nulls[last])
        return self._refine(i - 1, i, 1, limit)

    def upper(self, alpha: float) -> Bound:
        """The upper confidence bound: every grid value above `index` is rejected at `alpha`."""
        limit = math.log(1.0 / alpha)
        last = len(self.nulls) - 1
        i = self._first_not(-1, limit)  # last i with log_e_less(i) < limit, or -1
        if i == last:
            return Bound(self.nulls[last], last, True, math.inf)
        if i < 0:
            return Bound(self.nulls[0], -1, True, self.nulls[0])
        return self._refine(i + 1, i, -1, limit)

    def _refine(self, rejected: int, kept: int, side: int, limit: float) -> Bound:
        """The bound between two neighbouring nulls (subclasses may look between them)."""
        log_rej, log_kept = self._log_e_memo(rejected, side), self._log_e_memo(kept, side)
        value = self._cross(
            self.log_nulls[rejected], self.log_nulls[kept], log_rej, log_kept, limit
        )
        return Bound(value, kept, False, self.nulls[rejected])

    @staticmethod
    def _cross(u_rej: float, u_kept: float, log_rej: float, log_kept: float, limit: float) -> float:
        """Where log(e) crosses log(1/alpha) between two neighbouring values (display)."""
        hi, lo = max(log_rej, limit), log_kept
        frac = 0.0 if not hi > lo else (hi - limit) / (hi - lo)
        return math.exp(u_rej + (u_kept - u_rej) * frac)

    def _first_not(self, side: int, limit: float) -> int:
        """The boundary between rejected and kept nulls on one side, walking from a hint.

        side 1: the smallest i not rejected as "at most" (e falls with i), or len(nulls);
        side -1: the largest i not rejected as "at least" (e rises with i), or -1.
        """
        last = len(self.nulls) - 1
        i = min(max(self._hints[side], 0), last)

        def rejected(j: int) -> bool:
            return self._log_e_memo(j, side) >= limit

        if side == 1:
            if rejected(i):
                while i <= last and rejected(i):
                    i += 1
            else:
                while i > 0 and not rejected(i - 1):
                    i -= 1
        else:
            if rejected(i):
                while i >= 0 and rejected(i):
                    i -= 1
            else:
                while i < last and not rejected(i + 1):
                    i += 1
        self._hints[side] = min(max(i, 0), last)
        return i


class MixtureGrid(Grid):
    """One mixture test per null, from the first window on (Robbins' mixture SPRT).

    The mixture's e-value needs only the summed log-likelihood at each point, so a window
    costs one addition per point and memory stays fixed.
    """

    def __init__(self, anchor: float, settings: GridSettings | None = None) -> None:
        super().__init__(anchor, settings)
        self._total = [0.0] * len(self.points)

    def update(self, loglik: Sequence[float], prepared: Prepared | None = None) -> None:
        if len(loglik) != len(self.points):
            raise ValueError("one log-likelihood per grid point is needed")
        self._total = [a + b for a, b in zip(self._total, loglik, strict=True)]
        self._memo.clear()
        self.updates += 1

    def _log_e(self, index: int, side: int) -> float:
        return self._log_e_point(self.centres[index], side)

    def _log_e_point(self, centre: int, side: int) -> float:
        """log e-value for the null at lattice point `centre` (any point between the nulls)."""
        total = self._total
        base = total[centre]
        terms = [
            lw + total[centre + side * k] - base
            for k, lw in zip(self.offsets, self.log_weights, strict=True)
        ]
        top = max(terms)
        return top + math.log(sum(math.exp(t - top) for t in terms))

    def _refine(self, rejected: int, kept: int, side: int, limit: float) -> Bound:
        """Between two nulls the mixture can be evaluated at every lattice value: bisect."""
        rej, kpt = self.centres[rejected], self.centres[kept]
        log_rej, log_kept = self._log_e_memo(rejected, side), self._log_e_memo(kept, side)
        while abs(kpt - rej) > 1:
            mid = (rej + kpt) // 2
            log_mid = self._log_e_point(mid, side)
            if log_mid >= limit:
                rej, log_rej = mid, log_mid
            else:
                kpt, log_kept = mid, log_mid
        value = self._cross(self.log_points[rej], self.log_points[kpt], log_rej, log_kept, limit)
        return Bound(value, kept, False, self.points[rej])


class ShiryaevRobertsGrid(Grid):
    """One-sided mixture tests for every null, restarted at every window (Shiryaev-Roberts).

    A test started with window t gets the prior weight `restart_weight(t)` (plus
    `first_weight` for the very first window); the statistic is their sum, which for a null
    that holds at every window is a supermartingale starting at most at 1.
    """

    def __init__(
        self, anchor: float, settings: GridSettings | None = None, *, sides: Sides = "both"
    ) -> None:
        super().__init__(anchor, settings)
        cfg = settings or GridSettings()
        if not 0.0 <= cfg.first_weight <= 1.0:
            raise ValueError("first_weight must lie within 0..1")
        if cfg.restart_scale_s <= 0:
            raise ValueError("restart_scale_s must be positive")
        self.restart_scale_s = cfg.restart_scale_s
        self.restart_share = 1.0 - cfg.first_weight
        self._weight_sum = sum(self.weights)
        n_null = len(self.nulls)
        # The weighted statistic of the alternative nulls[i] * e^(k step) against nulls[i] is
        # exp(_scale[1][i]) * _up[k-1][i]; _down the same for e^(-k step) with _scale[-1]. The
        # per-null, per-side log scale carries the growth, so nothing overflows, and one side
        # growing never pushes the other's new tests below the smallest float.
        self._up = [[0.0] * n_null for _ in range(self.alternatives)]
        self._down = [[0.0] * n_null for _ in range(self.alternatives)]
        self._scale = {1: [0.0] * n_null, -1: [0.0] * n_null}
        self._pending = cfg.first_weight  # start weight not yet folded in (no news since)
        self._cache: dict[int, list[float]] = {}
        self._active: list[tuple[list[list[float]], int]] = []
        if sides in ("greater", "both"):
            self._active.append((self._up, 1))
        if sides in ("less", "both"):
            self._active.append((self._down, -1))

    def add_time(self, elapsed_s: float, duration_s: float) -> None:
        """Open the tests that start with this window (call once per window, data or not)."""
        self._memo.clear()
        self._pending += restart_weight(
            elapsed_s, duration_s, self.restart_scale_s, self.restart_share
        )

    def update(self, loglik: Sequence[float], prepared: Prepared | None = None) -> None:
        n_null, every = len(self.nulls), self.null_every
        if len(loglik) != len(self.points):
            raise ValueError("one log-likelihood per grid point is needed")
        top, factors = prepared if prepared is not None else prepare(loglik)
        exp = math.exp
        self._cache.clear()
        self._memo.clear()
        pending, self._pending = self._pending, 0.0
        # the null's 1 / L(null) goes into its scale; factors[j] = L(points[j]) / L(top) <= 1
        first, last = self.centres[0], self.centres[-1] + 1
        null_ll = loglik[first:last:every]
        rescue = top - min(loglik) > _SAFE_SPREAD  # some factors may underflow to 0
        for rows, sign in self._active:
            if pending > 0:
                self._rebase(rows, self._scale[sign])
            old_scale, old_rows = self._scale[sign], list(rows)
            fresh = [pending * exp(-s) for s in old_scale] if pending > 0 else None
            self._scale[sign] = [s + top - v for s, v in zip(old_scale, null_ll, strict=True)]
            for j, k in enumerate(self.offsets):
                start = first + sign * k
                old, fac = rows[j], factors[start : start + (n_null - 1) * every + 1 : every]
                if fresh is None:
                    rows[j] = [r * f for r, f in zip(old, fac, strict=True)]
                else:
                    w = self.weights[j]
                    rows[j] = [(r + w * m) * f for r, m, f in zip(old, fresh, fac, strict=True)]
            if rescue:
                self._rescue(rows, sign, old_rows, old_scale, loglik, top, pending)
        self.updates += 1
        if self.updates % _RENORMALISE_EVERY == 0:
            self._renormalise()

    @staticmethod
    def _rebase(rows: list[list[float]], scale: list[float]) -> None:
        """Fold far-negative scales into their rows, so that a new test's weight relative to
        the scale (pending * e^-scale) cannot overflow; what this drops is below e^-700 of
        the new test's weight."""
        for i, s in enumerate(scale):
            if s < -_SAFE_SPREAD:
                factor = math.exp(s)  # may be 0: the old statistics are negligible
                for row in rows:
                    row[i] *= factor
                scale[i] = 0.0

    def _rescue(
        self,
        rows: list[list[float]],
        sign: int,
        old_rows: list[list[float]],
        old_scale: list[float],
        loglik: Sequence[float],
        top: float,
        pending: float,
    ) -> None:
        """Redo, in logs, the nulls whose statistics on one side (nearly) underflowed.

        The factors are relative to the window's best grid point, so a window with thousands
        of bad events far from a null makes every factor of that null's alternatives 0 in
        floating point, although the statistic itself may be huge (or later windows may make
        it so): the test would go blind for good. Here the null's statistics are recomputed
        exactly from the values before the window and rescaled so that the largest is 1.
        """
        every, first = self.null_every, self.centres[0]
        for i in range(len(self.nulls)):
            if max(row[i] for row in rows) >= _NEAR_UNDERFLOW:
                continue  # anything lost to underflow is below 1e-100 of what is kept
            logs: list[tuple[int, float]] = []
            for j, k in enumerate(self.offsets):
                terms = [math.log(old_rows[j][i])] if old_rows[j][i] > 0.0 else []
                if pending > 0.0:
                    terms.append(math.log(self.weights[j] * pending) - old_scale[i])
                if terms:
                    alt = loglik[first + i * every + sign * k]
                    logs.append((j, _logsumexp(terms) + alt - top))
            if not logs:
                continue  # nothing had started: nothing to rescue
            peak = max(value for _, value in logs)
            for j, value in logs:
                rows[j][i] = math.exp(value - peak)
            self._scale[sign][i] += peak

    def _renormalise(self) -> None:
        """Move tiny statistics back into range before they underflow (exact: no loss)."""
        for rows, sign in self._active:
            scale = self._scale[sign]
            for i in range(len(self.nulls)):
                big = max(row[i] for row in rows)
                if 0.0 < big < _TINY:
                    for row in rows:
                        row[i] *= 1.0 / _TINY
                    scale[i] += math.log(_TINY)

    def _log_e(self, index: int, side: int) -> float:
        rows = self._up if side == 1 else self._down
        columns = self._cache.get(side)
        if columns is None:
            columns = [sum(column) for column in zip(*rows, strict=True)]
            self._cache[side] = columns
        started = columns[index]
        waiting = self._pending * self._weight_sum
        if started <= 0.0:
            return math.log(waiting) if waiting > 0 else -math.inf
        out = self._scale[side][index] + math.log(started)
        if waiting > 0:
            lw = math.log(waiting)
            out = max(out, lw) + math.log1p(math.exp(-abs(out - lw)))
        return out


def make_grid(
    anchor: float, settings: GridSettings | None = None, *, sides: Sides = "both", restarts: bool
) -> Grid:
    """A restarted (Shiryaev-Roberts) grid, or a single mixture test from the start."""
    if restarts:
        return ShiryaevRobertsGrid(anchor, settings, sides=sides)
    return MixtureGrid(anchor, settings)


class RatioSequence:
    """Confidence sequence for rho = p_canary / p_baseline from which variant each bad event hit.

    Per window the likelihood of rho is that of `canary_bad` out of `canary_bad + baseline_bad`
    with theta = rho * n_c / (rho * n_c + n_b), n_c and n_b the requests each variant served.
    """

    def __init__(
        self,
        anchor: float = 1.0,
        settings: GridSettings | None = None,
        *,
        sides: Sides = "both",
        restarts: bool = True,
    ) -> None:
        self.grid: Grid = make_grid(anchor, settings, sides=sides, restarts=restarts)

    def observe(
        self,
        canary_bad: float,
        canary_n: float,
        baseline_bad: float,
        baseline_n: float,
        elapsed_s: float,
        duration_s: float,
        dispersion: float = 1.0,
    ) -> None:
        observe_ratio(
            (self,),
            canary_bad,
            canary_n,
            baseline_bad,
            baseline_n,
            elapsed_s,
            duration_s,
            dispersion,
        )

    def add_time(self, elapsed_s: float, duration_s: float) -> None:
        self.grid.add_time(elapsed_s, duration_s)


def observe_ratio(
    sequences: Sequence[RatioSequence],
    canary_bad: float,
    canary_n: float,
    baseline_bad: float,
    baseline_n: float,
    elapsed_s: float,
    duration_s: float,
    dispersion: float = 1.0,
) -> None:
    """Feed one window to ratio sequences on the same grid (the likelihood is computed once).

    `dispersion` (>= 1, fixed before the window was seen) divides the window's log-likelihood:
    the quasi-likelihood of counts that vary that many times more than independent requests'
    (see `dispersion`).
    """
    for seq in sequences:
        seq.grid.add_time(elapsed_s, duration_s)
    bad = canary_bad + baseline_bad
    if not sequences or bad <= 0 or canary_n <= 0 or baseline_n <= 0:
        return  # the window says nothing about rho
    if not dispersion >= 1.0 or not math.isfinite(dispersion):
        raise ValueError("the dispersion factor must be a finite number of at least 1")
    grid = sequences[0].grid
    loglik = ratio_loglik(grid.log_points, grid.points, canary_bad, canary_n, bad, baseline_n)
    if dispersion != 1.0:
        loglik = [v / dispersion for v in loglik]
    prepared = prepare(loglik)
    for seq in sequences:
        if seq.grid.points != grid.points:
            raise ValueError("sequences fed together must share one grid")
        seq.grid.update(loglik, prepared)


def ratio_loglik(
    log_rhos: Sequence[float],
    rhos: Sequence[float],
    canary_bad: float,
    canary_n: float,
    bad: float,
    baseline_n: float,
) -> list[float]:
    """log L(rho) + const of the canary's share of `bad` events, at each rho (and its log)."""
    log = math.log
    return [
        canary_bad * u - bad * log(r * canary_n + baseline_n)
        for u, r in zip(log_rhos, rhos, strict=True)
    ]


class RateSequence:
    """Confidence sequence for one variant's bad-event rate p (binomial per window)."""

    def __init__(
        self,
        anchor: float,
        settings: GridSettings | None = None,
        *,
        sides: Sides = "both",
        restarts: bool = True,
    ) -> None:
        self.grid: Grid = make_grid(anchor, settings, sides=sides, restarts=restarts)
        self._log_p = [min(u, math.log(_P_MAX)) for u in self.grid.log_points]
        self._log_q = [math.log1p(-math.exp(u)) for u in self._log_p]

    def observe(
        self, bad: float, n: float, elapsed_s: float, duration_s: float, dispersion: float = 1.0
    ) -> None:
        """One window; `dispersion` (>= 1) divides its log-likelihood (quasi-likelihood)."""
        self.grid.add_time(elapsed_s, duration_s)
        if n <= 0:
            return
        if not dispersion >= 1.0 or not math.isfinite(dispersion):
            raise ValueError("the dispersion factor must be a finite number of at least 1")
        good = max(0.0, n - bad) / dispersion
        bad = bad / dispersion
        self.grid.update(
            [bad * lp + good * lq for lp, lq in zip(self._log_p, self._log_q, strict=True)]
        )

    def add_time(self, elapsed_s: float, duration_s: float) -> None:
        self.grid.add_time(elapsed_s, duration_s)


# --- one rate from cumulative counts -------------------------------------------------------


def rate_log_e(
    bad: float,
    n: float,
    p0: float,
    *,
    upward: bool,
    step: float = DEFAULT_STEP,
    offsets: Sequence[int] = DEFAULT_OFFSETS,
    weights: Sequence[float] | None = None,
) -> float:
    """log of the mixture e-value against "p <= p0" (upward) or "p >= p0" (downward).

    Alternatives p0 * exp(+-k * step), k in `offsets`, with `multiplier_weights`;
    alternatives outside (0, 1) are dropped (their weight is lost, which is conservative).
    """
    if weights is not None:
        ws: Sequence[float] = weights
    elif step == DEFAULT_STEP and tuple(offsets) == DEFAULT_OFFSETS:
        ws = _DEFAULT_WEIGHTS
    else:
        ws = multiplier_weights(offsets, step)
    if n <= 0:
        return math.log(sum(ws))
    good = max(0.0, n - bad)
    p0 = min(max(p0, 1e-300), _P_MAX)
    lq0 = math.log1p(-p0)
    terms: list[float] = []
    for k, w in zip(offsets, ws, strict=True):
        shift = k * step if upward else -k * step
        p1 = p0 * math.exp(shift)
        if p1 >= 1.0:
            break
        terms.append(math.log(w) + bad * shift + good * (math.log1p(-p1) - lq0))
    if not terms:
        return -math.inf
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def rate_lower_bound(
    bad: float, n: float, alpha: float, hint: float | None = None, precision: float = 1e-3
) -> float:
    """Anytime-valid lower bound on a rate from cumulative counts (0 when none can be said).

    `hint` (the last bound) narrows the search; the result is within `precision` (relative)
    below the exact crossing, so it errs on the safe side.
    """
    limit = math.log(1.0 / alpha)
    if n <= 0 or bad <= 0 or rate_log_e(bad, n, 1e-12, upward=True) < limit:
        return 0.0
    top = math.log(min(1.0, bad / n))

    def rejected(u: float) -> bool:  # the e-value falls as p0 rises
        return rate_log_e(bad, n, math.exp(u), upward=True) >= limit

    lo, hi = _bracket(rejected, math.log(1e-12), top, hint, rising=False)
    while hi - lo > precision:
        mid = 0.5 * (lo + hi)
        if rejected(mid):
            lo = mid
        else:
            hi = mid
    return math.exp(lo)


def rate_upper_bound(
    bad: float, n: float, alpha: float, hint: float | None = None, precision: float = 1e-3
) -> float:
    """Anytime-valid upper bound on a rate from cumulative counts (1 when none can be said)."""
    limit = math.log(1.0 / alpha)
    ceiling = math.log(_P_MAX / 1.3)
    if n <= 0 or rate_log_e(bad, n, math.exp(ceiling), upward=False) < limit:
        return 1.0

    def rejected(u: float) -> bool:  # the e-value rises with p0
        return rate_log_e(bad, n, math.exp(u), upward=False) >= limit

    lo, hi = _bracket(rejected, math.log(max(bad / n, 1e-12)), ceiling, hint, rising=True)
    while hi - lo > precision:
        mid = 0.5 * (lo + hi)
        if rejected(mid):
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


def _bracket(
    rejected: Callable[[float], bool], lo: float, hi: float, hint: float | None, rising: bool
) -> tuple[float, float]:
    """A narrow (lo, hi) around the crossing, from the hint when it still brackets it."""
    if hint is None or not hint > 0:
        return lo, hi
    u = math.log(hint)
    a, b = max(lo, u - 0.2), min(hi, u + 0.2)
    if a >= b:
        return lo, hi
    # rising: rejected above the crossing; falling: rejected below it
    if rising and not rejected(a) and rejected(b):
        return a, b
    if not rising and rejected(a) and not rejected(b):
        return a, b
    return lo, hi


def bernoulli_kl(p: float, q: float) -> float:
    """KL(Bernoulli(p) || Bernoulli(q)) in nats."""
    q = min(max(q, 1e-300), _P_MAX)
    out = 0.0
    if p > 0:
        out += p * math.log(p / q)
    if p < 1:
        out += (1 - p) * math.log((1 - p) / (1 - q))
    return out


def chernoff_lower_bound(bad: float, n: float, delta: float, iterations: int = 60) -> float:
    """Fixed-sample lower bound on a rate: the smallest q with n * KL(bad/n || q) <= log(1/delta).

    Valid for one look at one window (Chernoff-Hoeffding); used for the burn-rate guard.
    """
    if n <= 0 or bad <= 0:
        return 0.0
    phat = min(1.0, bad / n)
    limit = math.log(1.0 / delta) / n
    lo, hi = 0.0, phat
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if bernoulli_kl(phat, mid) > limit:
            lo = mid
        else:
            hi = mid
    return lo
