"""Initial schema: runs, snapshots, regressions, outbox, claims, channel state.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Hand-checked against watcher/store/models.py; tests/store/test_migrations.py compares
the two after upgrading on SQLite and PostgreSQL. Times are ``DateTime(timezone=True)``
(the models' UTCDateTime decorates exactly this type).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    """BIGINT keys on PostgreSQL, INTEGER (rowid alias) on SQLite."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", _id(), nullable=False),
        sa.Column("watch", sa.String(length=200), nullable=False),
        sa.Column("scheduled_at", _ts(), nullable=False),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pairs_total", sa.Integer(), nullable=False),
        sa.Column("pairs_ok", sa.Integer(), nullable=False),
        sa.Column("pairs_failed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'ok', 'partial', 'failed')", name=op.f("ck_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_watch_scheduled_at"), "runs", ["watch", "scheduled_at"])
    op.create_index(op.f("ix_runs_started_at"), "runs", ["started_at"])

    op.create_table(
        "pair_results",
        sa.Column("id", _id(), nullable=False),
        sa.Column("run_id", _id(), nullable=False),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("profile_type", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("recorded_at", _ts(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("query_duration_ms", sa.Float(), nullable=True),
        sa.Column("query_count", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('ok', 'failed', 'skipped')", name=op.f("ck_pair_results_status")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_pair_results_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pair_results")),
    )
    op.create_index(op.f("ix_pair_results_run_id"), "pair_results", ["run_id"])
    op.create_index(
        op.f("ix_pair_results_service_profile_type"), "pair_results", ["service", "profile_type"]
    )

    op.create_table(
        "snapshots",
        sa.Column("id", _id(), nullable=False),
        sa.Column("run_id", _id(), nullable=True),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("profile_type", sa.String(length=255), nullable=False),
        sa.Column("deployment", sa.String(length=200), nullable=False),
        sa.Column("window_start", _ts(), nullable=False),
        sa.Column("window_end", _ts(), nullable=False),
        sa.Column("selector", sa.Text(), nullable=False),
        sa.Column("total_value", sa.BigInteger(), nullable=False),
        sa.Column("sample_count", sa.Float(), nullable=False),
        sa.Column("truncated_share", sa.Float(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_snapshots_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    op.create_index(
        op.f("ix_snapshots_service_profile_type_window_end"),
        "snapshots",
        ["service", "profile_type", "window_end"],
    )
    op.create_index(op.f("ix_snapshots_created_at"), "snapshots", ["created_at"])
    op.create_index(op.f("ix_snapshots_run_id"), "snapshots", ["run_id"])

    # No foreign key to snapshots, on purpose: see SnapshotFunction in the models.
    op.create_table(
        "snapshot_functions",
        sa.Column("snapshot_id", _id(), autoincrement=False, nullable=False),
        sa.Column("rank_self", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("function", sa.Text(), nullable=False),
        sa.Column("self_value", sa.BigInteger(), nullable=False),
        sa.Column("total_value", sa.BigInteger(), nullable=False),
        sa.Column("rank_total", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", "rank_self", name=op.f("pk_snapshot_functions")),
    )

    op.create_table(
        "regressions",
        sa.Column("id", _id(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("profile_type", sa.String(length=255), nullable=False),
        sa.Column("function", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("open_key", sa.SmallInteger(), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("opened_at", _ts(), nullable=False),
        sa.Column("resolved_at", _ts(), nullable=True),
        sa.Column("last_seen_at", _ts(), nullable=False),
        sa.Column("last_notified_at", _ts(), nullable=True),
        sa.Column("seen_count", sa.Integer(), nullable=False),
        sa.Column("window_start", _ts(), nullable=False),
        sa.Column("window_end", _ts(), nullable=False),
        sa.Column("baseline_share", sa.Float(), nullable=False),
        sa.Column("current_share", sa.Float(), nullable=False),
        sa.Column("relative_change", sa.Float(), nullable=False),
        sa.Column("absolute_change", sa.Float(), nullable=False),
        sa.Column("impact_per_second", sa.Float(), nullable=False),
        sa.Column("impact_unit", sa.String(length=32), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("ci_low", sa.Float(), nullable=False),
        sa.Column("ci_high", sa.Float(), nullable=False),
        sa.Column("mde", sa.Float(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('self', 'total', 'cost_shift')", name=op.f("ck_regressions_kind")
        ),
        sa.CheckConstraint(
            "(state = 'open' AND open_key = 1) OR (state = 'resolved' AND open_key IS NULL)",
            name=op.f("ck_regressions_state_open_key"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regressions")),
        # At most one open regression per fingerprint: open_key is 1 while open, NULL after.
        sa.UniqueConstraint(
            "fingerprint", "open_key", name=op.f("uq_regressions_fingerprint_open_key")
        ),
    )
    op.create_index(op.f("ix_regressions_state"), "regressions", ["state"])
    op.create_index(
        op.f("ix_regressions_service_profile_type"), "regressions", ["service", "profile_type"]
    )
    op.create_index(op.f("ix_regressions_fingerprint"), "regressions", ["fingerprint"])

    op.create_table(
        "regression_events",
        sa.Column("id", _id(), nullable=False),
        sa.Column("regression_id", _id(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["regression_id"],
            ["regressions.id"],
            name=op.f("fk_regression_events_regression_id_regressions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regression_events")),
    )
    op.create_index(
        op.f("ix_regression_events_regression_id"), "regression_events", ["regression_id"]
    )

    op.create_table(
        "outbox",
        sa.Column("id", _id(), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("regression_ids", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _ts(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", _ts(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("sent_at", _ts(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('firing', 'resolved', 'repeat')", name=op.f("ck_outbox_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed_permanent')",
            name=op.f("ck_outbox_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_outbox_dedup_key")),
    )
    op.create_index(
        op.f("ix_outbox_status_next_attempt_at"), "outbox", ["status", "next_attempt_at"]
    )
    op.create_index(op.f("ix_outbox_created_at"), "outbox", ["created_at"])

    op.create_table(
        "delivery_attempts",
        sa.Column("id", _id(), nullable=False),
        sa.Column("outbox_id", _id(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_delivery_attempts_outbox_id_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    op.create_index(op.f("ix_delivery_attempts_outbox_id"), "delivery_attempts", ["outbox_id"])

    op.create_table(
        "pair_claims",
        sa.Column("id", _id(), nullable=False),
        sa.Column("watch", sa.String(length=200), nullable=False),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("profile_type", sa.String(length=255), nullable=False),
        sa.Column("scheduled_at", _ts(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("claimed_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pair_claims")),
        sa.UniqueConstraint(
            "watch",
            "service",
            "profile_type",
            "scheduled_at",
            name=op.f("uq_pair_claims_watch_service_profile_type_scheduled_at"),
        ),
    )
    op.create_index(op.f("ix_pair_claims_claimed_at"), "pair_claims", ["claimed_at"])

    op.create_table(
        "channel_state",
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("disabled_at", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_channel_state")),
    )


def downgrade() -> None:
    # Children first; dropping a table drops its indexes.
    for table in (
        "channel_state",
        "pair_claims",
        "delivery_attempts",
        "outbox",
        "regression_events",
        "regressions",
        "snapshot_functions",
        "snapshots",
        "pair_results",
        "runs",
    ):
        op.drop_table(table)
