"""Pair claims across replicas, and run bookkeeping."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

import pytest

from watcher.errors import StoreError
from watcher.store.repo import Repository

from .store_support import T0, run_together


def test_claim_pair_is_exactly_once_across_engines(make_repo: Callable[[], Repository]) -> None:
    """Two replicas (two engines) racing over the same pairs: every pair has exactly one owner."""
    first, second = make_repo(), make_repo()
    pairs = [(f"svc{i}", "cpu") for i in range(40)]
    order_a = list(pairs)
    order_b = list(pairs)
    random.Random(7).shuffle(order_b)

    def claim_all(repo: Repository, owner: str, order: list[tuple[str, str]]) -> set[str]:
        return {s for s, p in order if repo.claim_pair("watch", s, p, T0, owner, now=T0)}

    won_a, won_b = run_together(
        lambda: claim_all(first, "a", order_a), lambda: claim_all(second, "b", order_b)
    )
    assert not won_a & won_b
    assert won_a | won_b == {s for s, _ in pairs}


def test_claims_are_per_scheduled_time(repo: Repository) -> None:
    """The same pair at the next scheduled time can be claimed again."""
    assert repo.claim_pair("watch", "svc", "cpu", T0, "a")
    assert not repo.claim_pair("watch", "svc", "cpu", T0, "b")
    assert repo.claim_pair("watch", "svc", "cpu", T0 + timedelta(minutes=5), "b")
    assert repo.claim_pair("other-watch", "svc", "cpu", T0, "b")


def test_run_lifecycle_counts_pairs(repo: Repository) -> None:
    """A run's counts come from its pair results; status follows from them."""
    run_id = repo.start_run("hourly", T0, owner="replica-1", pairs_total=3, now=T0)
    started = repo.run(run_id)
    assert started is not None and started.status == "running" and started.finished_at is None
    repo.record_pair(run_id, "a", "cpu", "ok", duration_ms=120.0, query_count=3, findings=1)
    repo.record_pair(run_id, "b", "cpu", "failed", error="503 from querier", query_count=4)
    repo.record_pair(run_id, "c", "cpu", "skipped")
    finished = repo.finish_run(run_id, now=T0 + timedelta(seconds=30))
    assert (finished.status, finished.pairs_total, finished.pairs_ok, finished.pairs_failed) == (
        "partial",
        3,
        1,
        1,
    )
    assert finished.finished_at == T0 + timedelta(seconds=30)
    results = repo.pair_results(run_id)
    assert [(r.service, r.status, r.query_count) for r in results] == [
        ("a", "ok", 3),
        ("b", "failed", 4),
        ("c", "skipped", 0),
    ]
    assert results[1].error == "503 from querier"
    assert [r.id for r in repo.runs(watch="hourly")] == [run_id]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [((), "ok"), (("ok", "ok"), "ok"), (("failed",), "failed"), (("ok", "failed"), "partial")],
)
def test_run_status_is_derived_from_pairs(
    repo: Repository, statuses: tuple[str, ...], expected: str
) -> None:
    """ok without failures, failed without successes, partial otherwise."""
    run_id = repo.start_run("w", T0, owner="o", now=T0)
    for i, status in enumerate(statuses):
        repo.record_pair(run_id, f"s{i}", "cpu", status)
    finished = repo.finish_run(run_id, now=T0)
    assert finished.status == expected
    assert finished.pairs_total == len(statuses)


def test_a_run_finishes_once(repo: Repository) -> None:
    """Finishing a finished (or unknown) run is an error, not a silent overwrite."""
    run_id = repo.start_run("w", T0, owner="o", now=T0)
    repo.finish_run(run_id, status="failed", error="querier down", now=T0)
    with pytest.raises(StoreError, match="already finished"):
        repo.finish_run(run_id, now=T0)
    with pytest.raises(StoreError, match="does not exist"):
        repo.finish_run(run_id + 1000, now=T0)
    run = repo.run(run_id)
    assert run is not None and (run.status, run.error) == ("failed", "querier down")


def test_pair_status_is_checked(repo: Repository) -> None:
    """Pair status is one of ok, failed, skipped."""
    run_id = repo.start_run("w", T0, owner="o", now=T0)
    with pytest.raises(StoreError, match="ok, failed, skipped"):
        repo.record_pair(run_id, "s", "cpu", "meh")
