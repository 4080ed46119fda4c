"""What detection produces and everything downstream (store, alerts, CLI) consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

FindingKind = Literal["self", "total", "cost_shift"]
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One function whose share of a service's profile rose beyond noise and thresholds.

    Shares are fractions of the profile total (0.012 = 1.2 %). ``relative_change`` is
    ``current_share / baseline_share - 1``; ``absolute_change`` is the share delta.
    ``impact_per_second`` is in ``impact_unit`` (``cores`` for CPU time, ``bytes/s``, ...).
    ``ci_low``/``ci_high`` bound the relative change at 95 %. ``mde`` is the smallest relative
    change the test could have detected with 80 % power at this sample count.

    Detection details, all optional: ``persistent`` is true when the previous window was
    also significantly above the baselines (``None`` when it was not checked);
    ``baseline_shares`` holds the share in each baseline window (``baseline_share`` is their
    pooled value); ``dispersion`` is the variance inflation used by the test; ``samples`` is
    the current window's sample count; ``note`` says why an informational entry was not
    alerted, or what a cost shift moved from.
    """

    service: str
    profile_type: str
    function: str
    kind: FindingKind
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
    window_start: datetime
    window_end: datetime
    baseline_starts: tuple[datetime, ...] = ()
    severity: Severity = "warning"
    callers: tuple[str, ...] = ()
    version_change: tuple[str, str] | None = None
    change_time: datetime | None = None
    labels: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    persistent: bool | None = None
    baseline_shares: tuple[float, ...] = ()
    dispersion: float = 1.0
    samples: float = 0.0
    note: str = ""

    @property
    def fingerprint(self) -> str:
        """Stable identity of the regression across runs: service, type, function, kind."""
        key = f"{self.service}|{self.profile_type}|{self.function}|{self.kind}"
        return hashlib.sha256(key.encode()).hexdigest()
