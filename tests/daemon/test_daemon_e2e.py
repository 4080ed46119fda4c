"""End to end, in-process: sandbox -> run_watch -> database -> outbox -> webhook sink.

Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from watcher.alerts import validate_slack_payload
from watcher.daemon.delivery import drain
from watcher.daemon.jobs import run_watch

from .support import CPU, SECRET, SECRET_PATH, T0, T1, Clock, ConfigWriter, webhook_alerts

MINUTE = timedelta(minutes=1)


def _check(app: Any, clock: Clock, at: Any, **kwargs: Any) -> Any:
    """A check as ``pyrowatch check --at`` does it: run (no claims), then deliver."""
    clock.set(at + MINUTE)
    result = run_watch(app, app.settings.watcher.watch[0], scheduled_at=at, claim=False, **kwargs)
    drain(app)
    return result


def test_a_check_finds_the_regression_stores_it_and_alerts_once(
    config: ConfigWriter, sink: Any, regressed: str, make_app: Callable[..., Any]
) -> None:
    """Exactly the injected function is found, snapshotted, stored and alerted once."""
    clock = Clock(T0)
    app = make_app(config.settings(), clock=clock)

    result = _check(app, clock, T0)

    assert result.status == "ok"
    assert [(p.service, p.status) for p in result.pairs] == [("checkout", "ok"), ("cart", "ok")]
    assert [(f.service, f.function, f.kind) for f in result.findings] == [
        ("checkout", regressed, "self")
    ]
    finding = result.findings[0]
    assert 0.3 < finding.relative_change < 0.7
    assert finding.ci_low <= finding.relative_change <= finding.ci_high
    assert finding.p_value < 1e-6
    assert finding.persistent is True

    (regression,) = app.repo.regressions(open_only=True)
    assert (regression.service, regression.function, regression.kind) == (
        "checkout",
        regressed,
        "self",
    )
    for service in ("checkout", "cart"):
        (snapshot,) = app.repo.snapshots(service, CPU, with_functions=True)
        assert snapshot.window_end == T0
        assert snapshot.window_start == T0 - timedelta(hours=1)
        assert snapshot.run_id == result.run_id
        assert snapshot.total_value > 0 and snapshot.sample_count > 0
        assert 0 < len(snapshot.functions) <= 1000
        assert snapshot.selector == f'{{service_name="{service}"}}'
    checkout = app.repo.snapshots("checkout", CPU, with_functions=True)[0]
    assert regressed in {f.function for f in checkout.functions}

    (received,) = sink.received
    assert received.path == SECRET_PATH
    payload = received.json
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "hook"
    (alert,) = payload["alerts"]
    assert alert["labels"]["alertname"] == "ProfileRegression"
    assert alert["labels"]["service_name"] == "checkout"
    assert alert["labels"]["profile_type"] == CPU
    assert alert["labels"]["function"] == regressed
    assert alert["labels"]["kind"] == "self"
    assert alert["annotations"]["summary"]
    assert alert["annotations"]["diff_url"].startswith(config.sandbox_url + "/comparison-diff?")
    assert alert["fingerprint"] == finding.fingerprint

    run = app.repo.run(result.run_id)
    assert run is not None and (run.status, run.pairs_ok, run.pairs_failed) == ("ok", 2, 0)
    assert SECRET not in repr(app.repo.outbox_items())  # stored payloads carry no channel URL


def test_a_second_check_over_the_same_window_sends_nothing_new(
    config: ConfigWriter, sink: Any, regressed: str, make_app: Callable[..., Any]
) -> None:
    """The regression is seen again (same row, seen twice) and no notification is queued."""
    clock = Clock(T0)
    app = make_app(config.settings(), clock=clock)
    _check(app, clock, T0)

    again = _check(app, clock, T0)

    assert [f.function for f in again.findings] == [regressed]
    assert again.enqueued == 0
    assert len(sink.received) == 1
    (regression,) = app.repo.regressions()
    assert regression.seen_count == 2
    assert len(app.repo.outbox_items()) == 1


def test_a_restarted_daemon_never_resends(
    config: ConfigWriter, sink: Any, make_app: Callable[..., Any]
) -> None:
    """A new App (a restart) over the same database decides from the stored log."""
    settings = config.settings()
    clock = Clock(T0)
    _check(make_app(settings, clock=clock), clock, T0)
    restarted = make_app(settings, clock=clock)

    later = _check(restarted, clock, T0 + timedelta(minutes=15))

    assert later.enqueued == 0
    assert len(sink.received) == 1


def test_when_the_regression_ends_one_resolved_notification(
    config: ConfigWriter, sink: Any, regressed: str, make_app: Callable[..., Any]
) -> None:
    """Back within 10 % of baseline in two windows: resolved, notified once."""
    clock = Clock(T0)
    app = make_app(config.settings(), clock=clock)
    _check(app, clock, T0)

    after = _check(app, clock, T1)
    _check(app, clock, T1)

    assert after.findings == ()
    assert after.resolved == (regressed,)
    assert app.repo.regressions(open_only=True) == []
    (regression,) = app.repo.regressions()
    assert regression.state == "resolved" and regression.resolved_at == T1 + MINUTE
    first, resolved = (r.json for r in sink.received)
    assert first["status"] == "firing"
    assert resolved["status"] == "resolved"
    (alert,) = resolved["alerts"]
    assert alert["status"] == "resolved"
    assert alert["labels"]["function"] == regressed
    assert alert["endsAt"].startswith("2025-03-01T15:01:00")
    events = [e.event for e in app.repo.regression_events(regression.id)]
    assert events == ["opened", "resolved"]


def test_dry_run_stores_and_sends_nothing(
    config: ConfigWriter, sink: Any, regressed: str, make_app: Callable[..., Any]
) -> None:
    """--dry-run returns the findings; no run, snapshot, regression or notification."""
    clock = Clock(T0)
    app = make_app(config.settings(), clock=clock)

    result = _check(app, clock, T0, dry_run=True)

    assert [f.function for f in result.findings] == [regressed]
    assert result.run_id is None
    assert app.repo.runs() == []
    assert app.repo.snapshots("checkout") == []
    assert app.repo.regressions() == []
    assert app.repo.outbox_items() == []
    assert sink.received == []


def test_slack_payloads_stay_within_slack_limits(
    config: ConfigWriter, sink: Any, regressed: str, make_app: Callable[..., Any]
) -> None:
    """A Slack channel gets one Block Kit message per group, valid against every limit."""
    config.channels = [{"name": "chat", "kind": "slack", "url": sink.url + SECRET_PATH}]
    clock = Clock(T0)
    app = make_app(config.settings(), clock=clock)

    _check(app, clock, T0)
    _check(app, clock, T1)

    firing, resolved = (r.json for r in sink.received)
    for payload in (firing, resolved):
        assert validate_slack_payload(payload) == []
        assert payload["text"]
    assert regressed in firing["text"] or regressed in str(firing["blocks"])


def test_alertmanager_gets_the_alert_every_cycle_until_resolved(
    config: ConfigWriter, sink: Any, regressed: str, make_app: Callable[..., Any]
) -> None:
    """Alertmanager's API needs re-sends while firing; endsAt is three cycles ahead."""
    config.channels = [{"name": "am", "kind": "alertmanager", "url": sink.url + SECRET_PATH}]
    clock = Clock(T0)
    app = make_app(config.settings(), clock=clock)

    _check(app, clock, T0)
    _check(app, clock, T0)  # the same scheduled time again: the same re-send, deduplicated
    _check(app, clock, T0 + timedelta(minutes=15))
    _check(app, clock, T1)

    bodies = [r.json for r in sink.received]
    assert [r.path for r in sink.received] == [SECRET_PATH + "/api/v2/alerts"] * 3
    first, second, resolved = bodies
    assert [a["labels"]["function"] for a in first + second + resolved] == [regressed] * 3
    assert first[0]["endsAt"].startswith("2025-03-01T12:46:00")  # T0 + 1m + 3 x 15m
    assert second[0]["endsAt"].startswith("2025-03-01T13:01:00")
    assert resolved[0]["endsAt"].startswith("2025-03-01T15:01:00")  # resolution time


def test_globs_expand_and_absent_exact_names_are_skipped(
    config: ConfigWriter, make_app: Callable[..., Any]
) -> None:
    """``ca*`` matches cart only; an exact name with no data is recorded as skipped."""
    clock = Clock(T0)
    app = make_app(config.settings(services=["ca*", "ghost"]), clock=clock)

    result = _check(app, clock, T0)

    assert sorted((p.service, p.status) for p in result.pairs) == [
        ("cart", "ok"),
        ("ghost", "skipped"),
    ]
    pairs = app.repo.pair_results(result.run_id)
    assert sorted((p.service, p.status) for p in pairs) == [("cart", "ok"), ("ghost", "skipped")]


def test_an_open_regression_is_notified_again_after_the_repeat_interval(
    config: ConfigWriter, sink: Any, regressed: str, make_app: Callable[..., Any]
) -> None:
    """Still open four hours after the last notification: one repeat, then quiet again."""
    clock = Clock(T0)
    app = make_app(config.settings(), clock=clock)
    _check(app, clock, T0)

    clock.set(T0 + timedelta(hours=4, minutes=2))
    watch = app.settings.watcher.watch[0]
    repeat = run_watch(app, watch, scheduled_at=T0 + timedelta(minutes=15), claim=False)
    drain(app)
    quiet = run_watch(app, watch, scheduled_at=T0 + timedelta(minutes=30), claim=False)
    drain(app)

    assert repeat.enqueued == 1 and quiet.enqueued == 0
    assert [item.kind for item in app.repo.outbox_items()] == ["repeat", "firing"]
    assert [a["labels"]["function"] for a in webhook_alerts([r.json for r in sink.received])] == [
        regressed,
        regressed,
    ]


def test_a_notification_waiting_for_delivery_is_not_queued_again(
    config: ConfigWriter, sink: Any, make_app: Callable[..., Any]
) -> None:
    """While the sink is down, later runs add nothing; when it is back, one delivery."""
    clock = Clock(T0)
    app = make_app(config.settings(), clock=clock)
    sink.down()

    first = _check(app, clock, T0)
    later = _check(app, clock, T0 + timedelta(minutes=15))
    sink.up()
    drain(app, now=T0 + timedelta(hours=1))

    assert first.enqueued == 1 and later.enqueued == 0
    assert len(sink.received) == 1
    assert [item.status for item in app.repo.outbox_items()] == ["sent"]


def test_retention_prunes_old_history_but_keeps_open_regressions(
    config: ConfigWriter, make_app: Callable[..., Any]
) -> None:
    """The prune job deletes runs and snapshots past [watcher] retention, in batches."""
    from watcher.daemon.scheduler import _prune_job

    clock = Clock(T0)
    app = make_app(config.settings(extra_watcher={"retention": "7d"}), clock=clock)
    _check(app, clock, T0)
    assert app.repo.runs() and app.repo.snapshots("checkout")

    clock.set(T0 + timedelta(days=8))
    _prune_job(app)

    assert app.repo.runs() == []
    assert app.repo.snapshots("checkout") == []
    assert len(app.repo.regressions(open_only=True)) == 1


def test_a_baseline_without_data_is_left_out_with_a_warning(
    config: ConfigWriter, sink: Any, regressed: str, make_app: Callable[..., Any]
) -> None:
    """The fleet holds a day of history: a -3d baseline is empty (a young service, or a
    server answering less far back). The run compares with -1d alone, says so, and still
    finds and alerts the regression."""
    clock = Clock(T0)
    app = make_app(config.settings(baselines=("-1d", "-3d")), clock=clock)

    result = _check(app, clock, T0)

    assert [(f.service, f.function) for f in result.findings] == [("checkout", regressed)]
    assert result.findings[0].baseline_starts == (T0 - timedelta(days=1, hours=1),)
    for pair in result.pairs:
        assert pair.status == "ok"
        assert any(
            "no data in the -3d baseline" in w and "compared with the -1d baseline only" in w
            for w in pair.warnings
        ), pair.warnings
    assert len(sink.received) == 1


def test_no_baseline_with_data_finds_nothing_and_says_why(
    config: ConfigWriter, sink: Any, make_app: Callable[..., Any]
) -> None:
    clock = Clock(T0)
    app = make_app(config.settings(baselines=("-3d", "-4d")), clock=clock)

    result = _check(app, clock, T0)

    assert result.findings == ()
    for pair in result.pairs:
        assert any(w.startswith("no data in any baseline window") for w in pair.warnings)
    assert sink.received == []
