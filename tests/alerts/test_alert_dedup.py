"""Re-notification reasons computed from the last delivered notification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from watcher.alerts import NotifyReason, should_notify

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FOUR_HOURS = timedelta(hours=4)


@pytest.mark.parametrize(
    ("last_at", "last_status", "status", "expected"),
    [
        (None, None, "firing", NotifyReason.FIRST),
        (None, None, "resolved", NotifyReason.NONE),
        (NOW - timedelta(minutes=5), "firing", "resolved", NotifyReason.RESOLVED),
        (NOW - timedelta(days=2), "resolved", "resolved", NotifyReason.NONE),
        (NOW - timedelta(minutes=5), "resolved", "firing", NotifyReason.CHANGED),
        (NOW - FOUR_HOURS, "firing", "firing", NotifyReason.REPEAT_INTERVAL_ELAPSED),
        (
            NOW - FOUR_HOURS - timedelta(seconds=1),
            "firing",
            "firing",
            NotifyReason.REPEAT_INTERVAL_ELAPSED,
        ),
        (NOW - FOUR_HOURS + timedelta(seconds=1), "firing", "firing", NotifyReason.NONE),
        (NOW - timedelta(minutes=15), "firing", "firing", NotifyReason.NONE),
    ],
)
def test_reason_follows_the_last_notification(
    last_at: datetime | None, last_status: Any, status: Any, expected: NotifyReason
) -> None:
    """The documented table, including both sides of the repeat boundary."""
    assert should_notify(last_at, last_status, status, NOW, FOUR_HOURS) is expected


def test_resolved_is_skipped_when_the_channel_does_not_want_it() -> None:
    """``send_resolved=False`` silences the resolved notification."""
    reason = should_notify(
        NOW - timedelta(hours=1), "firing", "resolved", NOW, FOUR_HOURS, send_resolved=False
    )

    assert reason is NotifyReason.NONE


def test_a_changed_set_of_findings_is_notified_before_the_repeat_interval() -> None:
    """Different digests (new finding, new severity) mean ``changed``."""
    reason = should_notify(
        NOW - timedelta(minutes=15),
        "firing",
        "firing",
        NOW,
        FOUR_HOURS,
        last_digest="a",
        digest="b",
    )

    assert reason is NotifyReason.CHANGED


def test_same_digest_waits_for_the_repeat_interval() -> None:
    """An unchanged digest does not count as a change."""
    reason = should_notify(
        NOW - timedelta(minutes=15),
        "firing",
        "firing",
        NOW,
        FOUR_HOURS,
        last_digest="a",
        digest="a",
    )

    assert reason is NotifyReason.NONE


@pytest.mark.parametrize("repeat", [None, timedelta(0)])
def test_no_repeat_interval_never_repeats(repeat: timedelta | None) -> None:
    """Without a repeat interval a firing group is notified once."""
    reason = should_notify(NOW - timedelta(days=30), "firing", "firing", NOW, repeat)

    assert reason is NotifyReason.NONE


def test_a_clock_behind_the_log_does_not_repeat() -> None:
    """A last notification in the future (clock skew) never triggers a repeat."""
    reason = should_notify(NOW + timedelta(minutes=1), "firing", "firing", NOW, FOUR_HOURS)

    assert reason is NotifyReason.NONE


def test_reasons_are_truthy_except_none() -> None:
    """``if reason:`` reads naturally; values are the stored strings."""
    assert [bool(r) for r in NotifyReason] == [True, True, True, True, False]
    assert [r.value for r in NotifyReason] == [
        "first",
        "resolved",
        "repeat_interval_elapsed",
        "changed",
        "none",
    ]


def test_digest_changes_with_severity_and_status(make_group: Any, make_finding: Any) -> None:
    """The group digest tracks findings, their severities and the status."""
    base = make_group([make_finding("a"), make_finding("b")])
    reordered = make_group([make_finding("b"), make_finding("a")])
    escalated = make_group([make_finding("a", severity="critical"), make_finding("b")])
    resolved = make_group(
        [make_finding("a"), make_finding("b")], status="resolved", resolved_at=NOW
    )

    assert base.digest == reordered.digest
    assert len({base.digest, escalated.digest, resolved.digest}) == 3


def test_unknown_status_is_refused() -> None:
    """Only firing and resolved exist."""
    with pytest.raises(ValueError, match="firing"):
        should_notify(None, None, "pending", NOW, FOUR_HOURS)  # type: ignore[arg-type]
