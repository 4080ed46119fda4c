"""Read-only queries the daemon needs that :class:`~watcher.store.Repository` does not offer.

Two questions, both about the alert outbox:

- :func:`last_notifications`: the latest notification of one alert group on one channel,
  and the latest *firing* one, found by the group prefix of their dedup keys (see
  :mod:`watcher.daemon.planning`). Re-alerting decisions come from this log, never from
  memory, so restarts and replicas agree.
- :func:`older_undelivered`: whether a channel has an undelivered notification older than
  a given one, so delivery keeps each channel's notifications in order.

Each query is one short read transaction; SQLAlchemy errors come out as
:class:`~watcher.errors.StoreError` without secrets, like the repository's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Engine

__all__ = ["NotificationRecord", "last_notifications", "older_undelivered"]

#: Outbox statuses that count as "notified": delivered, or on its way.
_LIVE: Final = ("pending", "sending", "sent")


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """One outbox row, as the re-alerting decision sees it."""

    id: int
    dedup_key: str
    kind: str
    status: str
    regression_ids: tuple[int, ...]
    created_at: datetime
    sent_at: datetime | None

    @property
    def at(self) -> datetime:
        """When the channel was (or is being) told: the delivery time, else the enqueue time."""
        return self.sent_at or self.created_at


def _outbox() -> Table:
    from watcher.store.models import OutboxMessage

    return cast("Table", OutboxMessage.__table__)


@contextmanager
def _read(engine: Engine, action: str) -> Iterator[Connection]:
    from sqlalchemy.exc import SQLAlchemyError

    from watcher.store.db import store_error

    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except SQLAlchemyError as exc:
        raise store_error(exc, action, engine.url) from exc


def _record(row: Any) -> NotificationRecord:
    return NotificationRecord(
        id=int(row.id),
        dedup_key=str(row.dedup_key),
        kind=str(row.kind),
        status=str(row.status),
        regression_ids=tuple(int(i) for i in (row.regression_ids or ())),
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


def last_notifications(
    engine: Engine, channel: str, prefix: str, *, firing_codes: Sequence[str]
) -> tuple[NotificationRecord | None, NotificationRecord | None, NotificationRecord | None]:
    """The latest live notification whose dedup key starts with ``prefix`` on ``channel``,
    the latest one whose key continues with one of ``firing_codes``, and the latest one
    that failed for good.

    Live: pending, sending or sent (a permanently failed one never reached anybody).
    """
    from sqlalchemy import or_, select

    table = _outbox()
    base = (
        select(
            table.c.id,
            table.c.dedup_key,
            table.c.kind,
            table.c.status,
            table.c.regression_ids,
            table.c.created_at,
            table.c.sent_at,
        )
        .where(
            table.c.channel == channel,
            table.c.dedup_key.startswith(prefix, autoescape=True),
            table.c.status.in_(_LIVE),
        )
        .order_by(table.c.id.desc())
        .limit(1)
    )
    firing = base.where(
        or_(*(table.c.dedup_key.startswith(prefix + c, autoescape=True) for c in firing_codes))
    )
    failed = (
        select(*base.selected_columns)
        .where(
            table.c.channel == channel,
            table.c.dedup_key.startswith(prefix, autoescape=True),
            table.c.status == "failed_permanent",
        )
        .order_by(table.c.id.desc())
        .limit(1)
    )
    with _read(engine, "reading the notification log") as conn:
        last = conn.execute(base).first()
        last_firing = conn.execute(firing).first()
        last_failed = conn.execute(failed).first()
    return (
        None if last is None else _record(last),
        None if last_firing is None else _record(last_firing),
        None if last_failed is None else _record(last_failed),
    )


def older_undelivered(
    engine: Engine, channel: str, before_id: int, *, exclude: Sequence[int] = ()
) -> tuple[int, datetime] | None:
    """The oldest pending or sending notification of ``channel`` with an id below
    ``before_id`` (ignoring ``exclude``): ``(id, next_attempt_at)``, or ``None``."""
    from sqlalchemy import select

    table = _outbox()
    stmt = (
        select(table.c.id, table.c.next_attempt_at)
        .where(
            table.c.channel == channel,
            table.c.id < before_id,
            table.c.status.in_(("pending", "sending")),
        )
        .order_by(table.c.id)
        .limit(1)
    )
    if exclude:
        stmt = stmt.where(table.c.id.not_in(list(exclude)))
    with _read(engine, "reading the notification queue") as conn:
        row = conn.execute(stmt).first()
    return None if row is None else (int(row.id), row.next_attempt_at)
