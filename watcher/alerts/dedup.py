"""Whether an alert group should be notified now, and why.

Computed from the delivery log (the last successful notification of the group on a
channel), never from memory, so restarts and replicas agree. The clock is injected.

======================================  ========================  =============================
last notified                            now                       reason
======================================  ========================  =============================
never                                    firing                    ``first``
never                                    resolved                  ``none`` (nothing to close)
firing                                   resolved                  ``resolved`` (or ``none``
                                                                   with ``send_resolved=False``)
resolved                                 resolved                  ``none``
resolved                                 firing                    ``changed`` (it came back)
firing, other findings or severities     firing                    ``changed``
firing, ``repeat_interval`` ago or more  firing                    ``repeat_interval_elapsed``
firing, more recently                    firing                    ``none``
======================================  ========================  =============================

Alertmanager's API channel needs the same alert re-sent every cycle regardless; use a
``repeat_interval`` of one cycle for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from .base import AlertStatus


class NotifyReason(StrEnum):
    """Why a notification goes out; ``NONE`` means it does not."""

    FIRST = "first"
    RESOLVED = "resolved"
    REPEAT_INTERVAL_ELAPSED = "repeat_interval_elapsed"
    CHANGED = "changed"
    NONE = "none"

    def __bool__(self) -> bool:
        return self is not NotifyReason.NONE


def should_notify(
    last_notified_at: datetime | None,
    last_status: AlertStatus | None,
    status: AlertStatus,
    now: datetime,
    repeat_interval: timedelta | None,
    *,
    send_resolved: bool = True,
    last_digest: str | None = None,
    digest: str | None = None,
) -> NotifyReason:
    """The reason to notify a group now, or :attr:`NotifyReason.NONE`.

    ``last_notified_at``/``last_status`` describe the last notification that was delivered
    (``None`` when there was none). ``repeat_interval`` of ``None`` or zero never repeats.
    ``last_digest``/``digest`` (see :attr:`AlertGroup.digest`), when both are given, turn a
    change in the set of findings or their severities into :attr:`NotifyReason.CHANGED`.
    """
    if status not in ("firing", "resolved"):
        raise ValueError(f"status {status!r}: must be 'firing' or 'resolved'")
    if last_notified_at is None or last_status is None:
        return NotifyReason.FIRST if status == "firing" else NotifyReason.NONE
    if status == "resolved":
        if last_status == "firing" and send_resolved:
            return NotifyReason.RESOLVED
        return NotifyReason.NONE
    if last_status == "resolved":
        return NotifyReason.CHANGED
    if last_digest is not None and digest is not None and last_digest != digest:
        return NotifyReason.CHANGED
    if repeat_interval is None or repeat_interval <= timedelta(0):
        return NotifyReason.NONE
    if now - last_notified_at >= repeat_interval:
        return NotifyReason.REPEAT_INTERVAL_ELAPSED
    return NotifyReason.NONE
