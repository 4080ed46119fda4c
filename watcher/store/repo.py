"""The repository: every read and write the watcher makes, behind intention-revealing methods.

Callers never see a Session or a Connection. Each method is one transaction; values going
out are frozen dataclasses from :mod:`watcher.store.records`. SQLAlchemy errors come out as
:class:`~watcher.errors.StoreError` (password-free).

Concurrency (several replicas may share one database):

- regressions change by compare-and-swap on ``version``
  (``UPDATE ... WHERE id = :id AND version = :v``, then a row-count check); a conflicting
  open/update is retried once in a fresh transaction, then reported;
- "at most one open regression per fingerprint" is a unique constraint, so two replicas
  opening the same regression cannot both succeed;
- the outbox is idempotent on ``dedup_key`` and delivered under leases
  (:meth:`Repository.claim_due`), so no row is handed to two owners at once;
- :meth:`Repository.claim_pair` is an insert that does nothing on conflict: exactly one
  replica gets each (watch, service, profile type, scheduled time).

On SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (writers queue on the
busy timeout); on PostgreSQL they are READ COMMITTED, and claims use
``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from sqlalchemy import Table, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from watcher.errors import StoreError
from watcher.findings import Finding
from watcher.store.db import (
    bulk_insert,
    insert_ignoring_conflicts,
    skip_locked,
    store_error,
    write_transaction,
)
from watcher.store.models import (
    OUTBOX_KINDS,
    PAIR_STATUSES,
    RUN_STATUSES,
    ChannelState,
    DeliveryAttempt,
    OutboxMessage,
    PairClaim,
    PairResult,
    Regression,
    RegressionEvent,
    Run,
    Snapshot,
    SnapshotFunction,
)
from watcher.store.records import (
    DeliveryAttemptRecord,
    FindingsOutcome,
    FunctionStat,
    OutboxEntry,
    OutboxItem,
    OutboxKind,
    PairResultRecord,
    RegressionChange,
    RegressionEventRecord,
    RegressionRecord,
    RunRecord,
    SnapshotFunctionRecord,
    SnapshotInput,
    SnapshotRecord,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine, Row

__all__ = ["ABANDONED_RUN_ERROR", "Repository"]

#: The error recorded on a run whose process stopped before finishing it.
ABANDONED_RUN_ERROR = (
    "abandoned: the process running it stopped before it finished; "
    "its unfinished pairs are evaluated again at the next scheduled time"
)

R = TypeVar("R")

_RUNS: Final = cast(Table, Run.__table__)
_PAIRS: Final = cast(Table, PairResult.__table__)
_SNAPSHOTS: Final = cast(Table, Snapshot.__table__)
_FUNCTIONS: Final = cast(Table, SnapshotFunction.__table__)
_REGRESSIONS: Final = cast(Table, Regression.__table__)
_EVENTS: Final = cast(Table, RegressionEvent.__table__)
_OUTBOX: Final = cast(Table, OutboxMessage.__table__)
_ATTEMPTS: Final = cast(Table, DeliveryAttempt.__table__)
_CLAIMS: Final = cast(Table, PairClaim.__table__)
_CHANNELS: Final = cast(Table, ChannelState.__table__)

_SEVERITY_RANK: Final = {"info": 0, "warning": 1, "critical": 2}


class _Conflict(Exception):
    """Another writer changed the row between our read and our compare-and-swap."""


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now


def _record(cls: Callable[..., R], row: Row[Any]) -> R:
    return cls(**row._mapping)


def _finding_details(finding: Finding) -> dict[str, Any]:
    return {
        "callers": list(finding.callers),
        "baseline_starts": [t.isoformat() for t in finding.baseline_starts],
        "version_change": list(finding.version_change) if finding.version_change else None,
        "change_time": finding.change_time.isoformat() if finding.change_time else None,
        "labels": dict(finding.labels),
    }


def _finding_values(finding: Finding) -> dict[str, Any]:
    """Columns a finding sets on its regression, both when opening and when updating."""
    return {
        "window_start": finding.window_start,
        "window_end": finding.window_end,
        "baseline_share": finding.baseline_share,
        "current_share": finding.current_share,
        "relative_change": finding.relative_change,
        "absolute_change": finding.absolute_change,
        "impact_per_second": finding.impact_per_second,
        "impact_unit": finding.impact_unit,
        "p_value": finding.p_value,
        "ci_low": finding.ci_low,
        "ci_high": finding.ci_high,
        "mde": finding.mde,
        "details": _finding_details(finding),
    }


_FUNCTION_COLUMNS: Final = (
    "snapshot_id",
    "function",
    "self_value",
    "total_value",
    "rank_self",
    "rank_total",
)


def _function_rows(
    snapshot_id: int, functions: Sequence[FunctionStat]
) -> list[tuple[int, str, int, int, int, int]]:
    """Rows for ``snapshot_functions``; ranks are 1-based, largest value first, ties by name."""
    names = [f.function for f in functions]
    selfs = [int(f.self_value) for f in functions]
    totals = [int(f.total_value) for f in functions]
    rank_self = [0] * len(functions)
    rank_total = [0] * len(functions)
    by_self = sorted(range(len(functions)), key=lambda i: (-selfs[i], names[i]))
    by_total = sorted(range(len(functions)), key=lambda i: (-totals[i], names[i]))
    for rank, i in enumerate(by_self, start=1):
        rank_self[i] = rank
    for rank, i in enumerate(by_total, start=1):
        rank_total[i] = rank
    return [
        (snapshot_id, names[i], selfs[i], totals[i], rank_self[i], rank_total[i])
        for i in range(len(functions))
    ]


class Repository:
    """All database access of the watcher. Thread-safe: each call is its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        return self._engine

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn, conn.begin():
                yield conn
        except SQLAlchemyError as exc:
            raise store_error(exc, action, self._engine.url) from exc

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        try:
            with write_transaction(self._engine) as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise store_error(exc, action, self._engine.url) from exc

    def _write_with_retry(self, action: str, fn: Callable[[Connection], R]) -> R:
        """Run ``fn`` in a write transaction; on a CAS conflict roll back and retry once."""
        for _attempt in range(2):
            try:
                with self._write(action) as conn:
                    return fn(conn)
            except _Conflict:
                continue
        raise StoreError(
            f"{action} failed: another writer changed the same regression twice while this "
            "one was updating it; the next run will try again"
        )

    # ------------------------------------------------------------------ runs

    def start_run(
        self,
        watch: str,
        scheduled_at: datetime,
        *,
        owner: str,
        pairs_total: int = 0,
        now: datetime | None = None,
    ) -> int:
        """Record that a run of ``watch`` started; returns the run id."""
        with self._write("recording a run start") as conn:
            result = conn.execute(
                insert(_RUNS).returning(_RUNS.c.id),
                {
                    "watch": watch,
                    "scheduled_at": scheduled_at,
                    "started_at": _now(now),
                    "status": "running",
                    "pairs_total": pairs_total,
                    "pairs_ok": 0,
                    "pairs_failed": 0,
                    "owner": owner,
                },
            )
            return int(result.scalar_one())

    def record_pair(
        self,
        run_id: int,
        service: str,
        profile_type: str,
        status: str,
        *,
        error: str | None = None,
        duration_ms: float | None = None,
        query_duration_ms: float | None = None,
        query_count: int = 0,
        findings: int = 0,
        now: datetime | None = None,
    ) -> int:
        """Record how one (service, profile type) pair of a run went (ok|failed|skipped)."""
        if status not in PAIR_STATUSES:
            raise StoreError(f"pair status {status!r} is not one of {', '.join(PAIR_STATUSES)}")
        with self._write("recording a pair result") as conn:
            result = conn.execute(
                insert(_PAIRS).returning(_PAIRS.c.id),
                {
                    "run_id": run_id,
                    "service": service,
                    "profile_type": profile_type,
                    "status": status,
                    "error": error,
                    "recorded_at": _now(now),
                    "duration_ms": duration_ms,
                    "query_duration_ms": query_duration_ms,
                    "query_count": query_count,
                    "findings": findings,
                },
            )
            return int(result.scalar_one())

    def finish_run(
        self,
        run_id: int,
        *,
        status: str | None = None,
        error: str | None = None,
        now: datetime | None = None,
    ) -> RunRecord:
        """Close a running run; counts come from its pair results.

        Without ``status``: ``ok`` when no pair failed, ``failed`` when no pair succeeded
        and some failed, else ``partial``.
        """
        if status is not None and status not in RUN_STATUSES[1:]:
            raise StoreError(f"run status {status!r} is not one of ok, partial, failed")
        with self._write("recording a run end") as conn:
            counts: dict[str, int] = {
                str(row[0]): int(row[1])
                for row in conn.execute(
                    select(_PAIRS.c.status, func.count())
                    .where(_PAIRS.c.run_id == run_id)
                    .group_by(_PAIRS.c.status)
                )
            }
            ok, failed = counts.get("ok", 0), counts.get("failed", 0)
            if status is None:
                status = "ok" if failed == 0 else ("failed" if ok == 0 else "partial")
            total = sum(counts.values())
            row = conn.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id, _RUNS.c.status == "running")
                .values(
                    finished_at=_now(now),
                    status=status,
                    pairs_ok=ok,
                    pairs_failed=failed,
                    pairs_total=case(
                        (_RUNS.c.pairs_total < total, total), else_=_RUNS.c.pairs_total
                    ),
                    error=error,
                )
                .returning(*_RUNS.c)
            ).first()
            if row is None:
                raise StoreError(f"run {run_id} does not exist or has already finished")
            return _record(RunRecord, row)

    def running_runs(self) -> list[RunRecord]:
        """Every run still marked ``running``, oldest first."""
        with self._read("listing running runs") as conn:
            rows = conn.execute(
                select(*_RUNS.c).where(_RUNS.c.status == "running").order_by(_RUNS.c.id)
            )
            return [_record(RunRecord, row) for row in rows]

    def abandon_runs(self, run_ids: Iterable[int], *, now: datetime | None = None) -> int:
        """Close the given runs as ``failed`` if they are still ``running``; returns how many.

        For runs whose process stopped mid-run (OOM, node loss, ``kill -9``): counts come
        from the pair results they recorded, the error says what happened, and the pairs
        they never reached are evaluated again at the next scheduled time.
        """
        at = _now(now)
        closed = 0
        with self._write("closing abandoned runs") as conn:
            for run_id in run_ids:
                counts: dict[str, int] = {
                    str(row[0]): int(row[1])
                    for row in conn.execute(
                        select(_PAIRS.c.status, func.count())
                        .where(_PAIRS.c.run_id == run_id)
                        .group_by(_PAIRS.c.status)
                    )
                }
                result = conn.execute(
                    update(_RUNS)
                    .where(_RUNS.c.id == run_id, _RUNS.c.status == "running")
                    .values(
                        finished_at=at,
                        status="failed",
                        pairs_ok=counts.get("ok", 0),
                        pairs_failed=counts.get("failed", 0),
                        error=ABANDONED_RUN_ERROR,
                    )
                )
                closed += result.rowcount or 0
        return closed

    def run(self, run_id: int) -> RunRecord | None:
        with self._read("reading a run") as conn:
            row = conn.execute(select(*_RUNS.c).where(_RUNS.c.id == run_id)).first()
            return None if row is None else _record(RunRecord, row)

    def runs(self, *, watch: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The most recent runs, newest first."""
        stmt = select(*_RUNS.c).order_by(_RUNS.c.started_at.desc(), _RUNS.c.id.desc()).limit(limit)
        if watch is not None:
            stmt = stmt.where(_RUNS.c.watch == watch)
        with self._read("listing runs") as conn:
            return [_record(RunRecord, row) for row in conn.execute(stmt)]

    def pair_results(self, run_id: int) -> list[PairResultRecord]:
        with self._read("listing pair results") as conn:
            rows = conn.execute(
                select(*_PAIRS.c).where(_PAIRS.c.run_id == run_id).order_by(_PAIRS.c.id)
            )
            return [_record(PairResultRecord, row) for row in rows]

    # ------------------------------------------------------------------ claims

    def claim_pair(
        self,
        watch: str,
        service: str,
        profile_type: str,
        scheduled_at: datetime,
        owner: str,
        *,
        now: datetime | None = None,
    ) -> bool:
        """Take one scheduled pair for ``owner``; False when another replica already has it."""
        with self._write("claiming a pair") as conn:
            stmt = insert_ignoring_conflicts(
                conn, _CLAIMS, ["watch", "service", "profile_type", "scheduled_at"]
            )
            # RETURNING, not rowcount: a skipped conflict returns no row on every driver.
            row = conn.execute(
                stmt.values(
                    watch=watch,
                    service=service,
                    profile_type=profile_type,
                    scheduled_at=scheduled_at,
                    owner=owner,
                    claimed_at=_now(now),
                ).returning(_CLAIMS.c.id)
            ).first()
            return row is not None

    # ------------------------------------------------------------------ snapshots

    def save_snapshots(
        self, snapshots: Sequence[SnapshotInput], *, now: datetime | None = None
    ) -> list[int]:
        """Store snapshots and their function tables in one transaction; returns their ids.

        Batched whatever the number of snapshots: one multi-row insert for the snapshots,
        then all their functions at once (one ``executemany`` on SQLite, one ``COPY`` on
        PostgreSQL).
        """
        if not snapshots:
            return []
        created_at = _now(now)
        snapshot_rows = [
            {
                "run_id": s.run_id,
                "service": s.service,
                "profile_type": s.profile_type,
                "deployment": s.deployment,
                "window_start": s.window_start,
                "window_end": s.window_end,
                "selector": s.selector,
                "total_value": s.total_value,
                "sample_count": s.sample_count,
                "truncated_share": s.truncated_share,
                "labels": dict(s.labels),
                "version": s.version,
                "created_at": created_at,
            }
            for s in snapshots
        ]
        with self._write("saving snapshots") as conn:
            ids = [
                int(i)
                for i in conn.execute(
                    insert(_SNAPSHOTS).returning(_SNAPSHOTS.c.id, sort_by_parameter_order=True),
                    snapshot_rows,
                ).scalars()
            ]
            function_rows: list[tuple[int, str, int, int, int, int]] = []
            for snapshot_id, s in zip(ids, snapshots, strict=True):
                function_rows.extend(_function_rows(snapshot_id, s.functions))
            bulk_insert(conn, _FUNCTIONS, _FUNCTION_COLUMNS, function_rows)
        return ids

    def latest_snapshot(self, service: str, profile_type: str) -> SnapshotRecord | None:
        """The snapshot with the latest window end for the pair, with its functions."""
        found = self.snapshots(service, profile_type, limit=1, with_functions=True)
        return found[0] if found else None

    def snapshots(
        self,
        service: str,
        profile_type: str | None = None,
        *,
        limit: int = 100,
        since: datetime | None = None,
        until: datetime | None = None,
        with_functions: bool = False,
    ) -> list[SnapshotRecord]:
        """Snapshots of a service, latest window first; ``since``/``until`` bound window_end."""
        stmt = select(*_SNAPSHOTS.c).where(_SNAPSHOTS.c.service == service)
        if profile_type is not None:
            stmt = stmt.where(_SNAPSHOTS.c.profile_type == profile_type)
        if since is not None:
            stmt = stmt.where(_SNAPSHOTS.c.window_end >= since)
        if until is not None:
            stmt = stmt.where(_SNAPSHOTS.c.window_end <= until)
        stmt = stmt.order_by(_SNAPSHOTS.c.window_end.desc(), _SNAPSHOTS.c.id.desc()).limit(limit)
        with self._read("reading snapshots") as conn:
            rows = conn.execute(stmt).all()
            functions: dict[int, list[SnapshotFunctionRecord]] = {row.id: [] for row in rows}
            if with_functions and rows:
                fn_rows = conn.execute(
                    select(
                        _FUNCTIONS.c.snapshot_id,
                        _FUNCTIONS.c.function,
                        _FUNCTIONS.c.self_value,
                        _FUNCTIONS.c.total_value,
                        _FUNCTIONS.c.rank_self,
                        _FUNCTIONS.c.rank_total,
                    )
                    .where(_FUNCTIONS.c.snapshot_id.in_(list(functions)))
                    .order_by(_FUNCTIONS.c.snapshot_id, _FUNCTIONS.c.rank_self)
                )
                for f in fn_rows:
                    functions[f.snapshot_id].append(
                        SnapshotFunctionRecord(
                            f.function, f.self_value, f.total_value, f.rank_self, f.rank_total
                        )
                    )
        return [SnapshotRecord(**row._mapping, functions=tuple(functions[row.id])) for row in rows]

    # ------------------------------------------------------------------ regressions

    def open_or_update_regression(
        self, finding: Finding, now: datetime
    ) -> tuple[RegressionRecord, bool]:
        """Open a regression for the finding's fingerprint, or update the open one.

        Returns the regression as stored and whether this call opened it. The update is a
        compare-and-swap on ``version``; on a conflict it is retried once.
        """
        change = self._write_with_retry(
            "recording a regression", lambda conn: self._upsert(conn, finding, now)
        )
        return change.regression, change.change == "opened"

    def resolve_regression(
        self,
        regression_id: int,
        now: datetime,
        expected_version: int,
        *,
        reason: str | None = None,
    ) -> bool:
        """Resolve an open regression if nobody changed it since ``expected_version``.

        False when it is already resolved or its version moved on (re-read and decide again).
        """
        with self._write("resolving a regression") as conn:
            return self._resolve(conn, regression_id, now, expected_version, reason) is not None

    def regression(self, regression_id: int) -> RegressionRecord | None:
        with self._read("reading a regression") as conn:
            row = conn.execute(
                select(*_REGRESSIONS.c).where(_REGRESSIONS.c.id == regression_id)
            ).first()
            return None if row is None else _record(RegressionRecord, row)

    def open_regressions(
        self, service: str | None = None, profile_type: str | None = None
    ) -> list[RegressionRecord]:
        """Open regressions (optionally of one service / profile type), oldest first."""
        stmt = select(*_REGRESSIONS.c).where(_REGRESSIONS.c.state == "open")
        if service is not None:
            stmt = stmt.where(_REGRESSIONS.c.service == service)
        if profile_type is not None:
            stmt = stmt.where(_REGRESSIONS.c.profile_type == profile_type)
        stmt = stmt.order_by(_REGRESSIONS.c.opened_at, _REGRESSIONS.c.id)
        with self._read("listing open regressions") as conn:
            return [_record(RegressionRecord, row) for row in conn.execute(stmt)]

    def regressions(self, *, open_only: bool = False, limit: int = 100) -> list[RegressionRecord]:
        """Regressions, most recently opened first."""
        stmt = select(*_REGRESSIONS.c)
        if open_only:
            stmt = stmt.where(_REGRESSIONS.c.state == "open")
        stmt = stmt.order_by(_REGRESSIONS.c.opened_at.desc(), _REGRESSIONS.c.id.desc()).limit(limit)
        with self._read("listing regressions") as conn:
            return [_record(RegressionRecord, row) for row in conn.execute(stmt)]

    def regression_events(self, regression_id: int) -> list[RegressionEventRecord]:
        """The transition log of one regression, oldest first."""
        with self._read("reading regression events") as conn:
            rows = conn.execute(
                select(*_EVENTS.c)
                .where(_EVENTS.c.regression_id == regression_id)
                .order_by(_EVENTS.c.at, _EVENTS.c.id)
            )
            return [_record(RegressionEventRecord, row) for row in rows]

    def record_findings_and_enqueue(
        self,
        findings: Sequence[Finding],
        *,
        now: datetime,
        plan: Callable[[Sequence[RegressionChange]], Iterable[OutboxEntry]],
        resolve: Sequence[tuple[int, int]] = (),
    ) -> FindingsOutcome:
        """Record findings, resolve regressions and enqueue their alerts in ONE transaction.

        ``resolve`` holds ``(regression id, expected version)`` pairs; stale ones are skipped
        (not in the outcome). ``plan`` turns the resulting changes into outbox entries; it
        must be pure (it runs again if the transaction is retried after a CAS conflict).
        Nothing is visible to the outbox worker before the regressions are committed, and
        an alert already enqueued under the same dedup key is not enqueued again.
        """

        def body(conn: Connection) -> FindingsOutcome:
            changes = [self._upsert(conn, finding, now) for finding in findings]
            for regression_id, expected_version in resolve:
                resolved = self._resolve(conn, regression_id, now, expected_version, None)
                if resolved is not None:
                    changes.append(RegressionChange(resolved, "resolved"))
            enqueued: list[int] = []
            duplicates: list[str] = []
            for entry in plan(changes):
                outbox_id = self._enqueue(conn, entry, now, None)
                if outbox_id is None:
                    duplicates.append(entry.dedup_key)
                else:
                    enqueued.append(outbox_id)
            return FindingsOutcome(tuple(changes), tuple(enqueued), tuple(duplicates))

        return self._write_with_retry("recording findings and their alerts", body)

    def _upsert(self, conn: Connection, finding: Finding, now: datetime) -> RegressionChange:
        fingerprint = finding.fingerprint
        current = conn.execute(
            select(*_REGRESSIONS.c).where(
                _REGRESSIONS.c.fingerprint == fingerprint, _REGRESSIONS.c.state == "open"
            )
        ).first()
        if current is None:
            stmt = insert_ignoring_conflicts(conn, _REGRESSIONS, ["fingerprint", "open_key"])
            row = conn.execute(
                stmt.values(
                    fingerprint=fingerprint,
                    service=finding.service,
                    profile_type=finding.profile_type,
                    function=finding.function,
                    kind=finding.kind,
                    state="open",
                    open_key=1,
                    severity=finding.severity,
                    opened_at=now,
                    resolved_at=None,
                    last_seen_at=now,
                    last_notified_at=None,
                    seen_count=1,
                    version=1,
                    **_finding_values(finding),
                ).returning(*_REGRESSIONS.c)
            ).first()
            if row is None:  # another writer opened it between our read and our insert
                raise _Conflict
            opened = _record(RegressionRecord, row)
            self._event(conn, opened, now, "opened", None, {"severity": opened.severity})
            return RegressionChange(opened, "opened")

        old = _record(RegressionRecord, current)
        values = _finding_values(finding)
        # The regression began when it was first seen; later runs must not move that.
        values["details"]["change_time"] = (
            old.details.get("change_time") or (values["details"]["change_time"])
        )
        escalated = _SEVERITY_RANK.get(finding.severity, 0) > _SEVERITY_RANK.get(old.severity, 0)
        rows = conn.execute(
            update(_REGRESSIONS)
            .where(
                _REGRESSIONS.c.id == old.id,
                _REGRESSIONS.c.version == old.version,
                _REGRESSIONS.c.state == "open",
            )
            .values(
                severity=finding.severity if escalated else old.severity,
                last_seen_at=now,
                seen_count=old.seen_count + 1,
                version=old.version + 1,
                **values,
            )
            .returning(*_REGRESSIONS.c)
        ).all()
        if len(rows) != 1:  # compare-and-swap lost: someone updated or resolved it
            raise _Conflict
        updated = _record(RegressionRecord, rows[0])
        if escalated:
            self._event(
                conn,
                updated,
                now,
                "escalated",
                "open",
                {"from": old.severity, "to": updated.severity},
            )
            return RegressionChange(updated, "escalated")
        return RegressionChange(updated, "updated")

    def _resolve(
        self,
        conn: Connection,
        regression_id: int,
        now: datetime,
        expected_version: int,
        reason: str | None,
    ) -> RegressionRecord | None:
        rows = conn.execute(
            update(_REGRESSIONS)
            .where(
                _REGRESSIONS.c.id == regression_id,
                _REGRESSIONS.c.version == expected_version,
                _REGRESSIONS.c.state == "open",
            )
            .values(
                state="resolved",
                open_key=None,
                resolved_at=now,
                version=expected_version + 1,
            )
            .returning(*_REGRESSIONS.c)
        ).all()
        if len(rows) != 1:
            return None
        resolved = _record(RegressionRecord, rows[0])
        self._event(conn, resolved, now, "resolved", "open", {"reason": reason} if reason else {})
        return resolved

    @staticmethod
    def _event(
        conn: Connection,
        regression: RegressionRecord,
        at: datetime,
        event: str,
        from_state: str | None,
        details: Mapping[str, Any],
    ) -> None:
        conn.execute(
            insert(_EVENTS).values(
                regression_id=regression.id,
                at=at,
                event=event,
                from_state=from_state,
                to_state=regression.state,
                version=regression.version,
                details=dict(details),
            )
        )

    # ------------------------------------------------------------------ outbox

    def enqueue(
        self,
        dedup_key: str,
        channel: str,
        kind: str,
        payload: Mapping[str, Any],
        regression_ids: Sequence[int] = (),
        *,
        now: datetime | None = None,
        not_before: datetime | None = None,
    ) -> bool:
        """Queue a notification; False (and nothing changes) if ``dedup_key`` is already queued.

        The dedup key is what keeps alerts single across restarts and replicas: build it from
        what makes the notification unique (fingerprint, kind, repeat slot...).
        """
        entry = OutboxEntry(dedup_key, channel, _outbox_kind(kind), payload, regression_ids)
        with self._write("enqueueing a notification") as conn:
            return self._enqueue(conn, entry, _now(now), not_before) is not None

    @staticmethod
    def _enqueue(
        conn: Connection, entry: OutboxEntry, now: datetime, not_before: datetime | None
    ) -> int | None:
        _outbox_kind(entry.kind)
        stmt = insert_ignoring_conflicts(conn, _OUTBOX, ["dedup_key"])
        row = conn.execute(
            stmt.values(
                dedup_key=entry.dedup_key,
                channel=entry.channel,
                regression_ids=[int(i) for i in entry.regression_ids],
                kind=entry.kind,
                payload=dict(entry.payload),
                status="pending",
                attempts=0,
                next_attempt_at=not_before or now,
                created_at=now,
            ).returning(_OUTBOX.c.id)
        ).first()
        return None if row is None else int(row[0])

    def claim_due(
        self, owner: str, now: datetime, lease: timedelta, limit: int = 10
    ) -> list[OutboxItem]:
        """Lease up to ``limit`` due notifications to ``owner`` until ``now + lease``.

        Due: pending with ``next_attempt_at <= now``, or sending with an expired lease (its
        owner died; delivery is at-least-once). Channels disabled by
        :meth:`disable_channel` are left alone. A row is never leased to two owners at once.
        """
        due = or_(
            and_(_OUTBOX.c.status == "pending", _OUTBOX.c.next_attempt_at <= now),
            and_(_OUTBOX.c.status == "sending", _OUTBOX.c.lease_until < now),
        )
        disabled = select(_CHANNELS.c.channel).where(_CHANNELS.c.disabled_at.is_not(None))
        with self._write("claiming notifications") as conn:
            candidates = skip_locked(
                conn,
                select(_OUTBOX.c.id)
                .where(due, _OUTBOX.c.channel.not_in(disabled))
                .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
                .limit(limit),
            )
            ids = list(conn.execute(candidates).scalars())
            if not ids:
                return []
            rows = conn.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id.in_(ids), due)  # the CAS: still due when we take it
                .values(
                    status="sending",
                    lease_owner=owner,
                    lease_until=now + lease,
                    attempts=_OUTBOX.c.attempts + 1,
                )
                .returning(*_OUTBOX.c)
            ).all()
        items = [_record(OutboxItem, row) for row in rows]
        items.sort(key=lambda item: (item.next_attempt_at, item.id))
        return items

    def mark_sent(self, outbox_id: int, owner: str, *, now: datetime | None = None) -> bool:
        """Mark a leased notification delivered; stamps its regressions' ``last_notified_at``.

        False when ``owner`` no longer holds the lease (it expired and someone else took it).
        """
        at = _now(now)
        with self._write("marking a notification sent") as conn:
            row = conn.execute(
                update(_OUTBOX)
                .where(*self._leased_by(outbox_id, owner))
                .values(status="sent", sent_at=at, lease_owner=None, lease_until=None)
                .returning(_OUTBOX.c.regression_ids)
            ).first()
            if row is None:
                return False
            regression_ids = [int(i) for i in row[0] or []]
            if regression_ids:
                conn.execute(
                    update(_REGRESSIONS)
                    .where(_REGRESSIONS.c.id.in_(regression_ids))
                    .values(last_notified_at=at)
                )
            return True

    def mark_retry(self, outbox_id: int, owner: str, error: str, next_attempt_at: datetime) -> bool:
        """Give a leased notification back for another try at ``next_attempt_at``."""
        with self._write("rescheduling a notification") as conn:
            result = conn.execute(
                update(_OUTBOX)
                .where(*self._leased_by(outbox_id, owner))
                .values(
                    status="pending",
                    next_attempt_at=next_attempt_at,
                    lease_owner=None,
                    lease_until=None,
                    last_error=error,
                )
            )
            return result.rowcount == 1

    def mark_permanent_failure(self, outbox_id: int, owner: str, error: str) -> bool:
        """Stop trying a leased notification: the channel refused it for good."""
        with self._write("failing a notification") as conn:
            result = conn.execute(
                update(_OUTBOX)
                .where(*self._leased_by(outbox_id, owner))
                .values(
                    status="failed_permanent",
                    lease_owner=None,
                    lease_until=None,
                    last_error=error,
                )
            )
            return result.rowcount == 1

    @staticmethod
    def _leased_by(outbox_id: int, owner: str) -> tuple[Any, ...]:
        return (
            _OUTBOX.c.id == outbox_id,
            _OUTBOX.c.status == "sending",
            _OUTBOX.c.lease_owner == owner,
        )

    def record_attempt(
        self,
        outbox_id: int,
        *,
        ok: bool,
        at: datetime | None = None,
        status_code: int | None = None,
        error: str | None = None,
        duration_ms: float | None = None,
    ) -> int:
        """Log one delivery attempt (the error text must already be free of secrets)."""
        with self._write("recording a delivery attempt") as conn:
            result = conn.execute(
                insert(_ATTEMPTS).returning(_ATTEMPTS.c.id),
                {
                    "outbox_id": outbox_id,
                    "at": _now(at),
                    "status_code": status_code,
                    "ok": ok,
                    "error": error,
                    "duration_ms": duration_ms,
                },
            )
            return int(result.scalar_one())

    def delivery_attempts(self, outbox_id: int) -> list[DeliveryAttemptRecord]:
        with self._read("reading delivery attempts") as conn:
            rows = conn.execute(
                select(*_ATTEMPTS.c)
                .where(_ATTEMPTS.c.outbox_id == outbox_id)
                .order_by(_ATTEMPTS.c.at, _ATTEMPTS.c.id)
            )
            return [_record(DeliveryAttemptRecord, row) for row in rows]

    def outbox_item(self, outbox_id: int) -> OutboxItem | None:
        with self._read("reading a notification") as conn:
            row = conn.execute(select(*_OUTBOX.c).where(_OUTBOX.c.id == outbox_id)).first()
            return None if row is None else _record(OutboxItem, row)

    def outbox_items(self, *, status: str | None = None, limit: int = 100) -> list[OutboxItem]:
        """Notifications, newest first, optionally of one status."""
        stmt = select(*_OUTBOX.c).order_by(_OUTBOX.c.created_at.desc(), _OUTBOX.c.id.desc())
        if status is not None:
            stmt = stmt.where(_OUTBOX.c.status == status)
        with self._read("listing notifications") as conn:
            return [_record(OutboxItem, row) for row in conn.execute(stmt.limit(limit))]

    def outbox_depth(self) -> int:
        """Notifications not yet delivered nor given up (pending or sending)."""
        with self._read("counting notifications") as conn:
            count = conn.execute(
                select(func.count())
                .select_from(_OUTBOX)
                .where(_OUTBOX.c.status.in_(("pending", "sending")))
            ).scalar_one()
            return int(count)

    # ------------------------------------------------------------------ channels

    def disable_channel(self, channel: str, reason: str, *, now: datetime | None = None) -> None:
        """Switch a channel off after a permanent failure; :meth:`claim_due` then skips it."""
        values = {"disabled_reason": reason, "disabled_at": _now(now)}
        with self._write("disabling a channel") as conn:
            updated = conn.execute(
                update(_CHANNELS).where(_CHANNELS.c.channel == channel).values(**values)
            ).rowcount
            if updated == 0:
                stmt = insert_ignoring_conflicts(conn, _CHANNELS, ["channel"])
                inserted = conn.execute(
                    stmt.values(channel=channel, **values).returning(_CHANNELS.c.channel)
                ).first()
                if inserted is None:
                    conn.execute(
                        update(_CHANNELS).where(_CHANNELS.c.channel == channel).values(**values)
                    )

    def enable_channel(self, channel: str) -> bool:
        """Switch a disabled channel back on; False if it was not disabled."""
        with self._write("enabling a channel") as conn:
            return (
                conn.execute(delete(_CHANNELS).where(_CHANNELS.c.channel == channel)).rowcount > 0
            )

    def channel_disabled(self, channel: str) -> str | None:
        """Why the channel is disabled, or None when it is enabled."""
        with self._read("reading channel state") as conn:
            row = conn.execute(
                select(_CHANNELS.c.disabled_reason, _CHANNELS.c.disabled_at).where(
                    _CHANNELS.c.channel == channel
                )
            ).first()
        if row is None or row.disabled_at is None:
            return None
        return row.disabled_reason or "disabled"

    def disabled_channels(self) -> dict[str, str]:
        with self._read("reading channel state") as conn:
            rows = conn.execute(
                select(_CHANNELS.c.channel, _CHANNELS.c.disabled_reason).where(
                    _CHANNELS.c.disabled_at.is_not(None)
                )
            )
            return {row.channel: row.disabled_reason or "disabled" for row in rows}

    # ------------------------------------------------------------------ retention

    def prune(self, older_than: datetime, batch_size: int = 500) -> int:
        """Delete history older than ``older_than`` in bounded batches; returns rows deleted.

        Removed: snapshots (with their functions), finished runs (with pair results), pair
        claims, sent or permanently failed notifications (with their attempts), resolved
        regressions (with their events). Open regressions and undelivered notifications are
        kept whatever their age. Each batch is its own short transaction, so other writers
        are never blocked for long.
        """
        if batch_size < 1:
            raise StoreError(f"prune batch size must be positive, not {batch_size}")
        plans: list[tuple[Table, Any, Table | None, Any]] = [
            (
                _SNAPSHOTS,
                _SNAPSHOTS.c.created_at < older_than,
                _FUNCTIONS,
                _FUNCTIONS.c.snapshot_id,
            ),
            (
                _RUNS,
                and_(_RUNS.c.started_at < older_than, _RUNS.c.status != "running"),
                _PAIRS,
                _PAIRS.c.run_id,
            ),
            (_CLAIMS, _CLAIMS.c.claimed_at < older_than, None, None),
            (
                _OUTBOX,
                and_(
                    _OUTBOX.c.created_at < older_than,
                    _OUTBOX.c.status.in_(("sent", "failed_permanent")),
                ),
                _ATTEMPTS,
                _ATTEMPTS.c.outbox_id,
            ),
            (
                _REGRESSIONS,
                and_(_REGRESSIONS.c.state == "resolved", _REGRESSIONS.c.resolved_at < older_than),
                _EVENTS,
                _EVENTS.c.regression_id,
            ),
        ]
        deleted = 0
        for table, condition, child, child_fk in plans:
            pk = table.c.id
            while True:
                with self._write(f"pruning {table.name}") as conn:
                    ids = list(
                        conn.execute(
                            select(pk).where(condition).order_by(pk).limit(batch_size)
                        ).scalars()
                    )
                    if ids:
                        if child is not None:
                            deleted += conn.execute(delete(child).where(child_fk.in_(ids))).rowcount
                        deleted += conn.execute(delete(table).where(pk.in_(ids))).rowcount
                if len(ids) < batch_size:
                    break
        return deleted


def _outbox_kind(kind: str) -> OutboxKind:
    if kind not in OUTBOX_KINDS:
        raise StoreError(f"notification kind {kind!r} is not one of {', '.join(OUTBOX_KINDS)}")
    return cast("OutboxKind", kind)
