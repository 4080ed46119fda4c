"""``alerts list``, ``alerts test NAME`` and ``alerts enable NAME``: the alert channels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from watcher.cli._common import CONTEXT_SETTINGS, echo, json_option, note
from watcher.cli._core import global_options, state_of
from watcher.cli._watcher import open_app, setup_logging
from watcher.cli.output import Column, dumps_json, render_table

if TYPE_CHECKING:
    from watcher.alerts import AlertGroup, Notifier


@click.group(context_settings=CONTEXT_SETTINGS)
@global_options
def alerts() -> None:
    """Inspect and test the alert channels ([[watcher.alert]]).

    \b
    Examples:
      pyrowatch alerts list
      pyrowatch alerts test oncall
      pyrowatch alerts enable oncall
    """


def _channel(ctx: click.Context, name: str) -> Notifier:
    from watcher.alerts import build_notifier

    channels = {c.name: c for c in state_of(ctx).settings().watcher.alert}
    if name not in channels:
        known = ", ".join(sorted(channels)) or "none are configured"
        raise click.BadParameter(
            f"unknown alert channel {name!r}; [[watcher.alert]] names: {known}", param_hint="NAME"
        )
    return build_notifier(channels[name])


def _test_group(now: datetime) -> AlertGroup:
    from watcher.alerts import AlertGroup
    from watcher.findings import Finding
    from watcher.profiletypes import ALIASES

    cpu = ALIASES["cpu"]
    window_start = now - timedelta(hours=1)
    finding = Finding(
        service="pyrowatch-test",
        profile_type=cpu,
        function="pyrowatch.test.Notification",
        kind="self",
        baseline_share=0.01,
        current_share=0.015,
        relative_change=0.5,
        absolute_change=0.005,
        impact_per_second=0.05,
        impact_unit="cores",
        p_value=1e-9,
        ci_low=0.4,
        ci_high=0.6,
        mde=0.05,
        window_start=window_start,
        window_end=now,
        baseline_starts=(window_start - timedelta(days=1),),
        severity="info",
        note="a test notification from `pyrowatch alerts test`",
    )
    return AlertGroup(
        service=finding.service,
        profile_type=cpu,
        deployment="",
        run_id="test",
        window_start=window_start,
        window_end=now,
        findings=[finding],
        watch="pyrowatch-test",
        labels={"test": "true"},
    )


@alerts.command(name="test", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@global_options
@click.pass_context
def test_channel(ctx: click.Context, name: str) -> None:
    """Send one test notification to channel NAME, once, without retries.

    The alert names service `pyrowatch-test` and carries the label test="true", so a
    receiver can route or silence it. Exit 1 when the channel refuses or cannot be reached.
    """
    import httpx

    notifier = _channel(ctx, name)
    now = datetime.now(UTC).replace(microsecond=0)
    with httpx.Client(timeout=httpx.Timeout(10.0), follow_redirects=False) as client:
        result = notifier.send(_test_group(now), client, now=now)
    millis = result.duration.total_seconds() * 1000
    echo(
        f"sent a test notification to {notifier.describe()}: HTTP {result.status_code} "
        f"in {millis:.0f} ms"
    )


@alerts.command(name="list", context_settings=CONTEXT_SETTINGS)
@json_option
@global_options
@click.pass_context
def list_channels(ctx: click.Context, as_json: bool) -> None:
    """List the channels: kind, host, and whether delivery disabled them."""
    setup_logging(ctx)
    app = open_app(ctx)
    try:
        disabled = app.repo.disabled_channels()
        notifiers = list(app.notifiers.values())
    finally:
        app.stop(timeout=0)
    rows = [
        {
            "name": n.name,
            "kind": n.kind,
            "host": n.host,
            "send_resolved": n.send_resolved,
            "repeat_interval_seconds": n.repeat_interval.total_seconds(),
            "disabled": disabled.get(n.name),
        }
        for n in notifiers
    ]
    if as_json:
        echo(dumps_json({"channels": rows}))
        return
    if not rows:
        note("no alert channels configured; add a [[watcher.alert]] table")
        return
    columns = [Column("NAME", "<"), Column("KIND", "<"), Column("HOST", "<"), Column("STATE", "<")]
    body = [
        [n.name, n.kind, n.host, f"disabled: {disabled[n.name]}" if n.name in disabled else "ok"]
        for n in notifiers
    ]
    for line in render_table(columns, body):
        echo(line)


@alerts.command(name="enable", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@global_options
@click.pass_context
def enable_channel(ctx: click.Context, name: str) -> None:
    """Turn channel NAME back on after delivery disabled it (a permanent failure).

    Its pending notifications are delivered by the next delivery pass.
    """
    _channel(ctx, name)
    setup_logging(ctx)
    app = open_app(ctx)
    try:
        changed = app.repo.enable_channel(name)
    finally:
        app.stop(timeout=0)
    echo(
        f"alert channel {name!r} enabled" if changed else f"alert channel {name!r} was not disabled"
    )
