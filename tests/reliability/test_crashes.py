"""The daemon killed: SIGKILL in the middle of a run and in the middle of delivering alerts,
then restarted; SIGTERM while a delivery hangs.

Each process is the installed ``pyrowatch`` (``check``, or ``run``) against the sandbox,
the webhook sink of the test process and PostgreSQL. A kill lands where the test wants it
because the test holds the process there (the sandbox delays its queries, the sink holds
its POST) and waits for the observable sign (the sandbox's fault hit count, the sink's
request log, the database rows) before sending the signal. Afterwards: no regression lost,
no notification accepted twice.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.support import SECRET, T0, Clock

from watcher.daemon.delivery import deliver_due, drain
from watcher.daemon.jobs import run_watch
from watcher.store.repo import ABANDONED_RUN_ERROR

from .support import (
    AT_T0,
    MINUTE,
    YEARLY,
    Config,
    Processes,
    SandboxControl,
    acked,
    alert_keys,
    query,
    wait_until,
)

SMS = "SelectMergeStacktraces"


def _outbox(url: str) -> list[dict[str, Any]]:
    return query(url, "SELECT id, kind, status, lease_owner, lease_until FROM outbox ORDER BY id")


def _deliver_after_the_lease(app: Any, url: str) -> Any:
    """A delivery pass by another owner once the dead process's lease (and any backoff it
    recorded on its way out) has run out."""
    leases = [row["lease_until"] for row in _outbox(url) if row["lease_until"] is not None]
    moment = max([datetime.now(UTC), *leases]) + timedelta(hours=1)
    return deliver_due(app, now=moment)


def test_sigkill_in_the_middle_of_a_run_then_restart_loses_nothing(
    config: Config, sandbox: Any, sink: Any, regressed: str, processes: Processes
) -> None:
    """``pyrowatch check`` is killed while its profile queries hang: its run is left
    'running' and nothing was stored or sent. The restarted check closes the killed run
    as abandoned, finds the regression, stores it and alerts once."""
    path = config.write()
    control = SandboxControl(sandbox.url)
    control.faults({SMS: {"latency": 600}})
    proc = processes.start("check", "--at", AT_T0, config=path)

    wait_until(lambda: control.hits(SMS) >= 1 or not proc.alive(), what="a held profile query")
    assert proc.alive(), proc
    assert query(config.database_url, "SELECT status FROM runs") == [{"status": "running"}]
    assert proc.kill() == -signal.SIGKILL

    assert query(config.database_url, "SELECT id FROM regressions") == []
    assert _outbox(config.database_url) == []
    assert sink.received == []
    control.faults({})
    restarted = processes.run("check", "--at", AT_T0, config=path)

    assert restarted.popen.returncode == 0, restarted
    assert alert_keys(acked(sink)) == [("firing", regressed)]
    assert len(sink.received) == 1
    regressions = query(config.database_url, "SELECT function, state FROM regressions")
    assert regressions == [{"function": regressed, "state": "open"}]
    assert [row["status"] for row in _outbox(config.database_url)] == ["sent"]
    runs = query(config.database_url, "SELECT status, error FROM runs ORDER BY id")
    assert runs == [
        {"status": "failed", "error": ABANDONED_RUN_ERROR},  # visible, no longer "running"
        {"status": "ok", "error": None},
    ]


def test_sigkill_in_the_middle_of_a_delivery_then_restart_sends_once(
    config: Config,
    sink: Any,
    regressed: str,
    processes: Processes,
    make_app: Callable[..., Any],
) -> None:
    """``pyrowatch check`` is killed while the sink holds its POST unanswered. The
    notification stays leased to the dead process, so a restarted check neither loses nor
    re-sends it; once the lease runs out the next delivery pass sends it, once."""
    path = config.write()
    sink.hang()
    proc = processes.start("check", "--at", AT_T0, config=path)

    sink.wait_for(1, timeout=120)
    wait_until(
        lambda: [r["status"] for r in _outbox(config.database_url)] == ["sending"],
        what="the notification leased for sending",
    )
    assert proc.kill() == -signal.SIGKILL
    sink.release()  # the held request is answered to a dead socket: never acknowledged
    (held,) = sink.received
    assert held.answered is None

    restarted = processes.run("check", "--at", AT_T0, config=path)
    assert restarted.popen.returncode == 0, restarted
    assert "0 notifications queued" in restarted.err, restarted
    assert acked(sink) == []
    (row,) = _outbox(config.database_url)
    assert row["status"] == "sending"  # not lost: waiting for the dead owner's lease

    app = make_app(config.settings(), clock=Clock(T0 + MINUTE), owner="after-restart")
    stats = _deliver_after_the_lease(app, config.database_url)
    again = _deliver_after_the_lease(app, config.database_url)

    assert stats.sent == 1 and again.claimed == 0
    assert alert_keys(acked(sink)) == [("firing", regressed)]
    assert [row["status"] for row in _outbox(config.database_url)] == ["sent"]
    assert query(config.database_url, "SELECT count(*) AS n FROM regressions") == [{"n": 1}]


def test_sigterm_while_a_delivery_hangs_exits_in_bounded_time_and_loses_nothing(
    config: Config,
    sink: Any,
    regressed: str,
    processes: Processes,
    make_app: Callable[..., Any],
) -> None:
    """``pyrowatch run`` starts delivering a queued alert to a sink that never answers;
    SIGTERM makes it exit (0) within its stop timeout instead of waiting for the request.
    The notification is delivered once afterwards."""
    settings = config.settings(schedule=YEARLY)
    app = make_app(settings, clock=lambda: datetime.now(UTC), owner="queued-by")
    assert run_watch(app, settings.watcher.watch[0], scheduled_at=T0).enqueued == 1
    sink.hang()
    path = config.write(schedule=YEARLY)
    proc = processes.start("run", "--stop-timeout", "1", config=path)

    sink.wait_for(1, timeout=120)
    assert proc.alive(), proc
    proc.signal(signal.SIGTERM)
    code = proc.wait(timeout=60)  # a liveness bound: --stop-timeout is 1 s
    sink.release()

    assert code == 0, proc
    events = [json.loads(line) for line in proc.err.splitlines() if line.startswith("{")]
    stopping = [e for e in events if e.get("event") == "stopping"]
    assert stopping and stopping[0]["signal"] == "SIGTERM", proc
    assert SECRET not in proc.err
    assert acked(sink) == []
    assert [r["status"] for r in _outbox(config.database_url)] in (["sending"], ["pending"])

    stats = _deliver_after_the_lease(app, config.database_url)
    drain(app, now=datetime.now(UTC) + timedelta(hours=1))

    assert stats.sent == 1
    assert alert_keys(acked(sink)) == [("firing", regressed)]
    assert [r["status"] for r in _outbox(config.database_url)] == ["sent"]
