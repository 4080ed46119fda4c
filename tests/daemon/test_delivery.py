"""The outbox worker against a real webhook sink, on SQLite and PostgreSQL.

Passes run at injected times (``deliver_due(now=...)``); nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from watcher.daemon.delivery import DeliveryPolicy, deliver_due
from watcher.daemon.planning import stored_payload

from .support import SECRET, SECRET_PATH, T0, Clock, ConfigWriter

HOUR = timedelta(hours=1)


def _enqueue(app: Any, count: int, channel: str = "hook") -> list[int]:
    for n in range(count):
        assert app.repo.enqueue(f"test:{channel}:{n}", channel, "firing", {"n": n}, now=T0)
    items = sorted(app.repo.outbox_items(), key=lambda item: item.id)
    return [item.id for item in items if item.channel == channel]


def _statuses(app: Any) -> list[str]:
    return [item.status for item in sorted(app.repo.outbox_items(), key=lambda i: i.id)]


def test_a_sink_down_for_several_passes_gets_everything_once_in_order(
    config: ConfigWriter, sink: Any, make_app: Callable[..., Any]
) -> None:
    """Connection refused for three passes, then up: each notification once, in order."""
    app = make_app(config.settings(), clock=Clock(T0))
    ids = _enqueue(app, 3)
    sink.down()

    for hour in range(3):
        stats = deliver_due(app, now=T0 + hour * HOUR)
        assert stats.sent == 0 and stats.retried == 1 and stats.deferred == 2
    assert _statuses(app) == ["pending"] * 3
    sink.up()
    stats = deliver_due(app, now=T0 + 3 * HOUR)
    later = deliver_due(app, now=T0 + 9 * HOUR)

    assert stats.sent == 3 and later.claimed == 0
    assert [r.json for r in sink.received] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert _statuses(app) == ["sent"] * 3
    attempts = app.repo.delivery_attempts(ids[0])
    assert [a.ok for a in attempts] == [False, False, False, True]
    assert all(a.error is None or SECRET not in a.error for a in attempts)
    assert [a.ok for a in app.repo.delivery_attempts(ids[2])] == [True]
    assert SECRET not in repr(app.repo.outbox_items())


def test_a_retry_keeps_later_notifications_of_the_channel_waiting(
    config: ConfigWriter, sink: Any, make_app: Callable[..., Any]
) -> None:
    """A notification enqueued while an older one waits for its retry goes after it."""
    app = make_app(config.settings(), clock=Clock(T0))
    _enqueue(app, 1)
    sink.fail(500, body="try later")
    deliver_due(app, now=T0)
    assert app.repo.enqueue("test:hook:late", "hook", "firing", {"n": "late"}, now=T0)
    sink.ok()

    early = deliver_due(app, now=T0 + timedelta(seconds=1))
    assert early.sent == 0 and early.deferred == 1
    deliver_due(app, now=T0 + HOUR)

    assert [r.json for r in sink.received] == [{"n": 0}, {"n": 0}, {"n": "late"}]


def test_a_404_disables_the_channel_and_reports_it(
    config: ConfigWriter, sink: Any, make_app: Callable[..., Any]
) -> None:
    """Permanent failure: not retried, channel disabled, visible in /metrics; re-enabling
    delivers the rest."""
    app = make_app(config.settings(), clock=Clock(T0))
    ids = _enqueue(app, 2)
    sink.fail(404, body="no_service")

    stats = deliver_due(app, now=T0)
    again = deliver_due(app, now=T0 + 10 * HOUR)

    assert stats.failed == 1 and stats.disabled_channels == ["hook"]
    assert again.claimed == 0
    assert len(sink.received) == 1
    assert _statuses(app) == ["failed_permanent", "pending"]
    assert "HTTP 404" in (app.repo.channel_disabled("hook") or "")
    metrics = app.render_metrics()[0].decode()
    assert 'pyrowatch_alert_channel_disabled{channel="hook"} 1.0' in metrics
    assert 'pyrowatch_alerts_failed_total{channel="hook",reason="http_404"} 1.0' in metrics
    assert SECRET not in metrics
    assert SECRET not in (app.repo.outbox_item(ids[0]).last_error or "")

    sink.ok()
    assert app.repo.enable_channel("hook")
    deliver_due(app, now=T0 + 11 * HOUR)
    assert [r.json for r in sink.received] == [{"n": 0}, {"n": 1}]
    assert _statuses(app) == ["failed_permanent", "sent"]


def test_retry_after_of_a_429_is_honoured(
    config: ConfigWriter, sink: Any, make_app: Callable[..., Any]
) -> None:
    """429 with Retry-After: 600 -> not tried again before ten minutes."""
    app = make_app(config.settings(), clock=Clock(T0))
    (outbox_id,) = _enqueue(app, 1)
    sink.rate_limit(retry_after=600)

    deliver_due(app, now=T0)
    item = app.repo.outbox_item(outbox_id)
    assert item is not None and item.next_attempt_at >= T0 + timedelta(seconds=600)
    sink.ok()
    assert deliver_due(app, now=T0 + timedelta(seconds=300)).claimed == 0
    assert deliver_due(app, now=T0 + timedelta(seconds=900)).sent == 1
    assert len(sink.received) == 2


def test_retryable_failures_stop_after_the_attempt_budget(
    config: ConfigWriter, sink: Any, make_app: Callable[..., Any]
) -> None:
    """A channel failing with 500 is tried max_attempts times, then given up (not disabled)."""
    app = make_app(config.settings(), clock=Clock(T0))
    (outbox_id,) = _enqueue(app, 1)
    sink.fail(503)
    policy = DeliveryPolicy(max_attempts=3)

    for hour in range(5):
        deliver_due(app, now=T0 + hour * HOUR, policy=policy)

    assert len(sink.received) == 3
    item = app.repo.outbox_item(outbox_id)
    assert item is not None and item.status == "failed_permanent"
    assert (item.last_error or "").startswith("gave up after 3 attempts")
    assert app.repo.channel_disabled("hook") is None
    metrics = app.render_metrics()[0].decode()
    assert 'pyrowatch_alerts_failed_total{channel="hook",reason="gave_up"} 1.0' in metrics


def test_slack_messages_of_a_channel_are_paced_one_per_second(
    config: ConfigWriter, sink: Any, make_app: Callable[..., Any]
) -> None:
    """Two Slack messages in one pass: the second waits (the injected sleep is asked to)."""
    config.channels = [{"name": "chat", "kind": "slack", "url": sink.url + SECRET_PATH}]
    waits: list[float] = []
    app = make_app(config.settings(), clock=Clock(T0), sleep=waits.append)
    for n in range(2):
        payload = stored_payload({"text": f"message {n}", "blocks": []})
        assert app.repo.enqueue(f"slack:{n}", "chat", "firing", payload, now=T0)

    stats = deliver_due(app, now=T0)

    assert stats.sent == 2
    assert [r.json["text"] for r in sink.received] == ["message 0", "message 1"]
    assert len(waits) == 1 and 0 < waits[0] <= 1.0


def test_a_dead_owners_lease_expires_and_another_replica_delivers(
    config: ConfigWriter, sink: Any, make_app: Callable[..., Any]
) -> None:
    """A row leased by a replica that died is delivered by another once the lease ends."""
    settings = config.settings()
    dead = make_app(settings, owner="dead-replica", clock=Clock(T0))
    alive = make_app(settings, owner="alive-replica", clock=Clock(T0))
    _enqueue(dead, 1)
    (claimed,) = dead.repo.claim_due("dead-replica", T0, timedelta(minutes=2))

    assert deliver_due(alive, now=T0 + timedelta(minutes=1)).claimed == 0
    stats = deliver_due(alive, now=T0 + timedelta(minutes=3))

    assert stats.sent == 1
    assert [r.json for r in sink.received] == [{"n": 0}]
    assert not dead.repo.mark_sent(claimed.id, "dead-replica")


def test_alertmanager_list_payloads_go_out_as_lists(
    config: ConfigWriter, sink: Any, make_app: Callable[..., Any]
) -> None:
    """The outbox stores objects; an Alertmanager body (a list) is unwrapped on the wire."""
    config.channels = [{"name": "am", "kind": "alertmanager", "url": sink.url + SECRET_PATH}]
    app = make_app(config.settings(), clock=Clock(T0))
    body = [{"labels": {"alertname": "ProfileRegression"}, "annotations": {}}]
    assert app.repo.enqueue("am:1", "am", "firing", stored_payload(body), now=T0)

    assert deliver_due(app, now=T0).sent == 1
    (received,) = sink.received
    assert received.json == body
    assert received.path == SECRET_PATH + "/api/v2/alerts"
