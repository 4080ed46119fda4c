"""A generic webhook carrying Alertmanager's webhook payload (version 4).

Receivers that already parse Alertmanager notifications (incident.io, Grafana OnCall,
custom bots) take these unchanged. One POST per alert group::

    {
      "version": "4",
      "groupKey": "{}:{alertname=\\"ProfileRegression\\", ...}",
      "truncatedAlerts": 0,
      "status": "firing",                       # or "resolved"
      "receiver": "<channel name>",
      "groupLabels": {"alertname": ..., "service_name": ..., "profile_type": ...},
      "commonLabels": {...},                    # labels every alert shares
      "commonAnnotations": {...},
      "externalURL": "<the watcher's public URL, or empty>",
      "alerts": [{
        "status": "firing",
        "labels": {"alertname": "ProfileRegression", "service_name", "profile_type",
                   "function", "kind", "severity", ...},
        "annotations": {"summary", "description", "drilldown_url", "diff_url",
                        "flamegraph_url", ...},
        "startsAt": "2024-05-01T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",       # resolution time once resolved
        "generatorURL": "<Drilldown diff, else Pyroscope diff link>",
        "fingerprint": "<sha256 of service|profile_type|function|kind>"
      }]
    }

:func:`alert_labels` and :func:`alert_annotations` are shared with the Alertmanager API
notifier, so both describe a regression identically.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

from watcher.findings import Finding

from . import _format
from .base import ALERTNAME, AlertGroup, Notifier

#: Go's zero time, which Alertmanager sends as ``endsAt`` of alerts still firing.
ZERO_TIME = "0001-01-01T00:00:00Z"

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def alert_labels(group: AlertGroup, finding: Finding) -> dict[str, str]:
    """Labels identifying one regression: the fixed set plus group and finding extras.

    Extras (``namespace``, ``cluster``, ``version`` ...) never override the fixed labels;
    extras with names Alertmanager would refuse, or empty values, are left out.
    """
    labels: dict[str, str] = {}
    for name, value in [*group.labels.items(), *finding.labels]:
        if _LABEL_NAME.fullmatch(name) and not name.startswith("__") and value:
            labels[name] = str(value)
    labels.update(group.group_labels)
    labels.update(
        {
            "alertname": ALERTNAME,
            "service_name": finding.service,
            "profile_type": finding.profile_type,
            "function": _format.function_label(finding.function),
            "kind": finding.kind,
            "severity": finding.severity,
        }
    )
    return labels


def alert_annotations(group: AlertGroup, finding: Finding) -> dict[str, str]:
    """Summary, description and links of one regression."""
    annotations = {
        "summary": _format.summary(finding),
        "description": _format.description(finding),
    }
    if len(finding.function) > _format.FUNCTION_LABEL_MAX:
        annotations["function"] = finding.function
    links = group.links
    for key, url in (
        ("drilldown_url", links.drilldown),
        ("diff_url", links.diff),
        ("flamegraph_url", links.flamegraph),
        ("runbook_url", links.runbook),
        ("silence_url", links.silence),
    ):
        if url:
            annotations[key] = url
    return annotations


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def webhook_payload(group: AlertGroup, *, receiver: str, max_alerts: int = 0) -> dict[str, Any]:
    """The Alertmanager v4 webhook body for ``group``.

    ``max_alerts`` > 0 keeps the worst that many alerts and counts the rest in
    ``truncatedAlerts``; common labels and annotations are computed over all alerts.
    """
    alerts: list[dict[str, Any]] = []
    ends = (
        ZERO_TIME
        if group.status == "firing"
        else _format.rfc3339(group.resolved_at or group.window_end)
    )
    for finding in group.ranked_findings:
        alerts.append(
            {
                "status": group.status,
                "labels": alert_labels(group, finding),
                "annotations": alert_annotations(group, finding),
                "startsAt": _format.rfc3339(group.started_at(finding)),
                "endsAt": ends,
                "generatorURL": group.links.primary or "",
                "fingerprint": finding.fingerprint,
            }
        )
    truncated = 0
    kept = alerts
    if max_alerts > 0 and len(alerts) > max_alerts:
        truncated = len(alerts) - max_alerts
        kept = alerts[:max_alerts]
    return {
        "version": "4",
        "groupKey": group.group_key,
        "truncatedAlerts": truncated,
        "status": group.status,
        "receiver": receiver,
        "groupLabels": group.group_labels,
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": group.external_url,
        "alerts": kept,
    }


class WebhookNotifier(Notifier):
    """A generic HTTP webhook receiving Alertmanager-shaped JSON (``kind = "webhook"``).

    Optional channel attributes: ``max_alerts`` (0 = all), ``headers``, ``timeout``.
    """

    kind: ClassVar[str] = "webhook"

    def payload(self, group: AlertGroup, *, now: datetime | None = None) -> dict[str, Any]:
        """The Alertmanager v4 body; see :func:`webhook_payload`."""
        max_alerts = getattr(self.channel, "max_alerts", 0)
        if not isinstance(max_alerts, int) or max_alerts < 0:
            max_alerts = 0
        return webhook_payload(group, receiver=self.name, max_alerts=max_alerts)
