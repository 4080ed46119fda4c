"""Channel kinds, building notifiers from config, the public surface, group validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import watcher.alerts
from watcher.alerts import (
    REGISTRY,
    AlertmanagerNotifier,
    SlackNotifier,
    WebhookNotifier,
    build_notifier,
)
from watcher.errors import ConfigError

SECRET = "https://hooks.slack.com/services/T0/B0/xoxSECRETtoken"


def test_registry_maps_each_kind_to_its_notifier() -> None:
    """``kind`` in the configuration selects the class."""
    assert REGISTRY == {
        "slack": SlackNotifier,
        "webhook": WebhookNotifier,
        "alertmanager": AlertmanagerNotifier,
    }


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_build_notifier_takes_a_duck_typed_channel(kind: str, make_channel: Any) -> None:
    """Any object with name, kind, url, repeat_interval, send_resolved will do."""
    notifier = build_notifier(make_channel(kind, SECRET, send_resolved=False))

    assert isinstance(notifier, REGISTRY[kind])
    assert notifier.name == "oncall"
    assert notifier.send_resolved is False
    assert notifier.repeat_interval == timedelta(hours=4)
    assert notifier.describe() == f"{kind} channel 'oncall' (hooks.slack.com)"
    assert "xoxSECRETtoken" not in repr(notifier)


def test_unknown_kind_lists_the_known_ones(make_channel: Any) -> None:
    """A typo in ``kind`` names the known kinds and the channel."""
    with pytest.raises(ConfigError) as info:
        build_notifier(make_channel("pagerduty", SECRET))

    assert str(info.value) == (
        "watcher.alert[oncall].kind: unknown kind 'pagerduty'; "
        "use one of: alertmanager, slack, webhook"
    )


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example/xoxSECRETtoken", "xoxSECRETtoken", "https:///xoxSECRETtoken"]
)
def test_a_bad_url_is_refused_without_quoting_it(make_channel: Any, url: str) -> None:
    """The URL is a secret even when it is wrong."""
    with pytest.raises(ConfigError) as info:
        build_notifier(make_channel("webhook", url))

    assert "xoxSECRETtoken" not in str(info.value)
    assert "watcher.alert[oncall].url" in str(info.value)


def test_public_names_are_sorted_and_importable() -> None:
    """``__all__`` is sorted and every name exists."""
    names = watcher.alerts.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(watcher.alerts, name)


def test_groups_must_be_well_formed(make_group: Any) -> None:
    """No empty groups, no unknown status, no naive times."""
    with pytest.raises(ValueError, match="at least one finding"):
        make_group([])
    with pytest.raises(ValueError, match="'firing' or 'resolved'"):
        make_group(status="pending")
    with pytest.raises(ValueError, match="timezone-aware"):
        make_group(window_start=datetime(2024, 5, 1, 12))
    with pytest.raises(ValueError, match="cycle"):
        make_group(cycle=timedelta(0))


def test_group_severity_is_the_worst_finding(make_group: Any, make_finding: Any) -> None:
    """A critical finding makes the whole group critical."""
    group = make_group([make_finding("a", severity="info"), make_finding("b", severity="critical")])

    assert group.severity == "critical"
    assert [f.function for f in group.ranked_findings] == ["b", "a"]
    assert group.started_at(group.findings[0]) == datetime(2024, 5, 1, 12, tzinfo=UTC)
