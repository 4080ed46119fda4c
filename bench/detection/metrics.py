"""Aggregate judged runs into the benchmark's metrics, the theoretical limit and the goals.

- **A/A**: false alerts (new fingerprints) per service-week at an hourly cadence, and the
  share of runs with any finding.
- **Recall** of step regressions per (configuration, dispersion, samples per window, share
  bin, kind, delta): detected within two windows of the onset.
- **MDE80**: the smallest delta detected with 80 % recall, next to the theoretical limit
  for the same injections: the delta at which the mean power of the one-sided test of
  ``watcher.analysis.stats.minimal_detectable_effect`` (alpha 0.01/200, the generator's
  dispersion, each injection's own share and sample counts) reaches 80 %. The measured
  value is read from every hit and miss of the cell at once: the theoretical power curve
  is stretched by the factor ``k`` that fits them best (maximum likelihood), and MDE80 is
  ``k`` x theory. A delta grid of 2-2.5x steps is too coarse to interpolate: recall
  saturates between grid points and linear reading overstates the MDE.
  Deltas are extra work (``+10 %`` = 1.1x the function's CPU); the share moves by
  ``(1 + d) / (1 + d p) - 1``, which the theory accounts for.
- **Precision**: findings caused by an injected step / all findings (A/A, transient and
  cost-shift runs included).
- Time to detect, transient suppression, cost-shift labelling, version attribution, and
  whether every finding carries a finite MDE.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.detection.corpus import BINS, HOURS_PER_WEEK
from bench.detection.harness import AAOutcome, InjectionOutcome
from watcher.analysis.stats import minimal_detectable_effect, norm_cdf, norm_isf

#: The reference test level of the theoretical table: 0.01 over 200 functions.
THEORY_ALPHA = 0.01 / 200
POWER = 0.8

GOAL_FALSE_ALERTS = 1.0
GOAL_PRECISION = 0.95
GOAL_RECALL = 0.9
GOAL_MDE_RATIO = 1.5
GOAL_MDE_MIN_SAMPLES = 100_000.0
GOAL_TRANSIENTS = 0.95
GOAL_COST_SHIFTS = 0.8
GOAL_VERSIONS = 0.8
GOAL_WINDOWS = 2
GOAL_WITHIN = 0.9


# -- theory ------------------------------------------------------------------------------------


def share_change(delta: float, share: float) -> float:
    """Relative change of a share when the function's own work grows by ``delta``."""
    return (1.0 + delta) / (1.0 + delta * share) - 1.0


def work_change(relative: float, share: float) -> float:
    """Inverse of :func:`share_change`: the work increase behind a relative share change."""
    ratio = 1.0 + relative
    if ratio * share >= 1.0:
        return math.inf
    return relative / (1.0 - ratio * share)


def power(
    delta: float,
    share: float,
    n1: float,
    n0: float,
    phi: float,
    alpha: float = THEORY_ALPHA,
) -> float:
    """Power of the one-sided two-proportion test against a ``delta`` work increase.

    The same standard errors as :func:`~watcher.analysis.stats.minimal_detectable_effect`,
    so the power there is exactly 80 % at its answer.
    """
    p0 = share
    p1 = min(p0 * (1.0 + share_change(delta, share)), 1.0 - 1e-12)
    se_null = math.sqrt(phi * p0 * (1.0 - p0) * (1.0 / n1 + 1.0 / n0))
    se_alt = math.sqrt(phi * (p1 * (1.0 - p1) / n1 + p0 * (1.0 - p0) / n0))
    return norm_cdf((p1 - p0 - norm_isf(alpha) * se_null) / se_alt)


def theory_mde(
    injections: Sequence[tuple[float, float, float]], phi: float, alpha: float = THEORY_ALPHA
) -> float:
    """Delta at which the mean power over ``(share, n1, n0)`` injections reaches 80 %."""
    if not injections:
        return math.nan

    def mean_power(delta: float) -> float:
        return statistics.fmean(power(delta, p, n1, n0, phi, alpha) for p, n1, n0 in injections)

    low, high = 1e-5, 1e4
    if mean_power(high) < POWER:
        return math.inf
    for _ in range(100):
        mid = math.sqrt(low * high)
        if mean_power(mid) < POWER:
            low = mid
        else:
            high = mid
        if high / low < 1.0 + 1e-9:
            break
    return high


def single_theory_mde(share: float, n1: float, n0: float, phi: float) -> float:
    """The stats module's MDE for one function, as a work increase (cross-check)."""
    relative = minimal_detectable_effect(share, n1, n0, phi=phi, alpha=THEORY_ALPHA, power=POWER)
    return work_change(relative, share)


# -- reading the measured detections -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Estimate:
    """An MDE80: ``value``, or a bound (``"<="`` all detected, ``">"`` none detected)."""

    value: float
    bound: str = ""

    def text(self) -> str:
        if math.isnan(self.value):
            return "-"
        return f"{self.bound}{_pct(self.value)}"


#: One judged injection for the fit: (delta, share, n1, n0, detected).
Observation = tuple[float, float, float, float, bool]


def fit_scale(observations: Sequence[Observation], phi: float) -> float:
    """The factor ``k`` that best fits the hits to the theoretical power curve at ``delta / k``.

    Maximum likelihood over ``k`` (a log-spaced search refined by golden section): the
    detector behaves like the ideal test with ``k`` times less effect, so its MDE80 is
    ``k`` times the theoretical one. ``nan`` when every or no injection was detected.
    """
    hits = sum(1 for o in observations if o[4])
    if not observations or hits in (0, len(observations)):
        return math.nan

    def loglik(log_k: float) -> float:
        k = math.exp(log_k)
        total = 0.0
        for delta, share, n1, n0, hit in observations:
            p = min(max(power(delta / k, share, n1, n0, phi), 1e-12), 1.0 - 1e-12)
            total += math.log(p if hit else 1.0 - p)
        return total

    grid = [math.log(0.05) + i * (math.log(200.0) - math.log(0.05)) / 160 for i in range(161)]
    values = [loglik(x) for x in grid]
    best = max(range(len(grid)), key=values.__getitem__)
    low = grid[max(best - 1, 0)]
    high = grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(40):
        a = high - ratio * (high - low)
        b = low + ratio * (high - low)
        if loglik(a) < loglik(b):
            low = a
        else:
            high = b
    return math.exp(0.5 * (low + high))


def mde80(observations: Sequence[Observation], phi: float) -> tuple[Estimate, float]:
    """(MDE80 estimated from the hits, theoretical MDE80) for one cell's injections.

    The estimate is ``k`` x theory with ``k`` from :func:`fit_scale`; when every
    injection was detected it is the bound ``<=`` the smallest delta, when none was
    ``>`` the largest.
    """
    if not observations:
        return Estimate(math.nan), math.nan
    theory = theory_mde([(s, n1, n0) for _, s, n1, n0, _ in observations], phi)
    deltas = [o[0] for o in observations]
    hits = sum(1 for o in observations if o[4])
    if hits == len(observations):
        return Estimate(min(deltas), "<="), theory
    if hits == 0:
        return Estimate(max(deltas), ">"), theory
    return Estimate(fit_scale(observations, phi) * theory), theory


# -- aggregation -------------------------------------------------------------------------------


def _pct(value: float, digits: int = 0) -> str:
    if math.isinf(value):
        return "inf"
    if math.isnan(value):
        return "-"
    if value < 0.1 and digits == 0:
        return f"{value * 100:.1f}%"
    return f"{value * 100:.{digits}f}%"


def _frac(hits: int, n: int) -> str:
    return f"{hits}/{n}" if n else "-"


@dataclass(slots=True)
class Results:
    """Judged runs of a benchmark, with the accessors the report and the tests use."""

    injections: list[InjectionOutcome]
    aa: list[AAOutcome]
    queries: int = 0
    runs: int = 0

    # -- selections -----------------------------------------------------------------------

    def steps(self, config: str, **where: object) -> list[InjectionOutcome]:
        out = []
        for o in self.injections:
            if o.scenario != "step" or o.config != config:
                continue
            if all(_matches(getattr(o, k), v) for k, v in where.items()):
                out.append(o)
        return out

    def scenario(self, config: str, scenario: str) -> list[InjectionOutcome]:
        return [o for o in self.injections if o.config == config and o.scenario == scenario]

    def configs(self) -> list[str]:
        return list(dict.fromkeys(o.config for o in [*self.injections, *self.aa]))

    def phis(self) -> list[float]:
        return sorted({o.phi for o in [*self.injections, *self.aa]})

    def sizes(self) -> list[float]:
        return sorted({o.size for o in [*self.injections, *self.aa]})

    def deltas(self) -> list[float]:
        return sorted({o.delta for o in self.injections if o.scenario == "step"})

    # -- metrics --------------------------------------------------------------------------

    def recall(self, config: str, within: int = GOAL_WINDOWS, **where: object) -> tuple[int, int]:
        chosen = self.steps(config, **where)
        hits = sum(1 for o in chosen if o.detected_at is not None and o.detected_at <= within)
        return hits, len(chosen)

    def mde(self, config: str, **where: object) -> tuple[Estimate, float]:
        """Measured MDE80 and the theoretical one for the steps matching ``where``."""
        chosen = [o for o in self.steps(config, **where) if o.samples > 0]
        phis = {o.phi for o in chosen}
        if len(phis) != 1:
            return Estimate(math.nan), math.nan
        observations = [
            (
                o.delta,
                o.share,
                o.samples,
                o.baseline_samples,
                o.detected_at is not None and o.detected_at <= GOAL_WINDOWS,
            )
            for o in chosen
        ]
        return mde80(observations, phis.pop())

    def precision(
        self, config: str, phi: float | None = None, *, skip: Sequence[str] = ()
    ) -> tuple[int, int]:
        """(findings caused by injected steps, all findings) over every run.

        ``skip`` leaves out the runs of some scenarios (``"transient"``, ``"cost_shift"``).
        """
        true = false = 0
        for o in self.injections:
            if o.config == config and (phi is None or o.phi == phi) and o.scenario not in skip:
                true += o.true_findings
                false += o.false_findings
        for a in self.aa:
            if a.config == config and (phi is None or a.phi == phi):
                false += a.false_findings
        return true, true + false

    def aa_rate(self, config: str, **where: object) -> tuple[int, float, int, int]:
        """(false alert episodes, service-weeks, runs with findings, runs)."""
        chosen = [
            a
            for a in self.aa
            if a.config == config and all(_matches(getattr(a, k), v) for k, v in where.items())
        ]
        episodes = sum(a.episodes for a in chosen)
        runs = sum(a.runs for a in chosen)
        hit = sum(a.runs_with_findings for a in chosen)
        return episodes, runs / HOURS_PER_WEEK, hit, runs

    def time_to_detect(self, config: str) -> dict[int, int]:
        counts: dict[int, int] = defaultdict(int)
        for o in self.steps(config):
            if o.detected_at is not None:
                counts[o.detected_at] += 1
        return dict(sorted(counts.items()))

    def transients(self, config: str) -> tuple[int, int, int]:
        """(suppressed, all, visible to the test in their window)."""
        chosen = self.scenario(config, "transient")
        return (
            sum(1 for o in chosen if not o.alerted),
            len(chosen),
            sum(1 for o in chosen if o.visible),
        )

    def cost_shifts(self, config: str) -> tuple[int, int, int, int]:
        """(labelled and not alerted, all, significant to the test, alerted).

        A shift below the noise is neither labelled nor alerted: the user sees nothing, as
        intended, so the labelling rate is taken over the significant ones.
        """
        chosen = self.scenario(config, "cost_shift")
        return (
            sum(1 for o in chosen if o.labelled and not o.alerted),
            len(chosen),
            sum(1 for o in chosen if o.visible),
            sum(1 for o in chosen if o.alerted),
        )

    def versions(self, config: str) -> tuple[int, int, int]:
        """(attributed, detected version-aligned steps, all version-aligned steps)."""
        chosen = [o for o in self.steps(config) if o.version is not None]
        detected = [o for o in chosen if o.detected_at is not None]
        return sum(1 for o in detected if o.version_ok), len(detected), len(chosen)

    def mde_coverage(self, config: str) -> tuple[int, int]:
        """(findings without a finite positive MDE, all findings)."""
        missing = sum(o.mde_missing for o in self.injections if o.config == config)
        missing += sum(a.mde_missing for a in self.aa if a.config == config)
        total = sum(o.findings_total for o in self.injections if o.config == config)
        total += sum(a.findings_total for a in self.aa if a.config == config)
        return missing, total


def _matches(value: object, wanted: object) -> bool:
    if isinstance(wanted, tuple | list | set | frozenset):
        return value in wanted
    if callable(wanted):
        return bool(wanted(value))
    return value == wanted


# -- goals -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Goal:
    """One goal under one configuration: what was measured and whether it meets the goal."""

    goal: str
    config: str
    passed: bool | None
    measured: str
    shortfall: str = ""

    @property
    def status(self) -> str:
        if self.passed is None:
            return "NOT MEASURED"
        if self.passed:
            return "PASS"
        return f"FALL SHORT ({self.shortfall})" if self.shortfall else "FALL SHORT"


def _at_least(size: float) -> Callable[[object], bool]:
    return lambda value: isinstance(value, float | int) and value >= size


BIN_LABELS = tuple(b[0] for b in BINS)
AT_LEAST_1PCT = ("1-5%", ">5%")
AT_LEAST_03PCT = ("0.3-1%", "1-5%", ">5%")


def recall_goal(
    results: Results, config: str, delta: float, bins: Sequence[str], label: str
) -> Goal:
    parts = []
    worst = math.inf
    measured_any = False
    for phi in results.phis():
        hits, n = results.recall(
            config,
            delta=delta,
            share_bin=tuple(bins),
            size=_at_least(1_000_000.0),
            phi=phi,
        )
        if n:
            measured_any = True
            rate = hits / n
            worst = min(worst, rate)
            parts.append(f"phi={phi:g} {rate:.2f} ({hits}/{n})")
    if not measured_any:
        return Goal(label, config, None, "no injections")
    passed = worst >= GOAL_RECALL
    return Goal(
        label,
        config,
        passed,
        "; ".join(parts),
        "" if passed else f"worst {worst:.2f}, {GOAL_RECALL - worst:.2f} below {GOAL_RECALL}",
    )


def mde_cells(
    results: Results, config: str, min_samples: float = GOAL_MDE_MIN_SAMPLES
) -> list[tuple[float, float, str, Estimate, float]]:
    """(phi, size, bin, measured, theory) for every cell with at least ``min_samples``."""
    cells = []
    for phi in results.phis():
        for size in results.sizes():
            if size < min_samples:
                continue
            for label in BIN_LABELS:
                if not results.steps(config, phi=phi, size=size, share_bin=label):
                    continue
                measured, theory = results.mde(config, phi=phi, size=size, share_bin=label)
                cells.append((phi, size, label, measured, theory))
    return cells


def mde_goal(results: Results, config: str) -> Goal:
    label = "MDE80 <= 1.5x theory in every cell >= 100k samples"
    cells = mde_cells(results, config)
    top = max(results.deltas(), default=1.0)
    judged = failing = unresolved = beyond = 0
    worst: tuple[float, str] | None = None
    for phi, size, share_bin, measured, theory in cells:
        if not math.isfinite(theory) or theory > top:
            beyond += 1  # the limit itself lies beyond the largest injected delta
            continue
        if measured.bound == "<=":
            if measured.value > GOAL_MDE_RATIO * theory:
                unresolved += 1  # below the grid: cannot tell
                continue
            judged += 1
            continue
        judged += 1
        ratio = math.inf if measured.bound == ">" else measured.value / theory
        if ratio > GOAL_MDE_RATIO:
            failing += 1
            text = f"phi={phi:g} {_size(size)} {share_bin}: {measured.text()} vs {_pct(theory)}"
            if worst is None or ratio > worst[0]:
                worst = (ratio, text)
    if not judged:
        return Goal(label, config, None, "no cell could be judged")
    measured_text = (
        f"{judged - failing}/{judged} cells within 1.5x"
        + (f"; {unresolved} below the delta grid" if unresolved else "")
        + (f"; {beyond} with the limit beyond +{_pct(top)}" if beyond else "")
    )
    shortfall = ""
    if worst is not None:
        ratio_text = "not reached" if math.isinf(worst[0]) else f"{worst[0]:.1f}x"
        shortfall = f"{failing} cells over; worst {worst[1]} ({ratio_text})"
    return Goal(label, config, failing == 0, measured_text, shortfall)


def goals(results: Results) -> list[Goal]:
    out: list[Goal] = []
    for config in results.configs():
        episodes, weeks, hit, runs = results.aa_rate(config)
        if runs:
            per_week = episodes / weeks
            cells = [
                (phi, size, results.aa_rate(config, phi=phi, size=size))
                for phi in results.phis()
                for size in results.sizes()
            ]
            cells = [c for c in cells if c[2][1] > 0]
            over = [(phi, size, r[0] / r[1]) for phi, size, r in cells if r[0] / r[1] > 1.0]
            worst = max(over, key=lambda c: c[2], default=None)
            out.append(
                Goal(
                    "false alerts <= 1 per service-week (hourly)",
                    config,
                    not over and per_week <= GOAL_FALSE_ALERTS,
                    f"{per_week:.2f}/service-week overall ({episodes} in {weeks:.3g} "
                    f"service-weeks, {hit}/{runs} runs with a finding); "
                    f"{len(cells) - len(over)}/{len(cells)} cells <= 1",
                    ""
                    if worst is None
                    else f"{len(over)} cells over; worst phi={worst[0]:g} {_size(worst[1])}: "
                    f"{worst[2]:.2f}/week",
                )
            )
        true, total = results.precision(config)
        if total:
            value = true / total
            out.append(
                Goal(
                    "precision >= 0.95",
                    config,
                    value >= GOAL_PRECISION,
                    f"{value:.3f} ({true}/{total} findings)",
                    f"{GOAL_PRECISION - value:.3f} below",
                )
            )
        else:
            out.append(Goal("precision >= 0.95", config, None, "no findings"))
        out.append(
            recall_goal(results, config, 0.10, AT_LEAST_1PCT, "recall >= 0.9: +10% on >=1% @>=1M")
        )
        out.append(
            recall_goal(
                results, config, 0.20, AT_LEAST_03PCT, "recall >= 0.9: +20% on >=0.3% @>=1M"
            )
        )
        out.append(mde_goal(results, config))
        suppressed, n, visible = results.transients(config)
        if n:
            rate = suppressed / n
            out.append(
                Goal(
                    ">= 95% transients suppressed",
                    config,
                    rate >= GOAL_TRANSIENTS,
                    f"{rate:.2f} ({suppressed}/{n}; {visible} significant in their window)",
                    f"{GOAL_TRANSIENTS - rate:.2f} below",
                )
            )
        labelled, n, significant, alerted = results.cost_shifts(config)
        if significant:
            rate = labelled / significant
            out.append(
                Goal(
                    ">= 80% cost shifts labelled",
                    config,
                    rate >= GOAL_COST_SHIFTS,
                    f"{rate:.2f} of the {significant} significant to the test ({labelled} "
                    f"labelled, {alerted} alerted; {n - significant} of {n} below noise)",
                    f"{GOAL_COST_SHIFTS - rate:.2f} below",
                )
            )
        attributed, detected, aligned = results.versions(config)
        if detected:
            rate = attributed / detected
            out.append(
                Goal(
                    ">= 80% version-aligned regressions attributed",
                    config,
                    rate >= GOAL_VERSIONS,
                    f"{rate:.2f} ({attributed}/{detected} detected; {aligned} injected)",
                    f"{GOAL_VERSIONS - rate:.2f} below",
                )
            )
        ttd = results.time_to_detect(config)
        found = sum(ttd.values())
        if found:
            within = sum(v for k, v in ttd.items() if k <= GOAL_WINDOWS)
            rate = within / found
            out.append(
                Goal(
                    "detected within 2 windows",
                    config,
                    rate >= GOAL_WITHIN,
                    f"{rate:.2f} of detections by window 2 "
                    f"({', '.join(f'W{k}: {v}' for k, v in ttd.items())})",
                    f"{GOAL_WITHIN - rate:.2f} below {GOAL_WITHIN}",
                )
            )
    return out


# -- tables ------------------------------------------------------------------------------------


def _size(size: float) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:g}M"
    return f"{size / 1000:g}k"


def aa_table(results: Results) -> str:
    configs = results.configs()
    head = "| phi | samples/window | runs | " + " | ".join(
        f"{c}: runs with findings | {c}: alerts/service-week" for c in configs
    )
    lines = [head + " | phi est. | tests (m) |", "|" + "---|" * (4 + 2 * len(configs))]
    for phi in results.phis():
        for size in results.sizes():
            row = [f"{phi:g}", _size(size)]
            chosen = [a for a in results.aa if a.phi == phi and a.size == size]
            if not chosen:
                continue
            runs = 0
            cells = []
            for config in configs:
                episodes, weeks, hit, runs = results.aa_rate(config, phi=phi, size=size)
                cells += [_frac(hit, runs), f"{episodes / weeks:.2f}" if weeks else "-"]
            first = [a for a in chosen if a.config == configs[0]]
            phi_est = statistics.fmean(a.dispersion_mean for a in first) if first else math.nan
            tests = statistics.fmean(a.eligible_mean for a in first) if first else math.nan
            lines.append(
                "| "
                + " | ".join([*row, str(runs), *cells, f"{phi_est:.2f}", f"{tests:.0f}"])
                + " |"
            )
    return "\n".join(lines)


def recall_table(results: Results, config: str, phi: float) -> str:
    sizes = results.sizes()
    lines = [
        "| share bin | delta | " + " | ".join(_size(s) for s in sizes) + " |",
        "|---|---|" + "---|" * len(sizes),
    ]
    for label in BIN_LABELS:
        for delta in results.deltas():
            cells = []
            for size in sizes:
                hits, n = results.recall(config, phi=phi, size=size, share_bin=label, delta=delta)
                cells.append(f"{hits / n:.2f}" if n else "-")
            lines.append(f"| {label} | +{_pct(delta)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goal_recall_table(results: Results, deltas: Sequence[float] = (0.1, 0.2, 0.5)) -> str:
    """Recall (default / strict) at a few deltas per (phi, bin, size), self and total."""
    configs = results.configs()
    sizes = results.sizes()
    lines = [
        "| phi | share bin | delta | " + " | ".join(_size(s) for s in sizes) + " |",
        "|---|---|---|" + "---|" * len(sizes),
    ]
    for phi in results.phis():
        for label in BIN_LABELS:
            for delta in deltas:
                cells = []
                for size in sizes:
                    parts = []
                    for config in configs:
                        hits, n = results.recall(
                            config, phi=phi, size=size, share_bin=label, delta=delta
                        )
                        parts.append(f"{hits / n:.2f}" if n else "-")
                    cells.append(" / ".join(parts))
                lines.append(f"| {phi:g} | {label} | +{_pct(delta)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mde_table(results: Results) -> str:
    """MDE80 measured per configuration next to the theoretical limit, per (phi, bin, size)."""
    configs = results.configs()
    sizes = results.sizes()
    lines = [
        "| phi | share bin | " + " | ".join(_size(s) for s in sizes) + " |",
        "|---|---|" + "---|" * len(sizes),
    ]
    for phi in results.phis():
        for label in BIN_LABELS:
            cells = []
            for size in sizes:
                parts = []
                theory = math.nan
                for config in configs:
                    if not results.steps(config, phi=phi, size=size, share_bin=label):
                        parts.append("-")
                        continue
                    measured, theory = results.mde(config, phi=phi, size=size, share_bin=label)
                    parts.append(measured.text())
                cells.append(" / ".join(parts) + f" ({_pct(theory)})")
            lines.append(f"| {phi:g} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goals_table(results: Results, found: Sequence[Goal] | None = None) -> str:
    found = list(found if found is not None else goals(results))
    configs = results.configs()
    names = list(dict.fromkeys(g.goal for g in found))
    lines = [
        "| goal | " + " | ".join(configs) + " |",
        "|---|" + "---|" * len(configs),
    ]
    for name in names:
        cells = []
        for config in configs:
            goal = next((g for g in found if g.goal == name and g.config == config), None)
            cells.append("-" if goal is None else f"**{goal.status}**: {goal.measured}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def side_table(results: Results) -> str:
    configs = results.configs()
    lines = ["| metric | " + " | ".join(configs) + " |", "|---|" + "---|" * len(configs)]
    rows: list[tuple[str, list[str]]] = []
    cells = []
    for config in configs:
        s, n, v = results.transients(config)
        cells.append(f"{_frac(s, n)} suppressed ({v} significant in their window)")
    rows.append(("transient spikes (one window)", cells))
    cells = []
    for config in configs:
        lab, n, sig, al = results.cost_shifts(config)
        cells.append(f"{lab}/{sig} significant ones labelled, {al} alerted ({n} injected)")
    rows.append(("cost shifts between siblings", cells))
    cells = []
    for config in configs:
        att, det, n = results.versions(config)
        cells.append(f"{_frac(att, det)} attributed ({det} of {n} detected)")
    rows.append(("version-aligned steps", cells))
    cells = []
    for config in configs:
        ttd = results.time_to_detect(config)
        cells.append(", ".join(f"W{k}: {v}" for k, v in ttd.items()) or "-")
    rows.append(("time to detect (steps, windows)", cells))
    cells = []
    for config in configs:
        true, total = results.precision(config)
        cells.append(f"{true / total:.3f} ({true}/{total})" if total else "-")
    rows.append(("precision (all findings)", cells))
    cells = []
    for config in configs:
        missing, total = results.mde_coverage(config)
        cells.append(f"{total - missing}/{total} findings carry a finite MDE")
    rows.append(("Finding.mde filled", cells))
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    return "\n".join(lines)
