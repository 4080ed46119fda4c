"""The synthetic fleet: determinism, shape, noise, and every kind of injected event."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from watcher.sandbox.fleet import (
    CPU,
    CostShift,
    FleetSpec,
    StepRegression,
    TransientSpike,
    VersionChange,
    expected_shares,
    generate,
    load_fleet,
    service_stacks,
)
from watcher.sandbox.records import ProfileRecord, Stack

START = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
ALLOC = "memory:alloc_space:bytes:space:bytes"


def _spec(**overrides: Any) -> FleetSpec:
    values: dict[str, Any] = {
        "start": START,
        "end": START + 6 * HOUR,
        "services": ("checkout", "cart"),
        "step": timedelta(minutes=10),
        "samples_per_profile": 50_000,
        "dispersion": 2.0,
        "seed": 42,
    }
    values.update(overrides)
    return FleetSpec(**values)


def _self_values(record: ProfileRecord) -> dict[str, int]:
    out: dict[str, int] = {}
    for stack, value in record.stacks.items():
        out[stack[-1]] = out.get(stack[-1], 0) + value
    return out


def _total_value(record: ProfileRecord, function: str) -> int:
    return sum(v for s, v in record.stacks.items() if function in s)


def _records(spec: FleetSpec, service: str = "checkout") -> list[ProfileRecord]:
    return [r for r in generate(spec) if r.labels["service_name"] == service]


def _near(spec: FleetSpec, share: float, service: str = "checkout") -> str:
    shares = expected_shares(spec, service)
    return min(shares, key=lambda name: abs(shares[name] - share))


# -- determinism and shape ------------------------------------------------------------------


def _as_tuples(records: Iterable[ProfileRecord]) -> list[tuple[Any, ...]]:
    return [
        (dict(r.labels), r.profile_type, r.timestamp_ms, dict(r.stacks), r.duration_ms)
        for r in records
    ]


def test_same_seed_same_records() -> None:
    """Two runs of one spec produce identical records; another seed does not."""
    spec = _spec(end=START + 2 * HOUR, diurnal_amplitude=0.1)
    first = _as_tuples(generate(spec))
    assert first == _as_tuples(generate(spec))
    assert first != _as_tuples(generate(replace(spec, seed=43)))


def test_a_service_does_not_depend_on_the_others() -> None:
    """Adding a service leaves an existing service's data unchanged."""
    spec = _spec(end=START + HOUR)
    alone = _as_tuples(_records(replace(spec, services=("checkout",))))
    together = _as_tuples(_records(replace(spec, services=("checkout", "cart", "search"))))
    assert alone == together


def test_one_record_per_service_type_and_step() -> None:
    """Every (service, profile type, step) appears once, in time order, with its labels."""
    spec = _spec(profile_types=(CPU, ALLOC), labels={"namespace": "prod"})
    records = list(generate(spec))
    steps = 36  # 6 hours of 10-minute steps
    assert len(records) == 2 * 2 * steps
    keys = {(r.labels["service_name"], r.profile_type, r.timestamp_ms) for r in records}
    assert len(keys) == len(records)
    times = [r.timestamp_ms for r in records]
    assert times == sorted(times)
    assert times[0] == int(START.timestamp() * 1000)
    assert all(r.duration_ms == 600_000 for r in records)
    first = records[0]
    assert first.labels == {
        "namespace": "prod",
        "service_name": "checkout",
        "__name__": "process_cpu",
    }
    assert "version" not in first.labels


def test_values_are_in_the_profile_unit() -> None:
    """CPU values are samples x 1e9/Hz nanoseconds; allocations are samples x 512 KiB."""
    spec = _spec(profile_types=(CPU, ALLOC), end=START + HOUR)
    for record in generate(spec):
        unit = 10_000_000 if record.profile_type == CPU else 524_288
        assert all(v > 0 and v % unit == 0 for v in record.stacks.values())
    cpu = [r for r in generate(spec) if r.profile_type == CPU]
    samples = statistics.mean(sum(r.stacks.values()) / 10_000_000 for r in cpu)
    assert samples == pytest.approx(50_000, rel=0.02)
    odd = next(iter(generate(replace(spec, sample_rate_hz=97.0, profile_types=(CPU,)))))
    per_sample = 1e9 / 97
    assert all(abs(v / per_sample - round(v / per_sample)) < 1e-3 for v in odd.stacks.values())


def test_call_tree_has_a_few_hundred_plausible_functions() -> None:
    """About 300 functions per service, Go or Python frames, Zipf-like self shares."""
    spec = _spec(services=("checkout", "api"), python_share=0.0)
    stacks = service_stacks(spec, "checkout")
    functions = {name for stack in stacks for name in stack}
    assert 300 <= len(functions) <= 400
    assert any(stack[0] == "net/http.(*conn).serve" for stack in stacks)
    assert any(stack[-1] == "runtime.mallocgc" for stack in stacks)
    assert any(name.startswith("main.handle") for name in functions)
    shares = sorted(expected_shares(spec, "checkout").values(), reverse=True)
    assert sum(shares) == pytest.approx(1.0)
    assert shares[0] > 0.1 and shares[49] < 0.01
    python = service_stacks(replace(spec, python_share=1.0), "checkout")
    assert any("(flask/app.py)" in name for stack in python for name in stack)


def test_extra_stacks_join_every_service() -> None:
    """Caller-supplied stacks (e.g. from real pprof files) appear in the profiles."""
    real: Stack = ("main.main", "main.run", "compress/flate.(*compressor).deflate")
    spec = _spec(stacks=(real,), end=START + HOUR)
    for service in spec.services:
        assert real in service_stacks(spec, service)
    assert any(real in r.stacks for r in generate(spec))


# -- noise and drift ------------------------------------------------------------------------


@pytest.mark.parametrize("phi", [1.0, 4.0])
def test_counts_have_the_configured_dispersion(phi: float) -> None:
    """Var(count) / mean of a function across profiles is about phi (no drift)."""
    spec = _spec(services=("checkout",), end=START + 40 * HOUR, step=HOUR, dispersion=phi, seed=5)
    records = list(generate(spec))
    ratios = []
    for function in sorted(expected_shares(spec, "checkout"))[:60]:
        counts = [_self_values(r).get(function, 0) / 10_000_000 for r in records]
        mean = statistics.mean(counts)
        if mean >= 200:
            ratios.append(statistics.variance(counts) / mean)
    assert len(ratios) >= 5
    assert statistics.median(ratios) == pytest.approx(phi, rel=0.3)


def test_diurnal_drift_moves_shares_over_the_day() -> None:
    """With drift the mix at 06:00 differs from 18:00; without it, it does not."""

    def top_share_change(amplitude: float) -> float:
        spec = _spec(
            services=("checkout",),
            end=START + 24 * HOUR,
            step=HOUR,
            samples_per_profile=2_000_000,
            dispersion=1.0,
            diurnal_amplitude=amplitude,
        )
        records = list(generate(spec))
        morning, evening = _self_values(records[6]), _self_values(records[18])
        total_m, total_e = sum(morning.values()), sum(evening.values())
        top = sorted(morning, key=morning.__getitem__, reverse=True)[:10]
        return max(abs(morning[f] / total_m / (evening[f] / total_e) - 1) for f in top)

    assert top_share_change(0.2) > 0.1
    assert top_share_change(0.0) < 0.03


# -- events ---------------------------------------------------------------------------------


def test_step_regression_multiplies_the_function_by_the_factor() -> None:
    """+50 % self work: the function's value x1.5, its share x1.5/(1 + 0.5 p), on average."""
    base = _spec(services=("checkout",), end=START + 12 * HOUR, step=HOUR / 2)
    target = _near(base, 0.02)
    onset = START + 6 * HOUR
    records = _records(replace(base, events=(StepRegression("checkout", target, 1.5, onset),)))
    onset_ms = int(onset.timestamp() * 1000)
    before = [r for r in records if r.timestamp_ms < onset_ms]
    after = [r for r in records if r.timestamp_ms >= onset_ms]

    def value(r: ProfileRecord) -> float:
        return _self_values(r).get(target, 0)

    def share(r: ProfileRecord) -> float:
        return value(r) / sum(r.stacks.values())

    ratio = statistics.mean(map(value, after)) / statistics.mean(map(value, before))
    assert ratio == pytest.approx(1.5, rel=0.03)
    p = statistics.mean(map(share, before))
    share_ratio = statistics.mean(map(share, after)) / p
    assert share_ratio == pytest.approx(1.5 / (1 + 0.5 * p), rel=0.03)


def test_total_step_scales_the_whole_subtree() -> None:
    """kind="total" multiplies every stack under the function."""
    base = _spec(
        services=("checkout",), end=START + 12 * HOUR, step=HOUR, dispersion=1.0, python_share=0
    )
    totals = expected_shares(base, "checkout", kind="total")
    target = next(n for n, t in sorted(totals.items()) if n.startswith("main.handle") and t > 0.02)
    onset = START + 6 * HOUR
    records = _records(
        replace(base, events=(StepRegression("checkout", target, 2.0, onset, kind="total"),))
    )
    before = statistics.mean(_total_value(r, target) for r in records[:6])
    after = statistics.mean(_total_value(r, target) for r in records[6:])
    assert after / before == pytest.approx(2.0, rel=0.05)


def test_transient_spike_only_inside_its_window() -> None:
    """A 1-hour x3 spike shows in the spike's profiles only."""
    base = _spec(services=("checkout",), end=START + 6 * HOUR, step=HOUR, dispersion=1.0)
    target = _near(base, 0.02)
    spike = TransientSpike("checkout", target, 3.0, START + 2 * HOUR, HOUR)
    records = _records(replace(base, events=(spike,)))
    values = [_self_values(r)[target] for r in records]
    quiet = statistics.mean(values[:2] + values[3:])
    assert values[2] / quiet == pytest.approx(3.0, rel=0.1)
    assert all(v / quiet == pytest.approx(1.0, rel=0.1) for v in values[:2] + values[3:])


def test_cost_shift_moves_work_between_siblings_and_keeps_the_parent() -> None:
    """40 % of a leaf's self work moves to a sibling: parent total unchanged, leaf -40 %."""
    base = _spec(
        services=("checkout",), end=START + 12 * HOUR, step=HOUR, dispersion=1.0, python_share=0
    )
    shares = expected_shares(base, "checkout")
    leaf_stacks: dict[str, list[Stack]] = {}
    for stack in service_stacks(base, "checkout"):
        leaf_stacks.setdefault(stack[-1], []).append(stack)
    source = next(f for f, own in sorted(leaf_stacks.items()) if len(own) == 1 and shares[f] > 0.01)
    parent = leaf_stacks[source][0][-2]
    onset = START + 6 * HOUR
    shift = CostShift("checkout", source, "pkg.newPath", 0.4, onset)
    records = _records(replace(base, events=(shift,)))
    before, after = records[:6], records[6:]

    def mean_self(rs: list[ProfileRecord], function: str) -> float:
        return statistics.mean(_self_values(r).get(function, 0) for r in rs)

    def mean_total(rs: list[ProfileRecord], function: str) -> float:
        return statistics.mean(_total_value(r, function) for r in rs)

    assert mean_self(after, source) / mean_self(before, source) == pytest.approx(0.6, rel=0.05)
    assert mean_total(after, parent) / mean_total(before, parent) == pytest.approx(1.0, rel=0.03)
    moved = mean_self(after, "pkg.newPath")
    assert moved / mean_self(before, source) == pytest.approx(0.4, rel=0.08)
    assert mean_self(before, "pkg.newPath") == 0
    assert all(s[-2] == parent for r in after for s in r.stacks if s[-1] == "pkg.newPath")


def test_version_change_switches_the_version_label() -> None:
    """Series carry version=old before the change and version=new after it."""
    change = VersionChange("checkout", "v1.4.2", "v1.5.0", START + 3 * HOUR)
    spec = _spec(end=START + 6 * HOUR, step=HOUR, events=(change,))
    records = list(generate(spec))
    checkout = [r.labels["version"] for r in records if r.labels["service_name"] == "checkout"]
    assert checkout == ["v1.4.2"] * 3 + ["v1.5.0"] * 3
    assert all("version" not in r.labels for r in records if r.labels["service_name"] == "cart")


def test_events_must_name_real_services_and_functions() -> None:
    """A typo in an event is reported with examples instead of silently ignored."""
    with pytest.raises(ValueError, match="unknown service"):
        _spec(events=(StepRegression("nope", "f", 1.5, START),))
    spec = _spec(events=(StepRegression("checkout", "no.such.function", 1.5, START),))
    with pytest.raises(ValueError, match="no function 'no.such.function'"):
        next(iter(generate(spec)))
    with pytest.raises(ValueError, match="dispersion"):
        _spec(dispersion=0.5)
    with pytest.raises(ValueError, match="end"):
        _spec(end=START)


def test_spec_from_json_like_data() -> None:
    """from_dict reads ISO times, seconds and typed events."""
    spec = FleetSpec.from_dict(
        {
            "start": "2026-03-02T00:00:00Z",
            "end": "2026-03-02T06:00:00+00:00",
            "services": ["checkout"],
            "step": 600,
            "seed": 7,
            "events": [
                {
                    "type": "version_change",
                    "service": "checkout",
                    "old": "a",
                    "new": "b",
                    "at": "2026-03-02T03:00:00Z",
                },
                {
                    "type": "transient_spike",
                    "service": "checkout",
                    "function": "runtime.memmove",
                    "factor": 2,
                    "at": "2026-03-02T01:00:00Z",
                    "duration": 3600,
                },
            ],
        }
    )
    assert spec.start == START and spec.step == timedelta(minutes=10)
    assert spec.events == (
        VersionChange("checkout", "a", "b", START + 3 * HOUR),
        TransientSpike("checkout", "runtime.memmove", 2, START + HOUR, HOUR),
    )
    with pytest.raises(ValueError, match="event type"):
        FleetSpec.from_dict(
            {
                "start": "2026-03-02T00:00:00Z",
                "end": "2026-03-03T00:00:00Z",
                "events": [{"type": "meteor"}],
            }
        )


# -- loading into a store -------------------------------------------------------------------


class _ListSink:
    """Records every add call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Mapping[str, str], str, int, Mapping[Stack, int]]] = []

    def add(
        self,
        labels: Mapping[str, str],
        profile_type: str,
        timestamp_ms: int,
        stacks: Mapping[Stack, int],
    ) -> None:
        self.calls.append((labels, profile_type, timestamp_ms, stacks))


def test_load_fleet_adds_every_record() -> None:
    """load_fleet hands each generated profile to store.add and counts them."""
    spec = _spec(end=START + HOUR)
    sink = _ListSink()
    assert load_fleet(sink, spec) == 12
    expected = [(r.labels, r.profile_type, r.timestamp_ms, r.stacks) for r in generate(spec)]
    assert sink.calls == expected


def test_load_fleet_into_the_sandbox_store() -> None:
    """The sandbox store takes the fleet and answers a query with its stacks."""
    store_module = pytest.importorskip("watcher.sandbox.store")
    store = store_module.ProfileStore()
    spec = _spec(end=START + HOUR)
    assert load_fleet(store, spec) == 12
    assert len(store) == 12
