"""The statistics of detection: normal distribution, rate test, dispersion, CI, MDE."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import pytest

from watcher.analysis.stats import (
    DEFAULT_DISPERSION,
    benjamini_hochberg,
    bonferroni,
    chi2_cdf,
    chi2_median,
    chi2_ppf,
    estimate_dispersion,
    gamma_p,
    minimal_detectable_effect,
    norm_cdf,
    norm_isf,
    norm_ppf,
    norm_sf,
    rate_test,
    relative_change_ci,
    sample_model,
)
from watcher.sandbox.fleet import FleetSpec, generate

START = datetime(2026, 3, 2, tzinfo=UTC)

# -- the normal distribution ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (0.0, 0.5),
        (1.0, 0.8413447460685429),
        (1.959963984540054, 0.975),
        (-3.0, 0.0013498980316300946),
        (-8.0, 6.220960574271785e-16),
        (-20.0, 2.7536241186062337e-89),
    ],
)
def test_norm_cdf_matches_reference_values(x: float, expected: float) -> None:
    """The CDF is accurate to 1e-14 relative, deep into the lower tail."""
    assert norm_cdf(x) == pytest.approx(expected, rel=1e-13)


def test_norm_sf_keeps_precision_in_the_upper_tail() -> None:
    """P(Z > 10) is 7.6e-24, which 1 - cdf would round to zero."""
    assert norm_sf(10.0) == pytest.approx(7.619853024160527e-24, rel=1e-12)
    assert norm_sf(-1.0) == pytest.approx(norm_cdf(1.0), rel=1e-15)


@pytest.mark.parametrize(
    "p", [1e-300, 1e-100, 1e-20, 1e-10, 5e-5, 1e-3, 0.02425, 0.1, 0.3, 0.5, 0.8, 0.975, 1 - 1e-9]
)
def test_norm_ppf_agrees_with_the_standard_library(p: float) -> None:
    """The quantile agrees with NormalDist.inv_cdf (Wichura's AS241) to 1e-13."""
    assert norm_ppf(p) == pytest.approx(NormalDist().inv_cdf(p), rel=1e-13, abs=1e-14)


def test_norm_ppf_inverts_the_cdf_across_the_range() -> None:
    """cdf(ppf(p)) == p to 1e-13 relative over 2,000 log-spaced probabilities."""
    for i in range(1, 2001):
        p = 10 ** (-300 * i / 2000) if i % 2 else i / 2001
        assert norm_cdf(norm_ppf(p)) == pytest.approx(p, rel=1e-12)


def test_norm_isf_gives_the_bonferroni_critical_values() -> None:
    """z for alpha = 0.01 over 200 tests is 3.89; over 1 test 2.326."""
    assert norm_isf(0.01 / 200) == pytest.approx(3.890591886413094, rel=1e-13)
    assert norm_isf(0.01) == pytest.approx(2.3263478740408408, rel=1e-13)
    assert norm_isf(0.9) == pytest.approx(-norm_isf(0.1), rel=1e-14)


def test_quantiles_at_the_ends_and_outside() -> None:
    """0 and 1 map to infinities; anything else outside [0, 1] is refused."""
    assert norm_ppf(0.0) == -math.inf
    assert norm_ppf(1.0) == math.inf
    assert norm_isf(0.0) == math.inf
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="probability"):
            norm_ppf(bad)


# -- chi-square, for the dispersion bias correction -------------------------------------------


def test_chi2_medians_match_the_values_in_detection_md() -> None:
    """median(chi2_5)/5 = 0.87 (the k = 6 correction), median(chi2_1) = 0.455."""
    assert chi2_median(5) / 5 == pytest.approx(0.8702920382, rel=1e-9)
    assert chi2_median(1) == pytest.approx(0.4549364231195724, rel=1e-9)


def test_chi2_cdf_and_quantile_are_consistent() -> None:
    """The 95 % quantiles of chi2 with 1 and 10 df are 3.841 and 18.307."""
    assert chi2_ppf(0.95, 1) == pytest.approx(3.841458820694124, rel=1e-9)
    assert chi2_ppf(0.95, 10) == pytest.approx(18.307038053275146, rel=1e-9)
    assert chi2_cdf(2.0, 2) == pytest.approx(1 - math.exp(-1.0), rel=1e-12)
    assert gamma_p(1.0, 50.0) == pytest.approx(1.0)
    assert gamma_p(3.0, 0.0) == 0.0


# -- rate test, CI, multiplicity --------------------------------------------------------------


def test_rate_test_follows_the_quasi_binomial_formula() -> None:
    """z = (p1 - p0) / sqrt(phi p0 (1 - p0) (1/N1 + 1/N0)), one-sided p-value."""
    result = rate_test(1_150, 100_000, 1_000, 100_000, phi=2.0)
    p0, p1 = 0.01, 0.0115
    z = (p1 - p0) / math.sqrt(2.0 * p0 * (1 - p0) * (2 / 100_000))
    assert result.z == pytest.approx(z)
    assert result.p_value == pytest.approx(norm_sf(z))
    assert result.relative_change == pytest.approx(0.15)
    assert result.absolute_change == pytest.approx(0.0015)


def test_rate_test_is_one_sided() -> None:
    """A decrease gives a p-value near 1, not near 0."""
    assert rate_test(900, 100_000, 1_000, 100_000).p_value > 0.98


def test_relative_change_ci_brackets_the_estimate_and_widens_with_dispersion() -> None:
    """The interval is log-symmetric around p1/p0 - 1 and wider when phi is larger."""
    low, high = relative_change_ci(1_500, 1e6, 1_000, 1e6)
    assert low < 0.5 < high
    assert math.log1p(high) - math.log(1.5) == pytest.approx(math.log(1.5) - math.log1p(low))
    wide_low, wide_high = relative_change_ci(1_500, 1e6, 1_000, 1e6, phi=4.0)
    assert wide_low < low and wide_high > high


def test_relative_change_ci_covers_the_truth_about_95_percent_of_the_time() -> None:
    """Over 2,000 seeded Poisson-like draws the 95 % interval covers the true ratio 94-96 %."""
    rng = random.Random(7)
    n = 200_000
    p0, p1 = 0.02, 0.025
    covered = 0
    runs = 2_000
    for _ in range(runs):
        x0 = round(rng.gauss(n * p0, math.sqrt(n * p0 * (1 - p0))))
        x1 = round(rng.gauss(n * p1, math.sqrt(n * p1 * (1 - p1))))
        low, high = relative_change_ci(x1, n, x0, n)
        covered += low <= p1 / p0 - 1 <= high
    assert 0.935 <= covered / runs <= 0.965


def test_bonferroni_and_benjamini_hochberg() -> None:
    """Bonferroni divides alpha; BH rejects the step-up set."""
    assert bonferroni(0.01, 200) == pytest.approx(5e-5)
    assert bonferroni(0.01, 0) == 0.01
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    assert benjamini_hochberg(p, 0.05) == [True, True] + [False] * 8
    assert benjamini_hochberg([0.01, 0.02, 0.03], 0.05) == [True, True, True]
    assert benjamini_hochberg([], 0.05) == []


# -- minimal detectable effect: the table of detection.md 2.5 ---------------------------------

# (phi, p0, [MDE in % at 10k, 100k, 1M, 10M samples per window]) as printed in the table.
MDE_TABLE = [
    (1, 0.001, [229, 69, 21, 6.7]),
    (1, 0.01, [68, 21, 6.7, 2.1]),
    (1, 0.05, [30, 9.3, 2.9, 0.9]),
    (1, 0.20, [13, 4.2, 1.3, 0.4]),
    (4, 0.01, [140, 43, 13, 4.2]),
    (4, 0.05, [60, 19, 5.8, 1.8]),
    (16, 0.01, [292, 87, 27, 8.5]),
]


@pytest.mark.parametrize(("phi", "p0", "row"), MDE_TABLE)
def test_mde_reproduces_the_detection_md_table(phi: float, p0: float, row: list[float]) -> None:
    """Alpha 0.01/200, power 0.8, equal N: every cell matches the printed value.

    "Matches" means within half a unit of the last printed digit (13 stands for 12.5-13.5)
    plus 2 % for the table's own rounding of intermediate values.
    """
    for samples, printed in zip((1e4, 1e5, 1e6, 1e7), row, strict=True):
        mde = 100 * minimal_detectable_effect(p0, samples, phi=phi, alpha=0.01 / 200)
        text = repr(printed)
        decimals = len(text.split(".")[1]) if "." in text and not text.endswith(".0") else 0
        tolerance = 0.5 * 10**-decimals + 0.02 * printed
        assert abs(mde - printed) <= tolerance, (phi, p0, samples, mde)


def test_mde_shrinks_with_samples_and_grows_with_dispersion() -> None:
    """More samples detect smaller changes; dispersion phi costs about sqrt(phi)."""
    small = minimal_detectable_effect(0.01, 1e6)
    assert minimal_detectable_effect(0.01, 1e7) < small
    assert minimal_detectable_effect(0.01, 1e6, phi=4.0) == pytest.approx(2 * small, rel=0.05)
    assert minimal_detectable_effect(0.3, 10.0) == math.inf


# -- dispersion -------------------------------------------------------------------------------


def _hourly_self_counts(dispersion: float, seed: int) -> tuple[list[dict[str, float]], list[float]]:
    spec = FleetSpec(
        start=START,
        end=START + timedelta(hours=6),
        services=("checkout",),
        step=timedelta(hours=1),
        samples_per_profile=300_000,
        dispersion=dispersion,
        seed=seed,
    )
    windows: list[dict[str, float]] = []
    totals: list[float] = []
    for record in generate(spec):
        counts: dict[str, float] = {}
        for stack, value in record.stacks.items():
            counts[stack[-1]] = counts.get(stack[-1], 0.0) + value / 1e7
        windows.append(counts)
        totals.append(sum(counts.values()))
    return windows, totals


@pytest.mark.parametrize("phi", [1.0, 2.0, 4.0, 16.0])
def test_dispersion_is_recovered_from_six_generated_windows(phi: float) -> None:
    """The bias-corrected median recovers the generator's phi within 25 % (floored at 1)."""
    windows, totals = _hourly_self_counts(phi, seed=11)
    estimate = estimate_dispersion(windows, totals)
    assert estimate.source == "estimated"
    assert estimate.windows == 6
    assert estimate.functions >= 20
    assert estimate.phi >= 1.0
    assert estimate.phi == pytest.approx(phi, rel=0.25)


def test_dispersion_falls_back_to_the_documented_default() -> None:
    """One window, or too few well-sampled functions, gives the conservative default."""
    one = estimate_dispersion([{"a": 500.0}], [1000.0])
    assert (one.phi, one.source) == (DEFAULT_DISPERSION, "default")
    sparse = estimate_dispersion([{"a": 5.0}, {"a": 7.0}], [1000.0, 1000.0])
    assert (sparse.phi, sparse.source) == (DEFAULT_DISPERSION, "default")


def test_dispersion_groups_pool_pairs_without_counting_drift_between_them() -> None:
    """Three pairs of windows, the mix drifting between pairs: groups see phi, not the drift.

    Each pair gets its own pooled shares, so a mix that differs between pairs (the daily
    drift between the current window's hour and the previous one's) adds nothing, and the
    degrees of freedom add up (one per pair and function here).
    """
    windows, totals = _hourly_self_counts(4.0, seed=11)
    drifted = []
    for index, window in enumerate(windows):
        factor = 1.0 + 0.3 * (index // 2)  # pair 0 unchanged, pair 1 +30 %, pair 2 +60 %
        drifted.append(
            {n: c * (factor if i % 2 else 1.0) for i, (n, c) in enumerate(sorted(window.items()))}
        )
    totals = [sum(w.values()) for w in drifted]
    grouped = estimate_dispersion(drifted, totals, groups=[0, 0, 1, 1, 2, 2])
    assert grouped.source == "estimated" and grouped.windows == 6
    assert grouped.phi == pytest.approx(4.0, rel=0.3)
    assert estimate_dispersion(drifted, totals).phi > 2 * grouped.phi  # drift counted as noise
    # One pair alone is the old two-window estimate; a group of one window adds nothing.
    alone = estimate_dispersion(drifted[:2], totals[:2])
    assert estimate_dispersion(drifted[:3], totals[:3], groups=[0, 0, 1]).phi == alone.phi
    with pytest.raises(ValueError, match="one label per window"):
        estimate_dispersion(drifted[:2], totals[:2], groups=[0])


# -- sample counts ----------------------------------------------------------------------------


def test_cpu_nanoseconds_become_samples_and_cores() -> None:
    """n = ns * Hz / 1e9; impact in cores is ns/s / 1e9."""
    model = sample_model("process_cpu:cpu:nanoseconds:cpu:nanoseconds", 100)
    assert model.poisson and model.impact_unit == "cores"
    assert model.counts(10_000_000 * 250) == pytest.approx(250)
    assert model.impact_per_unit == pytest.approx(1e-9)
    assert sample_model("process_cpu:cpu:nanoseconds:cpu:nanoseconds", 19).counts(
        1e9
    ) == pytest.approx(19)


def test_other_profile_types_use_the_dispersion_only_model() -> None:
    """Allocations, delays and goroutines are not Poisson counts; raw samples are."""
    alloc = sample_model("memory:alloc_space:bytes:space:bytes")
    assert not alloc.poisson and alloc.impact_unit == "bytes/s"
    delay = sample_model("block:delay:nanoseconds:contentions:count")
    assert not delay.poisson
    samples = sample_model("process_cpu:samples:count:cpu:nanoseconds", 100)
    assert samples.poisson and samples.counts(42) == 42
    assert samples.impact_unit == "cores" and samples.impact_per_unit == pytest.approx(0.01)
    wall = sample_model("wall:wall:microseconds:wall:microseconds", 100)
    assert wall.poisson and wall.counts(1e6) == pytest.approx(100)
