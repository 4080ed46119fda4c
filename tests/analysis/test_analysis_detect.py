"""Detection end to end on synthetic fleet windows, and rule by rule on small tables."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from watcher.analysis.detect import (
    DetectionContext,
    DetectionResult,
    DetectionThresholds,
    detect,
)
from watcher.analysis.stats import DEFAULT_DISPERSION
from watcher.analysis.tables import StackTable, parents_from_stacks
from watcher.sandbox.fleet import (
    CostShift,
    FleetSpec,
    StepRegression,
    TransientSpike,
    VersionChange,
    expected_shares,
    service_stacks,
)
from watcher.sandbox.records import Stack

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
START = datetime(2026, 3, 2, tzinfo=UTC)
#: The step events start at: day 8, 10:00 UTC.
ONSET = START + 7 * DAY + 10 * HOUR

Windows = Any  # the FleetWindows helper from conftest


def _function_near(spec: FleetSpec, share: float) -> str:
    """The function whose expected self share is closest to ``share``."""
    shares = expected_shares(spec, "checkout")
    return min(shares, key=lambda name: abs(shares[name] - share))


def _leaf_with_sibling(spec: FleetSpec) -> tuple[str, str]:
    """A leaf of one stack with a 1-5 % share, and a sibling leaf under the same parent."""
    shares = expected_shares(spec, "checkout")
    stacks = service_stacks(spec, "checkout")
    by_leaf: dict[str, list[Stack]] = {}
    for stack in stacks:
        by_leaf.setdefault(stack[-1], []).append(stack)
    for leaf, own in sorted(by_leaf.items()):
        if len(own) != 1 or not 0.01 < shares.get(leaf, 0.0) < 0.05:
            continue
        parent = own[0][:-1]
        for stack in stacks:
            sibling = stack[-1]
            if stack[:-1] == parent and sibling != leaf and len(by_leaf[sibling]) == 1:
                return leaf, sibling
    raise AssertionError("the fleet has no suitable leaf")


# -- A/A: no change, no findings -----------------------------------------------------------


@pytest.mark.parametrize(
    ("samples", "phi", "seeds"),
    [(1_000_000.0, 2.0, (0, 1, 2, 3)), (100_000.0, 4.0, (0, 1)), (1_000_000.0, 1.0, (5,))],
)
def test_aa_windows_raise_no_findings(
    fleet_windows: Callable[[FleetSpec], Windows],
    make_spec: Callable[..., FleetSpec],
    samples: float,
    phi: float,
    seeds: tuple[int, ...],
) -> None:
    """24 hourly runs per seed against -1d/-7d baselines, diurnal drift on: zero alerts."""
    runs = 0
    alerted = 0
    dispersions: list[float] = []
    for seed in seeds:
        windows = fleet_windows(make_spec(samples_per_profile=samples, dispersion=phi, seed=seed))
        for hour in range(1, 25):
            result = windows.detect_at("checkout", START + 7 * DAY + hour * HOUR)
            runs += 1
            alerted += bool(result.findings)
            dispersions.append(result.dispersion)
    mean_phi = sum(dispersions) / len(dispersions)
    print(f"A/A {samples:.0f}/window, phi={phi} (est. {mean_phi:.2f}): {alerted}/{runs} alerted")
    assert alerted == 0
    # Two baselines give one degree of freedom per function: single estimates are rough,
    # their average is not.
    assert mean_phi == pytest.approx(phi, rel=0.2)


# -- a real regression ----------------------------------------------------------------------


def test_step_regression_is_found_with_function_kind_and_ci(
    fleet_windows: Callable[[FleetSpec], Windows], make_spec: Callable[..., FleetSpec]
) -> None:
    """+50 % self work in a 2 % function at 1M samples/window: one finding, CI covers the truth."""
    base = make_spec()
    target = _function_near(base, 0.02)
    windows = fleet_windows(replace(base, events=(StepRegression("checkout", target, 1.5, ONSET),)))

    first = windows.detect_at("checkout", ONSET + HOUR)  # previous window is still clean
    assert not first.findings
    assert any(i.function == target and "not confirmed" in i.note for i in first.informational), (
        "the first regressed window is held back until the previous one agrees"
    )

    result = windows.detect_at("checkout", ONSET + 2 * HOUR)
    assert [(f.function, f.kind) for f in result.findings] == [(target, "self")]
    finding = result.findings[0]
    # Extra absolute work: the share ratio is 1.5 / (1 + 0.5 p).
    truth = 1.5 / (1 + 0.5 * finding.baseline_share) - 1
    assert finding.ci_low <= truth <= finding.ci_high
    assert finding.ci_low <= finding.relative_change <= finding.ci_high
    assert finding.persistent is True
    assert finding.p_value < result.alpha_per_test
    assert finding.mde < finding.relative_change
    assert finding.mde == pytest.approx(result.mde_by_share[0.01] * 0.7, rel=0.5), (
        "a 2 % function's MDE lies between the 1 % and 5 % values"
    )
    cores = 1_000_000 / 100 / 3600  # samples per hour at 100 Hz, in cores
    assert finding.impact_unit == "cores"
    assert finding.impact_per_second == pytest.approx(0.5 * finding.baseline_share * cores, rel=0.3)
    assert finding.version_change is None
    assert finding.change_time == ONSET
    assert finding.samples == pytest.approx(1_000_000, rel=0.05)


def test_step_regression_recall_over_seeds(
    fleet_windows: Callable[[FleetSpec], Windows], make_spec: Callable[..., FleetSpec]
) -> None:
    """The same injection over five seeds: found every time, with the right function."""
    found = 0
    seeds = range(5)
    for seed in seeds:
        base = make_spec(seed=seed)
        target = _function_near(base, 0.02)
        spec = replace(base, events=(StepRegression("checkout", target, 1.5, ONSET),))
        result = fleet_windows(spec).detect_at("checkout", ONSET + 2 * HOUR)
        found += [f.function for f in result.findings] == [target]
    print(f"recall +50 % at 2 % share, 1M samples: {found}/{len(seeds)}")
    assert found == len(seeds)


def test_transient_spike_is_not_confirmed(
    fleet_windows: Callable[[FleetSpec], Windows], make_spec: Callable[..., FleetSpec]
) -> None:
    """A one-window spike: flagged as unconfirmed while current, silent afterwards."""
    base = make_spec()
    target = _function_near(base, 0.02)
    spike = TransientSpike("checkout", target, 2.0, ONSET, HOUR)
    windows = fleet_windows(replace(base, events=(spike,)))
    during = windows.detect_at("checkout", ONSET + HOUR)
    after = windows.detect_at("checkout", ONSET + 2 * HOUR)
    assert not during.findings and not after.findings
    assert any(i.function == target and i.persistent is False for i in during.informational)


def test_cost_shift_is_labelled_not_alerted(
    fleet_windows: Callable[[FleetSpec], Windows], make_spec: Callable[..., FleetSpec]
) -> None:
    """Half of one leaf's work moving to its sibling: a cost_shift naming both, no alert."""
    base = make_spec()
    source, sibling = _leaf_with_sibling(base)
    windows = fleet_windows(
        replace(base, events=(CostShift("checkout", source, sibling, 0.5, ONSET),))
    )
    result = windows.detect_at("checkout", ONSET + 2 * HOUR)
    assert not result.findings
    assert [s.function for s in result.cost_shifts] == [sibling]
    shift = result.cost_shifts[0]
    assert shift.kind == "cost_shift" and shift.severity == "info"
    assert source in shift.note


def test_renamed_function_is_labelled_as_a_cost_shift(
    fleet_windows: Callable[[FleetSpec], Windows], make_spec: Callable[..., FleetSpec]
) -> None:
    """Work moving to a function absent from every baseline (a rename) is a cost shift too."""
    base = make_spec()
    source, _ = _leaf_with_sibling(base)
    renamed = "renamed." + source
    windows = fleet_windows(
        replace(base, events=(CostShift("checkout", source, renamed, 0.6, ONSET),))
    )
    result = windows.detect_at("checkout", ONSET + 2 * HOUR)
    assert not result.findings
    assert [s.function for s in result.cost_shifts] == [renamed]
    assert "new function" in result.cost_shifts[0].note


def test_version_change_is_attributed(
    fleet_windows: Callable[[FleetSpec], Windows], make_spec: Callable[..., FleetSpec]
) -> None:
    """A regression aligned with a deploy names the old and new versions."""
    base = make_spec()
    target = _function_near(base, 0.02)
    events = (
        StepRegression("checkout", target, 1.5, ONSET),
        VersionChange("checkout", "v1.4.2", "v1.5.0", ONSET),
    )
    result = fleet_windows(replace(base, events=events)).detect_at("checkout", ONSET + 2 * HOUR)
    assert [f.function for f in result.findings] == [target]
    assert result.findings[0].version_change == ("v1.4.2", "v1.5.0")


def test_call_chain_is_merged_into_the_deepest_frame(
    fleet_windows: Callable[[FleetSpec], Windows], make_spec: Callable[..., FleetSpec]
) -> None:
    """A whole subtree growing 30 %: callers are folded into the deepest regressed frames."""
    base = make_spec()
    shares = expected_shares(base, "checkout")
    totals = expected_shares(base, "checkout", kind="total")
    candidates = [
        name
        for name, total in sorted(totals.items())
        if "(app/checkout/" in name and 0.02 < total < 0.06 and shares.get(name, 0.0) < total / 2
    ]
    assert candidates, "the fleet has an application function with a subtree"
    subtree = candidates[0]
    spec = replace(base, events=(StepRegression("checkout", subtree, 1.3, ONSET, kind="total"),))
    windows = fleet_windows(spec)
    result = windows.detect_at("checkout", ONSET + 2 * HOUR)
    assert result.findings
    parents = parents_from_stacks(service_stacks(spec, "checkout"))

    def ancestors(name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for caller in parents.get(todo.pop(), ()):
                if caller not in seen:
                    seen.add(caller)
                    todo.append(caller)
        return seen

    names = {f.function for f in result.findings}
    for finding in result.findings:
        assert not names & ancestors(finding.function), "no finding sits above another"
        assert set(finding.callers) <= ancestors(finding.function)
    assert any(subtree in f.callers or f.function == subtree for f in result.findings)
    for finding in result.findings:
        assert finding.function == subtree or subtree in ancestors(finding.function)


def test_disagreeing_baselines_raise_nothing(
    fleet_windows: Callable[[FleetSpec], Windows], make_spec: Callable[..., FleetSpec]
) -> None:
    """Up against -7d but level with -1d (the change is two days old): no finding."""
    base = make_spec()
    target = _function_near(base, 0.02)
    spec = replace(base, events=(StepRegression("checkout", target, 1.5, ONSET - 2 * DAY),))
    windows = fleet_windows(spec)
    both = windows.detect_at("checkout", ONSET + 2 * HOUR)
    assert target not in {f.function for f in both.findings}
    week_only = windows.detect_at("checkout", ONSET + 2 * HOUR, offsets=(7 * DAY,))
    assert target in {f.function for f in week_only.findings}
    assert week_only.dispersion >= DEFAULT_DISPERSION
    assert any("fewer than two baselines" in note for note in week_only.notes)


# -- rule by rule on small tables -------------------------------------------------------------

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
NS_PER_SAMPLE = 10_000_000  # 100 Hz

#: A small service: 40 leaves under four handlers, Zipf-like shares.
LEAVES: list[Stack] = [
    ("main", f"handler{h}", f"pkg.work{h}_{i}") for h in range(4) for i in range(10)
]


def _base_shares() -> dict[Stack, float]:
    weights = {stack: 1.0 / (rank + 1) ** 0.8 for rank, stack in enumerate(LEAVES)}
    total = sum(weights.values())
    return {stack: w / total for stack, w in weights.items()}


def _table(
    rng: random.Random,
    samples: float,
    scale: Mapping[Stack, float] | None = None,
    extra: Mapping[Stack, float] | None = None,
) -> StackTable:
    """Poisson-like counts around ``samples * share * scale`` (+ ``extra`` shares), in ns."""
    values: dict[Stack, int] = {}
    shares = dict(_base_shares())
    for stack, share in (extra or {}).items():
        shares[stack] = shares.get(stack, 0.0) + share
    for stack, share in shares.items():
        mean = samples * share * (scale or {}).get(stack, 1.0)
        count = max(0, round(rng.gauss(mean, math.sqrt(mean))))
        values[stack] = count * NS_PER_SAMPLE
    return StackTable.from_stacks(values.items())


def _context(**overrides: Any) -> DetectionContext:
    values: dict[str, Any] = {
        "service": "svc",
        "profile_type": CPU,
        "window_start": START,
        "window_end": START + HOUR,
        "baseline_starts": (START - DAY, START - 7 * DAY),
    }
    values.update(overrides)
    return DetectionContext(**values)


def _run(
    scale: Mapping[Stack, float] | None = None,
    *,
    samples: float = 1e6,
    seed: int = 1,
    previous_scale: Mapping[Stack, float] | None = None,
    with_previous: bool = True,
    thresholds: Any = None,
    extra: Mapping[Stack, float] | None = None,
    context: DetectionContext | None = None,
) -> DetectionResult:
    rng = random.Random(seed)
    baselines = [_table(rng, samples), _table(rng, samples)]
    previous = _table(rng, samples, previous_scale if previous_scale is not None else scale, extra)
    current = _table(rng, samples, scale, extra)
    return detect(
        current,
        baselines,
        previous=previous if with_previous else None,
        thresholds=thresholds or DetectionThresholds(),
        context=context or _context(),
        parents=parents_from_stacks([*LEAVES, *(extra or {})]),
    )


def test_no_change_no_findings_and_counted_tests() -> None:
    """Identical mixes: nothing found; leaves are tested once, handlers for total only."""
    result = _run()
    assert not result.findings and not result.cost_shifts
    # 40 leaves (self == total, tested once) + 4 handlers (total); main holds everything.
    assert result.eligible_count == 44
    assert result.alpha_per_test == pytest.approx(0.01 / 44)
    assert result.dispersion_source == "estimated"
    assert result.persistence_checked


def test_small_leaf_regression_is_found_and_merged_with_its_handler() -> None:
    """+40 % in one leaf: one self finding; its handler's total rise folds into callers."""
    leaf = LEAVES[3]
    result = _run({leaf: 1.4})
    assert [(f.function, f.kind) for f in result.findings] == [(leaf[-1], "self")]
    assert result.findings[0].callers in ((), ("handler0",))


def test_practical_gates_hold_back_significant_but_small_changes() -> None:
    """+3 % on the largest leaf at 100M samples is significant, but below a 5 % gate."""
    leaf = LEAVES[0]
    assert leaf[-1] in {f.function for f in _run({leaf: 1.03}, samples=1e8).findings}
    gated = DetectionThresholds(min_relative_increase=0.05)
    result = _run({leaf: 1.03}, samples=1e8, thresholds=gated)
    assert not result.findings
    notes = [i.note for i in result.informational if i.function == leaf[-1]]
    assert notes and "relative increase" in notes[0]


def test_default_gates_let_small_changes_through_at_low_severity() -> None:
    """+4 % on a 2 % leaf at 10M samples: under the old 5 % gate, found by default as info."""
    shares = _base_shares()
    leaf = min(LEAVES, key=lambda stack: abs(shares[stack] - 0.02))
    scale = {leaf: 1.04}
    found = _run(scale, samples=1e7).findings
    assert [(f.function, f.severity) for f in found] == [(leaf[-1], "info")]  # 0.02 cores
    old = DetectionThresholds(min_relative_increase=0.05, min_share_increase=0.001)
    assert not _run(scale, samples=1e7, thresholds=old).findings


def test_relative_gate_measures_growth_against_the_rest_of_the_profile() -> None:
    """+6 % work on the largest leaf moves its share by less; the gate sees the 6 %."""
    leaf = LEAVES[0]
    share = _base_shares()[leaf]
    share_rise = 1.06 / (1.0 + 0.06 * share) - 1.0
    gate = 0.5 * (share_rise + 0.06)  # between the share's rise and the work's
    assert share_rise < gate < 0.06
    gated = DetectionThresholds(min_relative_increase=gate)
    result = _run({leaf: 1.06}, samples=1e9, thresholds=gated)
    assert leaf[-1] in {f.function for f in result.findings}
    above = DetectionThresholds(min_relative_increase=0.065)
    assert not _run({leaf: 1.06}, samples=1e9, thresholds=above).findings


def test_min_impact_gate() -> None:
    """An impact floor above the change's cores holds it back."""
    leaf = LEAVES[3]
    assert _run({leaf: 1.4}).findings
    strict = DetectionThresholds(min_impact=5.0)
    result = _run({leaf: 1.4}, thresholds=strict)
    assert not result.findings
    assert any("impact" in i.note for i in result.informational)


def test_thresholds_can_be_any_object_with_the_four_required_fields() -> None:
    """Config objects without the optional fields work (defaults apply)."""
    minimal = SimpleNamespace(
        min_relative_increase=0.05, min_share_increase=0.001, min_samples=100, alpha=0.01
    )
    result = _run({LEAVES[3]: 1.4}, thresholds=minimal)
    assert [f.function for f in result.findings] == [LEAVES[3][-1]]


def test_without_a_previous_window_persistence_is_not_checked() -> None:
    """No previous window: findings carry persistent=None and the result says so."""
    result = _run({LEAVES[3]: 1.4}, with_previous=False)
    assert result.findings and result.findings[0].persistent is None
    assert not result.persistence_checked
    assert any("persistence" in note for note in result.notes)


def _detect_with_previous(
    previous_scale: Mapping[Stack, float],
    current_scale: Mapping[Stack, float],
    *,
    noisy_previous_baselines: float = 0.0,
) -> DetectionResult:
    """Detection with the previous window's own baselines (as the daemon passes them)."""
    rng = random.Random(5)
    baselines = [_table(rng, 1e6), _table(rng, 1e6)]
    previous_baselines = [_table(rng, 1e6), _table(rng, 1e6)]
    if noisy_previous_baselines:
        previous_baselines = [
            _table(rng, 1e6, {s: rng.gauss(1.0, noisy_previous_baselines) for s in LEAVES})
            for _ in range(2)
        ]
    return detect(
        _table(rng, 1e6, current_scale),
        baselines,
        previous=_table(rng, 1e6, previous_scale),
        previous_baselines=previous_baselines,
        thresholds=DetectionThresholds(),
        context=_context(),
        parents=parents_from_stacks(LEAVES),
    )


def test_a_cost_shift_in_the_previous_window_does_not_confirm_a_rise() -> None:
    """Work moved to a leaf in the previous window, unmatched now: a cost shift, no alert.

    A shift labelled in one window can miss the match in the next by noise alone; the
    previous window then explains the rise, so it must not confirm it.
    """
    shares = _base_shares()
    leaf, source = LEAVES[3], LEAVES[1]  # siblings under handler0; the source is larger
    moved = {leaf: 1.5, source: 1.0 - 0.5 * shares[leaf] / shares[source]}
    result = _detect_with_previous(moved, {leaf: 1.5})
    assert not result.findings
    shifted = [c for c in result.cost_shifts if c.function == leaf[-1]]
    assert shifted and shifted[0].note.startswith("in the previous window matched by")
    assert source[-1] in shifted[0].note and shifted[0].persistent is False
    # The same rise that the previous window shows as a rise is confirmed.
    confirmed = _detect_with_previous({leaf: 1.5}, {leaf: 1.5})
    assert leaf[-1] in {f.function for f in confirmed.findings}


def test_previous_baselines_add_to_the_dispersion_estimate() -> None:
    """Noisier previous baselines raise phi: they are a second pair for the estimate."""
    quiet = _detect_with_previous({}, {})
    noisy = _detect_with_previous({}, {}, noisy_previous_baselines=0.05)
    assert quiet.dispersion_source == noisy.dispersion_source == "estimated"
    assert noisy.dispersion > 1.5 * quiet.dispersion


def test_decreases_are_informational_only() -> None:
    """A leaf halving is listed as a decrease, never as a finding.

    Every other share rises with it (about +4 %, above the relative gate): that common rise
    is recognised and nothing else is alerted either.
    """
    leaf = LEAVES[2]
    result = _run({leaf: 0.5})
    assert not result.findings
    decrease = [i for i in result.informational if i.function == leaf[-1]]
    assert decrease and decrease[0].note == "decrease" and decrease[0].relative_change < 0
    common = [i for i in result.informational if i.note.startswith("rise in line with")]
    assert len(common) > 5


def test_a_real_rise_beside_a_large_decrease_is_still_found() -> None:
    """One leaf halves, another rises +40 %: the rise beyond the common one is alerted."""
    result = _run({LEAVES[2]: 0.5, LEAVES[20]: 1.4})
    assert [f.function for f in result.findings] == [LEAVES[20][-1]]


def test_new_function_is_informational() -> None:
    """A function absent from the baselines, not matched by any decrease, is listed."""
    new: Stack = ("main", "handler1", "pkg.brand_new")
    result = _run(extra={new: 0.01})
    # Its caller's total carries the new work (+4 %): that rise is real and alerted.
    assert {f.function for f in result.findings} <= {"handler1"}
    listed = [i for i in result.informational if i.function == "pkg.brand_new"]
    assert listed and "absent from every baseline" in listed[0].note


def test_severity_follows_impact_in_cores() -> None:
    """+100 % on a 10 % function of a 30-core service is critical."""
    samples = 30 * 100 * 3600  # 30 cores for an hour at 100 Hz
    result = _run({LEAVES[0]: 2.0}, samples=samples)
    assert result.findings[0].severity == "critical"
    assert result.findings[0].impact_per_second > 1.0


def test_function_table_with_value_dicts_is_accepted() -> None:
    """Windows shaped as self_values/total_values dicts give the same answer."""

    class Dicts:
        def __init__(self, table: StackTable) -> None:
            self.total_value = table.total_value
            self.self_values = {k: v.self for k, v in table.functions.items()}
            self.total_values = {k: v.total for k, v in table.functions.items()}

    rng = random.Random(4)
    tables = [_table(rng, 1e6) for _ in range(3)] + [_table(rng, 1e6, {LEAVES[5]: 1.5})]
    parents = parents_from_stacks(LEAVES)
    direct = detect(tables[3], tables[:2], previous=tables[3], context=_context(), parents=parents)
    wrapped = detect(
        Dicts(tables[3]),
        [Dicts(t) for t in tables[:2]],
        previous=Dicts(tables[3]),
        context=_context(),
        parents=parents,
    )
    assert [f.function for f in direct.findings] == [LEAVES[5][-1]]
    assert direct.findings == wrapped.findings


def test_memory_profiles_use_the_dispersion_only_model() -> None:
    """Bytes are not samples: the test still works, impact is in bytes/s."""
    rng = random.Random(9)

    def alloc(scale: Mapping[Stack, float] | None = None) -> StackTable:
        cpu = _table(rng, 1e6, scale)
        values = {k: v.self // NS_PER_SAMPLE * 524_288 for k, v in cpu.functions.items()}
        return StackTable.from_stacks((s, values[s[-1]]) for s in LEAVES)

    bumped = {LEAVES[3]: 1.5}
    result = detect(
        alloc(bumped),
        [alloc(), alloc()],
        previous=alloc(bumped),
        context=_context(profile_type="memory:alloc_space:bytes:space:bytes"),
        parents=parents_from_stacks(LEAVES),
    )
    assert [f.function for f in result.findings] == [LEAVES[3][-1]]
    assert result.findings[0].impact_unit == "bytes/s"


def test_inputs_are_checked() -> None:
    """Naive datetimes and empty windows are reported, not crashed on."""
    with pytest.raises(ValueError, match="timezone"):
        _context(window_start=datetime(2026, 1, 1), window_end=datetime(2026, 1, 1, 1))
    empty = StackTable.from_stacks([])
    result = detect(empty, [empty, empty], context=_context())
    assert not result.findings and result.notes
    assert detect(empty, [], context=_context()).notes == (
        "no baseline windows: nothing to compare",
    )


def test_call_cycle_keeps_the_self_finding() -> None:
    """mallocgc -> nextFreeFast -> mallocgc: the self regression absorbs the cycle's totals."""
    base: dict[Stack, int] = {("main", f"work{i}"): 20_000 * (i + 1) for i in range(10)}
    base[("main", "newobject", "mallocgc")] = 200_000
    base[("main", "newobject", "mallocgc", "nextFreeFast")] = 30_000
    base[("main", "newobject", "mallocgc", "nextFreeFast", "mallocgc")] = 50_000

    def table(factor: float) -> StackTable:
        return StackTable.from_stacks(
            (s, round(n * (factor if s[-1] == "mallocgc" else 1.0)) * NS_PER_SAMPLE)
            for s, n in base.items()
        )

    result = detect(
        table(1.5),
        [table(1.0), table(1.0)],
        previous=table(1.5),
        context=_context(),
        parents=parents_from_stacks(base),
    )
    assert [(f.function, f.kind) for f in result.findings] == [("mallocgc", "self")]
    assert set(result.findings[0].callers) <= {"nextFreeFast", "newobject", "main"}
    assert "nextFreeFast" in result.findings[0].callers
