"""The confidence-sequence mathematics, checked against independent computations.

Reference values come from scipy.stats (binomial likelihoods, Clopper-Pearson bounds), from a
brute-force Shiryaev-Roberts sum over every start time, and from closed forms worked by hand.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from canary_tui.core.judging.confseq import (
    GridSettings,
    MixtureGrid,
    RateSequence,
    RatioSequence,
    ShiryaevRobertsGrid,
    bernoulli_kl,
    chernoff_lower_bound,
    multiplier_weights,
    observe_ratio,
    p_value_of,
    rate_log_e,
    rate_lower_bound,
    rate_upper_bound,
    ratio_loglik,
    restart_weight,
)

SMALL = GridSettings(null_every=2, half_width=4, offsets=(1, 2, 5))


def theta(rho: float, n_c: float, n_b: float) -> float:
    return rho * n_c / (rho * n_c + n_b)


# --- priors ---------------------------------------------------------------------------------


def test_multiplier_weights_are_a_discretised_half_normal() -> None:
    w = multiplier_weights((1, 2, 3), math.log(2.0), 1.0)
    assert sum(w) == pytest.approx(1.0)
    # exp(-(k ln2)^2 / 2) for k = 1, 2, 3 times the log-widths they stand for: (0, 1.5],
    # (1.5, 2.5], (2.5, 3.5], then normalised
    raw = [math.exp(-0.5 * (k * math.log(2)) ** 2) * d for k, d in ((1, 1.5), (2, 1), (3, 1))]
    assert w == pytest.approx([r / sum(raw) for r in raw])
    assert w[0] > w[1] > w[2]
    # unevenly spaced: each offset also weighs the log-width it stands for, (0,1.5], (1.5,4], (4,6]
    u = multiplier_weights((1, 2, 6), 0.1, 1.0)
    raw = [math.exp(-0.5 * (k * 0.1) ** 2) * width for k, width in ((1, 1.5), (2, 2.5), (6, 4.0))]
    assert u == pytest.approx([r / sum(raw) for r in raw])
    with pytest.raises(ValueError):
        multiplier_weights((2, 1), 0.1)


def test_restart_weights_telescope_and_never_exceed_their_share() -> None:
    total = sum(restart_weight(float(t), 1.0, 600.0, 0.5) for t in range(100_000))
    # closed form: 0.5 * 600 * (1/600 - 1/(100000 + 600))
    assert total == pytest.approx(0.5 * 600 * (1 / 600 - 1 / 100_600), rel=1e-9)
    assert total < 0.5
    # windows of any length add up the same way
    uneven = restart_weight(0.0, 2.5, 600.0, 0.5) + restart_weight(2.5, 7.5, 600.0, 0.5)
    assert uneven == pytest.approx(restart_weight(0.0, 10.0, 600.0, 0.5))
    assert restart_weight(5.0, 0.0, 600.0, 0.5) == 0.0


# --- the label likelihood -----------------------------------------------------------------


@settings(deadline=None)
@given(
    x=st.integers(0, 40),
    extra=st.integers(0, 40),
    n_c=st.floats(1, 5000),
    n_b=st.floats(1, 5000),
    rho1=st.floats(0.05, 20),
    rho2=st.floats(0.05, 20),
)
def test_ratio_likelihood_is_the_binomial_share_of_bad_events(
    x: int, extra: int, n_c: float, n_b: float, rho1: float, rho2: float
) -> None:
    m = x + extra
    if m == 0:
        return
    ours = ratio_loglik(
        [math.log(rho1), math.log(rho2)], [rho1, rho2], float(x), n_c, float(m), n_b
    )
    ref1 = stats.binom.logpmf(x, m, theta(rho1, n_c, n_b))
    ref2 = stats.binom.logpmf(x, m, theta(rho2, n_c, n_b))
    assert ours[0] - ours[1] == pytest.approx(ref1 - ref2, rel=1e-9, abs=1e-7)


def random_windows(seed: int, count: int) -> list[tuple[float, float, float, float]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n_c, n_b = float(rng.integers(1, 60)), float(rng.integers(20, 900))
        x = float(rng.integers(0, 4))
        y = float(rng.integers(0, 6)) if rng.random() > 0.2 else 0.0
        out.append((x, n_c, y, n_b))
    return out


def brute_force_log_e(
    windows: list[tuple[float, float, float, float]],
    rho0: float,
    side: int,
    grid_settings: GridSettings,
    starts: list[float],
) -> float:
    """sum_starts pi_start * sum_k w_k * prod_{t >= start} LR_t(rho0 e^(side k step) : rho0),
    summed in logs, so that it holds for e-values of e^100000 too."""
    w = multiplier_weights(grid_settings.offsets, grid_settings.step, grid_settings.prior_sd)
    x = np.array([win[0] for win in windows])
    m = np.array([win[0] + win[2] for win in windows])
    n_c = np.array([win[1] for win in windows])
    n_b = np.array([win[3] for win in windows])

    def logpmf(rho: float) -> np.ndarray:
        return np.where(m > 0, stats.binom.logpmf(x, m, rho * n_c / (rho * n_c + n_b)), 0.0)

    null = logpmf(rho0)
    terms = []
    for k, wk in zip(grid_settings.offsets, w, strict=True):
        log_lr = logpmf(rho0 * math.exp(side * k * grid_settings.step)) - null
        suffix = np.cumsum(log_lr[::-1])[::-1]
        terms += [math.log(pi * wk) + suffix[tau] for tau, pi in enumerate(starts) if pi]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def test_mixture_grid_matches_a_brute_force_product_of_binomial_ratios() -> None:
    windows = random_windows(1, 25)
    seq = RatioSequence(1.2, SMALL, restarts=False)
    for t, (x, n_c, y, n_b) in enumerate(windows):
        seq.observe(x, n_c, y, n_b, float(t), 1.0)
    grid = seq.grid
    assert isinstance(grid, MixtureGrid)
    starts = [1.0] + [0.0] * (len(windows) - 1)
    for i in (0, grid.anchor_index, len(grid.nulls) - 1):
        for side in (1, -1):
            ref = brute_force_log_e(windows, grid.nulls[i], side, SMALL, starts)
            ours = grid.log_e_greater(i) if side == 1 else grid.log_e_less(i)
            assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("count", [5, 40])  # 40 windows renormalise twice on the way
def test_shiryaev_roberts_grid_matches_the_sum_over_every_start_time(count: int) -> None:
    windows = random_windows(2, count)
    cfg = GridSettings(
        null_every=2, half_width=4, offsets=(1, 3, 4), restart_scale_s=30.0, first_weight=0.3
    )
    seq = RatioSequence(0.8, cfg)
    for t, (x, n_c, y, n_b) in enumerate(windows):
        seq.observe(x, n_c, y, n_b, float(t), 1.0)
    grid = seq.grid
    assert isinstance(grid, ShiryaevRobertsGrid)
    starts = [restart_weight(float(t), 1.0, 30.0, 0.7) for t in range(count)]
    starts[0] += 0.3
    for i in range(len(grid.nulls)):
        for side in (1, -1):
            ref = brute_force_log_e(windows, grid.nulls[i], side, cfg, starts)
            ours = grid.log_e_greater(i) if side == 1 else grid.log_e_less(i)
            assert ours == pytest.approx(ref, rel=1e-7, abs=1e-7)


def test_one_window_of_equal_traffic_by_hand() -> None:
    """n_c = n_b: theta = rho / (1 + rho). At rho0 = 1, alternative rho1 = 2^k (step ln 2):
    LR = (2 rho1 / (1 + rho1))^x (2 / (1 + rho1))^(m - x)."""
    cfg = GridSettings(step=math.log(2.0), null_every=1, half_width=2, offsets=(1, 2))
    seq = RatioSequence(1.0, cfg, restarts=False)
    seq.observe(3.0, 100.0, 1.0, 100.0, 0.0, 1.0)  # x = 3 of m = 4 bad events
    w = multiplier_weights((1, 2), math.log(2.0), 1.0)
    lr = [(2 * r / (1 + r)) ** 3 * (2 / (1 + r)) ** 1 for r in (2.0, 4.0)]
    assert seq.grid.e_greater(seq.grid.anchor_index) == pytest.approx(w[0] * lr[0] + w[1] * lr[1])
    # e.g. rho1 = 2: (4/3)^3 * (2/3) = 128/81
    assert lr[0] == pytest.approx(128 / 81)


def test_no_bad_events_or_one_silent_variant_carry_no_information() -> None:
    seq = RatioSequence(1.0, SMALL, restarts=False)
    seq.observe(0.0, 50.0, 0.0, 950.0, 0.0, 1.0)
    seq.observe(3.0, 50.0, 0.0, 0.0, 1.0, 1.0)  # baseline silent: every event is the canary's
    assert seq.grid.updates == 0
    assert seq.grid.e_greater(seq.grid.anchor_index) == pytest.approx(1.0)


def test_windows_fed_together_share_the_work_and_agree_with_separate_feeding() -> None:
    a, b = RatioSequence(1.2, SMALL, sides="greater"), RatioSequence(1.2, SMALL, restarts=False)
    c, d = RatioSequence(1.2, SMALL, sides="greater"), RatioSequence(1.2, SMALL, restarts=False)
    for t, w in enumerate(random_windows(3, 30)):
        observe_ratio((a, b), *w, float(t), 1.0)
        c.observe(*w, float(t), 1.0)
        d.observe(*w, float(t), 1.0)
    for i in range(len(a.grid.nulls)):
        assert a.grid.log_e_greater(i) == pytest.approx(c.grid.log_e_greater(i))
        assert b.grid.log_e_less(i) == pytest.approx(d.grid.log_e_less(i))
    with pytest.raises(ValueError, match="share one grid"):
        observe_ratio((a, RatioSequence(2.0, SMALL)), 1.0, 10.0, 1.0, 10.0, 99.0, 1.0)


# --- monotonicity and bounds --------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(1, 30), restarts=st.booleans())
def test_e_values_are_monotone_in_the_null_so_bounds_are_intervals(
    seed: int, count: int, restarts: bool
) -> None:
    seq = RatioSequence(1.0, restarts=restarts)
    for t, w in enumerate(random_windows(seed, count)):
        seq.observe(*w, float(t), 1.0)
    g = seq.grid
    greater = [g.log_e_greater(i) for i in range(len(g.nulls))]
    less = [g.log_e_less(i) for i in range(len(g.nulls))]
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(greater))
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(less))
    for alpha in (0.5, 0.05, 0.001):
        limit = math.log(1 / alpha)
        lo, hi = g.lower(alpha), g.upper(alpha)
        assert all(v >= limit for v in greater[: lo.index])
        assert lo.index == len(greater) or greater[lo.index] < limit
        assert all(v >= limit for v in less[hi.index + 1 :])
        assert hi.index < 0 or less[hi.index] < limit
        if not lo.open_end:
            assert g.nulls[lo.index - 1] <= lo.value <= g.nulls[lo.index]


def test_bounds_from_one_large_window_are_wider_than_the_fixed_sample_exact_interval() -> None:
    """Anytime validity costs width: compare with Clopper-Pearson on the canary's share."""
    n_c, n_b, x, y = 500.0, 9500.0, 60.0, 400.0  # canary share of bad events 60 / 460
    fine = GridSettings(
        step=math.log(1.02), null_every=1, half_width=150, offsets=tuple(range(1, 80))
    )
    seq = RatioSequence(1.0, fine)
    seq.observe(x, n_c, y, n_b, 0.0, 1.0)
    alpha = 0.01
    share_lo = stats.beta.ppf(alpha, x, y + 1)  # one-sided Clopper-Pearson on theta
    share_hi = stats.beta.ppf(1 - alpha, x + 1, y)
    rho_lo = share_lo / (1 - share_lo) * n_b / n_c
    rho_hi = share_hi / (1 - share_hi) * n_b / n_c
    lo, hi = seq.grid.lower(alpha), seq.grid.upper(alpha)
    assert lo.value < rho_lo < (x / n_c) / (y / n_b) < rho_hi < hi.value
    assert lo.value > 0.5 * rho_lo and hi.value < 2 * rho_hi  # but not absurdly wider


# --- one rate --------------------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "n", "p0"), [(3, 1000, 0.001), (0, 500, 0.01), (40, 200, 0.1)])
def test_rate_e_value_matches_scipy_binomial_ratios(bad: int, n: int, p0: float) -> None:
    offsets = (1, 2, 4, 9)
    w = multiplier_weights(offsets, math.log(1.4), 1.0)
    for upward in (True, False):
        ref = 0.0
        for k, wk in zip(offsets, w, strict=True):
            p1 = p0 * 1.4 ** (k if upward else -k)
            if p1 >= 1:
                break
            ref += wk * math.exp(stats.binom.logpmf(bad, n, p1) - stats.binom.logpmf(bad, n, p0))
        ours = rate_log_e(bad, n, p0, upward=upward, step=math.log(1.4), offsets=offsets)
        assert ours == pytest.approx(math.log(ref), rel=1e-9)


@pytest.mark.parametrize(("bad", "n"), [(5, 1000), (50, 10_000), (300, 2000)])
def test_rate_bounds_sit_where_the_e_value_crosses_and_outside_clopper_pearson(
    bad: int, n: int
) -> None:
    alpha = 0.01
    lo, hi = rate_lower_bound(bad, n, alpha), rate_upper_bound(bad, n, alpha)
    limit = math.log(1 / alpha)
    assert rate_log_e(bad, n, lo * 0.999, upward=True) >= limit
    assert rate_log_e(bad, n, lo * 1.001, upward=True) < limit
    assert rate_log_e(bad, n, hi * 1.001, upward=False) >= limit
    assert rate_log_e(bad, n, hi * 0.999, upward=False) < limit
    cp_lo = stats.beta.ppf(alpha, bad, n - bad + 1)
    cp_hi = stats.beta.ppf(1 - alpha, bad + 1, n - bad)
    assert lo < cp_lo < bad / n < cp_hi < hi


def test_rate_bounds_without_data() -> None:
    assert rate_lower_bound(0, 0, 0.05) == 0.0
    assert rate_upper_bound(0, 0, 0.05) == 1.0
    assert rate_lower_bound(0, 1000, 0.05) == 0.0
    # zero bad events in n: the upper bound shrinks like log(1/alpha) / n
    assert (
        0.5 * math.log(20) / 10_000 < rate_upper_bound(0, 10_000, 0.05) < 5 * math.log(20) / 10_000
    )


def test_rate_sequence_rejects_a_rate_above_the_anchor() -> None:
    seq = RateSequence(0.001, sides="greater")
    for t in range(30):
        seq.observe(8.0, 1000.0, float(t), 1.0)  # 0.8% against 0.1%
    assert seq.grid.e_greater(seq.grid.anchor_index) > 1e6
    assert seq.grid.lower(0.01).value > 0.004


def test_chernoff_bound_solves_n_kl_equals_log_one_over_delta() -> None:
    bad, n, delta = 30.0, 1000.0, 0.01
    ours = chernoff_lower_bound(bad, n, delta)
    ref = optimize.brentq(lambda q: n * bernoulli_kl(bad / n, q) - math.log(1 / delta), 1e-9, 0.03)
    assert ours == pytest.approx(ref, rel=1e-6)
    assert chernoff_lower_bound(0.0, 100.0, 0.01) == 0.0


# --- continuous monitoring stays within alpha ---------------------------------------------


def monitored_false_alarm_rate(
    runs: int, ticks: int, alpha: float, seed: int, naive: bool = False
) -> float:
    """Share of A/A runs in which the test of "rho <= 1" ever rejects, looked at every tick.

    Traffic swings (a diurnal-like wave and Poisson noise), the realised canary share wanders
    around a weight that steps up from 5% to 25%, the bad-event rate itself swings (alike for
    both variants), and bad events are binomial per request at about 5%: the conditional law
    of the canary's share is then hypergeometric, not the model's binomial.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(ticks)
    load = 400 * (1.0 + 0.8 * np.sin(2 * np.pi * t / ticks))
    weight = np.where(t < ticks // 3, 0.05, 0.25)
    p = 0.05 * (1.0 + 0.5 * np.cos(2 * np.pi * t / 97))
    limit = math.log(1 / alpha)
    alarms = 0
    for _ in range(runs):
        total = rng.poisson(load)
        n_c = rng.binomial(total, weight)
        n_b = total - n_c
        x, y = rng.binomial(n_c, p), rng.binomial(n_b, p)
        if naive:  # a fixed-horizon one-sided z-test on the canary's share, repeated each tick
            m = np.cumsum(x + y)
            expected = np.cumsum((x + y) * n_c / np.maximum(total, 1))
            share = expected / np.maximum(m, 1)
            z = (np.cumsum(x) - expected) / np.sqrt(np.maximum(m * share * (1 - share), 1e-12))
            alarms += bool(np.any(z > stats.norm.ppf(1 - alpha)))
            continue
        seq = RatioSequence(1.0, sides="greater")
        grid = seq.grid
        for i in range(ticks):
            seq.observe(float(x[i]), float(n_c[i]), float(y[i]), float(n_b[i]), float(i), 1.0)
            if grid.log_e_greater(grid.anchor_index) >= limit:
                alarms += 1
                break
    return alarms / runs


@pytest.mark.slow
def test_a_a_runs_under_continuous_monitoring_stay_within_alpha() -> None:
    runs, alpha = 300, 0.05
    rate = monitored_false_alarm_rate(runs, ticks=200, alpha=alpha, seed=7)
    # Ville guarantees <= alpha; allow 2.5 binomial standard errors of simulation noise.
    assert rate <= alpha + 2.5 * math.sqrt(alpha * (1 - alpha) / runs)
    # The check has teeth: the same data under a repeated fixed-horizon test blows the budget.
    naive = monitored_false_alarm_rate(100, ticks=200, alpha=alpha, seed=7, naive=True)
    assert naive > 3 * alpha


_window = st.tuples(
    st.sampled_from([0.0, 1.0, 3.0, 50.0, 6000.0, 40000.0]),  # the canary's bad events
    st.sampled_from([100.0, 50000.0, 100000.0]),
    st.sampled_from([0.0, 2.0, 500.0, 30000.0]),  # the baseline's
    st.sampled_from([100.0, 100000.0, 2000000.0]),
).filter(lambda w: w[0] <= w[1] and w[2] <= w[3])


@settings(max_examples=80, deadline=None)
@given(st.lists(_window, min_size=1, max_size=30))
def test_shiryaev_roberts_grid_never_goes_blind_after_windows_thousands_of_nats_apart(
    windows: list[tuple[float, float, float, float]],
) -> None:
    """A window with thousands of bad events far from a null (a canary going from 0 to 6%
    slow at 100k requests/s) must not underflow that null's statistics to 0: the test would
    go blind for good and a failing canary would stop failing (found by a reviewer).

    What holds for any stream, against the sum over every start time computed in logs: the
    e-value is never above it (terms lost to underflow only make the test more cautious), and
    never below what the newest test alone contributes, so fresh evidence always counts. (A
    term dropped at 1e-300 of the kept ones can matter again only after the data swing by
    thousands of nats the other way.)"""
    cfg = GridSettings(
        null_every=2, half_width=4, offsets=(1, 3, 4), restart_scale_s=30.0, first_weight=0.3
    )
    seq = RatioSequence(1.2, cfg)
    for t, (x, n_c, y, n_b) in enumerate(windows):
        seq.observe(x, n_c, y, n_b, float(t), 1.0)
    grid = seq.grid
    starts = [restart_weight(float(t), 1.0, 30.0, 0.7) for t in range(len(windows))]
    starts[0] += 0.3
    newest = [0.0] * (len(windows) - 1) + [starts[-1]]
    for i in range(len(grid.nulls)):
        for side in (1, -1):
            ref = brute_force_log_e(windows, grid.nulls[i], side, cfg, starts)
            floor = brute_force_log_e(windows, grid.nulls[i], side, cfg, newest)
            ours = grid.log_e_greater(i) if side == 1 else grid.log_e_less(i)
            assert math.isfinite(ours)
            assert ours <= ref + 1e-6 * max(1.0, abs(ref))
            assert ours >= floor - 1e-6 * max(1.0, abs(floor))


@settings(max_examples=60, deadline=None)
@given(st.lists(_window.filter(lambda w: w[0] + w[2] <= 100.0), min_size=1, max_size=30))
def test_shiryaev_roberts_grid_is_exact_when_no_window_swings_far(
    windows: list[tuple[float, float, float, float]],
) -> None:
    cfg = GridSettings(
        null_every=2, half_width=4, offsets=(1, 3, 4), restart_scale_s=30.0, first_weight=0.3
    )
    seq = RatioSequence(1.2, cfg)
    for t, (x, n_c, y, n_b) in enumerate(windows):
        seq.observe(x, n_c, y, n_b, float(t), 1.0)
    starts = [restart_weight(float(t), 1.0, 30.0, 0.7) for t in range(len(windows))]
    starts[0] += 0.3
    for i in range(len(seq.grid.nulls)):
        for side in (1, -1):
            ref = brute_force_log_e(windows, seq.grid.nulls[i], side, cfg, starts)
            ours = seq.grid.log_e_greater(i) if side == 1 else seq.grid.log_e_less(i)
            assert ours == pytest.approx(ref, rel=1e-7, abs=1e-6)


def test_p_values_of_any_e_value_lie_in_0_1_and_never_overflow() -> None:
    assert p_value_of(-1e6) == 1.0  # e^(+1e6) would overflow
    assert p_value_of(-math.inf) == 1.0
    assert p_value_of(0.0) == 1.0
    assert p_value_of(math.log(20.0)) == pytest.approx(0.05)
    assert 0.0 < p_value_of(1e6) < 1e-300
