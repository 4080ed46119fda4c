"""Alertmanager as a producer: ``POST {url}/api/v2/alerts``.

The body is a list of alerts, one per finding::

    [{"labels": {...}, "annotations": {...}, "startsAt": "...", "endsAt": "...",
      "generatorURL": "<diff link>"}]

``generatorURL`` is the group's primary link (:attr:`.AlertLinks.primary`): the Grafana
Profiles Drilldown diff when ``grafana_url`` is set, else the Pyroscope UI diff.

Labels and annotations are the webhook channel's (:func:`.webhook.alert_labels`). Alertmanager
expires an alert at ``endsAt``, so while a regression is open it must be re-sent every cycle:
a firing alert ends ``3 x cycle`` after the send, which survives two missed cycles. A resolved
alert carries the resolution time as ``endsAt``; re-send it for a few minutes (Alertmanager's
advice is up to 5) so every Alertmanager replica sees it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from . import _format
from .base import AlertGroup, ChannelConfig, Notifier
from .webhook import alert_annotations, alert_labels

API_PATH = "/api/v2/alerts"

#: Firing alerts expire this many cycles after each send.
EXPIRY_CYCLES = 3


def alertmanager_payload(group: AlertGroup, *, now: datetime) -> list[dict[str, Any]]:
    """The ``/api/v2/alerts`` body for ``group`` as of ``now``."""
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now.isoformat()}: times must be timezone-aware")
    if group.status == "firing":
        ends = now + EXPIRY_CYCLES * group.cycle
    else:
        ends = group.resolved_at or now
    generator = group.links.primary
    alerts: list[dict[str, Any]] = []
    for finding in group.ranked_findings:
        # Alertmanager refuses an alert that ends before it starts.
        starts = min(group.started_at(finding), ends)
        alert: dict[str, Any] = {
            "labels": alert_labels(group, finding),
            "annotations": alert_annotations(group, finding),
            "startsAt": _format.rfc3339(starts),
            "endsAt": _format.rfc3339(ends),
        }
        if generator:
            alert["generatorURL"] = generator
        alerts.append(alert)
    return alerts


class AlertmanagerNotifier(Notifier):
    """Prometheus Alertmanager's v2 API (``kind = "alertmanager"``); ``url`` is its base URL
    (``http://alertmanager:9093``, with any path prefix it is served under)."""

    kind: ClassVar[str] = "alertmanager"

    def __init__(self, channel: ChannelConfig) -> None:
        super().__init__(channel)
        parts = urlsplit(self._url)
        path = parts.path.rstrip("/")
        if not path.endswith(API_PATH):
            path += API_PATH
        self._api_url = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))

    def endpoint(self) -> str:
        """``{url}/api/v2/alerts``. Secret: never log or show it."""
        return self._api_url

    def payload(self, group: AlertGroup, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """The alerts for ``group``; ``now`` (default: the current time) sets ``endsAt``."""
        return alertmanager_payload(group, now=now or datetime.now(UTC))
