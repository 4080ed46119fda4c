"""Runs left ``running`` by a process that died are closed, at start-up and when pruning."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from watcher.daemon.housekeeping import STALE_RUN_AGE, abandoned_runs, host_id, local_owner
from watcher.daemon.scheduler import build_scheduler
from watcher.store.records import RunRecord
from watcher.store.repo import ABANDONED_RUN_ERROR

from .support import T1, Clock, ConfigWriter

YEARLY = "0 0 1 1 *"
HOST = host_id()


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _run(run_id: int, owner: str, started_ago: timedelta) -> RunRecord:
    return RunRecord(
        id=run_id,
        watch="w",
        scheduled_at=T1 - started_ago,
        started_at=T1 - started_ago,
        finished_at=None,
        status="running",
        pairs_total=0,
        pairs_ok=0,
        pairs_failed=0,
        error=None,
        owner=owner,
    )


def test_the_same_host_name_in_another_pid_namespace_is_not_local() -> None:
    """Host networking: a replica with this host name but its own PID namespace has pids
    that mean nothing here; its fresh run is never closed as abandoned."""
    if ":" not in HOST:
        pytest.skip("no /proc/self/ns/pid here: PID namespaces cannot be told apart")
    name = HOST.split(":")[0]
    other_namespace = f"{name}:1"
    runs = [
        _run(7, f"{other_namespace}-{_dead_pid()}-aaaa0007", timedelta(minutes=5)),
        _run(8, f"{other_namespace}-{os.getpid()}-aaaa0008", timedelta(minutes=5)),
    ]
    assert abandoned_runs(runs, now=T1) == []
    # the same runs a day later: closed whoever they belong to
    assert abandoned_runs(runs, now=T1 + STALE_RUN_AGE) == [7, 8]


def test_local_owner_reads_host_and_pid() -> None:
    assert local_owner("web-7-2-1234abcd", "web-7") == 2
    assert local_owner("web-7-2-1234abcd", "web-8") is None
    assert local_owner("replica-1", "replica") is None  # a custom owner: no pid
    assert local_owner("nodashes", "nodashes") is None


def test_which_runs_are_abandoned() -> None:
    """Dead local pids and runs older than a day; never live ones, this process's, or recent
    runs of other hosts."""
    dead = _dead_pid()
    runs = [
        _run(1, f"{HOST}-{dead}-aaaa0001", timedelta(minutes=5)),
        _run(2, f"{HOST}-{os.getppid()}-aaaa0002", timedelta(minutes=5)),
        _run(3, "elsewhere-12-aaaa0003", timedelta(minutes=5)),
        _run(4, "elsewhere-13-aaaa0004", STALE_RUN_AGE + timedelta(minutes=1)),
        _run(5, "mine", STALE_RUN_AGE + timedelta(hours=5)),
        _run(6, f"{HOST}-{os.getpid()}-aaaa0006", timedelta(minutes=1)),
    ]

    found = abandoned_runs(runs, now=T1, host=HOST, own=("mine",))

    # 6: this pid under another owner is an earlier life of this container (pid 1 again).
    assert found == [1, 4, 6]


def test_start_and_pruning_close_abandoned_runs(
    config: ConfigWriter, make_app: Callable[..., Any]
) -> None:
    """A run of a killed process is closed as failed at start-up, with the pairs it did."""
    clock = Clock(T1)
    app = make_app(config.settings(schedule=YEARLY), clock=clock)
    dead = _dead_pid()
    killed = app.repo.start_run("w", T1, owner=f"{HOST}-{dead}-deadbeef", now=T1)
    app.repo.record_pair(killed, "svc-a", "cpu", "ok")
    app.repo.record_pair(killed, "svc-b", "cpu", "failed", error="timeout")
    remote = app.repo.start_run("w", T1, owner="other-host-1-cafe0001", now=T1)

    app.start(http=False, schedule=False)

    closed = app.repo.run(killed)
    assert closed is not None
    assert (closed.status, closed.pairs_ok, closed.pairs_failed) == ("failed", 1, 1)
    assert closed.error == ABANDONED_RUN_ERROR and closed.finished_at == T1
    still = app.repo.run(remote)
    assert still is not None and still.status == "running"

    # A day later the hourly pruning pass closes the remote one too.
    clock.advance(STALE_RUN_AGE + timedelta(minutes=1))
    scheduler = build_scheduler(app)
    prune = next(job for job in scheduler.get_jobs() if "prune" in job.id)
    prune.func(*prune.args, **prune.kwargs)

    later = app.repo.run(remote)
    assert later is not None and later.status == "failed" and later.error == ABANDONED_RUN_ERROR
    assert {r.status for r in app.repo.running_runs()} == set()
