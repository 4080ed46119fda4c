"""Snapshots: batched writes, ranks, latest and ranged reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from watcher.store.records import FunctionStat, SnapshotInput
from watcher.store.repo import Repository

from .store_support import T0

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"


def snapshot(service: str, hour: int, functions: int = 5, **extra: Any) -> SnapshotInput:
    end = T0 + timedelta(hours=hour)
    return SnapshotInput(
        service=service,
        profile_type=extra.pop("profile_type", CPU),
        deployment="prod",
        window_start=end - timedelta(hours=1),
        window_end=end,
        selector=f'{{service_name="{service}"}}',
        total_value=10**12 + hour,
        sample_count=1e5,
        functions=[
            FunctionStat(f"{service}.f{j}", self_value=(j % 3) * 10, total_value=1000 - j)
            for j in range(functions)
        ],
        truncated_share=0.001,
        labels={"cluster": "eu-1"},
        version="v1.2.3",
        **extra,
    )


@pytest.fixture
def statements(engine: Engine) -> Iterator[Counter[str]]:
    """Counts the INSERT statements SQLAlchemy executes, per table (one per execute call)."""
    counts: Counter[str] = Counter()

    def before_execute(conn: Any, clauseelement: Any, *args: Any) -> None:
        table = getattr(clauseelement, "table", None)
        if getattr(clauseelement, "is_insert", False) and table is not None:
            counts[table.name] += 1

    def before_driver_sql(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        for prefix in ("INSERT INTO snapshot_functions", "COPY snapshot_functions"):
            if statement.startswith(prefix):
                counts["snapshot_functions"] += 1

    event.listen(engine, "before_execute", before_execute)
    event.listen(engine, "before_cursor_execute", before_driver_sql)
    yield counts
    event.remove(engine, "before_execute", before_execute)
    event.remove(engine, "before_cursor_execute", before_driver_sql)


def test_snapshots_are_written_in_two_batched_statements(
    repo: Repository, statements: Counter[str], backend: str
) -> None:
    """However many snapshots: one insert for them, one bulk insert for all functions."""
    inputs = [snapshot(f"svc{i}", hour=1, functions=50) for i in range(30)]
    ids = repo.save_snapshots(inputs, now=T0)
    assert len(ids) == len(set(ids)) == 30
    assert statements["snapshots"] == 1
    if backend == "sqlite":  # PostgreSQL's COPY does not pass through the cursor events
        assert statements["snapshot_functions"] == 1
    for i, snapshot_id in enumerate(ids):  # ids follow the input order
        [stored] = repo.snapshots(f"svc{i}", CPU, with_functions=True)
        assert stored.id == snapshot_id
        assert len(stored.functions) == 50


def test_snapshot_round_trips_with_ranks(repo: Repository) -> None:
    """Every field and function comes back; ranks are 1-based, largest first, ties by name."""
    [snapshot_id] = repo.save_snapshots([snapshot("checkout", hour=2, functions=6)], now=T0)
    stored = repo.latest_snapshot("checkout", CPU)
    assert stored is not None and stored.id == snapshot_id
    assert (stored.window_start, stored.window_end) == (
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=2),
    )
    assert stored.total_value == 10**12 + 2 and stored.sample_count == 1e5
    assert stored.labels == {"cluster": "eu-1"} and stored.version == "v1.2.3"
    assert stored.created_at == T0 and stored.truncated_share == 0.001
    # self values: f0=0 f1=10 f2=20 f3=0 f4=10 f5=20 -> f2,f5 (20), f1,f4 (10), f0,f3 (0)
    assert [(f.function, f.rank_self) for f in stored.functions] == [
        ("checkout.f2", 1),
        ("checkout.f5", 2),
        ("checkout.f1", 3),
        ("checkout.f4", 4),
        ("checkout.f0", 5),
        ("checkout.f3", 6),
    ]
    by_name = {f.function: f for f in stored.functions}
    assert [by_name[f"checkout.f{j}"].rank_total for j in range(6)] == [1, 2, 3, 4, 5, 6]
    assert by_name["checkout.f5"].self_value == 20 and by_name["checkout.f5"].total_value == 995


def test_large_values_survive(repo: Repository) -> None:
    """Values beyond 32 bits (nanoseconds over an hour) are stored exactly."""
    big = 7 * 3600 * 10**9 * 64
    item = SnapshotInput(
        "svc",
        CPU,
        "prod",
        T0,
        T0 + timedelta(hours=1),
        "{}",
        big,
        1.5,
        functions=[FunctionStat("main", big, big)],
    )
    repo.save_snapshots([item], now=T0)
    stored = repo.latest_snapshot("svc", CPU)
    assert stored is not None
    assert stored.total_value == big and stored.functions[0].self_value == big


def test_latest_and_ranged_reads(repo: Repository) -> None:
    """latest_snapshot picks the latest window; snapshots() filters and orders newest first."""
    repo.save_snapshots([snapshot("a", hour=h) for h in (1, 3, 2)], now=T0)
    repo.save_snapshots([snapshot("a", hour=5, profile_type="memory:alloc:bytes:space:bytes")])
    repo.save_snapshots([snapshot("b", hour=9)], now=T0)
    latest = repo.latest_snapshot("a", CPU)
    assert latest is not None and latest.window_end == T0 + timedelta(hours=3)
    assert len(latest.functions) == 5
    assert [s.window_end.hour - T0.hour for s in repo.snapshots("a", CPU)] == [3, 2, 1]
    assert len(repo.snapshots("a")) == 4
    ranged = repo.snapshots("a", CPU, since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=3))
    assert [s.window_end for s in ranged] == [T0 + timedelta(hours=3), T0 + timedelta(hours=2)]
    assert all(s.functions == () for s in ranged)
    assert repo.snapshots("a", CPU, limit=1)[0].window_end == T0 + timedelta(hours=3)
    assert repo.latest_snapshot("nobody", CPU) is None


def test_saving_nothing_is_a_no_op(repo: Repository) -> None:
    """An empty batch writes nothing and returns no ids."""
    assert repo.save_snapshots([]) == []


def test_snapshot_without_functions(repo: Repository) -> None:
    """A snapshot may carry no functions (an idle service)."""
    [snapshot_id] = repo.save_snapshots([snapshot("idle", hour=1, functions=0)], now=T0)
    stored = repo.latest_snapshot("idle", CPU)
    assert stored is not None and stored.id == snapshot_id and stored.functions == ()


@pytest.mark.slow
def test_a_full_fleet_of_snapshots_is_stored(repo: Repository) -> None:
    """1,000 pairs x top-500 functions in one call: every row is stored and readable."""
    inputs = [snapshot(f"svc{i}", hour=1, functions=500) for i in range(1000)]
    ids = repo.save_snapshots(inputs, now=T0)
    assert len(ids) == 1000
    last = repo.latest_snapshot("svc999", CPU)
    assert last is not None and last.id == ids[-1] and len(last.functions) == 500
    assert {f.rank_self for f in last.functions} == set(range(1, 501))
