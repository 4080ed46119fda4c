"""SQLAlchemy 2 typed models of the watcher database.

The schema is portable between SQLite and PostgreSQL:

- times are stored through :class:`UTCDateTime` (``timestamptz`` on PostgreSQL, naive UTC
  text on SQLite) and always come back timezone-aware in UTC;
- documents are ``JSON`` (not JSONB); enumerations are short strings guarded by CHECK
  constraints, not native enum types;
- surrogate keys are BIGINT on PostgreSQL and INTEGER (the rowid alias) on SQLite;
- "at most one open regression per fingerprint" is a plain UNIQUE constraint on
  ``(fingerprint, open_key)`` where ``open_key`` is 1 while open and NULL once resolved
  (NULLs never collide in a unique constraint on either database).

Every constraint and index is named through :data:`NAMING_CONVENTION` so that Alembic
migrations (``render_as_batch=True`` on SQLite) can address them.

The migration ``migrations/versions/0001_initial.py`` must match these models exactly; the
store tests compare both with Alembic's ``compare_metadata``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "NAMING_CONVENTION",
    "OUTBOX_KINDS",
    "OUTBOX_STATUSES",
    "PAIR_STATUSES",
    "REGRESSION_KINDS",
    "REGRESSION_STATES",
    "RUN_STATUSES",
    "Base",
    "ChannelState",
    "DeliveryAttempt",
    "OutboxMessage",
    "PairClaim",
    "PairResult",
    "Regression",
    "RegressionEvent",
    "Run",
    "Snapshot",
    "SnapshotFunction",
    "UTCDateTime",
    "metadata",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("running", "ok", "partial", "failed")
PAIR_STATUSES = ("ok", "failed", "skipped")
REGRESSION_KINDS = ("self", "total", "cost_shift")
REGRESSION_STATES = ("open", "resolved")
OUTBOX_KINDS = ("firing", "resolved", "repeat")
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed_permanent")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC ``datetime`` on every database.

    Binding a naive ``datetime`` is a programming error (the library only deals in aware
    UTC times) and raises ``ValueError``. PostgreSQL stores ``timestamptz``; SQLite stores
    the UTC wall time, whose text form sorts chronologically.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use an aware UTC time")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: Surrogate keys: BIGINT on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = metadata
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Run(Base):
    """One scheduled execution of a watch over all its (service, profile type) pairs."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
        Index(None, "watch", "scheduled_at"),
        Index(None, "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    watch: Mapped[str] = mapped_column(String(200))
    scheduled_at: Mapped[datetime]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="running")
    pairs_total: Mapped[int] = mapped_column(Integer, default=0)
    pairs_ok: Mapped[int] = mapped_column(Integer, default=0)
    pairs_failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))


class PairResult(Base):
    """The outcome of one (service, profile type) pair inside a run."""

    __tablename__ = "pair_results"
    __table_args__ = (
        CheckConstraint(_one_of("status", PAIR_STATUSES), name="status"),
        Index(None, "run_id"),
        Index(None, "service", "profile_type"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("runs.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(255))
    profile_type: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime]
    duration_ms: Mapped[float | None] = mapped_column(Float)
    query_duration_ms: Mapped[float | None] = mapped_column(Float)
    query_count: Mapped[int] = mapped_column(Integer, default=0)
    findings: Mapped[int] = mapped_column(Integer, default=0)


class Snapshot(Base):
    """A profile summary for one (service, profile type) over one window."""

    __tablename__ = "snapshots"
    __table_args__ = (
        Index(None, "service", "profile_type", "window_end"),
        Index(None, "created_at"),
        Index(None, "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("runs.id", ondelete="SET NULL"))
    service: Mapped[str] = mapped_column(String(255))
    profile_type: Mapped[str] = mapped_column(String(255))
    deployment: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    selector: Mapped[str] = mapped_column(Text)
    total_value: Mapped[int] = mapped_column(BigInteger)
    sample_count: Mapped[float] = mapped_column(Float)
    truncated_share: Mapped[float] = mapped_column(Float, default=0.0)
    labels: Mapped[dict[str, Any]]
    version: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class SnapshotFunction(Base):
    """One function of a snapshot's top-K table (values in the profile's unit).

    Keyed by ``(snapshot_id, rank_self)``: ranks are a permutation of 1..K within a
    snapshot, so the key is unique, small, and doubles as the index for "functions of a
    snapshot". There is deliberately no FOREIGN KEY to ``snapshots``: a run writes about
    500 rows per pair, and PostgreSQL's per-row referential check would multiply the cost
    of that bulk insert several times over. The repository is the only writer; it inserts
    functions in the same transaction as their snapshot and deletes them with it.
    """

    __tablename__ = "snapshot_functions"

    snapshot_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    rank_self: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    function: Mapped[str] = mapped_column(Text)
    self_value: Mapped[int] = mapped_column(BigInteger)
    total_value: Mapped[int] = mapped_column(BigInteger)
    rank_total: Mapped[int] = mapped_column(Integer)


class Regression(Base):
    """A detected regression: open until resolved; updated by compare-and-swap on ``version``."""

    __tablename__ = "regressions"
    __table_args__ = (
        CheckConstraint(_one_of("kind", REGRESSION_KINDS), name="kind"),
        CheckConstraint(
            "(state = 'open' AND open_key = 1) OR (state = 'resolved' AND open_key IS NULL)",
            name="state_open_key",
        ),
        UniqueConstraint("fingerprint", "open_key"),
        Index(None, "state"),
        Index(None, "service", "profile_type"),
        Index(None, "fingerprint"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(255))
    profile_type: Mapped[str] = mapped_column(String(255))
    function: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="open")
    open_key: Mapped[int | None] = mapped_column(SmallInteger)
    severity: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime]
    last_notified_at: Mapped[datetime | None]
    seen_count: Mapped[int] = mapped_column(Integer, default=1)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    baseline_share: Mapped[float] = mapped_column(Float)
    current_share: Mapped[float] = mapped_column(Float)
    relative_change: Mapped[float] = mapped_column(Float)
    absolute_change: Mapped[float] = mapped_column(Float)
    impact_per_second: Mapped[float] = mapped_column(Float)
    impact_unit: Mapped[str] = mapped_column(String(32))
    p_value: Mapped[float] = mapped_column(Float)
    ci_low: Mapped[float] = mapped_column(Float)
    ci_high: Mapped[float] = mapped_column(Float)
    mde: Mapped[float] = mapped_column(Float)
    details: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer, default=1)


class RegressionEvent(Base):
    """One state transition of a regression (opened, escalated, resolved)."""

    __tablename__ = "regression_events"
    __table_args__ = (Index(None, "regression_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    regression_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("regressions.id", ondelete="CASCADE")
    )
    at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]]


class OutboxMessage(Base):
    """A notification to deliver; ``dedup_key`` makes enqueueing idempotent."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_one_of("kind", OUTBOX_KINDS), name="kind"),
        CheckConstraint(_one_of("status", OUTBOX_STATUSES), name="status"),
        UniqueConstraint("dedup_key"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(200))
    regression_ids: Mapped[list[int]] = mapped_column(JSON)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(24), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class DeliveryAttempt(Base):
    """One try at delivering an outbox message."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index(None, "outbox_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(BigId, ForeignKey("outbox.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None] = mapped_column(Float)


class PairClaim(Base):
    """Which replica took a (watch, service, profile type, scheduled time) pair."""

    __tablename__ = "pair_claims"
    __table_args__ = (
        UniqueConstraint("watch", "service", "profile_type", "scheduled_at"),
        Index(None, "claimed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    watch: Mapped[str] = mapped_column(String(200))
    service: Mapped[str] = mapped_column(String(255))
    profile_type: Mapped[str] = mapped_column(String(255))
    scheduled_at: Mapped[datetime]
    owner: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime]


class ChannelState(Base):
    """An alert channel switched off after a permanent delivery failure."""

    __tablename__ = "channel_state"

    channel: Mapped[str] = mapped_column(String(200), primary_key=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
