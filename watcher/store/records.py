"""Plain values going into and coming out of the :class:`~watcher.store.repo.Repository`.

These are frozen dataclasses, not ORM objects: nothing returned by the repository is tied
to a Session, so nothing can lazy-load, go stale behind a cache or leak a connection.
This module imports no SQLAlchemy, so alert and CLI code can use the types cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "ChangeKind",
    "DeliveryAttemptRecord",
    "FindingsOutcome",
    "FunctionStat",
    "OutboxEntry",
    "OutboxItem",
    "OutboxKind",
    "OutboxStatus",
    "PairResultRecord",
    "PairStatus",
    "RegressionChange",
    "RegressionEventRecord",
    "RegressionRecord",
    "RunRecord",
    "RunStatus",
    "SnapshotFunctionRecord",
    "SnapshotInput",
    "SnapshotRecord",
]

RunStatus = Literal["running", "ok", "partial", "failed"]
PairStatus = Literal["ok", "failed", "skipped"]
OutboxKind = Literal["firing", "resolved", "repeat"]
OutboxStatus = Literal["pending", "sending", "sent", "failed_permanent"]
#: What happened to a regression in one call: first seen, seen again, seen again with a
#: higher severity, or resolved.
ChangeKind = Literal["opened", "updated", "escalated", "resolved"]


# ---------------------------------------------------------------------------- runs


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    watch: str
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime | None
    status: str
    pairs_total: int
    pairs_ok: int
    pairs_failed: int
    error: str | None
    owner: str


@dataclass(frozen=True, slots=True)
class PairResultRecord:
    id: int
    run_id: int
    service: str
    profile_type: str
    status: str
    error: str | None
    recorded_at: datetime
    duration_ms: float | None
    query_duration_ms: float | None
    query_count: int
    findings: int


# ---------------------------------------------------------------------------- snapshots


@dataclass(frozen=True, slots=True)
class FunctionStat:
    """One row of a function table to store: values in the profile's unit."""

    function: str
    self_value: int
    total_value: int


@dataclass(frozen=True, slots=True)
class SnapshotInput:
    """A snapshot to save. Ranks (1 = largest) are computed by the repository."""

    service: str
    profile_type: str
    deployment: str
    window_start: datetime
    window_end: datetime
    selector: str
    total_value: int
    sample_count: float
    functions: Sequence[FunctionStat] = ()
    truncated_share: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    version: str | None = None
    run_id: int | None = None


@dataclass(frozen=True, slots=True)
class SnapshotFunctionRecord:
    function: str
    self_value: int
    total_value: int
    rank_self: int
    rank_total: int


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    id: int
    run_id: int | None
    service: str
    profile_type: str
    deployment: str
    window_start: datetime
    window_end: datetime
    selector: str
    total_value: int
    sample_count: float
    truncated_share: float
    labels: dict[str, Any]
    version: str | None
    created_at: datetime
    #: Ordered by ``rank_self``; empty unless functions were asked for.
    functions: tuple[SnapshotFunctionRecord, ...] = ()


# ---------------------------------------------------------------------------- regressions


@dataclass(frozen=True, slots=True)
class RegressionRecord:
    id: int
    fingerprint: str
    service: str
    profile_type: str
    function: str
    kind: str
    state: str
    open_key: int | None
    severity: str
    opened_at: datetime
    resolved_at: datetime | None
    last_seen_at: datetime
    last_notified_at: datetime | None
    seen_count: int
    window_start: datetime
    window_end: datetime
    baseline_share: float
    current_share: float
    relative_change: float
    absolute_change: float
    impact_per_second: float
    impact_unit: str
    p_value: float
    ci_low: float
    ci_high: float
    mde: float
    details: dict[str, Any]
    #: Compare-and-swap counter: pass it back as ``expected_version``.
    version: int

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    @property
    def started_at(self) -> datetime:
        """When the regression began: its first change time, else when it was opened."""
        text = self.details.get("change_time") if isinstance(self.details, dict) else None
        if isinstance(text, str):
            try:
                return min(datetime.fromisoformat(text), self.opened_at)
            except ValueError:
                pass
        return self.opened_at


@dataclass(frozen=True, slots=True)
class RegressionEventRecord:
    id: int
    regression_id: int
    at: datetime
    event: str
    from_state: str | None
    to_state: str
    version: int
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RegressionChange:
    """A regression as it stands after one call, and what the call did to it."""

    regression: RegressionRecord
    change: ChangeKind


# ---------------------------------------------------------------------------- outbox


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A notification to enqueue; a second entry with the same ``dedup_key`` is dropped."""

    dedup_key: str
    channel: str
    kind: OutboxKind
    payload: Mapping[str, Any]
    regression_ids: Sequence[int] = ()


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    dedup_key: str
    channel: str
    regression_ids: list[int]
    kind: str
    payload: dict[str, Any]
    status: str
    #: How many times the row has been claimed for delivery (this claim included).
    attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryAttemptRecord:
    id: int
    outbox_id: int
    at: datetime
    status_code: int | None
    ok: bool
    error: str | None
    duration_ms: float | None


@dataclass(frozen=True, slots=True)
class FindingsOutcome:
    """What :meth:`Repository.record_findings_and_enqueue` committed."""

    changes: tuple[RegressionChange, ...]
    #: Outbox ids inserted by this call.
    enqueued: tuple[int, ...]
    #: Dedup keys that were already in the outbox (not enqueued again).
    duplicates: tuple[str, ...]
