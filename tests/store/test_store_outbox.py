"""Outbox: idempotent enqueue, leases that never hand a row to two owners, channel state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from watcher.errors import StoreError
from watcher.findings import Finding
from watcher.store.repo import Repository

from .store_support import T0, run_together

LEASE = timedelta(minutes=1)


def test_enqueue_is_idempotent_on_dedup_key(repo: Repository) -> None:
    """A second enqueue with the same key is a no-op returning False; the first payload stays."""
    assert repo.enqueue("fp1:firing", "slack", "firing", {"n": 1}, [7], now=T0)
    assert not repo.enqueue("fp1:firing", "slack", "firing", {"n": 2}, [7], now=T0)
    assert not repo.enqueue("fp1:firing", "webhook", "repeat", {"n": 3}, now=T0)
    [item] = repo.outbox_items()
    assert (item.payload, item.channel, item.regression_ids) == ({"n": 1}, "slack", [7])
    assert (item.status, item.attempts, item.next_attempt_at) == ("pending", 0, T0)
    assert repo.outbox_depth() == 1


def test_enqueue_racing_replicas_store_one_row(make_repo: Callable[[], Repository]) -> None:
    """Two replicas enqueueing the same alert at the same instant: one row, one True."""
    first, second = make_repo(), make_repo()
    for round_ in range(10):
        key = f"fp{round_}:firing"
        results = run_together(
            lambda k=key: first.enqueue(k, "slack", "firing", {"by": "first"}, now=T0),
            lambda k=key: second.enqueue(k, "slack", "firing", {"by": "second"}, now=T0),
        )
        assert sorted(results) == [False, True]
    assert first.outbox_depth() == 10


def test_enqueue_refuses_unknown_kinds(repo: Repository) -> None:
    """The kind is one of firing, resolved, repeat."""
    with pytest.raises(StoreError, match="firing, resolved, repeat"):
        repo.enqueue("k", "slack", "boom", {}, now=T0)


def test_claim_due_leases_in_order_and_skips_future_rows(repo: Repository) -> None:
    """Due rows are leased oldest first, counted as an attempt; rows not yet due stay."""
    repo.enqueue("b", "slack", "firing", {}, now=T0, not_before=T0 + timedelta(seconds=1))
    repo.enqueue("a", "slack", "firing", {}, now=T0)
    repo.enqueue("later", "slack", "firing", {}, now=T0, not_before=T0 + timedelta(hours=1))
    claimed = repo.claim_due("w1", T0 + timedelta(seconds=5), LEASE, limit=10)
    assert [c.dedup_key for c in claimed] == ["a", "b"]
    assert all(c.status == "sending" and c.lease_owner == "w1" for c in claimed)
    assert all(c.attempts == 1 for c in claimed)
    assert claimed[0].lease_until == T0 + timedelta(seconds=5) + LEASE
    assert repo.claim_due("w2", T0 + timedelta(seconds=5), LEASE) == []
    assert repo.outbox_depth() == 3


def test_claim_due_respects_the_limit(repo: Repository) -> None:
    """At most `limit` rows are leased per call."""
    for i in range(5):
        repo.enqueue(f"k{i}", "slack", "firing", {}, now=T0)
    assert len(repo.claim_due("w", T0, LEASE, limit=2)) == 2
    assert len(repo.claim_due("w", T0, LEASE, limit=10)) == 3


def test_two_owners_never_get_the_same_row(make_repo: Callable[[], Repository]) -> None:
    """Owners claiming concurrently split the rows between them; none is leased twice."""
    first, second = make_repo(), make_repo()
    for round_ in range(5):
        for i in range(20):
            first.enqueue(f"r{round_}-{i}", "slack", "firing", {}, now=T0)
        got_a, got_b = run_together(
            lambda: first.claim_due("owner-a", T0, LEASE, limit=15),
            lambda: second.claim_due("owner-b", T0, LEASE, limit=15),
        )
        ids_a, ids_b = {c.id for c in got_a}, {c.id for c in got_b}
        assert not ids_a & ids_b
        assert len(ids_a | ids_b) == 20
        stored = {i.id: i.lease_owner for i in first.outbox_items(status="sending", limit=1000)}
        assert all(stored[i] == "owner-a" for i in ids_a)
        assert all(stored[i] == "owner-b" for i in ids_b)
        for item in got_a:
            assert first.mark_sent(item.id, "owner-a", now=T0)
        for item in got_b:
            assert second.mark_sent(item.id, "owner-b", now=T0)


def test_expired_lease_moves_to_another_owner(repo: Repository) -> None:
    """A crashed owner's lease expires; the row is re-leased and the old owner cannot finish."""
    repo.enqueue("k", "slack", "firing", {}, now=T0)
    [first] = repo.claim_due("dead", T0, LEASE)
    assert repo.claim_due("alive", T0 + LEASE / 2, LEASE) == []
    [again] = repo.claim_due("alive", T0 + LEASE * 2, LEASE)
    assert again.id == first.id and again.attempts == 2 and again.lease_owner == "alive"
    assert not repo.mark_sent(first.id, "dead", now=T0 + LEASE * 2)
    assert not repo.mark_retry(first.id, "dead", "late", T0)
    assert repo.mark_sent(first.id, "alive", now=T0 + LEASE * 2)
    item = repo.outbox_item(first.id)
    assert item is not None
    assert (item.status, item.sent_at, item.lease_owner) == ("sent", T0 + LEASE * 2, None)
    assert repo.outbox_depth() == 0


def test_retry_reschedules_and_permanent_failure_stops(repo: Repository) -> None:
    """mark_retry gives the row back for later; mark_permanent_failure ends it."""
    repo.enqueue("k", "webhook", "firing", {}, now=T0)
    [item] = repo.claim_due("w", T0, LEASE)
    retry_at = T0 + timedelta(minutes=5)
    assert repo.mark_retry(item.id, "w", "503 Service Unavailable", retry_at)
    assert repo.claim_due("w", retry_at - timedelta(seconds=1), LEASE) == []
    [item] = repo.claim_due("w", retry_at, LEASE)
    assert item.last_error == "503 Service Unavailable" and item.attempts == 2
    assert repo.mark_permanent_failure(item.id, "w", "404 no such hook")
    assert repo.claim_due("w", retry_at + timedelta(days=1), LEASE) == []
    final = repo.outbox_item(item.id)
    assert final is not None
    assert (final.status, final.last_error) == ("failed_permanent", "404 no such hook")
    assert repo.outbox_depth() == 0


def test_mark_sent_stamps_the_regressions(
    repo: Repository, make_finding: Callable[..., Finding]
) -> None:
    """Delivering an alert records when its regressions were last notified."""
    regression, _ = repo.open_or_update_regression(make_finding(), T0)
    repo.enqueue("k", "slack", "firing", {}, [regression.id], now=T0)
    [item] = repo.claim_due("w", T0, LEASE)
    sent_at = T0 + timedelta(seconds=3)
    assert repo.mark_sent(item.id, "w", now=sent_at)
    stored = repo.regression(regression.id)
    assert stored is not None
    assert stored.last_notified_at == sent_at
    assert stored.version == regression.version  # not a state change: no CAS conflict


def test_delivery_attempts_are_logged(repo: Repository) -> None:
    """Every attempt is kept with status, error and duration, oldest first."""
    repo.enqueue("k", "slack", "firing", {}, now=T0)
    [item] = repo.claim_due("w", T0, LEASE)
    repo.record_attempt(item.id, ok=False, at=T0, status_code=503, error="busy", duration_ms=12.5)
    repo.record_attempt(item.id, ok=True, at=T0 + timedelta(seconds=1), status_code=200)
    attempts = repo.delivery_attempts(item.id)
    assert [(a.ok, a.status_code, a.error) for a in attempts] == [
        (False, 503, "busy"),
        (True, 200, None),
    ]
    assert attempts[0].duration_ms == 12.5


def test_disabled_channels_are_not_claimed(repo: Repository) -> None:
    """A disabled channel keeps its rows pending until it is enabled again."""
    repo.enqueue("s", "slack", "firing", {}, now=T0)
    repo.enqueue("w", "webhook", "firing", {}, now=T0)
    assert repo.channel_disabled("slack") is None
    repo.disable_channel("slack", "invalid_token", now=T0)
    repo.disable_channel("slack", "channel_not_found", now=T0)  # updates, no duplicate
    assert repo.channel_disabled("slack") == "channel_not_found"
    assert repo.disabled_channels() == {"slack": "channel_not_found"}
    assert [c.channel for c in repo.claim_due("w", T0, LEASE)] == ["webhook"]
    assert repo.enable_channel("slack")
    assert not repo.enable_channel("slack")
    assert repo.channel_disabled("slack") is None
    assert [c.channel for c in repo.claim_due("w", T0, LEASE)] == ["slack"]
