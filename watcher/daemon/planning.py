"""Which notifications one run of one (service, profile type) enqueues, under which keys.

Pure functions: the caller reads the channel's notification log first
(:func:`watcher.daemon._store.last_notifications`) and passes it in as
:class:`ChannelHistory`; the result is a list of outbox entries to insert in the same
transaction as the regressions they describe.

Dedup keys are deterministic, so the same decision taken twice (a second ``check`` over
the same window, a restarted daemon, two replicas) inserts one row::

    <group>:<code>:<digest>:<slot>

``group``
    sha256 of channel, deployment, service and profile type (24 hex digits); the prefix
    by which the log is searched.
``code``
    ``f`` firing (first or changed), ``r`` firing again (repeat interval elapsed, or an
    Alertmanager re-send), ``x`` resolved.
``digest``
    sha256 of the regression ids (and, when firing, their severities) the notification
    is about: a changed set or an escalation is a new digest.
``slot``
    ``first`` for the first notification of a set (``first-after-<id>`` when the group's
    notification ``<id>`` failed for good since: the channel never heard of it, and the
    key of the failed one must not block the new one), else the run's scheduled time.

Decisions follow :func:`watcher.alerts.should_notify` (first / changed / repeat interval
elapsed / resolved). Alertmanager channels are re-sent every cycle while open, as its API
expects; a resolved notification goes to a channel only if it was told about one of the
regressions that resolved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcher.alerts import AlertGroup, AlertStatus, Notifier, NotifyReason, should_notify
from watcher.findings import Finding
from watcher.store.records import OutboxEntry, OutboxKind

from ._store import NotificationRecord

__all__ = [
    "FIRING_CODES",
    "ChannelHistory",
    "TrackedRegression",
    "group_prefix",
    "plan_channel",
    "stored_payload",
    "wire_payload",
]

#: Dedup-key codes of firing notifications.
FIRING_CODES = ("f:", "r:")
#: Key of the envelope a list payload (Alertmanager's) is stored in: the outbox holds objects.
LIST_ENVELOPE = "alertmanager_alerts"


def _sha(*parts: str, size: int = 24) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:size]


def group_prefix(channel: str, deployment: str, service: str, profile_type: str) -> str:
    """The dedup-key prefix of one alert group on one channel (ends with ``:``)."""
    return _sha(channel, deployment, service, profile_type) + ":"


def _slot(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True, slots=True)
class TrackedRegression:
    """A regression as the plan needs it: its id and severity, and the finding to show."""

    id: int
    severity: str
    finding: Finding
    #: When the regression began (its first change time), for ``startsAt``.
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class ChannelHistory:
    """The channel's latest live notification of the group, its latest live firing one,
    and its latest one that failed for good."""

    last: NotificationRecord | None = None
    last_firing: NotificationRecord | None = None
    last_failed: NotificationRecord | None = None

    @property
    def last_status(self) -> AlertStatus | None:
        if self.last is None:
            return None
        return "resolved" if self.last.kind == "resolved" else "firing"

    @property
    def last_digest(self) -> str | None:
        if self.last_firing is None:
            return None
        parts = self.last_firing.dedup_key.split(":")
        return parts[2] if len(parts) >= 4 else None


def firing_digest(regressions: Sequence[TrackedRegression]) -> str:
    """Identity of a firing set: its regression ids and their severities."""
    return _sha(*sorted(f"{r.id}/{r.severity}" for r in regressions))


def resolved_digest(regressions: Sequence[TrackedRegression]) -> str:
    """Identity of a resolved set: its regression ids."""
    return _sha(*sorted(str(r.id) for r in regressions))


def stored_payload(payload: dict[str, Any] | list[Any]) -> dict[str, Any]:
    """The payload as the outbox stores it (a JSON object; lists go in an envelope)."""
    if isinstance(payload, list):
        return {LIST_ENVELOPE: payload}
    return payload


def wire_payload(stored: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """The inverse of :func:`stored_payload`: what is posted to the channel."""
    if set(stored) == {LIST_ENVELOPE} and isinstance(stored[LIST_ENVELOPE], list):
        return list(stored[LIST_ENVELOPE])
    return stored


GroupFactory = Callable[[Sequence[TrackedRegression], AlertStatus], AlertGroup]


def plan_channel(
    notifier: Notifier,
    history: ChannelHistory,
    *,
    prefix: str,
    firing: Sequence[TrackedRegression],
    resolved: Sequence[TrackedRegression],
    now: datetime,
    scheduled_at: datetime,
    make_group: GroupFactory,
) -> list[OutboxEntry]:
    """The notifications for one channel: a resolved one first (if due), then a firing one.

    ``firing`` holds every regression of the group still open after this run; ``resolved``
    the ones this run resolved. ``make_group(regressions, status)`` builds the alert group.
    """
    entries: list[OutboxEntry] = []
    channel = notifier.name
    slot = _slot(scheduled_at)

    if resolved and history.last_firing is not None:
        told = set(history.last_firing.regression_ids)
        closing = [r for r in resolved if r.id in told]
        if closing:
            reason = should_notify(
                history.last_firing.at,
                "firing",
                "resolved",
                now,
                notifier.repeat_interval,
                send_resolved=notifier.send_resolved,
            )
            if reason is NotifyReason.RESOLVED:
                group = make_group(closing, "resolved")
                entries.append(
                    OutboxEntry(
                        dedup_key=f"{prefix}x:{resolved_digest(closing)}:resolved",
                        channel=channel,
                        kind="resolved",
                        payload=stored_payload(notifier.payload(group, now=now)),
                        regression_ids=[r.id for r in closing],
                    )
                )

    if firing:
        digest = firing_digest(firing)
        last = history.last
        reason = should_notify(
            None if last is None else last.at,
            history.last_status,
            "firing",
            now,
            notifier.repeat_interval,
            send_resolved=notifier.send_resolved,
            last_digest=history.last_digest,
            digest=digest,
        )
        if reason is NotifyReason.NONE and notifier.kind == "alertmanager":
            reason = NotifyReason.REPEAT_INTERVAL_ELAPSED  # re-sent every cycle while open
        if reason is not NotifyReason.NONE:
            kind: OutboxKind = "firing"
            if notifier.kind == "alertmanager":
                # One send per scheduled time, whatever the reason: re-checking the same
                # time (a second `check --at`) finds the same key.
                code, key_slot = "f", slot
                if reason is NotifyReason.REPEAT_INTERVAL_ELAPSED:
                    kind = "repeat"
            elif reason is NotifyReason.FIRST:
                failed = history.last_failed
                code, key_slot = "f", "first" if failed is None else f"first-after-{failed.id}"
            elif reason is NotifyReason.CHANGED:
                code, key_slot = "f", slot
            else:
                code, key_slot, kind = "r", slot, "repeat"
            group = make_group(firing, "firing")
            entries.append(
                OutboxEntry(
                    dedup_key=f"{prefix}{code}:{digest}:{key_slot}",
                    channel=channel,
                    kind=kind,
                    payload=stored_payload(notifier.payload(group, now=now)),
                    regression_ids=[r.id for r in firing],
                )
            )
    return entries
