"""Alert delivery misbehaving: the webhook sink down for several passes, answering 500 or
429, or hanging; and channels that refuse for good (404, Slack's ``invalid_token``).

Delivery passes run in-process at injected times (``deliver_due(now=...)``), against the
real sink over a real socket, with real regressions found by ``run_watch`` in the fleet,
on PostgreSQL. What counts as delivered is what the sink acknowledged with a 2xx.

Covered elsewhere and not repeated: ordering behind one retry, Retry-After honoured to the
second, the attempt budget of retryable failures and re-enabling after a 404
(``tests/daemon/test_delivery.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from daemon.support import SECRET, SECRET_PATH, T0, T1, Clock

from watcher.daemon.delivery import DeliveryPolicy, deliver_due
from watcher.daemon.jobs import run_watch

from .support import MINUTE, YEARLY, Config, Processes, acked, alert_keys, metric

HOUR = timedelta(hours=1)
#: A short request timeout, so a hanging sink costs half a second per pass.
POLICY = DeliveryPolicy(timeout=0.5)


def _break(sink: Any, mode: str) -> None:
    if mode == "down":
        sink.down()
    elif mode == "500":
        sink.fail(500, body="internal error")
    elif mode == "429":
        sink.rate_limit(retry_after=1800)
    elif mode == "hang":
        sink.hang()
    else:  # pragma: no cover - a typo in the parameters
        raise AssertionError(mode)


def _repair(sink: Any, mode: str) -> None:
    if mode == "down":
        sink.up()
    elif mode == "hang":
        sink.release()
    else:
        sink.ok()


def _outbox(app: Any) -> list[tuple[str, str]]:
    return [(i.kind, i.status) for i in sorted(app.repo.outbox_items(), key=lambda i: i.id)]


@pytest.mark.parametrize("mode", ["down", "500", "429", "hang"])
def test_every_notification_is_delivered_once_in_order_after_the_channel_recovers(
    config: Config, sink: Any, regressed: str, make_app: Callable[..., Any], mode: str
) -> None:
    """Two older notifications, then a regression firing and later resolving, all while the
    channel fails for several passes. After it recovers: each accepted exactly once, in
    the order they were queued; nothing lost, nothing twice."""
    clock = Clock(T0 + MINUTE)
    app = make_app(config.settings(schedule=YEARLY), clock=clock)
    watch = app.settings.watcher.watch[0]
    for n in range(2):
        assert app.repo.enqueue(f"older:{n}", "hook", "firing", {"n": n}, now=T0)
    _break(sink, mode)

    assert run_watch(app, watch, scheduled_at=T0, claim=False).enqueued == 1
    for hour in range(3):
        stats = deliver_due(app, now=T0 + MINUTE + hour * HOUR, policy=POLICY)
        assert stats.sent == 0
    clock.set(T1 + MINUTE)
    assert run_watch(app, watch, scheduled_at=T1, claim=False).resolved == (regressed,)
    for hour in range(3, 5):
        assert deliver_due(app, now=T1 + hour * HOUR, policy=POLICY).sent == 0
    assert {status for _kind, status in _outbox(app)} == {"pending"}
    tried = len(sink.received)
    _repair(sink, mode)
    if mode == "down":
        sink.wait_until_up()

    delivered = deliver_due(app, now=T1 + 6 * HOUR, policy=POLICY)
    later = [deliver_due(app, now=T1 + h * HOUR, policy=POLICY) for h in (7, 30)]

    assert delivered.sent == 4 and all(s.claimed == 0 for s in later)
    bodies = [r.json for r in acked(sink)]
    assert bodies[:2] == [{"n": 0}, {"n": 1}]
    assert alert_keys(acked(sink)[2:]) == [("firing", regressed), ("resolved", regressed)]
    assert _outbox(app) == [
        ("firing", "sent"),
        ("firing", "sent"),
        ("firing", "sent"),
        ("resolved", "sent"),
    ]
    # While failing, only the oldest notification was tried: the others waited their turn.
    if mode != "down":
        assert tried >= 2 and {r.json.get("n") for r in sink.received[:tried]} == {0}
    assert SECRET not in repr(app.repo.outbox_items())


PERMANENT = [
    pytest.param("webhook", 404, "no such hook", "http_404", id="webhook-404"),
    pytest.param("slack", 403, "invalid_token", "invalid_token", id="slack-invalid_token"),
    pytest.param("slack", 404, "no_service", "no_service", id="slack-no_service"),
]


@pytest.mark.parametrize(("kind", "status", "body", "reason"), PERMANENT)
def test_a_permanently_failing_channel_is_disabled_and_reported_not_retried(
    config: Config,
    sink: Any,
    regressed: str,
    make_app: Callable[..., Any],
    kind: str,
    status: int,
    body: str,
    reason: str,
) -> None:
    """One attempt, then the channel is disabled: the outbox row is failed_permanent, the
    metrics and logs say so, and no later pass (hours or days on) tries again."""
    config.channels = [{"name": "hook", "kind": kind, "url": sink.url + SECRET_PATH}]
    clock = Clock(T0 + MINUTE)
    app = make_app(config.settings(schedule=YEARLY), clock=clock)
    app.start(schedule=False)
    sink.fail(status, body=body)
    run_watch(app, app.settings.watcher.watch[0], scheduled_at=T0, claim=False)

    first = deliver_due(app, now=T0 + MINUTE)
    later = [deliver_due(app, now=T0 + MINUTE + h * HOUR) for h in (1, 24, 72)]

    assert first.failed == 1 and first.disabled_channels == ["hook"]
    assert all(s.claimed == 0 for s in later)
    assert len(sink.received) == 1
    assert _outbox(app) == [("firing", "failed_permanent")]
    disabled = app.repo.channel_disabled("hook") or ""
    assert f"HTTP {status}" in disabled and SECRET not in disabled
    metrics = app.render_metrics()[0].decode()
    assert metric(metrics, "pyrowatch_alert_channel_disabled", channel="hook") == 1
    assert metric(metrics, "pyrowatch_alerts_failed_total", channel="hook", reason=reason) == 1
    assert SECRET not in metrics


def test_a_disabled_channel_is_listed_and_catches_up_once_when_enabled(
    config: Config,
    sink: Any,
    regressed: str,
    make_app: Callable[..., Any],
    processes: Processes,
) -> None:
    """Slack says ``invalid_token``: ``pyrowatch alerts list`` reports the channel disabled
    and the refused notification is final; the regression stays open, so the next run
    queues it again, where it waits. Once the webhook is fixed and ``pyrowatch alerts
    enable`` runs, it goes out once; later runs add nothing."""
    config.channels = [{"name": "chat", "kind": "slack", "url": sink.url + SECRET_PATH}]
    path = config.write(schedule=YEARLY)
    clock = Clock(T0 + MINUTE)
    app = make_app(config.settings(schedule=YEARLY), clock=clock)
    watch = app.settings.watcher.watch[0]
    sink.fail(403, body="invalid_token")
    run_watch(app, watch, scheduled_at=T0, claim=False)
    assert deliver_due(app, now=T0 + MINUTE).disabled_channels == ["chat"]
    clock.set(T0 + 16 * MINUTE)
    queued = run_watch(app, watch, scheduled_at=T0 + 15 * MINUTE, claim=False)
    assert deliver_due(app, now=T0 + HOUR).claimed == 0

    listed = processes.run("alerts", "list", config=path)
    sink.ok()
    enabled = processes.run("alerts", "enable", "chat", config=path)
    resumed = deliver_due(app, now=T0 + 2 * HOUR)
    clock.set(T0 + 31 * MINUTE)
    quiet = run_watch(app, watch, scheduled_at=T0 + 30 * MINUTE, claim=False)
    after = deliver_due(app, now=T0 + 3 * HOUR)

    assert listed.popen.returncode == 0, listed
    assert "disabled: " in listed.out and "invalid_token" in listed.out, listed
    assert enabled.popen.returncode == 0 and "enabled" in enabled.out, enabled
    assert queued.enqueued == 1 and resumed.sent == 1
    assert quiet.enqueued == 0 and after.claimed == 0
    assert _outbox(app) == [("firing", "failed_permanent"), ("firing", "sent")]
    assert [r.answered for r in sink.received] == [403, 200]
    assert regressed in str(sink.received[1].json)
    for text in (listed.out, listed.err, enabled.out, enabled.err):
        assert SECRET not in text


def test_a_channel_down_beyond_the_retry_budget_still_hears_of_the_open_regression(
    config: Config, sink: Any, regressed: str, make_app: Callable[..., Any]
) -> None:
    """The webhook is down for hours: the notification exhausts its attempt budget and is
    given up (logged and counted, not retried forever). The regression is still open, so
    the next run queues it again; once the webhook is back it is delivered once, and later
    runs add nothing."""
    clock = Clock(T0 + MINUTE)
    app = make_app(config.settings(schedule=YEARLY), clock=clock)
    watch = app.settings.watcher.watch[0]
    policy = DeliveryPolicy(max_attempts=3, timeout=0.5)
    sink.down()
    assert run_watch(app, watch, scheduled_at=T0, claim=False).enqueued == 1
    for hour in range(4):
        deliver_due(app, now=T0 + MINUTE + hour * HOUR, policy=policy)
    assert _outbox(app) == [("firing", "failed_permanent")]
    metrics = app.render_metrics()[0].decode()
    assert metric(metrics, "pyrowatch_alerts_failed_total", channel="hook", reason="gave_up") == 1

    clock.set(T0 + 16 * MINUTE)
    again = run_watch(app, watch, scheduled_at=T0 + 15 * MINUTE, claim=False)
    sink.up()
    sink.wait_until_up()
    delivered = deliver_due(app, now=T0 + 5 * HOUR, policy=policy)
    clock.set(T0 + 31 * MINUTE)
    quiet = run_watch(app, watch, scheduled_at=T0 + 30 * MINUTE, claim=False)
    after = deliver_due(app, now=T0 + 6 * HOUR, policy=policy)

    assert again.enqueued == 1 and delivered.sent == 1
    assert quiet.enqueued == 0 and after.claimed == 0
    assert alert_keys(acked(sink)) == [("firing", regressed)]
    assert _outbox(app) == [("firing", "failed_permanent"), ("firing", "sent")]
