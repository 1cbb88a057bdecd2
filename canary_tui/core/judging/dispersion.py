"""How clustered a variant's bad events are: the index of dispersion that scales the evidence.

One job: from one variant's per-window counts (bad events out of requests), estimate how much
more the counts vary than independent requests would (the index of dispersion, 1 for
independent Poisson counts, b for errors that always come in bursts of b), and give the factor
by which the judge divides each window's log-likelihood (quasi-likelihood, Wedderburn 1974;
McCullagh and Nelder, Generalized Linear Models, 2nd ed., ch. 9).

Why dividing is right: when bad events come in bursts of sizes b_i that land on one variant
each, the split of a window's bad events between canary and baseline is a binomial over
bursts, not over events. The log-likelihood ratio of the events divided by
phi = E[b^2] / E[b] has the same expectation and variance, to second order in log(rho), as
that of the bursts, so the tempered likelihood-ratio product stays a supermartingale to that
order; it is exact when every burst has the same size (then phi = b and the tempered ratio IS
the bursts' likelihood ratio), and conservative whenever phi >= the largest burst.
For compound-Poisson counts, E[b^2] / E[b] is exactly the variance-to-mean ratio of the
counts (Cox and Lewis, The Statistical Analysis of Series of Events, 1966, ch. 5), so it can
be read off the per-window counts without seeing a single burst.

How it is estimated here:
- Pearson's statistic X^2 = sum_k (bad_k - n_k p)^2 / (n_k p) over batches k, with p the pooled
  rate, divided by its degrees of freedom (batches - 1): the classic moment estimate of phi;
- at several time scales (every window, and batches of at least 10 s and 60 s), because a
  burst that spans several windows (a pod failing for three seconds) is invisible window by
  window but not in 10 s batches. What the test needs is the dispersion of the counts summed
  over long spans (the long-run index), so the 10 s scale counts whenever it reads more than
  the shortest one (measured: gating it on two of its standard deviations and shrinking it
  towards the shortest scale, as before, left the factor at about half the true index for the
  first minutes when bursts of 2-4 spread over 5 s, and 7 of 80 such healthy canaries were
  rolled back; counting it outright, 2 of 80, for 0-8% more detection time on independent
  traffic). The 60 s scale, with few batches, counts only when it reads more than two of its
  standard deviations above the shortest one, shrunk towards it (`shrinks`: pseudo-batches);
- bursts that outlast a window are cut by the edges of the 10 s batches too (events of a
  burst spread over 5 s fall into two batches about a sixth of the time), so the 10 s scale
  then reads the long-run index low (by about a tenth: 2.9 against 3.2 for bursts of 2-4
  spread over 5 s). Their signature is the 10 s scale reading clearly above the shortest
  (`spread_gate`: three of its own standard deviations; the shortest scale sees only the part
  of a burst that shares a window); the 10 s scale is then taken at its upper confidence
  bound (`spread_z`: two standard deviations, Wilson-Hilferty), capped by the most the edges
  can hide (`edge_bound`), so that few batches early on cannot blow it up. Measured: bursts
  of 2-4 spread over 5 s, 15 of 1000 healthy canaries rolled back with the point estimate,
  4 of the same 1000 with the bound; next to no cost on independent traffic or on bursts
  within one window, where the gate stays shut (one median of 20 arms moved: errors
  0.5% -> 1.0% in bursts of 2-4, 323 -> 335 s); regressions whose bursts are spread over 5 s
  are detected later (errors 0.5% -> 2.0%: 52 -> 63 s);
- the factor used is the largest of these (`z` > 0 makes the shortest scale's an upper
  confidence bound, Wilson-Hilferty's chi-square quantile `z` standard deviations down;
  measured on independent traffic, z = 0.5 cost 14-22% of detection time for no gain in the
  clustered arms, so the default is 0), and at least 1 (counts less spread than Poisson never
  sharpen the evidence); before `min_windows` windows covering `min_seconds` (10 windows and
  30 s) and `min_batches` batches of the 10 s scale (6: a minute) it is `ceiling` (100: next
  to no evidence), because Pearson's statistic of bursty counts is heavy-tailed and a
  handful of windows can read as independent by chance (measured: bursts of 10-20 errors
  rolled back 2 of 40 healthy canaries within 2 s with an estimate from two windows);
- it starts measured: the loop feeds it the baseline's windows over the 10 minutes before the
  canary (`SequentialJudge.learn_dispersion`), so the first comparison is scaled by an
  estimate from hundreds of windows and the ceiling only covers sources that cannot read
  their past (measured: bursts of 2-4 spread over 5 s, 5 of 200 healthy canaries rolled
  back with the estimate learnt during the canary, 0 of the same 200 with it measured
  beforehand, 15 of 1000 in all: better, still above a 1% budget);
- it is predictable: the factor for window t is computed from the windows before it, so each
  window's tempered likelihood ratio is multiplied in with a factor fixed beforehand (the
  "predictable plug-in" of Waudby-Smith and Ramdas, JRSS-B 2024).

The baseline's counts are used (it carries most of the traffic, and a regressing canary's
counts change their mean, which would read as dispersion); the model stated is that bursts
in the canary are sized like the baseline's. Common swings of both variants' rates (a
dependency failing for everyone) also raise the estimate, which only makes the judge slower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DEFAULT_SCALES_S = (0.0, 10.0, 60.0)
DEFAULT_SHRINK = 10.0
#: For each scale after the shortest: how many of its own standard deviations above the
#: shortest scale it must read to count, and how many pseudo-batches shrink it towards it.
DEFAULT_GATES = (0.0, 2.0)
DEFAULT_SHRINKS = (0.0, DEFAULT_SHRINK)
#: When the second scale reads this many of its standard deviations above the shortest, bursts
#: outlast a window, and the second scale is taken at its upper bound, `SPREAD_Z` deviations up.
DEFAULT_SPREAD_GATE = 3.0
DEFAULT_SPREAD_Z = 2.0
DEFAULT_MIN_BATCHES = 6  # batches of the second scale (10 s) before the estimate is used
DEFAULT_MIN_WINDOWS = 10  # before this many windows covering MIN_SECONDS: the ceiling
DEFAULT_MIN_SECONDS = 30.0
DEFAULT_Z = 0.0
DEFAULT_CEILING = 100.0
BURSTY_FROM = 1.5  # a point estimate from here up is called out in the evidence


def chi2_lower_quantile(dof: float, z: float) -> float:
    """The chi-square quantile z standard deviations below the mean (Wilson-Hilferty), >= 0."""
    if dof <= 0:
        return 0.0
    c = 2.0 / (9.0 * dof)
    base = 1.0 - c - z * math.sqrt(c)
    return dof * base**3 if base > 0 else 0.0


def edge_bound(index: float) -> float:
    """The largest long-run index that batches reading `index` can hide behind their edges,
    for bursts that last no longer than a batch: a batch of L seconds splits two events of a
    burst spread over w <= L seconds with probability at most w / 3L <= 1/3, so it reads at
    least two thirds of the excess over 1 (index - 1 >= (2/3)(long-run - 1))."""
    return 1.5 * index - 0.5


@dataclass(slots=True)
class _Scale:
    """Pearson's sums over batches of at least `length_s` seconds (0: every window)."""

    length_s: float
    sum_sq: float = 0.0  # sum of bad^2 / n
    bad: float = 0.0
    n: float = 0.0
    batches: int = 0
    open_bad: float = 0.0
    open_n: float = 0.0
    open_s: float = 0.0

    def add(self, bad: float, n: float, duration_s: float) -> None:
        self.open_bad += bad
        self.open_n += n
        self.open_s += duration_s
        if self.open_s >= self.length_s:
            if self.open_n > 0:
                self.sum_sq += self.open_bad**2 / self.open_n
                self.bad += self.open_bad
                self.n += self.open_n
                self.batches += 1
            self.open_bad = self.open_n = self.open_s = 0.0

    @property
    def dof(self) -> int:
        return max(0, self.batches - 1)

    @property
    def pearson(self) -> float:
        """X^2 = sum (bad - n p)^2 / (n p) with p = bad / n pooled: (N / E) sum bad^2/n - E."""
        if self.bad <= 0 or self.n <= 0:
            return 0.0
        return max(0.0, self.n / self.bad * self.sum_sq - self.bad)


@dataclass(slots=True)
class Dispersion:
    """The index of dispersion of one variant's bad-event counts, and the factor to use."""

    scales_s: tuple[float, ...] = DEFAULT_SCALES_S
    gates: tuple[float, ...] = DEFAULT_GATES
    shrinks: tuple[float, ...] = DEFAULT_SHRINKS
    spread_gate: float = DEFAULT_SPREAD_GATE
    spread_z: float = DEFAULT_SPREAD_Z
    min_batches: int = DEFAULT_MIN_BATCHES
    z: float = DEFAULT_Z
    ceiling: float = DEFAULT_CEILING
    min_windows: int = DEFAULT_MIN_WINDOWS
    min_seconds: float = DEFAULT_MIN_SECONDS
    _seconds: float = field(init=False, default=0.0)
    _scales: list[_Scale] = field(init=False)

    def __post_init__(self) -> None:
        if not self.scales_s or any(s < 0 for s in self.scales_s):
            raise ValueError("dispersion scales must be zero or more seconds")
        spread = (self.spread_gate, self.spread_z)
        if any(x < 0 for x in (*self.gates, *self.shrinks, *spread)) or self.z < 0:
            raise ValueError("need gates, shrinks, spread_gate, spread_z and z >= 0")
        if self.ceiling < 1:
            raise ValueError("need a ceiling of at least 1")
        if len(self.gates) < len(self.scales_s) - 1 or len(self.shrinks) < len(self.scales_s) - 1:
            raise ValueError("need a gate and a shrink for every scale after the shortest")
        if self.min_batches < 0:
            raise ValueError("min_batches must not be negative")
        self._scales = [_Scale(s) for s in sorted(self.scales_s)]

    def add(self, bad: float, n: float, duration_s: float) -> None:
        """One window's counts (after the factor for it was read)."""
        if not (math.isfinite(bad) and math.isfinite(n)) or n < 0:
            return
        bad = min(max(bad, 0.0), n)
        self._seconds += max(0.0, duration_s)
        for scale in self._scales:
            scale.add(bad, n, max(0.0, duration_s))

    @property
    def estimate(self) -> float | None:
        """Pearson's estimate at the shortest scale (None before two batches with events)."""
        first = self._scales[0]
        if first.dof < 1 or first.bad <= 0:
            return None
        return first.pearson / first.dof

    @property
    def ready(self) -> bool:
        """Enough windows (and batches of the second scale) to trust the estimate; before
        that, `factor` is the ceiling."""
        first = self._scales[0]
        second_ok = len(self._scales) < 2 or self._scales[1].batches >= self.min_batches
        return (
            first.batches >= self.min_windows
            and self._seconds >= self.min_seconds
            and first.bad > 0
            and second_ok
        )

    @property
    def factor(self) -> float:
        """What each window's log-likelihood is divided by: an upper bound on the dispersion
        at the shortest scale, or the longer scales' (shrunk) estimates if larger; >= 1."""
        return self._factor(self.z, self.spread_z)

    @property
    def clustered(self) -> bool:
        """Whether the counts read as bursty (`BURSTY_FROM`) with every scale at its point
        estimate: what the evidence calls out. Not the factor itself, which its upper bounds
        can raise over few windows of independent counts."""
        return self.ready and self._factor(0.0, 0.0) >= BURSTY_FROM

    def _factor(self, z: float, spread_z: float) -> float:
        first = self._scales[0]
        if first.dof < 1 or not self.ready:
            return self.ceiling
        q = chi2_lower_quantile(first.dof, z)
        if q <= 0:
            return self.ceiling
        upper = first.pearson / q
        point = first.pearson / first.dof
        out = upper
        longer_scales = zip(self._scales[1:], self.gates, self.shrinks, strict=False)
        for index, (scale, gate, shrink) in enumerate(longer_scales):
            if scale.bad <= 0 or scale.dof < 1:
                continue
            # a longer scale counts when it reads more than the shortest by `gate` standard
            # deviations of its own estimate (the 60 s scale: two, or its noise would only slow
            # the judge down on independent traffic), shrunk towards it by `shrink` pseudo-batches
            longer = scale.pearson / scale.dof
            sd = math.sqrt(2.0 / scale.dof)
            if longer > point * (1.0 + gate * sd):
                pearson = scale.pearson
                if index == 0 and longer > point * (1.0 + self.spread_gate * sd):
                    # bursts outlast a window: the batches' edges cut some, read it from above
                    q = chi2_lower_quantile(scale.dof, spread_z)
                    bound = scale.pearson / q if q > 0 else self.ceiling
                    pearson = scale.dof * max(longer, min(bound, edge_bound(longer)))
                shrunk = (pearson + shrink * upper) / (scale.dof + shrink)
                out = max(out, shrunk)
        return min(self.ceiling, max(1.0, out))

    def at_scale(self, index: int) -> tuple[float, int]:
        """(Pearson's X^2, degrees of freedom) at one scale (for tests and the benchmark)."""
        scale = self._scales[index]
        return scale.pearson, scale.dof
