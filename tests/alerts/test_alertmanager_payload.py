"""Alertmanager ``/api/v2/alerts`` payloads: expiry while firing, resolution time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from watcher.alerts import AlertLinks, AlertmanagerNotifier
from watcher.alerts.alertmanager import alertmanager_payload

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DIFF = "https://pyroscope.example/ui/comparison-diff?x=1"


def test_firing_alert_expires_three_cycles_after_now(make_group: Any) -> None:
    """``endsAt`` = now + 3 × cycle; the body is a list of the five documented keys."""
    group = make_group(cycle=timedelta(minutes=15), links=AlertLinks(diff=DIFF))
    now = T0 + HOUR + timedelta(seconds=30)

    alerts = alertmanager_payload(group, now=now)

    assert len(alerts) == 1
    alert = alerts[0]
    assert set(alert) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert alert["startsAt"] == "2024-05-01T12:00:00Z"
    assert alert["endsAt"] == "2024-05-01T13:45:30Z"
    assert alert["generatorURL"] == DIFF
    assert alert["labels"]["alertname"] == "ProfileRegression"
    assert alert["annotations"]["summary"].startswith("+34% self CPU in pkg.Foo")


def test_resolved_alert_ends_at_the_resolution_time(make_group: Any) -> None:
    """A resolved group's alerts end when the regression was resolved, not later."""
    group = make_group(status="resolved", resolved_at=T0 + 4 * HOUR)

    alerts = alertmanager_payload(group, now=T0 + 4 * HOUR + timedelta(minutes=3))

    assert [a["endsAt"] for a in alerts] == ["2024-05-01T16:00:00Z"]


def test_start_never_follows_the_end(make_group: Any, make_finding: Any) -> None:
    """Alertmanager refuses startsAt > endsAt, so the start is clamped to the end."""
    finding = make_finding(change_time=T0 + 2 * HOUR)
    group = make_group([finding], status="resolved", resolved_at=T0 + HOUR)

    alert = alertmanager_payload(group, now=T0 + 3 * HOUR)[0]

    assert alert["startsAt"] == alert["endsAt"] == "2024-05-01T13:00:00Z"


def test_generator_url_is_left_out_without_links(make_group: Any) -> None:
    """No UI URL configured: no ``generatorURL`` key rather than an invalid empty URL."""
    alert = alertmanager_payload(make_group(links=AlertLinks()), now=T0)[0]

    assert "generatorURL" not in alert


def test_naive_now_is_refused(make_group: Any) -> None:
    """Times must be timezone-aware."""
    with pytest.raises(ValueError, match="timezone-aware"):
        alertmanager_payload(make_group(), now=datetime(2024, 5, 1, 12))


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("http://am.example:9093", "/api/v2/alerts"),
        ("http://am.example:9093/", "/api/v2/alerts"),
        ("http://am.example/alertmanager/", "/alertmanager/api/v2/alerts"),
        ("http://am.example/api/v2/alerts", "/api/v2/alerts"),
    ],
)
def test_endpoint_appends_the_api_path_once(make_channel: Any, url: str, path: str) -> None:
    """The configured base URL, with or without a prefix, gets ``/api/v2/alerts`` once."""
    notifier = AlertmanagerNotifier(make_channel("alertmanager", url))

    assert notifier.endpoint().split("am.example", 1)[1].split(":9093")[-1] == path
