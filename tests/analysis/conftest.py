"""Helpers for detection tests: windows of a synthetic fleet turned into detection inputs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from watcher.analysis.detect import (
    DEFAULT_THRESHOLDS,
    DetectionContext,
    DetectionResult,
    ThresholdsLike,
    detect,
)
from watcher.analysis.tables import StackTable
from watcher.sandbox.fleet import CPU, FleetSpec, generate
from watcher.sandbox.records import Stack

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
#: A Monday; the fleets below cover eight days from here so -1d and -7d baselines exist.
START = datetime(2026, 3, 2, tzinfo=UTC)


class FleetWindows:
    """A generated fleet, aggregated into windows and run through :func:`detect`.

    ``detect_at(service, end)`` uses the window ``[end - window, end)``, the window before it
    as ``previous`` and same-length windows ``offsets`` earlier as baselines, with the
    ``version`` labels of each window and the caller graph of all of them.
    """

    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        self._records: dict[tuple[str, int], list[dict[Stack, int]]] = defaultdict(list)
        self._versions: dict[tuple[str, int], set[str]] = defaultdict(set)
        for record in generate(spec):
            key = (record.labels["service_name"], record.timestamp_ms)
            self._records[key].append(dict(record.stacks))
            if "version" in record.labels:
                self._versions[key].add(record.labels["version"])
        self._tables: dict[tuple[str, datetime, timedelta], StackTable] = {}

    def _keys(self, service: str, start: datetime, length: timedelta) -> list[tuple[str, int]]:
        step = self.spec.step
        keys = []
        t = start
        while t < start + length:
            keys.append((service, int(t.timestamp() * 1000)))
            t += step
        return keys

    def table(self, service: str, start: datetime, length: timedelta) -> StackTable:
        key = (service, start, length)
        if key not in self._tables:
            merged: dict[Stack, int] = defaultdict(int)
            for k in self._keys(service, start, length):
                for stacks in self._records.get(k, ()):
                    for stack, value in stacks.items():
                        merged[stack] += value
            self._tables[key] = StackTable.from_stacks(merged.items())
        return self._tables[key]

    def versions(self, service: str, start: datetime, length: timedelta) -> tuple[str, ...]:
        found: set[str] = set()
        for k in self._keys(service, start, length):
            found |= self._versions.get(k, set())
        return tuple(sorted(found))

    def detect_at(
        self,
        service: str,
        end: datetime,
        *,
        window: timedelta = HOUR,
        offsets: Sequence[timedelta] = (DAY, 7 * DAY),
        previous: bool = True,
        thresholds: ThresholdsLike = DEFAULT_THRESHOLDS,
    ) -> DetectionResult:
        start = end - window
        current = self.table(service, start, window)
        baselines = [self.table(service, start - o, window) for o in offsets]
        before = start - window
        prev = self.table(service, before, window) if previous else None
        prev_baselines = [self.table(service, before - o, window) for o in offsets]
        parents: dict[str, set[str]] = {}
        for table in [current, *baselines, *([prev] if prev is not None else [])]:
            for name, callers in table.parents.items():
                parents.setdefault(name, set()).update(callers)
        context = DetectionContext(
            service=service,
            profile_type=CPU,
            window_start=start,
            window_end=end,
            baseline_starts=tuple(start - o for o in offsets),
            sample_rate_hz=self.spec.sample_rate_hz,
            current_versions=self.versions(service, start, window),
            previous_versions=self.versions(service, before, window) if previous else (),
            baseline_versions=tuple(self.versions(service, start - o, window) for o in offsets),
        )
        return detect(
            current,
            baselines,
            previous=prev,
            previous_baselines=prev_baselines if previous else None,
            thresholds=thresholds,
            context=context,
            parents=parents,
        )


@pytest.fixture
def fleet_windows() -> Callable[[FleetSpec], FleetWindows]:
    """Build a :class:`FleetWindows` for a spec."""
    return FleetWindows


def hourly_spec(**overrides: object) -> FleetSpec:
    """One service, one profile per hour for eight days (so windows are single profiles)."""
    values: dict[str, object] = {
        "start": START,
        "end": START + 8 * DAY,
        "services": ("checkout",),
        "step": HOUR,
        "samples_per_profile": 1_000_000.0,
        "dispersion": 2.0,
        "diurnal_amplitude": 0.1,
        "seed": 3,
    }
    values.update(overrides)
    return FleetSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_spec() -> Callable[..., FleetSpec]:
    """:func:`hourly_spec` as a fixture."""
    return hourly_spec
