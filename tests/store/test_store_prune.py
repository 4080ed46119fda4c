"""Retention: prune deletes old history in bounded batches and keeps what is still live."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from watcher.errors import StoreError
from watcher.findings import Finding
from watcher.store.records import FunctionStat, SnapshotInput
from watcher.store.repo import Repository

from .store_support import T0

OLD = T0 - timedelta(days=40)
CUTOFF = T0 - timedelta(days=30)


def snap(service: str) -> SnapshotInput:
    return SnapshotInput(
        service,
        "cpu",
        "prod",
        OLD,
        OLD + timedelta(hours=1),
        "{}",
        100,
        10.0,
        functions=[FunctionStat("a", 1, 2), FunctionStat("b", 3, 4)],
    )


@pytest.fixture
def deletes(engine: Engine) -> Iterator[Counter[str]]:
    """Counts DELETE statements per table."""
    counts: Counter[str] = Counter()

    def before_execute(conn: Any, clauseelement: Any, *args: Any) -> None:
        if getattr(clauseelement, "is_delete", False):
            counts[clauseelement.table.name] += 1

    event.listen(engine, "before_execute", before_execute)
    yield counts
    event.remove(engine, "before_execute", before_execute)


def test_prune_removes_old_history_in_batches(
    repo: Repository, deletes: Counter[str], make_finding: Callable[..., Finding]
) -> None:
    """Seven old snapshots with batch size 3 take three batches; new data is untouched."""
    repo.save_snapshots([snap(f"old{i}") for i in range(7)], now=OLD)
    repo.save_snapshots([snap("new")], now=T0)

    old_run = repo.start_run("w", OLD, owner="o", now=OLD)
    repo.record_pair(old_run, "s", "cpu", "ok", now=OLD)
    repo.finish_run(old_run, now=OLD)
    running = repo.start_run("w", OLD, owner="o", now=OLD)  # still running: kept
    new_run = repo.start_run("w", T0, owner="o", now=T0)
    repo.finish_run(new_run, now=T0)

    repo.claim_pair("w", "s", "cpu", OLD, "o", now=OLD)
    repo.claim_pair("w", "s", "cpu", T0, "o", now=T0)

    repo.enqueue("sent", "slack", "firing", {}, now=OLD)
    repo.enqueue("stuck", "slack", "firing", {}, now=OLD, not_before=T0)  # undelivered: kept
    [item] = repo.claim_due("o", OLD, timedelta(minutes=1))
    repo.record_attempt(item.id, ok=True, at=OLD)
    repo.mark_sent(item.id, "o", now=OLD)

    resolved, _ = repo.open_or_update_regression(make_finding(function="gone"), OLD)
    repo.resolve_regression(resolved.id, OLD, resolved.version)
    still_open, _ = repo.open_or_update_regression(make_finding(function="open"), OLD)

    deleted = repo.prune(CUTOFF, batch_size=3)

    # 7 snapshots + 14 functions, 1 run + 1 pair, 1 claim, 1 outbox + 1 attempt,
    # 1 regression + 2 events (opened, resolved)
    assert deleted == 7 + 14 + 2 + 1 + 2 + 3
    assert deletes["snapshots"] == 3 and deletes["snapshot_functions"] == 3
    assert [s.service for s in repo.snapshots("new")] == ["new"]
    assert repo.snapshots("old0") == []
    assert {r.id for r in repo.runs()} == {running, new_run}
    assert repo.pair_results(old_run) == []
    assert not repo.claim_pair("w", "s", "cpu", T0, "other")
    assert repo.claim_pair("w", "s", "cpu", OLD, "other")  # old claim was pruned
    assert [i.dedup_key for i in repo.outbox_items()] == ["stuck"]
    assert repo.delivery_attempts(item.id) == []
    assert [r.id for r in repo.regressions()] == [still_open.id]
    assert repo.regression_events(resolved.id) == []

    assert repo.prune(CUTOFF, batch_size=3) == 0


def test_prune_with_an_exact_multiple_of_the_batch(repo: Repository, deletes: Counter[str]) -> None:
    """Six rows in batches of three: two deleting batches and one empty probe."""
    repo.save_snapshots([snap(f"s{i}") for i in range(6)], now=OLD)
    assert repo.prune(CUTOFF, batch_size=3) == 6 + 12
    assert deletes["snapshots"] == 2


def test_prune_refuses_a_useless_batch_size(repo: Repository) -> None:
    """A batch size below one would never finish."""
    with pytest.raises(StoreError, match="batch size"):
        repo.prune(CUTOFF, batch_size=0)
