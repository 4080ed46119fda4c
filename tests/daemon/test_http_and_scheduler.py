"""The daemon as a service: HTTP endpoints, readiness, the scheduler wiring, SIGTERM."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from watcher.daemon.app import json_ready
from watcher.daemon.jobs import run_watch
from watcher.daemon.scheduler import (
    MAX_JITTER_SECONDS,
    build_scheduler,
    cron_trigger,
    cycle_of,
    floor_minute,
    watch_job_id,
)
from watcher.errors import SchemaOutOfDate
from watcher.times import TimeRange

from .support import BIN, SECRET, T0, T1, CheckedOut, Clock, ConfigWriter

YEARLY = "0 0 1 1 *"  # never fires while a test runs


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10)


def test_health_readiness_metrics_and_api(
    config: ConfigWriter, regressed: str, make_app: Callable[..., Any]
) -> None:
    """Every endpoint answers; the API serves what a run stored, and never a secret."""
    settings = config.settings(schedule=YEARLY)
    app = make_app(settings, clock=Clock(T0 + timedelta(minutes=1)))
    app.start()
    result = run_watch(app, settings.watcher.watch[0], scheduled_at=T0)
    base = app.status_server.url

    health = _get(base + "/healthz")
    ready = _get(base + "/readyz")
    metrics = _get(base + "/metrics")
    regressions = _get(base + "/api/regressions?open=1")
    snapshots = _get(base + "/api/snapshots?service=checkout&type=cpu&functions=5")
    runs = _get(base + "/api/runs")
    one_run = _get(base + f"/api/runs?id={result.run_id}")
    bad = [
        _get(base + "/api/snapshots"),
        _get(base + "/api/runs?id=abc"),
        _get(base + "/api/regressions?limit=x"),
    ]

    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json() == {"ready": True, "reasons": []}
    assert metrics.status_code == 200
    assert 'pyrowatch_runs_total{status="ok",watch="shop"} 1.0' in metrics.text
    assert "pyrowatch_outbox_depth 1.0" in metrics.text
    assert "pyrowatch_open_regressions 1.0" in metrics.text
    assert "pyrowatch_query_duration_seconds_count" in metrics.text
    assert "pyrowatch_ready 1.0" in metrics.text
    (regression,) = regressions.json()["regressions"]
    assert (regression["function"], regression["state"]) == (regressed, "open")
    (snapshot,) = snapshots.json()["snapshots"]
    assert snapshot["window_end"] == "2025-03-01T12:00:00Z" and len(snapshot["functions"]) == 5
    assert [r["id"] for r in runs.json()["runs"]] == [result.run_id]
    assert len(one_run.json()["pairs"]) == 2
    assert [r.status_code for r in bad] == [400, 400, 400]
    assert "service=NAME" in bad[0].json()["error"]
    assert _get(base + "/nowhere").status_code == 404
    for response in (metrics, regressions, snapshots, runs, one_run, *bad):
        assert SECRET not in response.text


def test_the_api_gives_a_time_range_as_its_two_ends() -> None:
    """Alone or inside a record, a TimeRange is ``{"start", "end"}`` in ISO UTC."""

    @dataclass(frozen=True)
    class Record:
        window: TimeRange

    rng = TimeRange(datetime(2024, 5, 1, 11, tzinfo=UTC), datetime(2024, 5, 1, 12, tzinfo=UTC))
    ends = {"start": "2024-05-01T11:00:00Z", "end": "2024-05-01T12:00:00Z"}
    assert json_ready(rng) == ends
    assert json_ready([Record(rng)]) == [{"window": ends}]


def test_readiness_needs_a_running_scheduler(
    config: ConfigWriter, make_app: Callable[..., Any]
) -> None:
    """Serving HTTP without the scheduler is alive but not ready."""
    app = make_app(config.settings(schedule=YEARLY))
    app.start(schedule=False)

    ready = _get(app.status_server.url + "/readyz")

    assert ready.status_code == 503
    assert ready.json() == {"ready": False, "reasons": ["scheduler not running"]}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_start_refuses_a_database_that_is_not_at_head(
    config: ConfigWriter, empty_database_url: str, make_app: Callable[..., Any]
) -> None:
    """App.start() on an empty database names the upgrade command."""
    config.database_url = empty_database_url
    app = make_app(config.settings(schedule=YEARLY))

    with pytest.raises(SchemaOutOfDate, match="pyrowatch db upgrade"):
        app.start()
    assert app.status_server is None and app.scheduler is None


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_database_outage_makes_readyz_fail_and_the_app_recovers(
    config: ConfigWriter, database_url: str, pg_admin: Any, make_app: Callable[..., Any]
) -> None:
    """PostgreSQL refuses connections: /readyz 503, /healthz 200; back: ready, same app."""
    app = make_app(config.settings(schedule=YEARLY))
    app.start()
    base = app.status_server.url
    assert _get(base + "/readyz").status_code == 200
    name = make_url(database_url).database

    with pg_admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
    try:
        down = _get(base + "/readyz")
        alive = _get(base + "/healthz")
        metrics = _get(base + "/metrics")
    finally:
        with pg_admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    back = _get(base + "/readyz")

    assert down.status_code == 503
    assert down.json()["reasons"][0].startswith("database unavailable: ")
    assert alive.status_code == 200
    assert metrics.status_code == 200 and "pyrowatch_ready 0.0" in metrics.text
    assert back.status_code == 200 and back.json()["ready"] is True
    password = make_url(database_url).password
    if password:
        assert str(password) not in down.text


# ---------------------------------------------------------------------------- scheduler


def test_cron_triggers_and_cycles_are_utc_and_exact() -> None:
    """Watch schedules are UTC crontab expressions; a cycle is the period between fires."""
    trigger = cron_trigger("*/15 * * * *")
    assert trigger.get_next_fire_time(None, T0 + timedelta(minutes=1)) == T0 + timedelta(minutes=15)
    assert cycle_of("*/15 * * * *") == timedelta(minutes=15)
    assert cycle_of("0 * * * *") == timedelta(hours=1)
    assert cycle_of("0 6 * * mon-fri") == timedelta(days=1)
    assert floor_minute(datetime(2025, 3, 1, 12, 14, 59, 999, tzinfo=UTC)) == T0 + timedelta(
        minutes=14
    )


def test_the_scheduler_wires_one_job_per_watch_and_the_housekeeping(
    config: ConfigWriter, make_app: Callable[..., Any]
) -> None:
    """Explicit ids, coalescing, one instance, misfire grace, jitter under a minute."""
    app = make_app(config.settings(schedule="*/15 * * * *"))
    scheduler = build_scheduler(app)

    jobs = {job.id: job for job in scheduler.get_jobs()}

    assert set(jobs) == {watch_job_id("shop"), "deliver", "prune"}
    watch = jobs[watch_job_id("shop")]
    assert watch.coalesce is True and watch.max_instances == 1
    assert watch.misfire_grace_time == 300
    assert str(watch.trigger.timezone) == "UTC"
    assert 0 < watch.trigger.jitter == MAX_JITTER_SECONDS < 60
    assert jobs["deliver"].trigger.interval == timedelta(seconds=10)


def test_a_scheduled_run_is_for_its_fire_time_floored_to_the_minute(
    config: ConfigWriter, make_app: Callable[..., Any]
) -> None:
    """The run records the trigger's fire time (jitter and start delay removed)."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

    app = make_app(config.settings(schedule=YEARLY), clock=lambda: datetime.now(UTC))
    scheduler = build_scheduler(app)
    done = threading.Event()
    outcome: list[Any] = []

    def listener(event: Any) -> None:
        if event.job_id == watch_job_id("shop"):
            outcome.append(event)
            done.set()

    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    app.scheduler = scheduler
    scheduler.start(paused=True)
    fire = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    scheduler.modify_job(watch_job_id("shop"), next_run_time=fire)
    scheduler.resume()

    assert done.wait(60), "the watch job did not run"
    assert getattr(outcome[0], "exception", None) is None
    (run,) = app.repo.runs()
    assert run.scheduled_at == floor_minute(fire)
    assert run.owner == app.owner


def _disposals(engine: Any) -> list[str]:
    """A list that gets ``"dispose"`` each time ``engine`` is disposed of."""
    events: list[str] = []
    event.listen(engine, "engine_disposed", lambda _engine: events.append("dispose"))
    return events


def test_stop_counts_a_job_from_its_first_step(
    config: ConfigWriter, make_app: Callable[..., Any]
) -> None:
    """A job that began before stop() is in progress from its first step: a stop whose
    timeout runs out while the job has yet to reach the database is not clean, leaves
    the engine to the job, and the job closes it when it ends."""
    reached, release = threading.Event(), threading.Event()

    def clock() -> datetime:  # the delivery job reads it before its pass
        reached.set()
        release.wait(60)
        return T1

    app = make_app(config.settings(schedule=YEARLY), clock=clock)
    disposals = _disposals(app.engine)
    deliver = build_scheduler(app).get_job("deliver")
    job = threading.Thread(target=deliver.func, args=deliver.args)
    job.start()
    assert reached.wait(60)

    clean = app.stop(timeout=0)
    disposed_at_stop = list(disposals)
    release.set()
    job.join(60)

    assert clean is False
    assert disposed_at_stop == []  # the job still had the database to use
    assert disposals == ["dispose"]  # the job's pass used it, then closed it on its way out
    assert app.engine.pool.checkedin() == 0  # nothing opened after the dispose
    assert app.stop(timeout=0) is True  # everything is closed now


def test_stop_counts_a_request_reading_the_database_and_refuses_new_ones(
    config: ConfigWriter, make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A /metrics request reading the database when stop() begins keeps the engine until it
    ends; stop() closes the listening socket, and a request on a connection kept open
    across it answers without the database: /healthz 200, /readyz and /api 503."""
    app = make_app(config.settings(schedule=YEARLY))
    app.start(schedule=False)
    base = app.status_server.url
    order = _disposals(app.engine)
    inside, release = threading.Event(), threading.Event()
    outbox_depth = app.repo.outbox_depth

    def slow_outbox_depth() -> int:  # /metrics reads it first
        if not inside.is_set():
            inside.set()
            release.wait(60)
        depth = outbox_depth()
        order.append("request")
        return depth

    monkeypatch.setattr(app.repo, "outbox_depth", slow_outbox_depth)
    with httpx.Client(base_url=base, timeout=60) as kept:
        assert kept.get("/healthz").status_code == 200  # opens the kept connection
        answers: list[httpx.Response] = []
        request = threading.Thread(target=lambda: answers.append(_get(base + "/metrics")))
        request.start()
        assert inside.wait(60)

        clean = app.stop(timeout=0)
        after = [kept.get(path) for path in ("/healthz", "/readyz", "/metrics", "/api/runs")]
        with pytest.raises(httpx.ConnectError):
            _get(base + "/healthz")
        release.set()
        request.join(60)

    assert clean is False
    assert order == ["request", "dispose"]
    assert [a.status_code for a in answers] == [200]
    assert [r.status_code for r in after] == [200, 503, 200, 503]
    assert after[1].json() == {"ready": False, "reasons": ["shutting down"]}
    assert "pyrowatch_ready 0.0" in after[2].text
    assert "shutting down" in after[3].json()["detail"]
    assert app.stop(timeout=0) is True


def test_a_second_stop_closes_nothing_and_waits_for_the_first(
    config: ConfigWriter, make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one stop() is closing, another (another thread, or a signal handler on the
    same one) closes nothing: it waits for the first within its own timeout."""
    app = make_app(config.settings(schedule=YEARLY))
    app.start(schedule=False)
    disposals = _disposals(app.engine)
    server = app.status_server
    server_stop = server.stop
    inside, release = threading.Event(), threading.Event()
    server_stops: list[str] = []
    nested: list[bool] = []

    def slow_server_stop() -> None:
        server_stops.append(threading.current_thread().name)
        if len(server_stops) == 1:
            nested.append(app.stop(timeout=0))  # as a signal handler would, mid-stop
            inside.set()
            release.wait(60)
        server_stop()

    monkeypatch.setattr(server, "stop", slow_server_stop)
    first: list[bool] = []
    stopper = threading.Thread(target=lambda: first.append(app.stop(60)), name="first")
    stopper.start()
    assert inside.wait(60)

    impatient = app.stop(timeout=0)
    waited: list[bool] = []
    patient = threading.Thread(target=lambda: waited.append(app.stop(60)))
    patient.start()
    release.set()
    stopper.join(60)
    patient.join(60)

    assert nested == [False] and impatient is False
    assert first == [True] and waited == [True]
    assert server_stops == ["first"] and disposals == ["dispose"]


def test_stop_waits_for_a_delivery_pass_and_no_job_starts_after_it(
    config: ConfigWriter, make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine is closed once the pass in progress has given its connection back; a job
    firing after stop() does nothing."""
    app = make_app(config.settings(schedule=YEARLY))
    checked_out = CheckedOut(app.engine)
    deliver = build_scheduler(app).get_job("deliver")
    inside, release = threading.Event(), threading.Event()
    passes: list[datetime] = []
    claim_due = app.repo.claim_due

    def slow_claim_due(owner: str, now: datetime, *args: Any) -> Any:
        passes.append(now)
        with app.engine.connect():  # held while the pass is slow
            inside.set()
            release.wait(60)
        return claim_due(owner, now, *args)

    monkeypatch.setattr(app.repo, "claim_due", slow_claim_due)
    job = threading.Thread(target=deliver.func, args=deliver.args)
    job.start()
    assert inside.wait(60)
    stopped: list[tuple[bool, int]] = []
    stopper = threading.Thread(target=lambda: stopped.append((app.stop(60), checked_out.count)))
    stopper.start()
    assert app.stopping.wait(60)
    release.set()
    job.join(60)
    stopper.join(60)
    deliver.func(*deliver.args)

    assert stopped == [(True, 0)]
    assert passes == [T1]


def test_run_serves_until_sigterm_and_exits_cleanly(config: ConfigWriter) -> None:
    """pyrowatch run: JSON logs off a terminal, endpoints up, SIGTERM -> exit 0 in time."""
    path = config.write(schedule=YEARLY)
    env = {"PYROWATCH_CONFIG": str(path), "NO_COLOR": "1", "PATH": str(BIN)}
    with subprocess.Popen(
        [str(BIN / "pyrowatch"), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        code, lines, rest = _serve_then_terminate(proc)
    assert code == 0
    events = [line["event"] for line in rest]
    assert "stopping" in events and "stopped" in events
    assert next(line for line in rest if line["event"] == "stopping")["signal"] == "SIGTERM"
    for line in [*lines, *rest]:
        assert SECRET not in json.dumps(line)


def _serve_then_terminate(
    proc: subprocess.Popen[str],
) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    try:
        assert proc.stderr is not None
        lines: list[dict[str, Any]] = []
        for raw in proc.stderr:
            lines.append(json.loads(raw))
            if lines[-1].get("event") == "started":
                break
        started = lines[-1]
        assert started["event"] == "started" and started["level"] == "info"
        built = importlib.util.find_spec("watcher.flamegraph._speedups") is not None
        assert started["decoder"] == ("C" if built else "Python")
        base = started["listen"]
        assert _get(base + "/healthz").status_code == 200
        assert _get(base + "/readyz").json() == {"ready": True, "reasons": []}

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        rest = [json.loads(line) for line in proc.stderr.read().splitlines() if line.strip()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, lines, rest
