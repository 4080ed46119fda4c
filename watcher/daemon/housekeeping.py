"""Housekeeping: close runs whose process died, and prune old history.

A run is recorded ``running`` when it starts and closed when it ends. A process killed in
between (OOM, node loss, ``kill -9``) never closes it, so without this module the runs
table and ``/api/runs`` would show it running for ever and retention would never remove it.

A run is taken as abandoned when:

- its owner ran on this host and PID namespace (``default_owner`` is ``host-pid-random``,
  the host being :func:`host_id`), is not one of this process's owners, and its process is
  gone or has this process's pid (an earlier process that had it); checked at start-up
  and at every pruning pass. A restarted container has a new PID namespace, so the run
  of its earlier life falls under the next rule;
- or, whoever owned it, it started more than :data:`STALE_RUN_AGE` ago: no healthy run
  lasts that long, and the owner may be a replica on a host this process cannot see.

Closing a run changes no claim or regression: the pairs it never reached are evaluated at
the next scheduled time, and anything it stored stays stored.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from watcher.log import get_logger

if TYPE_CHECKING:
    from watcher.daemon.app import App
    from watcher.store.records import RunRecord

__all__ = [
    "STALE_RUN_AGE",
    "abandoned_runs",
    "close_abandoned_runs",
    "host_id",
    "local_owner",
    "prune_history",
    "remember_owner",
]

#: A run still ``running`` this long after it started is closed whoever owns it.
STALE_RUN_AGE = timedelta(hours=24)

log = get_logger("watcher.daemon")

#: The owners created in this process: their runs are alive or about to finish.
_OWNERS: set[str] = set()


def remember_owner(owner: str) -> None:
    """Record that ``owner`` belongs to this process (:class:`App` calls it)."""
    _OWNERS.add(owner)


def host_id() -> str:
    """This host's name, with the id of the PID namespace when there is one
    (``web-7:4026531836``): two containers that share a host name (host networking) but not
    a PID namespace must never take each other's pids for their own."""
    host = socket.gethostname().split(".")[0] or "host"
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return host
    return f"{host}:{namespace.removeprefix('pid:[').removesuffix(']')}"


def local_owner(owner: str, host: str) -> int | None:
    """The pid in ``owner`` when it has the ``host-pid-random`` shape for ``host``."""
    head, sep, _random = owner.rpartition("-")
    name, sep2, pid = head.rpartition("-")
    if not (sep and sep2) or name != host[:120] or not pid.isdigit():
        return None
    return int(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def abandoned_runs(
    runs: Iterable[RunRecord],
    *,
    now: datetime,
    host: str | None = None,
    own: Iterable[str] = (),
    alive: Callable[[int], bool] = _pid_alive,
) -> list[int]:
    """The ids of the ``running`` runs in ``runs`` whose process is gone (module docstring)."""
    host = host or host_id()
    mine = set(own) | _OWNERS
    this_pid = os.getpid()
    out: list[int] = []
    for run in runs:
        if run.status != "running" or run.owner in mine:
            continue
        pid = local_owner(run.owner, host)
        if pid is not None and (pid == this_pid or not alive(pid)):
            out.append(run.id)
        elif run.started_at < now - STALE_RUN_AGE:
            out.append(run.id)
    return out


def close_abandoned_runs(app: App) -> int:
    """Close the runs :func:`abandoned_runs` finds; logs and returns how many."""
    now = app.now()
    ids = abandoned_runs(app.repo.running_runs(), now=now, own=(app.owner,))
    if not ids:
        return 0
    closed = app.repo.abandon_runs(ids, now=now)
    if closed:
        log.warning(
            "closed abandoned runs",
            runs=closed,
            hint="a pyrowatch process stopped mid-run; its pairs run again at the next schedule",
        )
    return closed


def prune_history(app: App, batch_size: int) -> int:
    """Close abandoned runs, then delete history older than the retention setting."""
    close_abandoned_runs(app)
    older_than = app.now() - app.settings.watcher.retention
    deleted = app.repo.prune(older_than, batch_size=batch_size)
    if deleted:
        log.info("pruned history", rows=deleted, older_than=older_than.isoformat())
    return deleted
