"""Regressions: open/update/resolve by compare-and-swap, one open row per fingerprint."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from watcher.findings import Finding
from watcher.store.records import OutboxEntry, RegressionChange
from watcher.store.repo import Repository

from .store_support import T0, run_together

MakeFinding = Callable[..., Finding]


def test_first_finding_opens_and_later_ones_update(
    repo: Repository, make_finding: MakeFinding
) -> None:
    """The first sighting opens a regression; the next one updates it and bumps its version."""
    opened, created = repo.open_or_update_regression(make_finding(), T0)
    assert created
    assert (opened.state, opened.version, opened.seen_count, opened.open_key) == ("open", 1, 1, 1)
    assert opened.fingerprint == make_finding().fingerprint
    assert opened.details["callers"] == ["main", "pkg.Handler"]
    assert opened.opened_at == T0

    later = T0 + timedelta(minutes=10)
    updated, created = repo.open_or_update_regression(make_finding(current_share=0.02), later)
    assert not created
    assert updated.id == opened.id
    assert (updated.version, updated.seen_count) == (2, 2)
    assert updated.current_share == 0.02
    assert (updated.opened_at, updated.last_seen_at) == (T0, later)
    assert [e.event for e in repo.regression_events(opened.id)] == ["opened"]


def test_higher_severity_escalates_and_is_logged(
    repo: Repository, make_finding: MakeFinding
) -> None:
    """A rise in severity is kept and recorded as an 'escalated' transition; a fall is not."""
    first, _ = repo.open_or_update_regression(make_finding(severity="warning"), T0)
    repo.open_or_update_regression(make_finding(severity="critical"), T0 + timedelta(minutes=1))
    after, _ = repo.open_or_update_regression(
        make_finding(severity="info"), T0 + timedelta(minutes=2)
    )
    assert after.severity == "critical"
    events = repo.regression_events(first.id)
    assert [e.event for e in events] == ["opened", "escalated"]
    assert events[1].details == {"from": "warning", "to": "critical"}


def test_resolve_needs_the_current_version(repo: Repository, make_finding: MakeFinding) -> None:
    """Resolving with a stale version does nothing; with the current one it resolves once."""
    opened, _ = repo.open_or_update_regression(make_finding(), T0)
    updated, _ = repo.open_or_update_regression(make_finding(), T0 + timedelta(minutes=1))
    assert not repo.resolve_regression(opened.id, T0, expected_version=opened.version)
    assert repo.resolve_regression(updated.id, T0 + timedelta(hours=1), updated.version)
    assert not repo.resolve_regression(updated.id, T0 + timedelta(hours=1), updated.version)
    resolved = repo.regression(opened.id)
    assert resolved is not None
    assert (resolved.state, resolved.open_key, resolved.version) == ("resolved", None, 3)
    assert resolved.resolved_at == T0 + timedelta(hours=1)
    assert [e.event for e in repo.regression_events(opened.id)] == ["opened", "resolved"]


def test_a_resolved_fingerprint_can_open_again(repo: Repository, make_finding: MakeFinding) -> None:
    """After resolution the same fingerprint opens a new regression; history is kept."""
    first, _ = repo.open_or_update_regression(make_finding(), T0)
    assert repo.resolve_regression(first.id, T0 + timedelta(hours=1), first.version)
    second, created = repo.open_or_update_regression(make_finding(), T0 + timedelta(hours=2))
    assert created and second.id != first.id
    assert [r.id for r in repo.open_regressions()] == [second.id]
    assert {r.id for r in repo.regressions()} == {first.id, second.id}
    assert [r.id for r in repo.regressions(open_only=True)] == [second.id]


def test_database_refuses_a_second_open_row_per_fingerprint(
    repo: Repository, engine: Engine, make_finding: MakeFinding
) -> None:
    """The unique (fingerprint, open_key) constraint itself forbids two open regressions."""
    opened, _ = repo.open_or_update_regression(make_finding(), T0)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        columns = [c for c in sa.inspect(engine).get_columns("regressions") if c["name"] != "id"]
        names = ", ".join(c["name"] for c in columns)
        copy = f"INSERT INTO regressions ({names}) SELECT {names} FROM regressions WHERE id = :id"
        conn.execute(sa.text(copy), {"id": opened.id})


def test_open_regressions_filters_by_service(repo: Repository, make_finding: MakeFinding) -> None:
    """open_regressions narrows by service and profile type."""
    repo.open_or_update_regression(make_finding(service="a"), T0)
    repo.open_or_update_regression(make_finding(service="b"), T0)
    repo.open_or_update_regression(make_finding(service="b", profile_type="memory:x:bytes:y:z"), T0)
    assert {r.service for r in repo.open_regressions("b")} == {"b"}
    assert len(repo.open_regressions("b")) == 2
    assert len(repo.open_regressions("b", "memory:x:bytes:y:z")) == 1


def test_racing_resolvers_exactly_one_wins(
    make_repo: Callable[[], Repository], make_finding: MakeFinding
) -> None:
    """Two replicas resolving the same version at the same instant: exactly one succeeds."""
    first, second = make_repo(), make_repo()
    for round_ in range(10):
        opened, _ = first.open_or_update_regression(make_finding(function=f"f{round_}"), T0)
        wins = run_together(
            lambda r=opened: first.resolve_regression(r.id, T0, r.version),
            lambda r=opened: second.resolve_regression(r.id, T0, r.version),
        )
        assert sorted(wins) == [False, True]
        events = first.regression_events(opened.id)
        assert [e.event for e in events] == ["opened", "resolved"]


def test_racing_openers_open_one_regression(
    make_repo: Callable[[], Repository], make_finding: MakeFinding
) -> None:
    """Two replicas reporting the same new finding at once: one opens it, one updates it."""
    first, second = make_repo(), make_repo()
    for round_ in range(10):
        finding = make_finding(function=f"g{round_}")
        results = run_together(
            lambda f=finding: first.open_or_update_regression(f, T0),
            lambda f=finding: second.open_or_update_regression(f, T0),
        )
        assert sorted(created for _, created in results) == [False, True]
        open_rows = [r for r in first.open_regressions() if r.function == f"g{round_}"]
        assert len(open_rows) == 1
        assert open_rows[0].version == 2 and open_rows[0].seen_count == 2


def test_update_retries_once_after_losing_the_compare_and_swap(
    backend: str,
    migrated_url: str,
    make_test_engine: Callable[[str], Engine],
    make_finding: MakeFinding,
) -> None:
    """A concurrent update between our read and our CAS makes us re-read and apply on top."""
    if backend == "sqlite":
        pytest.skip("SQLite writers hold the lock from BEGIN IMMEDIATE: no interleaving")
    mine_engine, other_engine = make_test_engine(migrated_url), make_test_engine(migrated_url)
    mine, other = Repository(mine_engine), Repository(other_engine)
    opened, _ = mine.open_or_update_regression(make_finding(), T0)
    interfered: list[int] = []

    @event.listens_for(mine_engine, "before_cursor_execute")
    def interfere(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE REGRESSIONS") and not interfered:
            updated, _ = other.open_or_update_regression(make_finding(), T0)
            interfered.append(updated.version)

    final, created = mine.open_or_update_regression(make_finding(current_share=0.5), T0)
    assert interfered == [2]
    assert not created
    assert final.version == 3 and final.seen_count == 3 and final.current_share == 0.5


def test_findings_and_alerts_commit_together(repo: Repository, make_finding: MakeFinding) -> None:
    """Regressions and their outbox rows appear in one transaction; replays enqueue nothing."""

    def plan(changes: list[RegressionChange]) -> list[OutboxEntry]:
        return [
            OutboxEntry(
                f"{c.regression.fingerprint}:{c.change}:{c.regression.opened_at.isoformat()}",
                "slack",
                "resolved" if c.change == "resolved" else "firing",
                {"function": c.regression.function},
                (c.regression.id,),
            )
            for c in changes
            if c.change in ("opened", "resolved")
        ]

    findings = [make_finding(function="a"), make_finding(function="b")]
    outcome = repo.record_findings_and_enqueue(findings, now=T0, plan=plan)
    assert [c.change for c in outcome.changes] == ["opened", "opened"]
    assert len(outcome.enqueued) == 2 and outcome.duplicates == ()
    assert repo.outbox_depth() == 2

    again = repo.record_findings_and_enqueue(
        findings,
        now=T0,
        plan=lambda ch: plan([RegressionChange(c.regression, "opened") for c in ch]),
    )
    assert [c.change for c in again.changes] == ["updated", "updated"]
    assert again.enqueued == () and len(again.duplicates) == 2
    assert repo.outbox_depth() == 2

    a = next(c.regression for c in again.changes if c.regression.function == "a")
    resolved = repo.record_findings_and_enqueue(
        [], now=T0 + timedelta(hours=1), plan=plan, resolve=[(a.id, a.version), (a.id, 1)]
    )
    assert [c.change for c in resolved.changes] == ["resolved"]
    assert len(resolved.enqueued) == 1
    item = repo.outbox_item(resolved.enqueued[0])
    assert item is not None and item.kind == "resolved" and item.regression_ids == [a.id]


def test_a_failing_plan_commits_nothing(repo: Repository, make_finding: MakeFinding) -> None:
    """If building the alerts fails, no regression is recorded either."""

    def plan(changes: list[RegressionChange]) -> list[OutboxEntry]:
        raise RuntimeError("template bug")

    with pytest.raises(RuntimeError, match="template bug"):
        repo.record_findings_and_enqueue([make_finding()], now=T0, plan=plan)
    assert repo.regressions() == []
    assert repo.outbox_depth() == 0
