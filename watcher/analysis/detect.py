"""Detect regressions in one service's profile: ``docs/detection.md`` section 2, as code.

:func:`detect` compares the current window's function table with one or more baseline
windows (and, for persistence, the previous window with its own baselines) and returns a
:class:`DetectionResult`. It is pure: no I/O, no clock.

Windows are function tables in either of two shapes: ``functions`` (name -> object with
``self`` and ``total``) plus ``total_value`` (:class:`FunctionTableLike`, e.g.
:class:`watcher.analysis.tables.StackTable`), or ``self_values``/``total_values`` dicts plus
``total_value`` (:class:`ValueTableLike`, e.g. ``watcher.flamegraph.functions.FunctionTable``).
Recursion must already be counted once in ``total``. The caller graph comes from the
``parents`` argument (``function -> direct callers``) or a table's ``parents`` attribute.

The rules, in the order they apply:

1. **Sample counts.** Values become sample counts with :func:`~watcher.analysis.stats.sample_model`
   (CPU/wall time: ``value * Hz / 1e9`` for nanoseconds; other units: dispersion-only).
2. **Dispersion.** ``phi`` is estimated from the baseline windows' self counts
   (:func:`~watcher.analysis.stats.estimate_dispersion`); when the previous window comes
   with its own baselines, those are a second group of windows and the degrees of freedom
   add up. With fewer than two baselines it is the larger of
   :data:`~watcher.analysis.stats.DEFAULT_DISPERSION` and the same robust estimate taken
   across the baseline, previous and current windows.
3. **Eligibility.** A (function, kind) pair is tested when every baseline holds at least
   ``min_samples`` of it and its expected count in the current window is at least
   ``min_samples`` (for dispersion-only units, counts divided by ``phi``). ``total`` is
   tested only for functions whose total differs from their self value somewhere. The
   number of tests is ``eligible_count``.
4. **Test.** One-sided quasi-binomial rate test of the current share against **each**
   baseline; a function is significant only when every baseline rejects at the Bonferroni
   level ``alpha / eligible_count`` (an intersection-union test, whose p-value is the
   largest of the per-baseline ones). With ``pool_baselines`` (the default) the
   baselines are summed into one for the test, which shrinks its standard error (by 13 %
   with two equal baselines), while every baseline on its own must still show the
   increase at the one-sided 5 % level; persistence is checked the same way.
5. **Practical gates.** Against every baseline: growth relative to the rest of the
   profile (the odds ratio of the share, minus 1: the function's own extra work when
   nothing else changed) >= ``min_relative_increase``; share increase >=
   ``min_share_increase``; and, when set, impact >= ``min_impact``.
6. **Common rise.** When a sign test over the self tests says most shares rose (one-sided
   0.1 %, at least ten tests), work fell elsewhere and every share rose with it; a
   candidate is then kept only if it is significant above the median ratio of current to
   baseline share.
7. **Cost shift.** When the increase is matched (within ``cost_shift_tolerance``, 30 %, or
   two standard errors of the difference when the windows are small, but at least 40 %)
   by significant (2 SE) decreases of siblings under one parent, after removing the
   dilution that a pure regression of the function would cause, and the parent's total
   share is not significantly changed (two-sided 1 %), the change is a ``cost_shift``:
   reported, not alerted. Top-level functions are siblings under a virtual root whose
   share is always 1. A function absent from every baseline that matches such decreases
   (a rename) is a cost shift too.
8. **Persistence.** The previous window must also be significantly above its baselines
   (one-sided, level ``confirm_alpha`` split over the candidates), and that rise must not
   be a cost shift against those baselines (the rule of step 7 applied to the previous
   window). Candidates that fail are informational ("not confirmed"), which suppresses
   one-window spikes; those whose previous window was a cost shift are cost shifts
   ("in the previous window matched by ..."). Without a previous window persistence is
   not checked: findings carry ``persistent=None`` and the result says so in ``notes``.
9. **Call chains.** Findings whose function is a caller (transitively) of another finding's
   function are merged into it: the deepest frame is kept, a self finding wins over the
   total finding of the same function or of a function in a call cycle with it, and the
   merged functions become ``callers`` (nearest first).
10. **Attribution and severity.** When the window version labels show a version in the
   previous or current window that the latest baseline did not run, the finding carries
   ``(old, new)``. Severity comes from impact: for CPU and wall time at least
   ``critical_impact`` cores is critical and at least ``warning_impact`` is a warning; for
   other units the share increase decides (5 pp critical, 1 pp warning). The rest is info.

Everything significant at a false discovery rate of ``informational_q`` (Benjamini-Hochberg)
that is not a finding or a cost shift, including significant decreases and functions
absent from every baseline, is listed in ``informational`` with a ``note``.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from watcher.analysis.stats import (
    DEFAULT_DISPERSION,
    SampleModel,
    benjamini_hochberg,
    estimate_dispersion,
    minimal_detectable_effect,
    norm_cdf,
    norm_isf,
    norm_sf,
    rate_test,
    relative_change_ci,
    sample_model,
)
from watcher.findings import Finding, FindingKind, Severity

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MDE_SHARES",
    "DetectionContext",
    "DetectionResult",
    "DetectionThresholds",
    "FunctionStats",
    "FunctionTableLike",
    "ThresholdsLike",
    "ValueTableLike",
    "WindowTable",
    "detect",
]

#: Shares at which :attr:`DetectionResult.mde_by_share` reports the minimal detectable effect.
MDE_SHARES: tuple[float, ...] = (0.001, 0.003, 0.01, 0.05, 0.2)

#: The virtual parent of top-level frames.
_ROOT = ""
#: A sibling counts towards a cost shift when its (dilution-corrected) decrease is at least
#: this many standard errors.
_SIBLING_Z = 2.0
#: A decrease matches an increase within this many standard errors of their difference
#: (when that is wider than the tolerance), and never when below this share of it.
_MATCH_Z = 2.0
_MATCH_FLOOR = 0.4
#: With pooled baselines, every baseline on its own must show the increase at this level
#: (one-sided 5 %).
_AGREE_Z = norm_isf(0.05)
#: The parent's total is "not significantly changed" below this two-sided 1 % quantile.
_PARENT_Z = norm_isf(0.005)
#: Most shares rose together when a sign test over the self tests says so at this level
#: (one-sided 0.1 %), given at least this many tests.
_COMMON_Z = norm_isf(0.001)
_COMMON_MIN_TESTS = 10
#: The note of informational entries whose share fell.
_DECREASE = "decrease"
#: Name of the synthetic node that tree truncation sums small children into.
_OTHER = "other"


class FunctionStats(Protocol):
    """One function's values in a window: ``self`` and ``total`` (recursion counted once)."""

    @property
    def self(self) -> float: ...

    @property
    def total(self) -> float: ...


class FunctionTableLike(Protocol):
    """What :func:`detect` needs of a window: its total and its per-function values."""

    @property
    def total_value(self) -> float: ...

    @property
    def functions(self) -> Mapping[str, FunctionStats]: ...


class ValueTableLike(Protocol):
    """The other accepted window shape: ``self_values``/``total_values`` dicts and a total."""

    @property
    def total_value(self) -> float: ...

    @property
    def self_values(self) -> Mapping[str, float]: ...

    @property
    def total_values(self) -> Mapping[str, float]: ...


#: A window's function table, in either accepted shape.
WindowTable = FunctionTableLike | ValueTableLike


class ThresholdsLike(Protocol):
    """The thresholds :func:`detect` requires.

    Optional ones (``min_impact``, ``confirm_alpha``, ...) are read when present, with the
    defaults of :class:`DetectionThresholds`.
    """

    @property
    def min_relative_increase(self) -> float: ...

    @property
    def min_share_increase(self) -> float: ...

    @property
    def min_samples(self) -> float: ...

    @property
    def alpha(self) -> float: ...


@dataclass(frozen=True, slots=True)
class DetectionThresholds:
    """Detection thresholds (``docs/detection.md`` 2.4), with the documented defaults.

    ``min_impact`` (in the impact unit, cores for CPU) is off by default. ``confirm_alpha``
    is the persistence level (default ``alpha``). ``warning_impact`` and ``critical_impact``
    set severity for time profiles, in cores. ``pool_baselines`` (on by default) tests
    against the baselines pooled, see :func:`detect`.
    """

    min_relative_increase: float = 0.005
    min_share_increase: float = 0.0
    min_samples: float = 100
    alpha: float = 0.01
    min_impact: float | None = None
    confirm_alpha: float | None = None
    informational_q: float = 0.05
    cost_shift_tolerance: float = 0.3
    warning_impact: float = 0.1
    critical_impact: float = 1.0
    pool_baselines: bool = True


DEFAULT_THRESHOLDS = DetectionThresholds()


@dataclass(frozen=True, slots=True)
class DetectionContext:
    """Where the windows come from: service, profile type, times, sample rate, versions.

    All windows have the current window's length. ``baseline_starts`` are the starts of
    the baseline windows in the order the tables are passed. The ``*_versions`` hold the
    distinct values of the ``version`` label seen in each window (empty when unknown);
    ``baseline_versions`` is parallel to the baselines. ``labels`` are copied onto findings.
    """

    service: str
    profile_type: str
    window_start: datetime
    window_end: datetime
    baseline_starts: tuple[datetime, ...] = ()
    sample_rate_hz: float = 100.0
    current_versions: tuple[str, ...] = ()
    previous_versions: tuple[str, ...] = ()
    baseline_versions: tuple[tuple[str, ...], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.window_start.tzinfo is None or self.window_end.tzinfo is None:
            raise ValueError("window times must be timezone-aware")
        if self.window_end <= self.window_start:
            raise ValueError(
                f"window {self.window_start.isoformat()}..{self.window_end.isoformat()}: "
                "the end must be after the start"
            )

    @property
    def window(self) -> timedelta:
        return self.window_end - self.window_start

    @property
    def window_seconds(self) -> float:
        return self.window.total_seconds()

    @property
    def previous_start(self) -> datetime:
        """Start of the previous window, immediately before the current one."""
        return self.window_start - self.window


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """What one detection pass found for one (service, profile type, window).

    ``findings`` are alerts (merged per call chain); ``cost_shifts`` are labelled, not
    alerted; ``informational`` lists other notable changes with a ``note``.
    ``eligible_count`` is the number of tests (the Bonferroni ``m``), ``alpha_per_test`` the
    level each one used. ``mde_by_share`` maps a share (0.01 = 1 %) to the smallest relative
    increase detectable with 80 % power at this window's sample count and dispersion.
    """

    findings: tuple[Finding, ...] = ()
    cost_shifts: tuple[Finding, ...] = ()
    informational: tuple[Finding, ...] = ()
    eligible_count: int = 0
    alpha_per_test: float = 0.0
    dispersion: float = 1.0
    dispersion_source: str = "default"
    current_samples: float = 0.0
    baseline_samples: tuple[float, ...] = ()
    mde_by_share: Mapping[float, float] = field(default_factory=dict)
    persistence_checked: bool = False
    notes: tuple[str, ...] = ()


# -- internals ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Window:
    """One window in sample counts."""

    samples: float
    raw_total: float
    self_counts: dict[str, float]
    total_counts: dict[str, float]
    raw_self: dict[str, float]
    raw_total_values: dict[str, float]

    def counts(self, kind: str) -> dict[str, float]:
        return self.self_counts if kind == "self" else self.total_counts

    def raw(self, kind: str) -> dict[str, float]:
        return self.raw_self if kind == "self" else self.raw_total_values


def _window(table: WindowTable, model: SampleModel, skip_other: bool) -> _Window:
    scale = model.units_per_sample
    raw_self: dict[str, float] = {}
    raw_total: dict[str, float] = {}
    functions = getattr(table, "functions", None)
    if isinstance(functions, Mapping):
        for name, values in functions.items():
            raw_self[name] = float(values.self)
            raw_total[name] = float(values.total)
    else:
        self_values: Mapping[str, float] = getattr(table, "self_values", {})
        total_values: Mapping[str, float] = getattr(table, "total_values", {})
        for name, total in total_values.items():
            raw_self[name] = float(self_values.get(name, 0))
            raw_total[name] = float(total)
    if skip_other:
        raw_self.pop(_OTHER, None)
        raw_total.pop(_OTHER, None)
    return _Window(
        samples=float(table.total_value) / scale,
        raw_total=float(table.total_value),
        self_counts={k: v / scale for k, v in raw_self.items()},
        total_counts={k: v / scale for k, v in raw_total.items()},
        raw_self=raw_self,
        raw_total_values=raw_total,
    )


@dataclass(slots=True)
class _Test:
    """One eligible (function, kind) test and everything computed for it."""

    function: str
    kind: FindingKind
    count: float
    share: float
    baseline_counts: tuple[float, ...]
    baseline_shares: tuple[float, ...]
    pooled_share: float
    z_min: float
    z_max: float
    p_increase: float
    p_decrease: float
    rel_min: float
    abs_min: float
    impact: float
    persistent: bool | None = None
    note: str = ""


def _option(thresholds: object, name: str, default: Any) -> Any:
    value = getattr(thresholds, name, None)
    return default if value is None else value


def _ancestors(function: str, parents: Mapping[str, Collection[str]]) -> dict[str, int]:
    """Every transitive caller of ``function`` with its distance (1 = direct caller)."""
    distance: dict[str, int] = {}
    queue: deque[tuple[str, int]] = deque([(function, 0)])
    while queue:
        name, depth = queue.popleft()
        for caller in parents.get(name, ()):
            if caller and caller != function and caller not in distance:
                distance[caller] = depth + 1
                queue.append((caller, depth + 1))
    return distance


def _children(parents: Mapping[str, Collection[str]]) -> dict[str, set[str]]:
    children: dict[str, set[str]] = {}
    for name, callers in parents.items():
        real = [c for c in callers if c and c != name]
        if not real:
            children.setdefault(_ROOT, set()).add(name)
        for caller in real:
            children.setdefault(caller, set()).add(name)
    return children


def _version_change(context: DetectionContext) -> tuple[str, str] | None:
    baselines = context.baseline_versions
    if not baselines:
        return None
    latest = 0
    if len(context.baseline_starts) == len(baselines):
        latest = max(range(len(baselines)), key=lambda i: context.baseline_starts[i])
    old = set(baselines[latest])
    if not old:
        old = {v for versions in baselines for v in versions}
    new = (set(context.current_versions) | set(context.previous_versions)) - old
    if not old or not new:
        return None
    return ",".join(sorted(old)), ",".join(sorted(new))


def _growth(share: float, baseline_share: float) -> float:
    """The function's growth relative to the rest of the profile (the odds ratio, minus 1).

    With the rest unchanged it is exactly the function's own extra work: +10 % work on a
    function holding half the profile moves its share by only +4.8 %, its odds by +10 %.
    For small shares it equals the relative change of the share.
    """
    if baseline_share <= 0.0 or share >= 1.0:
        return math.inf
    if baseline_share >= 1.0:
        return -1.0
    return (share / (1.0 - share)) / (baseline_share / (1.0 - baseline_share)) - 1.0


def _severity(
    model: SampleModel, impact: float, absolute_change: float, thresholds: object
) -> Severity:
    if model.impact_unit in ("cores", "seconds/s"):
        if impact >= float(_option(thresholds, "critical_impact", 1.0)):
            return "critical"
        if impact >= float(_option(thresholds, "warning_impact", 0.1)):
            return "warning"
        return "info"
    if absolute_change >= 0.05:
        return "critical"
    if absolute_change >= 0.01:
        return "warning"
    return "info"


class _Detector:
    """One detection pass; holds the windows so the steps can share them."""

    def __init__(
        self,
        current: WindowTable,
        baselines: Sequence[WindowTable],
        previous: WindowTable | None,
        previous_baselines: Sequence[WindowTable] | None,
        thresholds: ThresholdsLike,
        context: DetectionContext,
        parents: Mapping[str, Collection[str]] | None,
    ) -> None:
        self.context = context
        self.thresholds = thresholds
        self.model = sample_model(context.profile_type, context.sample_rate_hz)
        tables: list[WindowTable] = [current, *baselines]
        if previous is not None:
            tables.append(previous)
            tables.extend(previous_baselines or ())
        self.notes: list[str] = []
        skip_other = any(float(getattr(t, "other_value", 0) or 0) > 0 for t in tables)
        truncated = max(float(getattr(t, "truncated_share", 0.0) or 0.0) for t in tables)
        if truncated > 0.01:
            self.notes.append(
                f"{truncated:.1%} of a window was truncated into 'other' (more than 1 %): "
                "raise max_nodes; shares of small functions are unreliable"
            )
        self.current = _window(current, self.model, skip_other)
        self.baselines = [_window(b, self.model, skip_other) for b in baselines]
        self.previous = None if previous is None else _window(previous, self.model, skip_other)
        self.own_previous_baselines = not (previous is None or previous_baselines is None)
        if previous is None or previous_baselines is None:
            self.previous_baselines = self.baselines
        else:
            self.previous_baselines = [
                _window(b, self.model, skip_other) for b in previous_baselines
            ]
        if parents is None:
            found = getattr(current, "parents", None)
            parents = found if isinstance(found, Mapping) else None
        self.parents: Mapping[str, Collection[str]] = parents or {}
        self._children: dict[str, set[str]] | None = None
        self.min_samples = float(thresholds.min_samples)
        self.alpha = float(thresholds.alpha)
        self.pooled = bool(_option(thresholds, "pool_baselines", DEFAULT_THRESHOLDS.pool_baselines))
        self.phi = DEFAULT_DISPERSION
        self.phi_source = "default"

    # -- steps ------------------------------------------------------------------------------

    def estimate_phi(self) -> None:
        windows = self.baselines
        if len(windows) >= 2:
            groups = [0] * len(windows)
            if self.own_previous_baselines and all(b.samples > 0 for b in self.previous_baselines):
                # The previous window's baselines are a second set of windows a whole
                # number of days apart: the same question asked again, independently.
                windows = [*windows, *self.previous_baselines]
                groups += [1] * len(self.previous_baselines)
            estimate = estimate_dispersion(
                [w.self_counts for w in windows],
                [w.samples for w in windows],
                min_expected=self.min_samples,
                groups=groups,
            )
            self.phi, self.phi_source = estimate.phi, estimate.source
            if estimate.source == "default":
                self.notes.append(
                    f"too few well-sampled functions to estimate dispersion; phi = {self.phi:g}"
                )
            return
        pool = [*windows, self.current]
        if self.previous is not None:
            pool.append(self.previous)
        estimate = estimate_dispersion(
            [w.self_counts for w in pool], [w.samples for w in pool], min_expected=self.min_samples
        )
        self.phi = max(DEFAULT_DISPERSION, estimate.phi)
        self.phi_source = "default"
        self.notes.append(
            f"fewer than two baselines: dispersion not estimated, conservative phi = {self.phi:.3g}"
        )

    def _eligible_names(self) -> list[tuple[str, FindingKind]]:
        effective = 1.0 if self.model.poisson else self.phi
        floor = self.min_samples * effective
        total_base = sum(b.samples for b in self.baselines)
        windows = [self.current, *self.baselines]
        names = set(self.baselines[0].self_counts)
        for base in self.baselines[1:]:
            names &= set(base.total_counts)
        pairs: list[tuple[str, FindingKind]] = []
        for name in sorted(names):
            for kind in ("self", "total"):
                if kind == "total" and all(
                    w.self_counts.get(name, 0.0) == w.total_counts.get(name, 0.0) for w in windows
                ):
                    continue
                counts = [b.counts(kind).get(name, 0.0) for b in self.baselines]
                if min(counts) < floor:
                    continue
                pooled = sum(counts) / total_base
                if pooled >= 1.0 or pooled * self.current.samples < floor:
                    continue
                pairs.append((name, "self" if kind == "self" else "total"))
        return pairs

    def _test(self, name: str, kind: FindingKind) -> _Test:
        current = self.current
        count = current.counts(kind).get(name, 0.0)
        base_counts = tuple(b.counts(kind).get(name, 0.0) for b in self.baselines)
        tests = [
            rate_test(count, current.samples, x0, b.samples, phi=self.phi)
            for x0, b in zip(base_counts, self.baselines, strict=True)
        ]
        share = count / current.samples
        shares = tuple(t.baseline_share for t in tests)
        pooled = sum(base_counts) / sum(b.samples for b in self.baselines)
        z_min = min(t.z for t in tests)
        z_max = max(t.z for t in tests)
        p_increase = max(t.p_value for t in tests)
        if self.pooled:
            z_min = self._pooled_z(count, current.samples, base_counts, z_min)
            p_increase = norm_sf(z_min)
        seconds = self.context.window_seconds
        base_rate = sum(b.raw(kind).get(name, 0.0) for b in self.baselines) / (
            seconds * len(self.baselines)
        )
        rate = current.raw(kind).get(name, 0.0) / seconds
        return _Test(
            function=name,
            kind=kind,
            count=count,
            share=share,
            baseline_counts=base_counts,
            baseline_shares=shares,
            pooled_share=pooled,
            z_min=z_min,
            z_max=z_max,
            p_increase=p_increase,
            p_decrease=norm_cdf(z_max),
            rel_min=min(_growth(share, s) for s in shares),
            abs_min=min(share - s for s in shares),
            impact=(rate - base_rate) * self.model.impact_per_unit,
        )

    def _pooled_z(
        self, count: float, samples: float, base_counts: Sequence[float], z_each: float
    ) -> float:
        """The pooled test's statistic when every baseline agrees on the increase.

        ``z_each`` is the smallest per-baseline statistic; below :data:`_AGREE_Z` it is
        returned as it is (no significance without agreement).
        """
        if z_each < _AGREE_Z:
            return z_each
        total = sum(b.samples for b in self.baselines)
        return rate_test(count, samples, sum(base_counts), total, phi=self.phi).z

    def _passes_gates(self, test: _Test) -> str:
        """Empty when every practical gate passes, else which one failed."""
        th = self.thresholds
        if test.rel_min < float(th.min_relative_increase):
            return (
                f"relative increase {test.rel_min:+.2%} below {float(th.min_relative_increase):.2%}"
            )
        if test.abs_min < float(th.min_share_increase):
            return (
                f"share increase {test.abs_min * 100:+.3f} pp below "
                f"{float(th.min_share_increase) * 100:.3f} pp"
            )
        min_impact = _option(th, "min_impact", None)
        if min_impact is not None and test.impact < float(min_impact):
            return f"impact {test.impact:.3g} {self.model.impact_unit} below {float(min_impact):g}"
        return ""

    def _common_rise(self, tests: Sequence[_Test]) -> float:
        """The factor by which most shares rose together (work fell elsewhere), else 1.

        When a large function gets cheaper, every other function's share rises by the
        same factor although none of them changed. A one-sided sign test over the
        self tests decides whether most shares rose (at :data:`_COMMON_Z`); the factor is
        then the median ratio of current to baseline share.
        """
        ratios = [t.share / t.pooled_share for t in tests if t.kind == "self" and t.pooled_share]
        k = len(ratios)
        if k < _COMMON_MIN_TESTS:
            return 1.0
        up = sum(1 for r in ratios if r > 1.0)
        if (up - 0.5 * k) / (0.5 * math.sqrt(k)) < _COMMON_Z:
            return 1.0
        return max(1.0, statistics.median(ratios))

    def _within_common_rise(self, test: _Test, common: float, z_crit: float) -> bool:
        """Whether the rise is not significant once the common rise is taken out."""
        n1 = self.current.samples
        for p0, base in zip(test.baseline_shares, self.baselines, strict=True):
            expected = min(common * p0, 1.0)
            variance = self.phi * p0 * (1.0 - p0) * (1.0 / n1 + 1.0 / base.samples)
            if variance <= 0.0 or (test.share - expected) / math.sqrt(variance) < z_crit:
                return True
        return False

    def _cost_shift(self, test: _Test) -> str:
        """A description of the matching siblings when ``test`` is a cost shift, else empty."""
        return self._shift_match(
            test.function, test.pooled_share, test.share, self.current, self.baselines
        )

    def _shift_match(
        self,
        function: str,
        p0: float,
        p1: float,
        current: _Window,
        baselines: Sequence[_Window],
    ) -> str:
        """The cost-shift rule for a rise of ``function`` from ``p0`` to ``p1`` in ``current``.

        ``baselines`` are the windows ``current`` is compared with (the current window's
        for the decision, the previous window's own for persistence).
        """
        if not self.parents:
            return ""
        if self._children is None:
            self._children = _children(self.parents)
        if p1 >= 1.0:
            return ""
        growth = (p1 - p0) / (1.0 - p1)  # the total's growth if the increase were new work
        increase = p1 * (1.0 + growth) - p0
        if increase <= 0.0:
            return ""
        tolerance = float(_option(self.thresholds, "cost_shift_tolerance", 0.3))
        n1 = current.samples
        n0 = sum(b.samples for b in baselines)
        ancestors = _ancestors(function, self.parents)
        callers = [c for c in self.parents.get(function, ()) if c and c != function]
        for parent in callers or [_ROOT]:
            decrease = 0.0
            variance = self.phi * p0 * (1.0 - p0) * (1.0 / n1 + 1.0 / n0)
            moved_from: list[str] = []
            for sibling in sorted(self._children.get(parent, ())):
                if sibling == function or sibling in ancestors:
                    continue
                x0 = sum(b.total_counts.get(sibling, 0.0) for b in baselines)
                q0 = x0 / n0
                if q0 <= 0.0 or q0 >= 1.0:
                    continue
                q1 = current.total_counts.get(sibling, 0.0) / n1
                drop = q0 - q1 * (1.0 + growth)
                sibling_variance = self.phi * q0 * (1.0 - q0) * (1.0 / n1 + 1.0 / n0)
                if drop >= _SIBLING_Z * math.sqrt(sibling_variance):
                    decrease += drop
                    variance += sibling_variance
                    moved_from.append(sibling)
            if not moved_from:
                continue
            # Matched within the tolerance, or within the noise of the two estimates when
            # that is wider (small windows), but never below 40 % of the increase.
            band = max(tolerance * increase, _MATCH_Z * math.sqrt(variance))
            if decrease < _MATCH_FLOOR * increase or abs(decrease - increase) > band:
                continue
            if parent != _ROOT:
                x0p = sum(b.total_counts.get(parent, 0.0) for b in baselines)
                x1p = current.total_counts.get(parent, 0.0)
                if x0p <= 0.0:
                    continue
                if abs(rate_test(x1p, n1, x0p, n0, phi=self.phi).z) >= _PARENT_Z:
                    continue
            where = parent or "the top level"
            return (
                f"matched by decreases of {', '.join(moved_from)} under {where} "
                f"({decrease * 100:.3f} pp vs +{increase * 100:.3f} pp)"
            )
        return ""

    def _confirm(self, candidates: list[_Test]) -> None:
        """Set ``persistent`` on each candidate from the previous window."""
        previous = self.previous
        if previous is None:
            return
        confirm_alpha = float(_option(self.thresholds, "confirm_alpha", self.alpha))
        z_needed = norm_isf(confirm_alpha / max(1, len(candidates)))
        bases = self.previous_baselines
        for test in candidates:
            if previous.samples <= 0 or not bases or any(b.samples <= 0 for b in bases):
                test.persistent = False
                continue
            count = previous.counts(test.kind).get(test.function, 0.0)
            base_counts = [b.counts(test.kind).get(test.function, 0.0) for b in bases]
            if min(base_counts) <= 0.0:
                test.persistent = False
                continue
            z = min(
                rate_test(count, previous.samples, x0, base.samples, phi=self.phi).z
                for x0, base in zip(base_counts, bases, strict=True)
            )
            if self.pooled and z >= min(_AGREE_Z, z_needed):
                total = sum(b.samples for b in bases)
                z = rate_test(count, previous.samples, sum(base_counts), total, phi=self.phi).z
            test.persistent = z >= z_needed
            if test.persistent:
                # The previous window must show the same thing: a rise that its own
                # baselines explain as work moving between siblings is no confirmation.
                p0 = sum(base_counts) / sum(b.samples for b in bases)
                moved = self._shift_match(
                    test.function, p0, count / previous.samples, previous, bases
                )
                if moved:
                    test.persistent = False
                    test.note = moved

    # -- building findings ------------------------------------------------------------------

    def _finding(
        self,
        test: _Test,
        *,
        kind: FindingKind,
        alpha_per_test: float,
        severity: Severity | None = None,
        callers: tuple[str, ...] = (),
        note: str = "",
        decrease: bool = False,
    ) -> Finding:
        ctx = self.context
        base_total = sum(b.samples for b in self.baselines)
        base_count = sum(test.baseline_counts)
        ci_low, ci_high = relative_change_ci(
            test.count, self.current.samples, base_count, base_total, phi=self.phi
        )
        p0 = test.pooled_share
        mde = (
            minimal_detectable_effect(
                p0, self.current.samples, self._mde_base(), phi=self.phi, alpha=alpha_per_test
            )
            if 0.0 < p0 < 1.0
            else math.inf
        )
        absolute = test.share - p0
        relative = test.share / p0 - 1.0 if p0 > 0 else math.inf
        if severity is None:
            severity = _severity(self.model, test.impact, absolute, self.thresholds)
        confirmed = test.persistent is True
        return Finding(
            service=ctx.service,
            profile_type=ctx.profile_type,
            function=test.function,
            kind=kind,
            baseline_share=p0,
            current_share=test.share,
            relative_change=relative,
            absolute_change=absolute,
            impact_per_second=test.impact,
            impact_unit=self.model.impact_unit,
            p_value=test.p_decrease if decrease else test.p_increase,
            ci_low=ci_low,
            ci_high=ci_high,
            mde=mde,
            window_start=ctx.window_start,
            window_end=ctx.window_end,
            baseline_starts=ctx.baseline_starts,
            severity=severity,
            callers=callers,
            version_change=_version_change(ctx),
            change_time=ctx.previous_start if confirmed else ctx.window_start,
            labels=ctx.labels,
            persistent=test.persistent,
            baseline_shares=test.baseline_shares,
            dispersion=self.phi,
            samples=self.current.samples,
            note=note,
        )

    def _mde_base(self) -> float:
        """Baseline samples one test compares with: one baseline's, or all when pooled."""
        total = sum(b.samples for b in self.baselines)
        return total if self.pooled else total / len(self.baselines)

    def _merge(self, confirmed: list[_Test]) -> list[tuple[_Test, tuple[str, ...]]]:
        """Collapse candidates on one call chain into the deepest frame, listing callers."""
        functions = {t.function for t in confirmed}
        self_regressed = {t.function for t in confirmed if t.kind == "self"}
        ancestry = {name: _ancestors(name, self.parents) for name in functions}
        absorbed: set[int] = set()
        for i, test in enumerate(confirmed):
            if test.kind == "total" and test.function in self_regressed:
                absorbed.add(i)  # the self finding of the same function speaks for it
                continue
            for other in functions:
                if other == test.function or test.function not in ancestry[other]:
                    continue
                # ``test`` calls ``other``. In a cycle (each calls the other) the self
                # finding is the deeper frame.
                if other not in ancestry[test.function] or (
                    test.kind == "total" and other in self_regressed
                ):
                    absorbed.add(i)
                    break
        kept: list[tuple[_Test, tuple[str, ...]]] = []
        for i, test in enumerate(confirmed):
            if i in absorbed:
                continue
            above = ancestry[test.function]
            callers = sorted(
                {t.function for j, t in enumerate(confirmed) if j in absorbed} & set(above),
                key=lambda name: (above[name], name),
            )
            kept.append((test, tuple(callers)))
        return kept

    # -- the pass ---------------------------------------------------------------------------

    def run(self) -> DetectionResult:
        if not self.baselines:
            return DetectionResult(notes=("no baseline windows: nothing to compare",))
        if self.current.samples <= 0 or any(b.samples <= 0 for b in self.baselines):
            return DetectionResult(
                current_samples=self.current.samples,
                baseline_samples=tuple(b.samples for b in self.baselines),
                notes=("an empty window: nothing to compare",),
            )
        self.estimate_phi()
        pairs = self._eligible_names()
        m = len(pairs)
        alpha_per_test = self.alpha / max(1, m)
        z_crit = norm_isf(alpha_per_test)
        tests = [self._test(name, kind) for name, kind in pairs]

        candidates: list[_Test] = []
        shifts: list[tuple[_Test, str]] = []
        informational: list[tuple[_Test, str]] = []
        common = self._common_rise(tests)
        for test in tests:
            if test.z_min < z_crit:
                continue
            failed = self._passes_gates(test)
            if failed:
                informational.append((test, f"significant but {failed}"))
                continue
            if common > 1.0 and self._within_common_rise(test, common, z_crit):
                informational.append(
                    (
                        test,
                        f"rise in line with the whole profile's (+{(common - 1) * 100:.1f} % "
                        "for most functions: work fell elsewhere)",
                    )
                )
                continue
            moved = self._cost_shift(test)
            if moved:
                shifts.append((test, moved))
                continue
            candidates.append(test)

        self._confirm(candidates)
        persistence_checked = self.previous is not None
        if not persistence_checked and candidates:
            # (with no candidate there was nothing for persistence to check)
            self.notes.append("no previous window: persistence not checked")
        confirmed: list[_Test] = []
        for test in candidates:
            if test.persistent is False and test.note:
                shifts.append((test, f"in the previous window {test.note}"))
            elif test.persistent is False:
                informational.append(
                    (test, "not confirmed in the previous window (transient or just started)")
                )
            else:
                confirmed.append(test)

        findings = [
            self._finding(t, kind=t.kind, alpha_per_test=alpha_per_test, callers=callers)
            for t, callers in self._merge(confirmed)
        ]
        findings.sort(key=lambda f: (-f.impact_per_second, -f.relative_change, f.function))
        # One cost shift per function: the self test speaks for the total one.
        shifted_self = {t.function for t, _ in shifts if t.kind == "self"}
        cost_shifts = [
            self._finding(
                t, kind="cost_shift", alpha_per_test=alpha_per_test, severity="info", note=note
            )
            for t, note in shifts
            if t.kind == "self" or t.function not in shifted_self
        ]

        listed = {(t.function, t.kind) for t, _ in informational}
        listed |= {(t.function, t.kind) for t in candidates}
        listed |= {(t.function, t.kind) for t, _ in shifts}
        q = float(_option(self.thresholds, "informational_q", 0.05))
        if tests:
            rising = benjamini_hochberg([t.p_increase for t in tests], q)
            falling = benjamini_hochberg([t.p_decrease for t in tests], q)
            for test, up, down in zip(tests, rising, falling, strict=True):
                if (test.function, test.kind) in listed:
                    continue
                if up:
                    informational.append((test, "significant at 5 % false discovery rate only"))
                elif down:
                    informational.append((test, _DECREASE))
        informational.sort(key=lambda item: min(item[0].p_increase, item[0].p_decrease))
        notes_out = [
            self._finding(
                t,
                kind=t.kind,
                alpha_per_test=alpha_per_test,
                severity="info",
                note=note,
                decrease=note == _DECREASE,
            )
            for t, note in informational
        ]
        for test in self._new_functions():
            moved = self._cost_shift(test)
            if moved and test.function not in {f.function for f in cost_shifts}:
                cost_shifts.append(
                    self._finding(
                        test,
                        kind="cost_shift",
                        alpha_per_test=alpha_per_test,
                        severity="info",
                        note=f"new function {moved}",
                    )
                )
            else:
                notes_out.append(
                    self._finding(
                        test,
                        kind=test.kind,
                        alpha_per_test=alpha_per_test,
                        severity="info",
                        note="absent from every baseline (new or renamed function)",
                    )
                )

        mde_by_share = {
            share: minimal_detectable_effect(
                share, self.current.samples, self._mde_base(), phi=self.phi, alpha=alpha_per_test
            )
            for share in MDE_SHARES
        }
        return DetectionResult(
            findings=tuple(findings),
            cost_shifts=tuple(cost_shifts),
            informational=tuple(notes_out),
            eligible_count=m,
            alpha_per_test=alpha_per_test,
            dispersion=self.phi,
            dispersion_source=self.phi_source,
            current_samples=self.current.samples,
            baseline_samples=tuple(b.samples for b in self.baselines),
            mde_by_share=mde_by_share,
            persistence_checked=persistence_checked,
            notes=tuple(self.notes),
        )

    def _new_functions(self) -> Iterable[_Test]:
        """Functions absent from every baseline that now hold a noticeable share.

        Their total is measured (a renamed caller carries its whole subtree); the kind is
        ``self`` when all of it is self time.
        """
        floor = self.min_samples * (1.0 if self.model.poisson else self.phi)
        gate = float(self.thresholds.min_share_increase)
        seconds = self.context.window_seconds
        current = self.current
        for name, count in sorted(current.total_counts.items()):
            if count < floor or count / current.samples < gate:
                continue
            if any(b.total_counts.get(name, 0.0) > 0 for b in self.baselines):
                continue
            kind: FindingKind = "self" if current.self_counts.get(name) == count else "total"
            rate = current.raw(kind).get(name, 0.0) / seconds
            test = _Test(
                function=name,
                kind=kind,
                count=count,
                share=count / current.samples,
                baseline_counts=tuple(0.0 for _ in self.baselines),
                baseline_shares=tuple(0.0 for _ in self.baselines),
                pooled_share=0.0,
                z_min=math.inf,
                z_max=math.inf,
                p_increase=0.0,
                p_decrease=1.0,
                rel_min=math.inf,
                abs_min=count / current.samples,
                impact=rate * self.model.impact_per_unit,
            )
            yield test


def detect(
    current: WindowTable,
    baselines: Sequence[WindowTable],
    *,
    previous: WindowTable | None = None,
    previous_baselines: Sequence[WindowTable] | None = None,
    thresholds: ThresholdsLike = DEFAULT_THRESHOLDS,
    context: DetectionContext,
    parents: Mapping[str, Collection[str]] | None = None,
) -> DetectionResult:
    """Compare ``current`` with ``baselines`` and report regressions (see the module docstring).

    ``previous`` is the window of the same length immediately before ``current``;
    ``previous_baselines`` its baselines (default: ``baselines``). ``parents`` maps each
    function to the functions that call it directly (top-level frames map to an empty set;
    :func:`watcher.analysis.tables.parents_from_stacks` builds it). Without it, a table's
    own ``parents`` attribute is used if it has one; with neither, cost shifts and
    call-chain merging are skipped.
    """
    detector = _Detector(
        current, baselines, previous, previous_baselines, thresholds, context, parents
    )
    result = detector.run()
    return replace(result, notes=tuple(dict.fromkeys(result.notes)))
