"""Alertmanager v4 webhook payloads: exact shape, labels, truncation, resolved alerts."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from watcher.alerts import AlertLinks, WebhookNotifier
from watcher.alerts._format import function_label
from watcher.alerts.webhook import webhook_payload

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DIFF = "https://pyroscope.example/ui/comparison-diff?x=1"
FLAME = "https://pyroscope.example/ui/?x=1"


def test_firing_group_has_the_alertmanager_v4_shape(make_group: Any, make_finding: Any) -> None:
    """Every top-level and per-alert field of Alertmanager's webhook, with exact values."""
    finding = make_finding(change_time=T0 + timedelta(minutes=10))
    group = make_group(
        [finding],
        links=AlertLinks(diff=DIFF, flamegraph=FLAME, runbook="https://runbooks.example/cpu"),
        labels={"namespace": "prod"},
        external_url="https://pyrowatch.example",
    )

    payload = webhook_payload(group, receiver="oncall")

    labels = {
        "alertname": "ProfileRegression",
        "service_name": "checkout",
        "profile_type": CPU,
        "deployment": "prod",
        "namespace": "prod",
        "function": "pkg.Foo",
        "kind": "self",
        "severity": "warning",
    }
    annotations = {
        "summary": "+34% self CPU in pkg.Foo (0.8%→1.1% of checkout, +0.9 cores)",
        "description": (
            "Self share of pkg.Foo in checkout rose from 0.8% to 1.1% (+34%, 95% CI +20% to "
            "+48%, p = 2.1e-07) in 2024-05-01 12:00–13:00 UTC. Impact +0.9 cores; smallest "
            "detectable change 5.0%. Baseline windows start 2024-04-30 12:00 UTC. Estimated "
            "change at 2024-05-01 12:10 UTC. No deploy detected."
        ),
        "diff_url": DIFF,
        "flamegraph_url": FLAME,
        "runbook_url": "https://runbooks.example/cpu",
    }
    assert payload == {
        "version": "4",
        "groupKey": '{}:{alertname="ProfileRegression", deployment="prod", '
        f'profile_type="{CPU}", service_name="checkout"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "oncall",
        "groupLabels": {
            "alertname": "ProfileRegression",
            "service_name": "checkout",
            "profile_type": CPU,
            "deployment": "prod",
        },
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "https://pyrowatch.example",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": "2024-05-01T12:10:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": DIFF,
                "fingerprint": hashlib.sha256(f"checkout|{CPU}|pkg.Foo|self".encode()).hexdigest(),
            }
        ],
    }


def test_resolved_group_ends_at_the_resolution_time(make_group: Any) -> None:
    """Resolved alerts carry status resolved and ``endsAt`` = when it was resolved."""
    group = make_group(status="resolved", resolved_at=T0 + 5 * HOUR)

    payload = webhook_payload(group, receiver="oncall")

    assert payload["status"] == "resolved"
    assert [a["status"] for a in payload["alerts"]] == ["resolved"]
    assert payload["alerts"][0]["endsAt"] == "2024-05-01T17:00:00Z"


def test_starts_at_prefers_when_the_regression_was_opened(
    make_group: Any, make_finding: Any
) -> None:
    """``starts`` from the store wins over the change estimate and the window start."""
    opened = make_finding("pkg.Opened", change_time=T0 + timedelta(minutes=5))
    estimated = make_finding("pkg.Estimated", change_time=T0 + timedelta(minutes=7))
    plain = make_finding("pkg.Plain")
    group = make_group(
        [opened, estimated, plain],
        starts={opened.fingerprint: T0 - 2 * HOUR},
    )

    starts = {
        a["labels"]["function"]: a["startsAt"]
        for a in webhook_payload(group, receiver="r")["alerts"]
    }

    assert starts == {
        "pkg.Opened": "2024-05-01T10:00:00Z",
        "pkg.Estimated": "2024-05-01T12:07:00Z",
        "pkg.Plain": "2024-05-01T12:00:00Z",
    }


def test_long_function_label_is_cut_to_200_characters_with_a_hash(
    make_group: Any, make_finding: Any
) -> None:
    """Two 500-character names with one prefix get distinct, stable 200-character labels."""
    first = "com.example." + "a" * 488
    second = "com.example." + "a" * 487 + "b"
    group = make_group([make_finding(first), make_finding(second)])

    alerts = webhook_payload(group, receiver="r")["alerts"]

    labels = sorted(a["labels"]["function"] for a in alerts)
    assert all(len(label) == 200 for label in labels)
    assert labels[0] != labels[1]
    assert labels[0][:189] == first[:189]
    expected_suffixes = {
        "~" + hashlib.sha256(name.encode()).hexdigest()[:10] for name in (first, second)
    }
    assert {label[189:] for label in labels} == expected_suffixes
    assert {a["annotations"]["function"] for a in alerts} == {first, second}
    assert function_label(first) == function_label(first)


def test_short_function_label_is_unchanged() -> None:
    """Names of 200 characters or fewer are sent as they are."""
    assert function_label("x" * 200) == "x" * 200


def test_max_alerts_keeps_the_worst_and_counts_the_rest(make_group: Any, make_finding: Any) -> None:
    """``max_alerts=2`` of five: the two largest impacts, ``truncatedAlerts`` = 3."""
    findings = [make_finding(f"pkg.F{i}", impact_per_second=float(i)) for i in range(5)]

    payload = webhook_payload(make_group(findings), receiver="r", max_alerts=2)

    assert payload["truncatedAlerts"] == 3
    assert [a["labels"]["function"] for a in payload["alerts"]] == ["pkg.F4", "pkg.F3"]
    assert "function" not in payload["commonLabels"]
    assert payload["commonLabels"]["service_name"] == "checkout"


def test_extra_labels_cannot_override_the_fixed_ones(make_group: Any, make_finding: Any) -> None:
    """Finding and group labels add to, never replace, the identifying labels."""
    finding = make_finding(
        labels=(("alertname", "Other"), ("cluster", "eu-1"), ("bad-name", "x"), ("empty", ""))
    )
    group = make_group([finding], labels={"service_name": "spoofed", "__hidden": "x"})

    labels = webhook_payload(group, receiver="r")["alerts"][0]["labels"]

    assert labels["alertname"] == "ProfileRegression"
    assert labels["service_name"] == "checkout"
    assert labels["cluster"] == "eu-1"
    assert "bad-name" not in labels and "empty" not in labels and "__hidden" not in labels


def test_notifier_payload_uses_the_channel_name_and_max_alerts(
    make_group: Any, make_finding: Any, make_channel: Any
) -> None:
    """The receiver is the channel's name; its ``max_alerts`` applies; no URL leaks."""
    url = "https://hooks.example/endpoint/SECRETpath?token=SECRETquery"
    notifier = WebhookNotifier(make_channel("webhook", url, name="bots", max_alerts=1))
    group = make_group([make_finding("a"), make_finding("b")])

    payload = notifier.payload(group)

    assert payload["receiver"] == "bots"
    assert payload["truncatedAlerts"] == 1
    text = json.dumps(payload)
    assert "SECRET" not in text and "hooks.example" not in text
