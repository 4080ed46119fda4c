"""Constants of the alert tests: the profile type and the checked window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
#: The start of the current window of the test findings and groups.
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
