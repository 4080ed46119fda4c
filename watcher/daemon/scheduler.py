"""Wiring only: APScheduler 3.x triggers for the jobs of :mod:`watcher.daemon.jobs` and
:mod:`watcher.daemon.delivery`.

=========================  ==========================================================
job id                     what, when
=========================  ==========================================================
``watch:<name>``           :func:`~watcher.daemon.jobs.run_watch`, the watch's cron
                           schedule (UTC) with a few seconds of jitter
``deliver``                :func:`~watcher.daemon.delivery.deliver_due` every 10 s
``prune``                  retention: history older than ``[watcher] retention``,
                           hourly, in bounded batches
=========================  ==========================================================

Every job has ``coalesce=True`` (a backlog of missed fire times runs once),
``max_instances=1`` and a misfire grace time. The time a watch run is *for* is the
trigger's scheduled fire time floored to the minute (never the wall clock when the thread
happened to start), so replicas agree on it and their pair claims collide as intended.

Every job body runs under :meth:`App.job() <watcher.daemon.app.App.job>`: once
:meth:`App.stop` has begun, a job that fires (or was queued in the thread pool) does
nothing, and one that began before is waited for.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from watcher.log import get_logger

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from watcher.daemon.app import App

__all__ = [
    "DELIVERY_INTERVAL",
    "build_scheduler",
    "cron_trigger",
    "cycle_of",
    "floor_minute",
    "watch_job_id",
]

#: How often the outbox is polled.
DELIVERY_INTERVAL = timedelta(seconds=10)
#: How often retention pruning runs, and how many rows one batch deletes.
PRUNE_INTERVAL = timedelta(hours=1)
PRUNE_BATCH = 500
#: The most a watch run is delayed at random (kept under a minute: see floor_minute).
MAX_JITTER_SECONDS = 15
#: How late a missed watch run may still start.
MISFIRE_GRACE = timedelta(minutes=5)

log = get_logger("watcher.scheduler")


def watch_job_id(name: str) -> str:
    """The scheduler job id of a watch."""
    return f"watch:{name}"


def floor_minute(moment: datetime) -> datetime:
    """``moment`` in UTC with seconds and microseconds dropped."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def cron_trigger(schedule: str, *, jitter: int | None = None) -> Any:
    """The UTC :class:`~apscheduler.triggers.cron.CronTrigger` of a 5-field cron expression."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(schedule, timezone=UTC)
    trigger.jitter = jitter
    return trigger


def cycle_of(schedule: str, *, after: datetime | None = None) -> timedelta:
    """The time between two fire times of ``schedule`` (its period for regular schedules).

    Alertmanager alerts of a watch expire three cycles after each send.
    """
    trigger = cron_trigger(schedule)
    start = after or datetime(2024, 1, 1, tzinfo=UTC)
    first = trigger.get_next_fire_time(None, start)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    if first is None or second is None:
        return timedelta(hours=1)
    period: timedelta = second - first
    return max(period, timedelta(minutes=1))


class _ScheduledTimes:
    """Remembers the fire time each watch job was submitted for.

    With ``max_instances=1`` a job id has at most one instance running, so the value set
    at submission is the one its run reads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: dict[str, datetime] = {}

    def put(self, job_id: str, when: datetime) -> None:
        with self._lock:
            self._times[job_id] = when

    def take(self, job_id: str) -> datetime | None:
        with self._lock:
            return self._times.pop(job_id, None)


def _executor(times: _ScheduledTimes, max_workers: int) -> Any:
    from apscheduler.executors.pool import ThreadPoolExecutor

    class RecordingExecutor(ThreadPoolExecutor):  # type: ignore[misc]
        """A thread pool that notes each job's scheduled run time before running it."""

        def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
            if run_times:
                times.put(job.id, run_times[-1])
            super()._do_submit_job(job, run_times)

    return RecordingExecutor(max_workers)


def _run_watch_job(app: App, name: str, times: _ScheduledTimes) -> None:
    from watcher.daemon.jobs import run_watch

    fired = times.take(watch_job_id(name))
    watch = next((w for w in app.settings.watcher.watch if w.name == name), None)
    with app.job() as go:
        if go and watch is not None:
            run_watch(app, watch, scheduled_at=floor_minute(fired or app.now()))


def _deliver_job(app: App) -> None:
    from watcher.daemon.delivery import deliver_due

    with app.job() as go:
        if go:
            deliver_due(app, now=app.now())


def _prune_job(app: App) -> None:
    from watcher.daemon.housekeeping import prune_history

    with app.job() as go:
        if go:
            prune_history(app, PRUNE_BATCH)


def _on_event(app: App) -> Any:
    def listener(event: Any) -> None:
        from apscheduler.events import EVENT_JOB_MISSED

        if event.code == EVENT_JOB_MISSED:
            log.warning("job missed", job=event.job_id, scheduled=str(event.scheduled_run_time))
            return
        exc = getattr(event, "exception", None)
        log.error(
            "job failed",
            job=event.job_id,
            error=app.redact(f"{type(exc).__name__}: {exc}" if exc else "unknown error"),
        )

    return listener


def build_scheduler(app: App, *, blocking: bool = False) -> BaseScheduler:
    """A scheduler with one job per watch, the delivery poll and retention pruning."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    # APScheduler logs a failed job with its traceback on its own logger; with no handler
    # configured, Python's last resort would write that raw to stderr, between the JSON
    # lines. The listener below logs it as one redacted line instead.
    aps_log = logging.getLogger("apscheduler")
    if not any(isinstance(h, logging.NullHandler) for h in aps_log.handlers):
        aps_log.addHandler(logging.NullHandler())
    times = _ScheduledTimes()
    watches = app.settings.watcher.watch
    executors = {"default": _executor(times, max(len(watches), 1) + 2)}
    defaults = {
        "coalesce": True,
        "max_instances": 1,
        "misfire_grace_time": int(MISFIRE_GRACE.total_seconds()),
    }
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler: BaseScheduler = cls(timezone=UTC, executors=executors, job_defaults=defaults)
    for watch in watches:
        scheduler.add_job(
            _run_watch_job,
            cron_trigger(watch.schedule, jitter=MAX_JITTER_SECONDS),
            args=(app, watch.name, times),
            id=watch_job_id(watch.name),
            name=f"watch {watch.name}",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(MISFIRE_GRACE.total_seconds()),
        )
    now = datetime.now(UTC)  # the scheduler runs on the wall clock, whatever the app's is
    scheduler.add_job(
        _deliver_job,
        IntervalTrigger(seconds=DELIVERY_INTERVAL.total_seconds(), timezone=UTC),
        args=(app,),
        id="deliver",
        name="deliver notifications",
        replace_existing=True,
        next_run_time=now,
        misfire_grace_time=int(DELIVERY_INTERVAL.total_seconds()),
    )
    scheduler.add_job(
        _prune_job,
        IntervalTrigger(seconds=PRUNE_INTERVAL.total_seconds(), timezone=UTC),
        args=(app,),
        id="prune",
        name="prune history",
        replace_existing=True,
        next_run_time=now + timedelta(minutes=1),
    )
    scheduler.add_listener(_on_event(app), EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler
