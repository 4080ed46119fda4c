"""Detection quality floors: a small fixed-seed run of ``bench/detection`` over real HTTP.

The module fixture generates one synthetic configuration (1M samples per hourly window,
dispersion phi = 1, diurnal drift, real stacks when the shared test data is present),
serves it from a sandbox on 127.0.0.1, and evaluates it with the daemon's sequence of
queries and :func:`watcher.analysis.detect.detect` calls under the default gates and the
"statistical" ones (practical gates relaxed). The assertions are the goals of
``docs/detection.md`` that each configuration meets on this corpus; where the default
configuration falls short of a goal by design the test pins what it does reach, so a
regression still fails. ``python -m bench.detection`` measures everything at full size.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # ``bench`` is a folder of the repository, not a package
    sys.path.insert(0, str(REPO))

from bench.detection import corpus, metrics  # noqa: E402
from bench.detection.run import execute  # noqa: E402
from watcher.analysis.detect import (  # noqa: E402
    DetectionContext,
    DetectionThresholds,
    detect,
)
from watcher.analysis.stats import minimal_detectable_effect, norm_isf  # noqa: E402
from watcher.analysis.tables import StackTable  # noqa: E402
from watcher.sandbox.fleet import CPU  # noqa: E402

SIZE = 1_000_000.0
PHI = 1.0
#: The recall goals' cells: +10 % on >= 1 % and +20 % on >= 0.3 %, self and total.
DELTAS = (0.10, 0.20)
BINS = ("0.3-1%", "1-5%", ">5%")
TRIALS = 3
#: Two days of hourly A/A runs.
AA_HOURS = corpus.AA_HOURS[:48]


@pytest.fixture(scope="module")
def results(testdata: Path) -> metrics.Results:
    """The corpus run; the floors were set on the real-stack corpus, so it needs the data."""
    plan = corpus.plan(
        sizes=(SIZE,),
        phis=(PHI,),
        deltas=DELTAS,
        trials=TRIALS,
        aa_services=1,
        bins=BINS,
        aa_hours=AA_HOURS,
    )
    started = time.perf_counter()
    out = execute(plan, jobs=1)
    print(
        f"detection quality corpus: {out.runs} runs, {out.queries} queries, "
        f"{time.perf_counter() - started:.1f}s"
    )
    return out


# -- fast checks of the benchmark's own arithmetic -------------------------------------------


@pytest.mark.parametrize(
    ("share", "n", "phi"), [(0.01, 1e6, 1.0), (0.002, 1e5, 4.0), (0.2, 1e7, 2.0)]
)
def test_theory_matches_the_stats_module(share: float, n: float, phi: float) -> None:
    """One injection's theoretical MDE80 is the stats module's, in work units."""
    single = metrics.theory_mde([(share, n, n)], phi)
    assert single == pytest.approx(metrics.single_theory_mde(share, n, n, phi), rel=1e-6)
    relative = minimal_detectable_effect(share, n, n, phi=phi, alpha=metrics.THEORY_ALPHA)
    assert metrics.share_change(single, share) == pytest.approx(relative, rel=1e-6)
    assert metrics.power(single, share, n, n, phi) == pytest.approx(0.8, abs=1e-6)


def test_mde80_fit_recovers_a_known_scale() -> None:
    """Hits drawn from the theoretical curve stretched 1.5x give k close to 1.5."""
    import random

    rng = random.Random(4)
    observations = []
    for delta in (0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
        for share in (0.002, 0.005, 0.02):
            for _ in range(40):
                p = metrics.power(delta / 1.5, share, 1e6, 1e6, 1.0)
                observations.append((delta, share, 1e6, 1e6, rng.random() < p))
    assert metrics.fit_scale(observations, 1.0) == pytest.approx(1.5, rel=0.1)
    estimate, theory = metrics.mde80(observations, 1.0)
    assert estimate.value == pytest.approx(1.5 * theory, rel=0.1)
    assert metrics.mde80([(0.1, 0.01, 1e6, 1e6, True)], 1.0)[0] == metrics.Estimate(0.1, "<=")
    assert metrics.mde80([(0.1, 0.01, 1e6, 1e6, False)], 1.0)[0] == metrics.Estimate(0.1, ">")


# -- pooled baselines (opt-in) ---------------------------------------------------------------

NS = 10_000_000  # one sample at 100 Hz, in nanoseconds
N = 1_000_000
FILLER = 40  # functions of 1 % each beside the tested one; the rest sits in ``idle``


def _pool_table(share: float) -> StackTable:
    """``hot`` holds ``share`` of N samples; 40 fillers of 1 % keep dispersion estimable."""
    values = {("main", "hot"): round(share * N) * NS}
    for i in range(FILLER):
        values[("main", f"f{i:02d}")] = round(0.01 * N) * NS
    values[("main", "idle")] = round((1.0 - share - FILLER * 0.01) * N) * NS
    return StackTable.from_stacks(values.items())


def _pool_detect(
    current: float, baselines: tuple[float, float], pooled: bool
) -> tuple[set[str], float]:
    """Findings of ``hot`` and the per-test z the run needed."""
    start = corpus.START + 8 * corpus.DAY
    context = DetectionContext(
        service="svc",
        profile_type=CPU,
        window_start=start,
        window_end=start + corpus.HOUR,
        baseline_starts=(start - corpus.DAY, start - 7 * corpus.DAY),
    )
    thresholds = DetectionThresholds(
        min_relative_increase=0.01, min_share_increase=0.0, pool_baselines=pooled
    )
    result = detect(
        _pool_table(current),
        [_pool_table(b) for b in baselines],
        previous=_pool_table(current),
        thresholds=thresholds,
        context=context,
    )
    assert result.dispersion == 1.0
    return {f.function for f in result.findings}, norm_isf(result.alpha_per_test)


def _share_at(z: float, p0: float, n0: float) -> float:
    """The current share whose rate test against ``p0`` (phi 1) gives ``z``."""
    return p0 + z * math.sqrt(p0 * (1 - p0) * (1 / N + 1 / n0))


def test_pooled_baselines_detect_what_each_baseline_alone_misses() -> None:
    """Just below the needed z against each baseline, well above it against both pooled."""
    p0 = 0.005
    _, z_needed = _pool_detect(p0, (p0, p0), pooled=False)
    current = _share_at(z_needed - 0.25, p0, N)  # pooled: z is 1.15x larger
    assert _pool_detect(current, (p0, p0), pooled=False)[0] == set()
    assert _pool_detect(current, (p0, p0), pooled=True)[0] == {"hot"}


def test_pooled_baselines_still_need_every_baseline_to_agree() -> None:
    """Far above one baseline, level with the other: no finding, pooled or not."""
    p0 = 0.005
    current = _share_at(8.0, p0, N)
    for pooled in (False, True):
        assert _pool_detect(current, (p0, current), pooled=pooled)[0] == set()


# -- the floors ----------------------------------------------------------------------------

slow = pytest.mark.slow
CONFIGS = ["default", "statistical"]


@slow
def test_corpus_went_over_http(results: metrics.Results) -> None:
    steps = results.steps("default")
    assert len(steps) == len(DELTAS) * len(BINS) * 2 * TRIALS
    assert results.queries >= results.runs  # every run fetched at least its current window
    assert results.scenario("default", "transient")
    assert results.scenario("default", "cost_shift")


@slow
@pytest.mark.parametrize("config", CONFIGS)
def test_no_false_alerts_in_aa(results: metrics.Results, config: str) -> None:
    episodes, weeks, hit, runs = results.aa_rate(config)
    assert runs == len(AA_HOURS)
    assert hit == 0, f"{hit}/{runs} A/A runs raised a finding"
    assert episodes / weeks <= metrics.GOAL_FALSE_ALERTS


@slow
@pytest.mark.parametrize("config", CONFIGS)
def test_precision(results: metrics.Results, config: str) -> None:
    """The goal holds outside transient runs; unconfirmed-by-design spikes cost the rest.

    A spike in a large function is sometimes "confirmed" by the previous window, because
    the daemon compares that window with the current window's baselines, an hour of the
    day later, and diurnal drift alone is significant there (docs/detection.md). Those
    alerts are the only false ones here, so precision over every run is pinned at the
    level measured, and at the goal without the transient runs.
    """
    true, total = results.precision(config, skip=("transient",))
    assert total > 0
    assert true / total >= metrics.GOAL_PRECISION
    true, total = results.precision(config)
    assert true / total >= 0.94


@slow
def test_recall_statistical_meets_both_goals(results: metrics.Results) -> None:
    for delta, bins in ((0.10, metrics.AT_LEAST_1PCT), (0.20, metrics.AT_LEAST_03PCT)):
        hits, n = results.recall("statistical", delta=delta, share_bin=bins)
        assert n > 0
        assert hits / n >= metrics.GOAL_RECALL, f"+{delta:.0%}: {hits}/{n}"


@slow
def test_recall_default_gates(results: metrics.Results) -> None:
    """+10 % on >= 1 % meets the goal; the 0.1 pp gate hides +20 % in most 0.3-1 % functions.

    +20 % of a 0.4 % function is 0.08 pp, below the default ``min_share_increase``: the
    default configuration falls short of the +20 % on >= 0.3 % goal by design, and meets
    it from 1 % up.
    """
    hits, n = results.recall("default", delta=0.10, share_bin=metrics.AT_LEAST_1PCT)
    assert hits / n >= metrics.GOAL_RECALL, f"{hits}/{n}"
    hits, n = results.recall("default", delta=0.20, share_bin=metrics.AT_LEAST_1PCT)
    assert hits / n >= metrics.GOAL_RECALL, f"{hits}/{n}"
    hits, n = results.recall("default", delta=0.20, share_bin="0.3-1%")
    assert hits / n < metrics.GOAL_RECALL, "the gate no longer limits: update docs/detection.md"


@slow
def test_statistical_mde_near_theory(results: metrics.Results) -> None:
    goal = metrics.mde_goal(results, "statistical")
    assert goal.passed is not False, goal.shortfall


@slow
@pytest.mark.parametrize("config", CONFIGS)
def test_side_scenarios(results: metrics.Results, config: str) -> None:
    labelled, _, significant, alerted = results.cost_shifts(config)
    assert significant > 0
    assert labelled / significant >= metrics.GOAL_COST_SHIFTS
    assert alerted == 0
    attributed, detected, _ = results.versions(config)
    assert detected > 0
    assert attributed / detected >= metrics.GOAL_VERSIONS
    ttd = results.time_to_detect(config)
    within = sum(v for k, v in ttd.items() if k <= metrics.GOAL_WINDOWS)
    assert within / sum(ttd.values()) >= metrics.GOAL_WITHIN


@slow
@pytest.mark.parametrize("config", CONFIGS)
def test_transients(results: metrics.Results, config: str) -> None:
    """Every spike is significant in its window; most are held back (goal 95 %, see above)."""
    suppressed, n, visible = results.transients(config)
    assert visible == n
    assert suppressed / n >= 0.8


@slow
@pytest.mark.parametrize("config", CONFIGS)
def test_every_finding_carries_its_mde(results: metrics.Results, config: str) -> None:
    missing, total = results.mde_coverage(config)
    assert total > 0
    assert missing == 0
