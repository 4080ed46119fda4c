"""Prometheus metrics of one daemon, in a registry of its own (several apps may share a process)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _registry() -> Any:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry(auto_describe=True)


@dataclass
class Metrics:
    """The daemon's counters, gauges and histograms."""

    registry: Any = field(default_factory=_registry)

    def __post_init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        r = self.registry
        self.runs = Counter(
            "pyrowatch_runs", "Watch runs by outcome.", ["watch", "status"], registry=r
        )
        self.pairs = Counter(
            "pyrowatch_pairs",
            "Service x profile-type pairs evaluated.",
            ["watch", "status"],
            registry=r,
        )
        self.pair_failures = Counter(
            "pyrowatch_pair_failures",
            "Pairs that failed, by reason.",
            ["watch", "reason"],
            registry=r,
        )
        self.query_seconds = Histogram(
            "pyrowatch_query_duration_seconds",
            "Querier API call latency.",
            ["method"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.query_retries = Counter(
            "pyrowatch_query_retries", "Querier API retries.", ["method"], registry=r
        )
        self.findings = Counter(
            "pyrowatch_findings", "Findings by kind.", ["watch", "kind"], registry=r
        )
        self.alerts_sent = Counter(
            "pyrowatch_alerts_sent", "Notifications delivered.", ["channel", "kind"], registry=r
        )
        self.alerts_failed = Counter(
            "pyrowatch_alerts_failed",
            "Failed delivery attempts (retryable or permanent).",
            ["channel", "reason"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "pyrowatch_outbox_depth", "Notifications waiting for delivery.", registry=r
        )
        self.open_regressions = Gauge(
            "pyrowatch_open_regressions", "Regressions currently open.", registry=r
        )
        self.last_run = Gauge(
            "pyrowatch_last_run_timestamp_seconds",
            "Unix time the last run of a watch finished.",
            ["watch"],
            registry=r,
        )
        self.channel_disabled = Gauge(
            "pyrowatch_alert_channel_disabled",
            "1 when an alert channel was disabled after a permanent delivery failure.",
            ["channel"],
            registry=r,
        )
        self.ready = Gauge("pyrowatch_ready", "1 when the daemon is ready.", registry=r)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
