"""ProfileStore: derived labels, interning, range selection, metadata, thread safety."""

from __future__ import annotations

import threading

import pytest

from watcher.errors import ProfileTypeError
from watcher.sandbox.records import ProfileRecord
from watcher.sandbox.store import ProfileStore
from watcher.selectors import Matcher, parse_selector

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
ALLOC = "memory:alloc_space:bytes:space:bytes"
PYSPY = "process_cpu:samples:count::milliseconds"


@pytest.fixture
def store() -> ProfileStore:
    s = ProfileStore()
    s.add({"service_name": "api", "env": "prod"}, CPU, 1_000, {("main", "a"): 5, ("main", "b"): 1})
    s.add({"service_name": "api", "env": "prod"}, CPU, 2_000, {("main", "a"): 2})
    s.add({"service_name": "db", "env": "dev"}, CPU, 1_500, {("main", "c"): 7})
    s.add({"service_name": "api", "env": "prod"}, ALLOC, 1_000, {("main", "alloc"): 100})
    return s


def test_derived_labels_and_default_service() -> None:
    s = ProfileStore()
    s.add({"__name__": "ignored", "pod": "p1"}, CPU + ":delta", 10, {("x",): 1})
    (labels,) = s.series([], 0, 100)
    assert labels == {
        "__name__": "process_cpu",
        "__profile_type__": CPU,
        "__type__": "cpu",
        "__unit__": "nanoseconds",
        "__period_type__": "cpu",
        "__period_unit__": "nanoseconds",
        "__service_name__": "unknown_service",
        "service_name": "unknown_service",
        "pod": "p1",
    }


def test_empty_period_type_is_an_absent_label() -> None:
    s = ProfileStore()
    s.add({"service_name": "py"}, PYSPY, 10, {("x",): 1})
    (labels,) = s.series([], 0, 100)
    assert "__period_type__" not in labels
    assert labels["__profile_type__"] == PYSPY
    assert s.profile_types(0, 100) == [PYSPY]


def test_bad_profile_type_is_refused() -> None:
    with pytest.raises(ProfileTypeError, match=r'got\(3\): "a:b:c"'):
        ProfileStore().add({}, "a:b:c", 1, {("x",): 1})


def test_select_merges_matching_profiles_in_closed_range(store: ProfileStore) -> None:
    cpu = [Matcher("__profile_type__", "=", CPU)]
    assert store.select(cpu, 1_000, 2_000) == {("main", "a"): 7, ("main", "b"): 1, ("main", "c"): 7}
    assert store.select(cpu, 1_001, 1_999) == {("main", "c"): 7}
    assert store.select(cpu, 2_000, 2_000) == {("main", "a"): 2}
    assert store.select(cpu, 2_001, 9_000) == {}
    api = [*cpu, *parse_selector('{service_name="api"}')]
    assert store.select(api, 0, 9_000) == {("main", "a"): 7, ("main", "b"): 1}
    assert store.select([Matcher("env", "=~", "pro.*"), *cpu], 0, 9_000)[("main", "a")] == 7


def test_select_call_site_prefix(store: ProfileStore) -> None:
    cpu = [Matcher("__profile_type__", "=", CPU)]
    assert store.select(cpu, 0, 9_000, call_site=("main", "a")) == {("main", "a"): 7}
    assert store.select(cpu, 0, 9_000, call_site=("nope",)) == {}


def test_zero_and_negative_values_are_dropped() -> None:
    s = ProfileStore()
    s.add({}, CPU, 1, {("a",): 0, ("b",): -3, ("c",): 2})
    assert s.select([], 0, 10) == {("c",): 2}


def test_stacks_are_interned_across_profiles() -> None:
    s = ProfileStore()
    for ts in range(100):
        s.add({"service_name": f"svc{ts % 3}"}, CPU, ts, {("main", "work"): ts + 1, ("main",): 1})
    stats = s.stats()
    assert stats.stacks == 2
    assert stats.profiles == 100
    assert stats.series == 3
    a = s.select([Matcher("service_name", "=", "svc0")], 0, 99)
    (stack,) = [k for k in a if len(k) == 2]
    b = s.select([Matcher("service_name", "=", "svc1")], 0, 99)
    assert next(k for k in b if len(k) == 2) is stack  # same interned tuple


def test_out_of_order_inserts_are_kept_sorted() -> None:
    s = ProfileStore()
    for ts in (50, 10, 30, 20, 40):
        s.add({}, CPU, ts, {("f",): ts})
    (series,) = s.select_totals([], 0, 100)
    assert [t for t, _ in series.points] == [10, 20, 30, 40, 50]
    assert [v for _, v in series.points] == [10, 20, 30, 40, 50]


def test_totals_per_profile(store: ProfileStore) -> None:
    got = {
        s.labels["service_name"]: list(s.points)
        for s in store.select_totals([Matcher("__profile_type__", "=", CPU)], 0, 9_000)
    }
    assert got == {"api": [(1_000, 6), (2_000, 2)], "db": [(1_500, 7)]}
    filtered = store.select_totals(
        [Matcher("service_name", "=", "api"), Matcher("__name__", "=", "process_cpu")],
        0,
        9_000,
        call_site=("main", "b"),
    )
    assert [list(s.points) for s in filtered] == [[(1_000, 1), (2_000, 0)]]


def test_metadata(store: ProfileStore) -> None:
    assert store.label_values("service_name", [], 0, 9_000) == ["api", "db"]
    assert store.label_values("service_name", [], 1_400, 1_600) == ["db"]
    assert store.label_values("env", parse_selector('{service_name="api"}'), 0, 9_000) == ["prod"]
    assert store.label_values("missing", [], 0, 9_000) == []
    names = store.label_names([], 0, 9_000)
    assert names == sorted(names)
    assert {"env", "service_name", "__profile_type__", "__service_name__"} <= set(names)
    assert store.profile_types(0, 9_000) == [ALLOC, CPU]
    assert store.profile_types(1_400, 1_600) == [CPU]
    assert len(store.series([], 0, 9_000)) == 3
    assert store.series([], 5_000, 9_000) == []


def test_stats_and_reset(store: ProfileStore) -> None:
    stats = store.stats()
    assert (stats.data_ingested, stats.oldest_ms, stats.newest_ms) == (True, 1_000, 2_000)
    store.reset()
    stats = store.stats()
    assert (stats.data_ingested, stats.oldest_ms, stats.newest_ms, len(store)) == (
        False,
        None,
        None,
        0,
    )
    assert store.select([], 0, 10_000) == {}


def test_records_api() -> None:
    s = ProfileStore()
    n = s.add_records(
        ProfileRecord({"service_name": "x"}, CPU, ts, {("a",): 1}) for ts in range(1000)
    )
    assert n == 1000 == len(s)
    s.add_record(ProfileRecord({"service_name": "x"}, CPU, 5, {("a",): 1}))
    assert s.select([], 5, 5) == {("a",): 2}


def test_wait_for_wakes_on_ingest() -> None:
    s = ProfileStore()
    added = threading.Event()

    def writer() -> None:
        added.wait()
        s.add({"service_name": "late"}, CPU, 1, {("x",): 1})

    thread = threading.Thread(target=writer)
    thread.start()
    assert not s.wait_for(lambda: len(s) > 0, timeout=0)
    added.set()
    assert s.wait_for(lambda: s.label_values("service_name", [], 0, 10) == ["late"], timeout=10)
    thread.join()


def test_concurrent_writers_and_readers() -> None:
    s = ProfileStore()
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def write(worker: int) -> None:
        start.wait()
        for i in range(300):
            s.add({"service_name": f"w{worker}"}, CPU, i, {("main", f"f{i % 7}"): 1})

    def read() -> None:
        start.wait()
        try:
            for _ in range(100):
                merged = s.select([], 0, 1_000)
                assert all(v > 0 for v in merged.values())
                s.label_names([], 0, 1_000)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(s) == 1200
    assert sum(s.select([], 0, 1_000).values()) == 1200
