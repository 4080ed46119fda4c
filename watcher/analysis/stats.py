"""The statistics of regression detection (``docs/detection.md`` section 2), standard library only.

Everything here is a pure function of numbers:

- the standard normal distribution: :func:`norm_cdf`, :func:`norm_sf`, :func:`norm_ppf`,
  :func:`norm_isf` (a rational first guess refined by Halley steps on ``math.erfc``, accurate
  to about 1e-15 relative over the whole range), and the chi-square median used for bias
  correction (:func:`chi2_ppf`, through the regularised incomplete gamma function);
- the one-sided quasi-binomial (conditional-Poisson) rate test on shares, :func:`rate_test`::

      z = (p1 - p0) / sqrt(phi * p0 * (1 - p0) * (1/N1 + 1/N0))

- the dispersion ``phi`` estimated from baseline windows, :func:`estimate_dispersion`;
- multiplicity (:func:`bonferroni`, :func:`benjamini_hochberg`);
- the confidence interval of the relative change (:func:`relative_change_ci`, log ratio
  +- z * SE) and the minimal detectable effect (:func:`minimal_detectable_effect`);
- converting profile values to sample counts (:func:`sample_model`, :class:`SampleModel`).

Shares are fractions (0.012 = 1.2 %); relative changes are fractions too (0.5 = +50 %).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_DISPERSION",
    "DEFAULT_UNITS_PER_SAMPLE",
    "TIME_UNITS",
    "DispersionEstimate",
    "RateTest",
    "SampleModel",
    "benjamini_hochberg",
    "bonferroni",
    "chi2_cdf",
    "chi2_median",
    "chi2_ppf",
    "estimate_dispersion",
    "gamma_p",
    "minimal_detectable_effect",
    "norm_cdf",
    "norm_isf",
    "norm_pdf",
    "norm_ppf",
    "norm_sf",
    "rate_test",
    "relative_change_ci",
    "sample_model",
]

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)

#: Dispersion assumed when it cannot be estimated (fewer than two baseline windows, or too
#: few well-sampled functions). Real CPU profiles compared a day or a week apart usually
#: show phi between 1 and 4 at 10^5..10^6 samples per window; 4 keeps the A/A false alert
#: rate of ``docs/detection.md`` section 2.6 near zero once persistence is required, at the
#: price of about twice the minimal detectable effect of phi = 1.
DEFAULT_DISPERSION = 4.0

#: Units of one time unit per second.
TIME_UNITS: Mapping[str, float] = {
    "nanoseconds": 1e9,
    "microseconds": 1e6,
    "milliseconds": 1e3,
    "seconds": 1.0,
}

#: Nominal value of one sample for profile types whose values are not sample counts
#: (the dispersion-only model). Go samples one allocation per 512 KiB by default. The
#: estimated dispersion absorbs any error in these, so they only set the scale of ``phi``
#: and of the ``min_samples`` gate.
DEFAULT_UNITS_PER_SAMPLE: Mapping[str, float] = {
    "bytes": 524288.0,
    "count": 1.0,
    "nanoseconds": 1e6,
    "microseconds": 1e3,
    "milliseconds": 1.0,
    "seconds": 1e-3,
}


# -- the normal distribution ---------------------------------------------------------------


def norm_pdf(x: float) -> float:
    """Standard normal density."""
    return math.exp(-0.5 * x * x) / _SQRT2PI


def norm_cdf(x: float) -> float:
    """P(Z <= x) for a standard normal Z, accurate in both tails."""
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_sf(x: float) -> float:
    """P(Z > x), the upper tail, without the cancellation of ``1 - norm_cdf(x)``."""
    return 0.5 * math.erfc(x / _SQRT2)


# Rational approximations of the normal quantile in a central and a tail region (relative
# error about 1e-9); two Halley steps on erfc then bring the result to machine precision.
_CENTRAL_NUM = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_CENTRAL_DEN = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
)
_TAIL_NUM = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_TAIL_DEN = (
    7.784695709041462e-03,
    3.224671290700398e-01,
    2.445134137142996e00,
    3.754408661907416e00,
)
_TAIL_SPLIT = 0.02425


def _polynomial(coefficients: tuple[float, ...], x: float) -> float:
    """Horner's rule, highest power first."""
    value = 0.0
    for c in coefficients:
        value = value * x + c
    return value


def _lower_quantile(p: float) -> float:
    """The normal quantile for 0 < p <= 0.5 (so the result is <= 0)."""
    if p < _TAIL_SPLIT:
        q = math.sqrt(-2.0 * math.log(p))
        x = _polynomial(_TAIL_NUM, q) / (_polynomial(_TAIL_DEN, q) * q + 1.0)
    else:
        q = p - 0.5
        r = q * q
        x = _polynomial(_CENTRAL_NUM, r) * q / (_polynomial(_CENTRAL_DEN, r) * r + 1.0)
    for _ in range(2):
        half_square = 0.5 * x * x
        if half_square > 700.0:  # exp would overflow; the first guess is already exact enough
            break
        error = norm_cdf(x) - p
        u = error * _SQRT2PI * math.exp(half_square)
        x -= u / (1.0 + 0.5 * x * u)
    return x


def _check_probability(p: float, name: str) -> None:
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} {p!r}: must be a probability in [0, 1]")


def norm_ppf(p: float) -> float:
    """The standard normal quantile: x with P(Z <= x) = p. ``-inf``/``inf`` at 0 and 1."""
    _check_probability(p, "p")
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p > 0.5:
        return -_lower_quantile(1.0 - p)
    return _lower_quantile(p)


def norm_isf(q: float) -> float:
    """The upper-tail quantile: x with P(Z > x) = q; exact for tiny q such as alpha / m."""
    _check_probability(q, "q")
    if q == 0.0:
        return math.inf
    if q == 1.0:
        return -math.inf
    if q > 0.5:
        return _lower_quantile(1.0 - q)
    return -_lower_quantile(q)


# -- the chi-square distribution (for the bias correction of the dispersion) --------------

_TINY = 1e-300


def gamma_p(a: float, x: float) -> float:
    """The regularised lower incomplete gamma function P(a, x) for a > 0."""
    if a <= 0.0:
        raise ValueError(f"a {a!r}: must be positive")
    if x <= 0.0:
        return 0.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        # Power series: P = e^-x x^a / Gamma(a+1) * sum x^k / ((a+1)...(a+k)).
        term = 1.0 / a
        total = term
        denominator = a
        for _ in range(10_000):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return min(1.0, total * math.exp(log_front))
    # Continued fraction for Q = 1 - P, evaluated with the modified Lentz method.
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    fraction = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        step = d * c
        fraction *= step
        if abs(step - 1.0) < 1e-16:
            break
    return max(0.0, 1.0 - math.exp(log_front) * fraction)


def chi2_cdf(x: float, df: float) -> float:
    """P(X <= x) for a chi-square variable with ``df`` degrees of freedom."""
    return gamma_p(0.5 * df, 0.5 * x)


def chi2_ppf(p: float, df: float) -> float:
    """The chi-square quantile, by bisection on :func:`chi2_cdf` (to about 1e-12 relative)."""
    _check_probability(p, "p")
    if df <= 0:
        raise ValueError(f"df {df!r}: must be positive")
    if p == 0.0:
        return 0.0
    if p == 1.0:
        return math.inf
    low, high = 0.0, max(1.0, df)
    while chi2_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if chi2_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-13 * high:
            break
    return 0.5 * (low + high)


def chi2_median(df: float) -> float:
    """The median of chi-square(df): 0.455 at df = 1, 4.351 at df = 5."""
    return chi2_ppf(0.5, df)


# -- the rate test --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateTest:
    """A one-sided test of "the share rose": ``x1`` of ``n1`` now against ``x0`` of ``n0`` before.

    ``p_value`` is P(Z > z), small when the current share is above the baseline share.
    ``relative_change`` is ``p1 / p0 - 1`` (``inf`` when ``p0`` is 0); ``absolute_change``
    is ``p1 - p0``.
    """

    z: float
    p_value: float
    share: float
    baseline_share: float

    @property
    def relative_change(self) -> float:
        if self.baseline_share <= 0.0:
            return math.inf if self.share > 0.0 else 0.0
        return self.share / self.baseline_share - 1.0

    @property
    def absolute_change(self) -> float:
        return self.share - self.baseline_share


def rate_test(x1: float, n1: float, x0: float, n0: float, *, phi: float = 1.0) -> RateTest:
    """The quasi-binomial test of ``x1 / n1`` against ``x0 / n0`` with dispersion ``phi``.

    Counts are sample counts (possibly fractional after unit conversion). The variance uses
    the baseline share only, so the statistic does not grow with the effect it measures.
    """
    if n1 <= 0.0 or n0 <= 0.0:
        raise ValueError(f"totals must be positive, got n1={n1!r}, n0={n0!r}")
    p1 = x1 / n1
    p0 = x0 / n0
    variance = phi * p0 * (1.0 - p0) * (1.0 / n1 + 1.0 / n0)
    diff = p1 - p0
    if variance <= 0.0:
        z = math.inf if diff > 0 else (-math.inf if diff < 0 else 0.0)
    else:
        z = diff / math.sqrt(variance)
    return RateTest(z=z, p_value=norm_sf(z), share=p1, baseline_share=p0)


def relative_change_ci(
    x1: float, n1: float, x0: float, n0: float, *, phi: float = 1.0, level: float = 0.95
) -> tuple[float, float]:
    """Confidence interval of ``p1 / p0 - 1``: ``exp(log(p1/p0) +- z * SE) - 1``.

    ``SE**2 = phi * ((1 - p1) / x1 + (1 - p0) / x0)``, the delta-method variance of a log
    share. A zero count is replaced by one half so the interval stays finite.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level {level!r}: must be between 0 and 1")
    c1 = max(x1, 0.5)
    c0 = max(x0, 0.5)
    p1 = c1 / n1
    p0 = c0 / n0
    se = math.sqrt(phi * (max(0.0, 1.0 - p1) / c1 + max(0.0, 1.0 - p0) / c0))
    centre = math.log(p1 / p0)
    half = norm_isf(0.5 * (1.0 - level)) * se
    return math.exp(centre - half) - 1.0, math.exp(centre + half) - 1.0


# -- dispersion -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DispersionEstimate:
    """The estimated variance inflation of shares over the binomial (``phi >= 1``).

    ``raw`` is the median ratio before bias correction and flooring (``nan`` when nothing
    could be measured); ``functions`` how many functions it came from; ``windows`` how many
    windows; ``source`` is ``"estimated"`` or ``"default"``.
    """

    phi: float
    raw: float
    functions: int
    windows: int
    source: Literal["estimated", "default"]


def estimate_dispersion(
    windows: Sequence[Mapping[str, float]],
    totals: Sequence[float],
    *,
    min_expected: float = 100.0,
    min_functions: int = 5,
    default: float = DEFAULT_DISPERSION,
    max_share: float = 0.5,
    groups: Sequence[int] | None = None,
) -> DispersionEstimate:
    """Dispersion of function shares across ``windows`` (sample counts per function).

    For each well-sampled function (expected count >= ``min_expected`` in every window and
    pooled share <= ``max_share``) the Pearson statistic across the k windows,
    ``X2 = sum_b (x_b - N_b p)^2 / (N_b p (1 - p))``, is ``phi * chi2(k - 1)`` under the
    quasi-binomial model; ``X2 / (k - 1)`` estimates ``phi``. The median over functions is
    robust to the few that really changed, and is divided by the median of
    ``chi2(df)/df`` (0.87 at df = 5, 0.455 at df = 1) to remove its bias, then floored
    at 1. With fewer than two windows or ``min_functions`` usable functions the
    conservative ``default`` is returned.

    ``groups`` (one label per window) splits the windows into sets that are comparable
    only among themselves, such as the current window's two baselines and the previous
    window's two: each group gets its own pooled share (so a drift between groups is not
    counted as noise) and the statistics add up, ``df = sum(k_g - 1)``. Two pairs of
    windows give every function two degrees of freedom instead of one, which narrows the
    estimate a lot when only a few dozen functions are well sampled.
    """
    if len(windows) != len(totals):
        raise ValueError("windows and totals must have the same length")
    labels = list(groups) if groups is not None else [0] * len(windows)
    if len(labels) != len(windows):
        raise ValueError("groups must have one label per window")
    members: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        members.setdefault(label, []).append(index)
    parts = [m for m in members.values() if len(m) >= 2]
    df = sum(len(m) - 1 for m in parts)
    k = len(windows)
    if df < 1 or any(t <= 0 for t in totals):
        return DispersionEstimate(default, math.nan, 0, k, "default")
    names: set[str] = set()
    for window in windows:
        names.update(window)
    ratios: list[float] = []
    for name in names:
        spread = 0.0
        usable = True
        for part in parts:
            counts = [windows[i].get(name, 0.0) for i in part]
            part_totals = [float(totals[i]) for i in part]
            pooled = sum(counts) / sum(part_totals)
            if pooled <= 0.0 or pooled > max_share or pooled * min(part_totals) < min_expected:
                usable = False
                break
            for count, total in zip(counts, part_totals, strict=True):
                expected = total * pooled
                spread += (count - expected) ** 2 / (expected * (1.0 - pooled))
        if usable:
            ratios.append(spread / df)
    if len(ratios) < min_functions:
        return DispersionEstimate(default, math.nan, len(ratios), k, "default")
    raw = statistics.median(ratios)
    correction = chi2_median(df) / df
    return DispersionEstimate(max(1.0, raw / correction), raw, len(ratios), k, "estimated")


# -- multiplicity ---------------------------------------------------------------------------


def bonferroni(alpha: float, m: int) -> float:
    """Per-test level that keeps the family-wise error at ``alpha`` over ``m`` tests."""
    return alpha / max(1, m)


def benjamini_hochberg(p_values: Sequence[float], q: float) -> list[bool]:
    """Which hypotheses the Benjamini-Hochberg procedure rejects at false discovery rate ``q``."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    cutoff = -1
    for rank, index in enumerate(order, start=1):
        if p_values[index] <= q * rank / m:
            cutoff = rank
    rejected = [False] * m
    for rank, index in enumerate(order, start=1):
        if rank <= cutoff:
            rejected[index] = True
    return rejected


# -- minimal detectable effect --------------------------------------------------------------


def minimal_detectable_effect(
    p0: float,
    n1: float,
    n0: float | None = None,
    *,
    phi: float = 1.0,
    alpha: float = 5e-5,
    power: float = 0.8,
) -> float:
    """Smallest relative increase of a share ``p0`` the one-sided test detects with ``power``.

    Solves ``p1 - p0 = z_alpha * SE_null + z_power * SE_alt`` for ``p1`` with
    ``SE_null**2 = phi p0 (1-p0) (1/N1 + 1/N0)`` (the test's own standard error) and
    ``SE_alt**2 = phi (p1 (1-p1) / N1 + p0 (1-p0) / N0)``, and returns ``p1 / p0 - 1``
    (``inf`` when even a share of 1 would not be detected). ``n0`` defaults to ``n1``.
    With ``alpha = 0.01 / 200`` this reproduces the table of ``docs/detection.md`` 2.5.
    """
    if not 0.0 < p0 < 1.0:
        raise ValueError(f"p0 {p0!r}: must be a share strictly between 0 and 1")
    if n1 <= 0.0 or (n0 is not None and n0 <= 0.0):
        raise ValueError("sample counts must be positive")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power {power!r}: must be between 0 and 1")
    base = n1 if n0 is None else n0
    z_alpha = norm_isf(alpha)
    z_power = norm_ppf(power)
    se_null = math.sqrt(phi * p0 * (1.0 - p0) * (1.0 / n1 + 1.0 / base))

    def gap(p1: float) -> float:
        se_alt = math.sqrt(phi * (p1 * (1.0 - p1) / n1 + p0 * (1.0 - p0) / base))
        return p1 - p0 - z_alpha * se_null - z_power * se_alt

    if gap(1.0) < 0.0:
        return math.inf
    low, high = p0, 1.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if gap(mid) < 0.0:
            low = mid
        else:
            high = mid
        if high - low <= 1e-15 * high:
            break
    return high / p0 - 1.0


# -- converting values to sample counts -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class SampleModel:
    """How values of one profile type become sample counts and impact.

    ``poisson`` is true when values are sampled counts (CPU or wall time at a known rate, or
    raw sample counts): ``counts(value) = value / units_per_sample`` is then a Poisson-like
    count and ``min_samples`` applies to it directly. Otherwise the model is dispersion-only:
    ``units_per_sample`` is a nominal scale and the estimated dispersion carries the real
    variance, so eligibility uses ``counts / phi``.

    ``impact_unit`` names the unit of impact per second and ``impact_per_unit`` converts
    profile units per second into it (1e-9 turns CPU nanoseconds per second into cores).
    """

    sample_unit: str
    units_per_sample: float
    poisson: bool
    impact_unit: str
    impact_per_unit: float

    def counts(self, value: float) -> float:
        """Sample counts for ``value`` in the profile's unit."""
        return value / self.units_per_sample

    @property
    def is_cpu(self) -> bool:
        return self.impact_unit == "cores"


def _profile_type_parts(profile_type: str) -> tuple[str, str, str, str, str]:
    parts = profile_type.split(":")
    if len(parts) in (5, 6):
        return parts[0], parts[1], parts[2], parts[3], parts[4]
    return profile_type, "", "", "", ""


def sample_model(profile_type: str, sample_rate_hz: float = 100.0) -> SampleModel:
    """How values of a profile type ID (``process_cpu:cpu:nanoseconds:cpu:...``) become samples.

    CPU and wall time (sample type ``cpu`` or ``wall`` in a time unit) become samples with
    ``n = value * Hz / units_per_second``; sample types ``samples`` in ``count`` are samples
    already. Anything else (allocations, delays, goroutines, ...) uses the dispersion-only
    model with a nominal scale from :data:`DEFAULT_UNITS_PER_SAMPLE`.
    """
    if sample_rate_hz <= 0:
        raise ValueError(f"sample rate {sample_rate_hz!r} Hz: must be positive")
    name, sample_type, unit, period_type, _period_unit = _profile_type_parts(profile_type)
    cpu_like = sample_type == "cpu" or period_type == "cpu" or name == "process_cpu"
    if sample_type in ("cpu", "wall") and unit in TIME_UNITS:
        per_second = TIME_UNITS[unit]
        impact_unit = "cores" if sample_type == "cpu" else "seconds/s"
        return SampleModel(unit, per_second / sample_rate_hz, True, impact_unit, 1.0 / per_second)
    if sample_type == "samples" and unit == "count":
        if cpu_like:
            return SampleModel(unit, 1.0, True, "cores", 1.0 / sample_rate_hz)
        if period_type == "wall" or name == "wall":
            return SampleModel(unit, 1.0, True, "seconds/s", 1.0 / sample_rate_hz)
        return SampleModel(unit, 1.0, True, "samples/s", 1.0)
    scale = DEFAULT_UNITS_PER_SAMPLE.get(unit, 1.0)
    if unit in TIME_UNITS:
        return SampleModel(unit, scale, False, "seconds/s", 1.0 / TIME_UNITS[unit])
    return SampleModel(unit or "units", scale, False, f"{unit or 'units'}/s", 1.0)
