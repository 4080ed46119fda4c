"""The outbox worker: deliver due notifications, retry with backoff, give up loudly.

:func:`deliver_due` is one pass (the scheduler calls it every 10 s; ``pyrowatch check``
calls it right after its run):

1. **Claim** up to ``limit`` due rows under a lease (:meth:`Repository.claim_due`). A row
   is never leased to two owners at once; an expired lease (its owner died) makes the row
   due again, so delivery is at-least-once across crashes and exactly-once otherwise.
2. **Order**: each channel's rows go out oldest first. A row with an older undelivered
   row on its channel (waiting for a retry) is given back to wait for it, and once a
   send fails, the channel's later rows wait too.
3. **Send** through the channel's notifier (Slack: at most one message per second per
   channel), recording every attempt with its status, error and duration.
4. **Outcome**:

   ===========================  =================================================
   accepted (2xx)               ``mark_sent``; ``pyrowatch_alerts_sent``
   retryable (5xx, 429, down)   ``mark_retry`` after an exponential backoff with
                                jitter, or the channel's ``Retry-After`` if longer
   retryable, over budget       ``mark_permanent_failure`` (``max_attempts`` tries
                                or ``max_age`` since enqueueing), logged as an error
   permanent (404, 403, ...)    ``mark_permanent_failure`` and the channel is
                                disabled (``pyrowatch_alert_channel_disabled``,
                                an error log); ``pyrowatch alerts enable`` turns
                                it back on
   ===========================  =================================================

Errors are stored and logged without the channel URL (a secret).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from watcher.errors import StoreError
from watcher.log import get_logger

if TYPE_CHECKING:
    from watcher.daemon.app import App
    from watcher.store.records import OutboxItem

__all__ = ["DeliveryPolicy", "DeliveryStats", "deliver_due", "drain"]

log = get_logger("watcher.delivery")


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard the worker tries.

    ==================  ========  ==========================================================
    field               default   meaning
    ==================  ========  ==========================================================
    lease               2m        how long a claimed row is ours before others may take it
    max_attempts        12        sends before a retryable failure becomes final
    max_age             24h       age (since enqueueing) after which it becomes final
    backoff             10s       wait after the first failure; doubles each time
    max_backoff         15m       cap of the backoff
    jitter              0.2       up to this fraction of the backoff is added at random
    max_retry_after     1h        cap of a channel's ``Retry-After``
    timeout             10s       per request
    slack_interval      1s        minimum time between two Slack messages of a channel
    ==================  ========  ==========================================================
    """

    lease: timedelta = timedelta(minutes=2)
    max_attempts: int = 12
    max_age: timedelta = timedelta(hours=24)
    backoff: timedelta = timedelta(seconds=10)
    max_backoff: timedelta = timedelta(minutes=15)
    jitter: float = 0.2
    max_retry_after: timedelta = timedelta(hours=1)
    timeout: float = 10.0
    slack_interval: float = 1.0

    def delay(
        self,
        attempts: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> timedelta:
        """The wait after ``attempts`` failed sends (1-based), honouring ``Retry-After``."""
        base = self.backoff * (1 << min(max(attempts - 1, 0), 30))
        wait = min(base, self.max_backoff) * (1.0 + self.jitter * rand())
        if retry_after is not None:
            wait = max(wait, min(timedelta(seconds=retry_after), self.max_retry_after))
        return wait


DEFAULT_POLICY = DeliveryPolicy()


@dataclass(slots=True)
class DeliveryStats:
    """What one pass did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    disabled_channels: list[str] = field(default_factory=list)


def deliver_due(
    app: App,
    *,
    now: datetime | None = None,
    limit: int = 20,
    policy: DeliveryPolicy = DEFAULT_POLICY,
) -> DeliveryStats:
    """Deliver the notifications due at ``now`` (default: the app's clock); one pass."""
    stats = DeliveryStats()
    with app.activity():
        now = now or app.now()
        items = app.repo.claim_due(app.owner, now, policy.lease, limit)
        stats.claimed = len(items)
        by_channel: dict[str, list[OutboxItem]] = {}
        for item in items:
            by_channel.setdefault(item.channel, []).append(item)
        for channel, rows in by_channel.items():
            rows.sort(key=lambda item: item.id)
            _deliver_channel(app, channel, rows, now, policy, stats)
        try:
            app.metrics.outbox_depth.set(app.repo.outbox_depth())
        except StoreError:
            pass
    if stats.claimed:
        log.info(
            "delivery pass",
            claimed=stats.claimed,
            sent=stats.sent,
            retried=stats.retried,
            failed=stats.failed,
            deferred=stats.deferred,
        )
    return stats


def drain(app: App, *, now: datetime | None = None, passes: int = 50) -> DeliveryStats:
    """Deliver everything due now, pass after pass, until nothing due is left.

    Rows that failed and wait for a retry are not waited for.
    """
    total = DeliveryStats()
    for _ in range(passes):
        stats = deliver_due(app, now=now)
        total.claimed += stats.claimed
        total.sent += stats.sent
        total.retried += stats.retried
        total.failed += stats.failed
        total.deferred += stats.deferred
        total.disabled_channels.extend(stats.disabled_channels)
        if stats.claimed == 0 or stats.sent + stats.failed == 0:
            break
    return total


def _release(app: App, item: OutboxItem, until: datetime, why: str, stats: DeliveryStats) -> None:
    """Give a claimed row back without sending it (no attempt is recorded)."""
    app.repo.mark_retry(item.id, app.owner, why, until)
    stats.deferred += 1


def _deliver_channel(
    app: App,
    channel: str,
    rows: list[OutboxItem],
    now: datetime,
    policy: DeliveryPolicy,
    stats: DeliveryStats,
) -> None:
    from watcher.daemon._store import older_undelivered

    notifier = app.notifiers.get(channel)
    if notifier is None:
        for item in rows:
            app.repo.mark_permanent_failure(
                item.id, app.owner, f"alert channel {channel!r} is no longer configured"
            )
            stats.failed += 1
        log.error("notifications for an unknown channel dropped", channel=channel, count=len(rows))
        return

    blocked: tuple[datetime, str] | None = None
    for item in rows:
        if blocked is not None:
            _release(app, item, blocked[0], blocked[1], stats)
            continue
        older = older_undelivered(app.engine, channel, item.id)
        if older is not None:
            until = max(older[1], now)
            blocked = (until, f"waiting for notification {older[0]} of the same channel")
            _release(app, item, until, blocked[1], stats)
            continue
        outcome = _send(app, notifier.name, item, now, policy, stats)
        if outcome is not None:
            blocked = outcome


def _send(
    app: App,
    channel: str,
    item: OutboxItem,
    now: datetime,
    policy: DeliveryPolicy,
    stats: DeliveryStats,
) -> tuple[datetime, str] | None:
    """Send one row; returns ``(until, why)`` when the channel's later rows must wait."""
    from watcher.alerts import DeliveryError
    from watcher.daemon.planning import wire_payload

    notifier = app.notifiers[channel]
    if notifier.kind == "slack":
        last = app.last_send.get(channel)
        if last is not None:
            wait = policy.slack_interval - (time.monotonic() - last)
            if wait > 0:
                app.sleep(min(wait, policy.slack_interval))
    started = time.perf_counter()
    try:
        result = notifier.send(
            wire_payload(item.payload), app.alert_client(), now=now, timeout=policy.timeout
        )
    except DeliveryError as exc:
        app.last_send[channel] = time.monotonic()
        error = app.redact(str(exc))
        app.repo.record_attempt(
            item.id,
            ok=False,
            at=now,
            status_code=exc.status_code,
            error=error,
            duration_ms=exc.duration.total_seconds() * 1000,
        )
        app.metrics.alerts_failed.labels(channel, exc.reason).inc()
        if exc.permanent:
            return _give_up(app, channel, item, error, stats, disable=True)
        return _retry(app, channel, item, now, error, exc.retry_after, policy, stats)
    except Exception as exc:  # an unexpected bug must not lose the notification
        app.last_send[channel] = time.monotonic()
        error = app.redact(f"unexpected {type(exc).__name__}: {exc}")
        app.repo.record_attempt(
            item.id,
            ok=False,
            at=now,
            error=error,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        app.metrics.alerts_failed.labels(channel, "unexpected").inc()
        return _retry(app, channel, item, now, error, None, policy, stats)
    app.last_send[channel] = time.monotonic()
    app.repo.record_attempt(
        item.id,
        ok=True,
        at=now,
        status_code=result.status_code,
        duration_ms=result.duration.total_seconds() * 1000,
    )
    if app.repo.mark_sent(item.id, app.owner, now=now):
        stats.sent += 1
        app.metrics.alerts_sent.labels(channel, item.kind).inc()
        log.info(
            "notification sent",
            channel=channel,
            outbox_id=item.id,
            kind=item.kind,
            status_code=result.status_code,
        )
    else:
        log.warning("lease lost before marking a notification sent", outbox_id=item.id)
    return None


def _retry(
    app: App,
    channel: str,
    item: OutboxItem,
    now: datetime,
    error: str,
    retry_after: float | None,
    policy: DeliveryPolicy,
    stats: DeliveryStats,
) -> tuple[datetime, str] | None:
    attempts = len(app.repo.delivery_attempts(item.id))
    too_old = now - item.created_at >= policy.max_age
    if attempts >= policy.max_attempts or too_old:
        why = f"{attempts} attempts" if not too_old else f"older than {policy.max_age}"
        app.metrics.alerts_failed.labels(channel, "gave_up").inc()
        return _give_up(app, channel, item, f"gave up after {why}: {error}", stats, disable=False)
    until = now + policy.delay(attempts, retry_after)
    app.repo.mark_retry(item.id, app.owner, error, until)
    stats.retried += 1
    log.warning(
        "notification failed, will retry",
        channel=channel,
        outbox_id=item.id,
        attempt=attempts,
        next_attempt_at=until.isoformat(),
        error=error,
    )
    return (until, f"waiting for notification {item.id} of the same channel")


def _give_up(
    app: App,
    channel: str,
    item: OutboxItem,
    error: str,
    stats: DeliveryStats,
    *,
    disable: bool,
) -> tuple[datetime, str] | None:
    app.repo.mark_permanent_failure(item.id, app.owner, error)
    stats.failed += 1
    if disable:
        app.repo.disable_channel(channel, error)
        app.metrics.channel_disabled.labels(channel).set(1)
        stats.disabled_channels.append(channel)
        log.error(
            "alert channel disabled after a permanent failure; fix it, then run "
            f"`pyrowatch alerts enable {channel}`",
            channel=channel,
            outbox_id=item.id,
            error=error,
        )
        return (app.now(), f"channel {channel!r} is disabled")
    log.error("notification given up", channel=channel, outbox_id=item.id, error=error)
    return None
