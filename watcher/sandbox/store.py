"""The sandbox's in-memory profile store.

Profiles are kept per series (one label set, one profile type), sorted by timestamp. Stacks
are interned: every distinct root-first stack gets an integer id in one table, and a profile
is two compact arrays (stack ids and values). A week of a 20-service fleet (about 60 000
profiles of a few hundred stacks each) therefore needs a few hundred megabytes at most, and a
merge over a day touches only integer arrays.

All public methods are thread-safe. Reads take a snapshot of the profile references under
the lock and do the arithmetic outside it, so queries do not block ingest for long.
"""

from __future__ import annotations

import json
import operator
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from watcher.errors import ProfileTypeError
from watcher.sandbox.records import ProfileRecord, Stack
from watcher.selectors import Matcher

__all__ = [
    "DERIVED_LABELS",
    "ProfileStore",
    "SeriesTotals",
    "StoreStats",
    "split_profile_type",
]

DEFAULT_SERVICE = "unknown_service"
DERIVED_LABELS = (
    "__name__",
    "__profile_type__",
    "__type__",
    "__unit__",
    "__period_type__",
    "__period_unit__",
    "__service_name__",
)
#: Labels that are ingest hints, never stored (``__delta__``, ``__order__``).
_STRIPPED = frozenset({"__delta__", "__order__"})


def split_profile_type(profile_type: str) -> tuple[str, str, str, str, str]:
    """Split a 5- or 6-part profile type ID; the optional 6th part is ignored."""
    parts = profile_type.split(":")
    if len(parts) not in (5, 6):
        raise ProfileTypeError(
            "profile-type selection must be of the form "
            "<name>:<sample-type>:<sample-unit>:<period-type>:<period-unit>(:delta), "
            f"got({len(parts)}): {json.dumps(profile_type, ensure_ascii=False)}"
        )
    return parts[0], parts[1], parts[2], parts[3], parts[4]


@dataclass(frozen=True, slots=True)
class StoreStats:
    """What GetProfileStats reports, plus sizes for benchmarks."""

    data_ingested: bool
    oldest_ms: int | None
    newest_ms: int | None
    profiles: int
    series: int
    stacks: int


@dataclass(frozen=True, slots=True)
class SeriesTotals:
    """One series' per-profile totals in a range, oldest first."""

    labels: Mapping[str, str]
    points: Sequence[tuple[int, int]]  # (timestamp_ms, total)


class _Profile:
    """One stored profile. ``values`` is either dense over the series layout (``index`` is
    ``None``; ``values[i]`` belongs to the series' local stack ``i``) or sparse (``index``
    holds the local stack of each value)."""

    __slots__ = ("index", "timestamp_ms", "total", "values")

    def __init__(self, timestamp_ms: int, index: array[int] | None, values: array[int]) -> None:
        self.timestamp_ms = timestamp_ms
        self.index = index
        self.values = values
        self.total = sum(values)


class _Series:
    """A label set's profiles, sorted by time, with a series-local stack numbering."""

    __slots__ = ("labels", "layout", "local", "profiles", "timestamps")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.timestamps: list[int] = []
        self.profiles: list[_Profile] = []
        self.layout: list[int] = []  # local stack number → global stack id
        self.local: dict[int, int] = {}  # global stack id → local stack number

    def add(self, profile: _Profile) -> None:
        ts = profile.timestamp_ms
        if not self.timestamps or ts >= self.timestamps[-1]:
            self.timestamps.append(ts)
            self.profiles.append(profile)
            return
        i = bisect_right(self.timestamps, ts)
        self.timestamps.insert(i, ts)
        self.profiles.insert(i, profile)

    def in_range(self, start_ms: int, end_ms: int) -> list[_Profile]:
        lo = bisect_left(self.timestamps, start_ms)
        hi = bisect_right(self.timestamps, end_ms)
        return self.profiles[lo:hi]

    def has_range(self, start_ms: int, end_ms: int) -> bool:
        lo = bisect_left(self.timestamps, start_ms)
        return lo < len(self.timestamps) and self.timestamps[lo] <= end_ms


def _int_array(values: list[int]) -> array[int]:
    try:
        return array("i", values)  # 4 bytes a value when they fit
    except OverflowError:
        return array("q", values)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The profiles of one series in a range, taken under the lock."""

    series: _Series
    profiles: list[_Profile]
    layout: list[int]
    width: int  # len(layout) when taken: every profile's local numbers are below it

    def local_sums(self) -> list[int]:
        """Summed values per local stack number (C-speed adds for dense profiles)."""
        acc = [0] * self.width
        for p in self.profiles:
            values = p.values
            if p.index is None:
                n = len(values)
                if n == len(acc):
                    acc = list(map(operator.add, acc, values))
                else:
                    acc[:n] = map(operator.add, acc[:n], values)
            else:
                for i, v in zip(p.index, values, strict=True):
                    acc[i] += v
        return acc


def _all_match(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


class ProfileStore:
    """Thread-safe in-memory store of profiles, queried by label matchers and time range."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._reset_locked()

    def _reset_locked(self) -> None:
        self._series: dict[tuple[tuple[str, str], ...], _Series] = {}
        self._stack_ids: dict[Stack, int] = {}
        self._stacks: list[Stack] = []
        self._frames: dict[str, str] = {}
        self._profiles = 0
        self._oldest: int | None = None
        self._newest: int | None = None
        self._generation = 0

    # ------------------------------------------------------------------ writing

    def reset(self) -> None:
        """Forget everything."""
        with self._lock:
            self._reset_locked()
            self._generation += 1
            self._changed.notify_all()

    def add(
        self,
        labels: Mapping[str, str],
        profile_type: str,
        timestamp_ms: int,
        stacks: Mapping[Stack, int],
    ) -> None:
        """Store one profile of one sample type.

        ``labels`` are the client's series labels; ``__name__``, ``__profile_type__``,
        ``__type__``, ``__unit__``, ``__period_type__``, ``__period_unit__`` and
        ``__service_name__`` are derived here, and ``service_name`` defaults to
        ``unknown_service``. Stacks with a value of zero or less are dropped.
        """
        self.add_many([(labels, profile_type, timestamp_ms, stacks)])

    def add_record(self, record: ProfileRecord) -> None:
        """Store one :class:`ProfileRecord`."""
        self.add(record.labels, record.profile_type, record.timestamp_ms, record.stacks)

    def add_records(self, records: Iterable[ProfileRecord]) -> int:
        """Store many records under one lock acquisition per batch; returns how many."""
        return self.add_many((r.labels, r.profile_type, r.timestamp_ms, r.stacks) for r in records)

    def add_many(
        self,
        items: Iterable[tuple[Mapping[str, str], str, int, Mapping[Stack, int]]],
    ) -> int:
        """Store ``(labels, profile_type, timestamp_ms, stacks)`` tuples; returns how many."""
        count = 0
        batch: list[tuple[dict[str, str], int, Mapping[Stack, int]]] = []
        for labels, profile_type, timestamp_ms, stacks in items:
            batch.append((self._series_labels(labels, profile_type), int(timestamp_ms), stacks))
            if len(batch) >= 256:
                count += self._add_batch(batch)
                batch = []
        if batch:
            count += self._add_batch(batch)
        return count

    @staticmethod
    def _series_labels(labels: Mapping[str, str], profile_type: str) -> dict[str, str]:
        name, sample_type, sample_unit, period_type, period_unit = split_profile_type(profile_type)
        full = {k: str(v) for k, v in labels.items() if k not in _STRIPPED and v != ""}
        service = full.get("service_name") or DEFAULT_SERVICE
        full["service_name"] = service
        full["__name__"] = name
        full["__profile_type__"] = ":".join(
            (name, sample_type, sample_unit, period_type, period_unit)
        )
        full["__type__"] = sample_type
        full["__unit__"] = sample_unit
        full["__period_type__"] = period_type
        full["__period_unit__"] = period_unit
        full["__service_name__"] = service
        return {k: v for k, v in full.items() if v != ""}

    def _intern_stack(self, stack: Stack) -> int:
        sid = self._stack_ids.get(stack)
        if sid is None:
            frames = self._frames
            interned = tuple(frames.setdefault(f, f) for f in stack)
            sid = len(self._stacks)
            self._stacks.append(interned)
            self._stack_ids[interned] = sid
        return sid

    def _add_batch(self, batch: list[tuple[dict[str, str], int, Mapping[Stack, int]]]) -> int:
        with self._lock:
            known = self._stack_ids.get
            intern = self._intern_stack
            for labels, ts, stacks in batch:
                key = tuple(sorted(labels.items()))
                series = self._series.get(key)
                if series is None:
                    series = _Series(labels)
                    self._series[key] = series
                local = series.local
                layout = series.layout
                index: array[int] = array("I")
                kept: list[int] = []
                for stack, value in stacks.items():
                    if value <= 0:
                        continue
                    if type(stack) is not tuple:
                        stack = tuple(stack)
                    sid = known(stack)
                    if sid is None:
                        sid = intern(stack)
                    li = local.get(sid)
                    if li is None:
                        li = local[sid] = len(layout)
                        layout.append(sid)
                    index.append(li)
                    kept.append(value)
                width = len(layout)
                if kept and width <= 2 * len(kept):
                    # Dense: no index array, and merging is an element-wise add.
                    dense = [0] * (max(index) + 1)
                    for li, value in zip(index, kept, strict=True):
                        dense[li] += value
                    series.add(_Profile(ts, None, _int_array(dense)))
                else:
                    series.add(_Profile(ts, index, _int_array(kept)))
                self._profiles += 1
                if self._oldest is None or ts < self._oldest:
                    self._oldest = ts
                if self._newest is None or ts > self._newest:
                    self._newest = ts
            self._generation += 1
            self._changed.notify_all()
        return len(batch)

    # ------------------------------------------------------------------ waiting

    @property
    def generation(self) -> int:
        """A counter that grows on every change; pair it with :meth:`wait_for`."""
        with self._lock:
            return self._generation

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` is true, re-checking after every ingest.

        Returns the last value of the predicate (false on timeout). The predicate runs with
        the store's lock held, so it may call the store's own read methods.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if predicate():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)

    # ------------------------------------------------------------------ reading

    def _matching(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[_Snapshot]:
        with self._lock:
            out = []
            for series in self._series.values():
                if not _all_match(matchers, series.labels):
                    continue
                profiles = series.in_range(start_ms, end_ms)
                if profiles:
                    out.append(_Snapshot(series, profiles, series.layout, len(series.layout)))
            return out

    def _stack_filter(self, call_site: Sequence[str]) -> Callable[[int], bool] | None:
        if not call_site:
            return None
        prefix = tuple(call_site)
        n = len(prefix)
        with self._lock:
            stacks = self._stacks
        cache: dict[int, bool] = {}

        def keep(sid: int) -> bool:
            hit = cache.get(sid)
            if hit is None:
                hit = stacks[sid][:n] == prefix
                cache[sid] = hit
            return hit

        return keep

    def select(
        self,
        matchers: Sequence[Matcher],
        start_ms: int,
        end_ms: int,
        *,
        call_site: Sequence[str] = (),
    ) -> dict[Stack, int]:
        """Merged stack values of every matching profile with timestamp in [start, end].

        ``call_site`` keeps only stacks that start with those frames (root first).
        """
        merged: dict[int, int] = {}
        get = merged.get
        keep = self._stack_filter(call_site)
        for snap in self._matching(matchers, start_ms, end_ms):
            layout = snap.layout
            for li, v in enumerate(snap.local_sums()):
                if v:
                    sid = layout[li]
                    if keep is None or keep(sid):
                        merged[sid] = get(sid, 0) + v
        with self._lock:
            stacks = self._stacks
        return {stacks[sid]: v for sid, v in merged.items()}

    def select_totals(
        self,
        matchers: Sequence[Matcher],
        start_ms: int,
        end_ms: int,
        *,
        call_site: Sequence[str] = (),
    ) -> list[SeriesTotals]:
        """Per-profile totals of every matching series in [start, end] (for SelectSeries)."""
        keep = self._stack_filter(call_site)
        out: list[SeriesTotals] = []
        for snap in self._matching(matchers, start_ms, end_ms):
            if keep is None:
                points = [(p.timestamp_ms, p.total) for p in snap.profiles]
            else:
                mask = [keep(snap.layout[i]) for i in range(snap.width)]
                points = []
                for p in snap.profiles:
                    if p.index is None:
                        total = sum(v for i, v in enumerate(p.values) if mask[i])
                    else:
                        total = sum(v for i, v in zip(p.index, p.values, strict=True) if mask[i])
                    points.append((p.timestamp_ms, total))
            out.append(SeriesTotals(dict(snap.series.labels), points))
        return out

    def series(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[dict[str, str]]:
        """Full label sets of the matching series that have a profile in [start, end]."""
        with self._lock:
            return [
                dict(s.labels)
                for s in self._series.values()
                if _all_match(matchers, s.labels) and s.has_range(start_ms, end_ms)
            ]

    def label_names(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[str]:
        """Sorted label names of the matching series in range."""
        names: set[str] = set()
        for labels in self.series(matchers, start_ms, end_ms):
            names.update(labels)
        return sorted(names)

    def label_values(
        self, name: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[str]:
        """Sorted distinct non-empty values of one label over the matching series in range."""
        values = {
            labels[name] for labels in self.series(matchers, start_ms, end_ms) if labels.get(name)
        }
        return sorted(values)

    def profile_types(self, start_ms: int, end_ms: int) -> list[str]:
        """Sorted distinct ``__profile_type__`` values with a profile in [start, end]."""
        return self.label_values("__profile_type__", (), start_ms, end_ms)

    def stats(self) -> StoreStats:
        """Oldest and newest profile times and sizes."""
        with self._lock:
            return StoreStats(
                data_ingested=self._profiles > 0,
                oldest_ms=self._oldest,
                newest_ms=self._newest,
                profiles=self._profiles,
                series=len(self._series),
                stacks=len(self._stacks),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._profiles
