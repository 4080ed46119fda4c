"""``run``, ``check``, ``regressions``, ``snapshots`` and ``demo``: the watcher commands."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from watcher.cli._common import CONTEXT_SETTINGS, TIME, echo, json_option, note, type_option
from watcher.cli._core import global_options, state_of
from watcher.cli._watcher import (
    echo_lines,
    finding_json,
    findings_table,
    impact_text,
    open_app,
    setup_logging,
    share_text,
    short_type,
)
from watcher.cli.output import (
    Column,
    dumps_json,
    render_table,
    short_duration,
    signed_percent,
    terminal_width,
    utc_iso,
)

if TYPE_CHECKING:
    from watcher.daemon.jobs import RunResult


# --------------------------------------------------------------------------- run


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--upgrade-db",
    is_flag=True,
    help="Bring the database schema to head before starting (else a stale schema is refused).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Least severe log level written to stderr.",
)
@click.option(
    "--stop-timeout",
    type=click.FloatRange(0, 300),
    default=25.0,
    show_default=True,
    help="Seconds a SIGTERM waits for the current run to finish before abandoning it.",
)
@global_options
@click.pass_context
def run(ctx: click.Context, upgrade_db: bool, log_level: str, stop_timeout: float) -> None:
    """Run the watcher daemon in the foreground until SIGTERM or Ctrl-C.

    Runs every [[watcher.watch]] on its schedule, delivers alerts, prunes old history, and
    serves /healthz, /readyz, /metrics and /api/* on [watcher] listen. Logs go to stderr,
    as JSON lines when stderr is not a terminal. On SIGTERM the current run finishes (or
    the pairs it has not started are abandoned) and the process exits within the timeout.

    \b
    Examples:
      pyrowatch run
      pyrowatch run --upgrade-db --log-level debug
    """
    import signal
    import threading

    from watcher.log import get_logger

    setup_logging(ctx, level=log_level)
    log = get_logger("watcher.cli")
    settings = state_of(ctx).settings()
    if upgrade_db:
        _upgrade(settings.watcher.database_url.get_secret_value())
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    app = open_app(ctx, check_schema=False)
    try:
        app.start()
        if not settings.watcher.watch:
            log.warning("no [[watcher.watch]] configured: serving health and metrics only")
        while not stop.wait(1.0):
            pass
        log.info("stopping", signal=received[0] if received else None)
    finally:
        clean = app.stop(timeout=stop_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not clean:
        # A query is still running: leave without waiting for its thread.
        log.warning("abandoned the current run to exit in time", timeout=stop_timeout)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


# --------------------------------------------------------------------------- check


def _check_time(at: str | None) -> datetime:
    from watcher.times import parse_time, utcnow

    now = utcnow()
    moment = parse_time(at, now=now) if at else now
    return moment.astimezone(UTC).replace(microsecond=0)


def _run_summary(result: RunResult) -> str:
    parts = [f"{result.count('ok')} ok"]
    for status, word in (("failed", "failed"), ("skipped", "skipped"), ("claimed", "elsewhere")):
        if result.count(status):
            parts.append(f"{result.count(status)} {word}")
    found = len(result.findings)
    text = (
        f"watch {result.watch!r} at {utc_iso(result.scheduled_at)}: {len(result.pairs)} "
        f"pair{'s' if len(result.pairs) != 1 else ''} "
        f"({', '.join(parts)}), {found} finding{'s' if found != 1 else ''}"
    )
    if result.resolved:
        text += f", {len(result.resolved)} resolved"
    if not result.dry_run:
        text += f", {result.enqueued} notification{'s' if result.enqueued != 1 else ''} queued"
    return text


def _run_json(result: RunResult) -> dict[str, Any]:
    return {
        "watch": result.watch,
        "scheduled_at": utc_iso(result.scheduled_at),
        "run_id": result.run_id,
        "status": result.status,
        "dry_run": result.dry_run,
        "error": result.error,
        "snapshots": result.snapshots,
        "enqueued": result.enqueued,
        "resolved": list(result.resolved),
        "pairs": [
            {
                "service": p.service,
                "profile_type": p.profile_type,
                "status": p.status,
                "error": p.error,
                "warnings": list(p.warnings),
                "notes": list(p.notes),
                "findings": len(p.findings),
                "cost_shifts": [finding_json(f) for f in p.cost_shifts],
                "queries": p.query_count,
                "duration_ms": round(p.duration_ms, 1),
            }
            for p in result.pairs
        ],
        "findings": [finding_json(f) for f in result.findings],
    }


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--watch", "watch_names", multiple=True, help="Only this watch (repeatable).")
@click.option(
    "--at",
    type=TIME,
    help="Check as of this time (the end of the current window; default now).",
)
@click.option("--dry-run", is_flag=True, help="Query and detect, but store and send nothing.")
@json_option
@global_options
@click.pass_context
def check(
    ctx: click.Context, watch_names: tuple[str, ...], at: str | None, dry_run: bool, as_json: bool
) -> None:
    """Run the configured watches once, now or as of a past time, and print the findings.

    Findings are stored as regressions and their alerts delivered right away (a second
    check over the same window finds them again and sends nothing new). Exit 0 whether or
    not something was found; 1 when every pair failed or the database is unusable.

    \b
    Examples:
      pyrowatch check
      pyrowatch check --watch checkout-cpu --at 2024-05-01T12:00:00Z
      pyrowatch check --dry-run --json
    """
    from watcher.daemon.delivery import drain
    from watcher.daemon.jobs import run_watch
    from watcher.errors import ConfigError

    setup_logging(ctx, level="error")  # pair failures and warnings are summarised below
    settings = state_of(ctx).settings()
    watches = list(settings.watcher.watch)
    if not watches:
        raise ConfigError(
            "no watches configured: add a [[watcher.watch]] table (see `pyrowatch config check`)",
            path=str(settings.path) if settings.path else None,
        )
    if watch_names:
        known = {w.name: w for w in watches}
        unknown = [n for n in watch_names if n not in known]
        if unknown:
            raise click.BadParameter(
                f"unknown watch {unknown[0]!r}; configured: {', '.join(sorted(known))}",
                param_hint="--watch",
            )
        watches = [known[n] for n in dict.fromkeys(watch_names)]
    scheduled_at = _check_time(at)
    app = open_app(ctx, check_schema=not dry_run)
    results: list[RunResult] = []
    try:
        if not dry_run:
            from watcher.daemon.housekeeping import close_abandoned_runs

            close_abandoned_runs(app)
        for watch in watches:
            results.append(
                run_watch(app, watch, scheduled_at=scheduled_at, dry_run=dry_run, claim=False)
            )
        delivery = None if dry_run else drain(app)
    finally:
        app.stop(timeout=5)

    findings = [f for r in results for f in r.findings]
    if as_json:
        payload: dict[str, Any] = {"runs": [_run_json(r) for r in results]}
        if delivery is not None:
            payload["delivery"] = {
                "sent": delivery.sent,
                "retrying": delivery.retried,
                "failed": delivery.failed,
                "disabled_channels": delivery.disabled_channels,
            }
        echo(dumps_json(payload))
    else:
        if findings:
            echo_lines(findings_table(findings))
    for result in results:
        note(_run_summary(result))
        for pair in result.pairs:
            where = f"  {pair.service} {short_type(pair.profile_type)}"
            if pair.status == "failed":
                note(f"{where}: failed: {pair.error}")
            for warning in pair.warnings:
                note(f"{where}: warning: {warning}")
        if result.error:
            note(f"  {result.error}")
    if delivery is not None and (delivery.sent or delivery.retried or delivery.failed):
        note(
            f"alerts: {delivery.sent} sent, {delivery.retried} to retry (by `pyrowatch run`), "
            f"{delivery.failed} failed"
        )
        for channel in delivery.disabled_channels:
            note(f"alert channel {channel!r} was disabled: see `pyrowatch alerts list`")
    if not as_json and not findings:
        note("no regressions found")
    if results and all(r.status == "failed" for r in results):
        raise click.ClickException(
            "every pair failed; see the errors above (check the deployment with "
            "`pyrowatch services DEPLOYMENT`)"
        )


# --------------------------------------------------------------------------- regressions


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--open", "open_only", is_flag=True, help="Only regressions still open.")
@click.option(
    "--limit", type=click.IntRange(1, 10000), default=100, show_default=True, help="Rows."
)
@json_option
@global_options
@click.pass_context
def regressions(ctx: click.Context, open_only: bool, limit: int, as_json: bool) -> None:
    """List stored regressions, most recently opened first.

    \b
    Examples:
      pyrowatch regressions --open
      pyrowatch regressions --json
    """
    from watcher.daemon.app import json_ready

    setup_logging(ctx)
    app = open_app(ctx)
    try:
        rows = app.repo.regressions(open_only=open_only, limit=limit)
    finally:
        app.stop(timeout=0)
    if as_json:
        echo(dumps_json({"regressions": json_ready(rows)}))
        return
    if not rows:
        note("no open regressions" if open_only else "no regressions recorded")
        return
    columns = [
        Column("ID"),
        Column("STATE", "<"),
        Column("SEVERITY", "<"),
        Column("SERVICE", "<"),
        Column("TYPE", "<"),
        Column("KIND", "<"),
        Column("CHANGE"),
        Column("SHARE", "<"),
        Column("IMPACT"),
        Column("OPENED", "<"),
        Column("FUNCTION", "<"),
    ]
    body = [
        [
            str(r.id),
            r.state,
            r.severity,
            r.service,
            short_type(r.profile_type),
            r.kind,
            signed_percent(r.relative_change),
            f"{share_text(r.baseline_share)} -> {share_text(r.current_share)}",
            impact_text(r.impact_per_second, r.impact_unit),
            utc_iso(r.opened_at),
            r.function,
        ]
        for r in rows
    ]
    echo_lines(render_table(columns, body, max_width=terminal_width(sys.stdout)))


# --------------------------------------------------------------------------- snapshots


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("service")
@type_option
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="Snapshots."
)
@click.option(
    "--top",
    type=click.IntRange(0, 500),
    default=10,
    show_default=True,
    help="Functions of the latest snapshot to show (by self).",
)
@json_option
@global_options
@click.pass_context
def snapshots(
    ctx: click.Context,
    service: str,
    profile_type: str | None,
    limit: int,
    top: int,
    as_json: bool,
) -> None:
    """Show the stored top-function snapshots of SERVICE, latest window first.

    \b
    Examples:
      pyrowatch snapshots checkout
      pyrowatch snapshots checkout --type alloc --top 20 --json
    """
    from watcher.daemon.app import json_ready

    setup_logging(ctx)
    app = open_app(ctx)
    try:
        rows = app.repo.snapshots(service, profile_type, limit=limit, with_functions=top > 0)
    finally:
        app.stop(timeout=0)
    if as_json:
        data = json_ready(rows)
        for item in data:
            item["functions"] = item["functions"][:top]
        echo(dumps_json({"snapshots": data}))
        return
    if not rows:
        note(f"no snapshots of {service!r} stored yet (a run of a watch covering it stores them)")
        return
    columns = [
        Column("WINDOW END", "<"),
        Column("LENGTH"),
        Column("TYPE", "<"),
        Column("TOTAL"),
        Column("SAMPLES"),
        Column("TRUNCATED"),
        Column("RUN"),
    ]
    body = [
        [
            utc_iso(s.window_end),
            short_duration((s.window_end - s.window_start).total_seconds()),
            short_type(s.profile_type),
            str(s.total_value),
            f"{s.sample_count:,.0f}",
            share_text(s.truncated_share),
            str(s.run_id or "-"),
        ]
        for s in rows
    ]
    echo_lines(render_table(columns, body))
    latest = rows[0]
    if top and latest.functions:
        echo()
        echo(
            f"top {min(top, len(latest.functions))} functions by self, "
            f"{short_type(latest.profile_type)} window ending {utc_iso(latest.window_end)}:"
        )
        total = latest.total_value or 1
        fn_columns = [Column("SELF"), Column("TOTAL"), Column("FUNCTION", "<")]
        fn_rows = [
            [share_text(f.self_value / total), share_text(f.total_value / total), f.function]
            for f in latest.functions[:top]
        ]
        echo_lines(render_table(fn_columns, fn_rows, max_width=terminal_width(sys.stdout)))


# --------------------------------------------------------------------------- demo


def _trim(value: Any, *, text: int = 160, items: int = 3) -> Any:
    """A JSON value with long strings cut and long lists shortened, for display."""
    if isinstance(value, str):
        return value if len(value) <= text else value[: text - 1] + "…"
    if isinstance(value, list):
        kept = [_trim(v, text=text, items=items) for v in value[:items]]
        if len(value) > items:
            kept.append(f"... {len(value) - items} more")
        return kept
    if isinstance(value, dict):
        return {k: _trim(v, text=text, items=items) for k, v in value.items()}
    return value


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the sandbox running afterwards (until Ctrl-C), to explore it with other commands.",
)
@global_options
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """See the watcher work end to end, with no configuration.

    Starts a local Pyroscope-compatible sandbox holding two days of synthetic profiles of
    four services (CPU and allocations) with a +50% self-time regression injected in one
    function two hours ago, runs one watch over every service against a temporary SQLite
    database, and prints what it checked, what it found and the alert it delivered to a
    local webhook. Takes a few seconds; writes nothing outside a temporary directory.

    \b
    Example:
      pyrowatch demo
    """
    from watcher.daemon.demo import BASELINES, WINDOW, Demo

    setup_logging(ctx, level="error")
    with Demo() as session:
        result = session.run()
        spec = result.spec
        run = result.run
        types = ", ".join(short_type(t) for t in spec.profile_types)
        days = (spec.end - spec.start).total_seconds() / 86400
        echo("pyrowatch demo: a synthetic fleet in a local sandbox, checked once")
        echo()
        echo(f"  sandbox     {result.sandbox_url}")
        echo(
            f"  fleet       {len(spec.services)} services ({', '.join(spec.services)}) x {types}, "
            f"{days:.1f} days at {short_duration(spec.step.total_seconds())} steps"
        )
        echo(
            f"  injected    +50% self time in {result.service}: {result.function}, "
            f"since {utc_iso(result.injected_at)}"
        )
        echo("  database    a temporary SQLite file")
        echo("  alerts      an Alertmanager-shaped webhook, received by a local sink")
        echo()
        window = f"{utc_iso(run.scheduled_at - WINDOW)} .. {utc_iso(run.scheduled_at)}"
        echo(
            f"Checked {len(run.pairs)} service x profile type pairs over {window}, against "
            f"the same hour {' and '.join(b.lstrip('-') for b in BASELINES)} before and the "
            f"previous hour (persistence): {run.count('ok')} ok, {run.count('failed')} failed."
        )
        echo()
        findings = run.findings
        if findings:
            echo(f"Found {len(findings)} regression{'s' if len(findings) != 1 else ''}:")
            echo_lines(findings_table(findings))
        else:
            echo("Found no regression (unexpected: the demo's data holds one).")
        echo()
        payloads = result.payloads
        if payloads:
            echo(
                f"Delivered {len(payloads)} notification{'s' if len(payloads) != 1 else ''} "
                "(one per service and profile type). The first, as the webhook received it "
                "(long values trimmed):"
            )
            echo(dumps_json(_trim(payloads[0])))
        else:
            echo("No notification was delivered.")
        echo()
        echo(f"Done in {result.seconds:.1f}s. Next: write a config (`pyrowatch config --help`),")
        echo("then `pyrowatch check` once and `pyrowatch run` as a service.")
        if keep:
            note(f"sandbox still serving at {result.sandbox_url}; Ctrl-C to stop")
            try:
                import threading

                threading.Event().wait()
            except KeyboardInterrupt:
                pass


def _upgrade(url: str) -> str:
    from watcher.daemon.app import prepare_database_url
    from watcher.store import upgrade
    from watcher.store.db import head_revision

    upgrade(prepare_database_url(url))
    return head_revision()
