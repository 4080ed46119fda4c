"""Alert channels: Slack, a generic Alertmanager-shaped webhook, and Alertmanager itself.

``build_notifier(channel)`` turns a configured channel (``[[watcher.alert]]``) into its
:class:`Notifier`, chosen by ``kind`` in :data:`REGISTRY`.
"""

from __future__ import annotations

from watcher.errors import ConfigError

from .alertmanager import AlertmanagerNotifier
from .base import (
    ALERTNAME,
    AlertGroup,
    AlertLinks,
    AlertStatus,
    ChannelConfig,
    DeliveryError,
    DeliveryResult,
    Notifier,
    Payload,
)
from .dedup import NotifyReason, should_notify
from .links import (
    build_links,
    comparison_url,
    drilldown_diff_url,
    drilldown_flamegraph_url,
    flamegraph_url,
    pyroscope_query,
)
from .slack import SlackNotifier, validate_slack_payload
from .webhook import WebhookNotifier

__all__ = [
    "ALERTNAME",
    "AlertGroup",
    "AlertLinks",
    "AlertStatus",
    "AlertmanagerNotifier",
    "ChannelConfig",
    "DeliveryError",
    "DeliveryResult",
    "Notifier",
    "NotifyReason",
    "Payload",
    "REGISTRY",
    "SlackNotifier",
    "WebhookNotifier",
    "build_links",
    "build_notifier",
    "comparison_url",
    "drilldown_diff_url",
    "drilldown_flamegraph_url",
    "flamegraph_url",
    "pyroscope_query",
    "should_notify",
    "validate_slack_payload",
]

#: Channel kind (``kind = "..."`` in the configuration) -> notifier class.
REGISTRY: dict[str, type[Notifier]] = {
    "slack": SlackNotifier,
    "webhook": WebhookNotifier,
    "alertmanager": AlertmanagerNotifier,
}


def build_notifier(channel: ChannelConfig) -> Notifier:
    """The notifier for ``channel``.

    :raises ConfigError: the kind is unknown (the message lists the known kinds) or the
        URL is not an http(s) URL (the message does not quote it).
    """
    try:
        cls = REGISTRY[channel.kind]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(
            f"unknown kind {channel.kind!r}; use one of: {known}",
            key=f"watcher.alert[{channel.name}].kind",
        ) from None
    return cls(channel)
