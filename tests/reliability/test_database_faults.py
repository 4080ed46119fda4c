"""PostgreSQL going away under a running daemon.

A cluster of these tests alone (``scripts/pg`` with its own state directory) is restarted
with ``scripts/pg restart``, or stopped by signalling its postmaster, while an
:class:`~watcher.daemon.app.App` serves HTTP and runs a watch. The app is never restarted.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from daemon.support import T0, Clock
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from watcher.daemon.delivery import drain
from watcher.daemon.jobs import RunResult, run_watch
from watcher.errors import StoreError
from watcher.store.db import upgrade

from .support import (
    MINUTE,
    YEARLY,
    Config,
    PrivateCluster,
    Processes,
    acked,
    alert_keys,
    metric,
    query,
    wait_until,
)

SMS = "SelectMergeStacktraces"


@pytest.fixture
def cluster_url(private_cluster: PrivateCluster) -> Iterator[str]:
    """A fresh database at head on the private cluster."""
    base = make_url(private_cluster.url)
    name = f"pyrowatch_r_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class _HeldQuery(httpx.BaseTransport):
    """Passes requests to the network, but holds the first profile query until released."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.entered = threading.Event()
        self.release = threading.Event()
        self._first = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(SMS) and self._first.acquire(blocking=False):
            self.entered.set()
            assert self.release.wait(120), "the test never released the held query"
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _get(app: Any, path: str) -> httpx.Response:
    return httpx.get(app.status_server.url + path, timeout=30)


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # recorded for the assertions
            outcome.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def test_postgres_restarted_during_a_run_fails_cleanly_or_completes_then_recovers(
    config: Config,
    cluster_url: str,
    private_cluster: PrivateCluster,
    sink: Any,
    regressed: str,
    make_app: Callable[..., Any],
) -> None:
    """``scripts/pg restart`` while a run waits on Pyroscope: the run either completes (the
    pool re-connects) or fails with a StoreError; never anything else. /healthz answers
    throughout, the same app is ready again and its next run stores and alerts the
    regression exactly once."""
    config.database_url = cluster_url
    settings = config.settings(schedule=YEARLY)
    clock = Clock(T0 + MINUTE)
    transport = _HeldQuery()
    app = make_app(settings, clock=clock, transport=transport)
    app.start()
    assert _get(app, "/readyz").status_code == 200
    watch = settings.watcher.watch[0]

    thread, outcome = _in_thread(lambda: run_watch(app, watch, scheduled_at=T0))
    assert transport.entered.wait(60), "the run never queried Pyroscope"
    private_cluster.restart()
    alive = _get(app, "/healthz")
    transport.release.set()
    thread.join(120)
    assert not thread.is_alive()

    (first,) = outcome
    assert isinstance(first, RunResult | StoreError), repr(first)
    assert alive.status_code == 200
    wait_until(lambda: _get(app, "/readyz").status_code == 200, what="/readyz back to 200")
    clock.set(T0 + 16 * MINUTE)
    second = run_watch(app, watch, scheduled_at=T0 + 15 * MINUTE)
    drain(app)

    assert second.status == "ok" and [f.function for f in second.findings] == [regressed]
    assert alert_keys(acked(sink)) == [("firing", regressed)]
    runs = query(cluster_url, "SELECT status FROM runs ORDER BY id")
    assert runs[-1] == {"status": "ok"}
    assert all(r["status"] != "running" for r in runs), runs  # every run was closed


def test_readyz_is_503_while_postgres_is_down_and_the_same_app_recovers(
    config: Config,
    cluster_url: str,
    private_cluster: PrivateCluster,
    sink: Any,
    regressed: str,
    make_app: Callable[..., Any],
) -> None:
    """The postmaster stops (fast shutdown): /healthz 200, /readyz 503 naming the database,
    /metrics still served with pyrowatch_ready 0, a run fails with one StoreError and no
    password. ``scripts/pg restart`` brings it back: ready again, and the next run stores
    and alerts the regression once, without restarting the app."""
    config.database_url = cluster_url
    settings = config.settings(schedule=YEARLY)
    clock = Clock(T0 + MINUTE)
    app = make_app(settings, clock=clock)
    app.start()
    assert _get(app, "/readyz").status_code == 200
    watch = settings.watcher.watch[0]
    password = str(make_url(cluster_url).password)

    try:
        os.kill(private_cluster.postmaster_pid(), signal.SIGINT)  # pg_ctl stop -m fast
        wait_until(lambda: not private_cluster.running(), what="PostgreSQL to stop")
        health = _get(app, "/healthz")
        ready = _get(app, "/readyz")
        metrics = _get(app, "/metrics")
        api = _get(app, "/api/runs")
        with pytest.raises(StoreError) as failed:
            run_watch(app, watch, scheduled_at=T0)
    finally:
        private_cluster.restart()

    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["reasons"][0].startswith("database unavailable: ")
    assert metrics.status_code == 200 and metric(metrics.text, "pyrowatch_ready") == 0
    assert api.status_code == 503
    for text_ in (ready.text, metrics.text, api.text, str(failed.value)):
        assert password not in text_
    assert "\n" not in str(failed.value)

    wait_until(lambda: _get(app, "/readyz").status_code == 200, what="/readyz back to 200")
    clock.set(T0 + 16 * MINUTE)
    result = run_watch(app, watch, scheduled_at=T0 + timedelta(minutes=15))
    drain(app)

    assert result.status == "ok"
    assert alert_keys(acked(sink)) == [("firing", regressed)]
    assert query(cluster_url, "SELECT status FROM runs") == [{"status": "ok"}]


def test_pyrowatch_run_rides_out_a_postgres_outage_with_json_logs_only(
    config: Config,
    cluster_url: str,
    private_cluster: PrivateCluster,
    processes: Processes,
) -> None:
    """The daemon as a process: PostgreSQL stops under it. /healthz stays 200, /readyz
    turns 503, the failing scheduled jobs are logged as JSON lines (no raw traceback, no
    password); PostgreSQL comes back and the same process is ready again; SIGTERM exits
    cleanly."""
    config.database_url = cluster_url
    path = config.write(schedule=YEARLY)
    proc = processes.start("run", config=path)

    def started() -> dict[str, Any] | None:
        for line in proc.err.splitlines():
            if line.startswith("{") and json.loads(line).get("event") == "started":
                return dict(json.loads(line))
        assert proc.alive(), proc
        return None

    base = str(wait_until(started, what="pyrowatch run to start")["listen"])
    assert httpx.get(base + "/readyz", timeout=30).status_code == 200
    try:
        os.kill(private_cluster.postmaster_pid(), signal.SIGINT)
        wait_until(lambda: not private_cluster.running(), what="PostgreSQL to stop")
        wait_until(lambda: "job failed" in proc.err, what="a scheduled job to fail")
        health = httpx.get(base + "/healthz", timeout=30)
        ready = httpx.get(base + "/readyz", timeout=30)
    finally:
        private_cluster.restart()
    wait_until(
        lambda: httpx.get(base + "/readyz", timeout=30).status_code == 200,
        what="/readyz back to 200 in the same process",
    )
    proc.signal(signal.SIGTERM)
    code = proc.wait(timeout=60)

    assert code == 0, proc
    assert health.status_code == 200
    assert ready.status_code == 503 and "database unavailable" in ready.text
    password = str(make_url(cluster_url).password)
    lines = [line for line in proc.err.splitlines() if line.strip()]
    for line in lines:
        assert line.startswith("{") and isinstance(json.loads(line), dict), proc
        assert password not in line
    assert "Traceback" not in proc.err
