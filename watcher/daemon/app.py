"""The watcher as one object: database, Pyroscope clients, alert channels, metrics, HTTP, scheduler.

:class:`App` owns everything long-lived, so the daemon (``pyrowatch run``), one-shot commands
(``pyrowatch check``), the demo and the tests all run the same code in-process::

    app = App(settings)
    app.start()            # refuses a database that is not at head; serves HTTP; schedules
    ...
    app.stop(timeout=30)   # graceful: the current run finishes or is abandoned in time

Jobs (:mod:`watcher.daemon.jobs`, :mod:`watcher.daemon.delivery`) are plain functions that
take the app; :mod:`watcher.daemon.scheduler` only wires them to triggers.

Nothing an ``App`` exposes (``/metrics``, ``/api/*``, log lines, stored errors) carries a
secret: error texts go through :meth:`App.redact`, which masks every configured secret.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.errors import ConfigError, StoreError, WatcherError
from watcher.log import get_logger
from watcher.times import TimeRange

if TYPE_CHECKING:
    import httpx
    from apscheduler.schedulers.base import BaseScheduler
    from sqlalchemy.engine import Engine

    from watcher.alerts import Notifier
    from watcher.config import Settings
    from watcher.daemon.http import StatusServer
    from watcher.daemon.metrics import Metrics
    from watcher.querier import QuerierClient, RetryEvent
    from watcher.store import Repository

__all__ = ["App", "default_owner", "json_ready", "prepare_database_url"]

#: The most rows one ``/api/*`` answer holds.
API_MAX_LIMIT = 1000

log = get_logger("watcher.daemon")


def default_owner() -> str:
    """``host-pid-random``: who holds claims and leases (unique per process); ``host`` is
    :func:`watcher.daemon.housekeeping.host_id`."""
    from watcher.daemon.housekeeping import host_id

    return f"{host_id()[:120]}-{os.getpid()}-{secrets.token_hex(4)}"


def prepare_database_url(url: str) -> str:
    """Create the directory of a SQLite file URL if it is missing; returns the URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # make_engine reports it, without the password
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        database = str(parsed.database)
        if not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the directory of the SQLite database: {exc.strerror or exc}; "
                    "set [watcher] database_url to a writable place"
                ) from None
    return url


def json_ready(value: Any) -> Any:
    """Records (dataclasses), lists and dicts as JSON-ready values; times in ISO UTC."""
    if is_dataclass(value) and not isinstance(value, type):
        return json_ready(asdict(value))
    if isinstance(value, TimeRange):  # not a dataclass: its two ends
        return {"start": json_ready(value.start), "end": json_ready(value.end)}
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and value != value:
        return None
    return value


def _int_arg(query: dict[str, list[str]], name: str, default: int) -> int:
    raw = (query.get(name) or [str(default)])[0]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw[:40]!r}") from None
    return max(1, min(value, API_MAX_LIMIT))


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return (query.get(name) or ["0"])[0].lower() in ("1", "true", "yes", "on")


class App:
    """The running watcher; see the module docstring.

    :param settings: the loaded configuration.
    :param owner: the id used for claims and leases (default :func:`default_owner`).
    :param clock: returns the current time (timezone-aware UTC); tests inject one.
    :param transport: an ``httpx`` transport for the Querier clients (tests).
    :param alert_transport: an ``httpx`` transport for the alert channels (tests).
    :param sleep: how to wait (Slack pacing); tests inject one.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] | None = None,
        transport: httpx.BaseTransport | None = None,
        alert_transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        from watcher.alerts import build_notifier
        from watcher.daemon.metrics import Metrics
        from watcher.store import Repository, make_engine

        self.settings = settings
        self.owner = (owner or default_owner())[:200]
        from watcher.daemon.housekeeping import remember_owner

        remember_owner(self.owner)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._transport = transport
        self._alert_transport = alert_transport
        self.sleep = sleep
        self.secrets: list[str] = settings.secret_values()
        self.metrics: Metrics = Metrics()
        self.notifiers: dict[str, Notifier] = {
            channel.name: build_notifier(channel) for channel in settings.watcher.alert
        }
        url = prepare_database_url(settings.watcher.database_url.get_secret_value())
        options: dict[str, Any] = {}
        if url.split(":", 1)[0].startswith("postgres"):
            options["connect_args"] = {"connect_timeout": 5}
        self.engine: Engine = make_engine(url, **options)
        self.repo: Repository = Repository(self.engine)
        self.stopping = threading.Event()
        self.scheduler: BaseScheduler | None = None
        self.status_server: StatusServer | None = None
        self._clients: dict[str, QuerierClient] = {}
        self._alert_http: httpx.Client | None = None
        self._lock = threading.Lock()
        #: Guards ``_active``, ``_stop_called``, ``_close_late`` and the setting of
        #: :attr:`stopping` by ``stop``; notified whenever ``_active`` drops.
        self._idle = threading.Condition()
        self._active = 0
        self._stop_called = False
        self._close_late = False
        self._closed = threading.Event()
        self._head: str | None = None
        #: Monotonic time of the last delivery per channel (Slack pacing).
        self.last_send: dict[str, float] = {}

    # ------------------------------------------------------------------ basics

    def now(self) -> datetime:
        """The current time (the injected clock's)."""
        return self._clock()

    def redact(self, text: str) -> str:
        """``text`` without any configured secret, URL credential or query string."""
        from watcher.redact import redact

        return redact(text, self.secrets)

    def client(self, deployment: str) -> QuerierClient:
        """The Querier client of ``deployment`` (one per deployment and process)."""
        with self._lock:
            client = self._clients.get(deployment)
            if client is None:
                from watcher.querier import QuerierClient

                client = QuerierClient(
                    self.settings.deployment(deployment),
                    transport=self._transport,
                    on_retry=self._on_retry,
                )
                self._clients[deployment] = client
            return client

    def _on_retry(self, event: RetryEvent) -> None:
        self.metrics.query_retries.labels(event.method).inc()
        log.info(
            "querier retry",
            method=event.method,
            attempt=event.attempt,
            delay=round(event.delay, 3),
            reason=self.redact(event.reason),
        )

    def alert_client(self) -> httpx.Client:
        """The HTTP client alert deliveries use."""
        with self._lock:
            if self._alert_http is None:
                import httpx

                self._alert_http = httpx.Client(
                    transport=self._alert_transport,
                    timeout=httpx.Timeout(10.0),
                    follow_redirects=False,
                )
            return self._alert_http

    @contextmanager
    def activity(self) -> Iterator[None]:
        """Mark a run or a delivery pass in progress (``stop`` waits for them)."""
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            self._done()

    @contextmanager
    def job(self) -> Iterator[bool]:
        """A scheduled job's turn (or that of an HTTP endpoint reading the database:
        :meth:`readiness`, :meth:`render_metrics`, :meth:`api`): ``True`` inside an
        :meth:`activity`, or ``False`` (and nothing registered) once :meth:`stop` has begun.

        The :attr:`stopping` check and the registration happen under the lock ``stop``
        sets :attr:`stopping` under, so either ``stop`` waits for the job or the job sees
        ``stopping`` and does nothing: no job starts its work after ``stop`` looked (it
        would use the database after the engine was disposed, and a run would claim pairs
        that the exiting process then holds until their claims expire).
        """
        with self._idle:
            go = not self.stopping.is_set()
            if go:
                self._active += 1
        if not go:
            yield False
            return
        try:
            yield True
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()
            late = self._close_late and self._active == 0
            if late:
                self._close_late = False
        if late:  # stop() gave up waiting for this one: it closes what stop() left open
            self._close()
            log.info("closed after stop", owner=self.owner)

    # ------------------------------------------------------------------ lifecycle

    def head(self) -> str:
        """The schema revision this version needs (read once)."""
        if self._head is None:
            from watcher.store import head_revision

            self._head = head_revision()
        return self._head

    def check_schema(self) -> None:
        """:raises SchemaOutOfDate: naming ``pyrowatch db upgrade``.
        :raises StoreError: the database cannot be reached."""
        from watcher.store import ensure_at_head

        ensure_at_head(self.engine)

    def start(self, *, http: bool = True, schedule: bool = True) -> None:
        """Check the schema, then serve HTTP and start the scheduler.

        :raises SchemaOutOfDate: the database is not at head (run ``pyrowatch db upgrade``).
        :raises ConfigError: the listen address cannot be bound.
        """
        self.check_schema()
        from watcher.daemon.housekeeping import close_abandoned_runs

        close_abandoned_runs(self)
        for watch in self.settings.watcher.watch:
            for warning in watch.warnings:
                log.warning("config", problem=warning)
        if http:
            from watcher.daemon.http import StatusServer

            host, port = self.settings.watcher.listen_host, self.settings.watcher.listen_port
            try:
                self.status_server = StatusServer(self, host or "0.0.0.0", port)
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen on {self.settings.watcher.listen}: {exc.strerror or exc}; "
                    "change [watcher] listen (port 0 picks a free one)",
                    key="watcher.listen",
                ) from None
            self.status_server.start()
        if schedule:
            from watcher.daemon.scheduler import build_scheduler

            self.scheduler = build_scheduler(self)
            self.scheduler.start()
        self.metrics.ready.set(1)
        from watcher.flamegraph.decode import decoder_implementation

        log.info(
            "started",
            owner=self.owner,
            watches=len(self.settings.watcher.watch),
            channels=len(self.notifiers),
            listen=self.status_server.url if self.status_server else None,
            decoder=decoder_implementation(),
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop scheduling and serving, let the current run finish or abandon it, and close
        everything.

        Returns ``True`` when every run, delivery pass and database-reading request ended
        within ``timeout`` seconds and everything is closed. Runs in progress see
        :attr:`stopping` and abandon the pairs they have not started; scheduled jobs that
        fire from now on do nothing (see :meth:`job`), and so do the HTTP endpoints that
        would read the database. The HTTP server stops accepting at once.

        When the timeout runs out first, ``stop`` returns ``False`` without closing what
        the work in progress still uses (the database engine, the Querier and alert
        clients): the last of that work to end closes them, so nothing is left open and no
        work uses a closed engine (which would open a new pool that nobody closes).

        Only the first call stops the app. Any other call, concurrent (another thread, or a
        signal handler on the thread inside the first call) or later, closes nothing: it
        waits, within its own ``timeout``, until everything is closed and says whether it
        was.
        """
        deadline = time.monotonic() + max(timeout, 0.0)

        def left() -> float:
            return max(deadline - time.monotonic(), 0.0)

        with self._idle:  # see job(): a job registered before this is waited for below
            first = not self._stop_called
            self._stop_called = True
            self.stopping.set()
        if not first:
            return self._closed.wait(left())
        self.metrics.ready.set(0)
        if self.scheduler is not None:
            try:
                self.scheduler.shutdown(wait=False)
            except Exception:  # already stopped
                pass
        server, self.status_server = self.status_server, None
        if server is not None:  # requests in progress are waited for below, with the jobs
            try:
                server.stop()
            except Exception as exc:  # closing goes on: the jobs still need their end
                log.warning("http server stop failed", error=self.redact(str(exc)))
        with self._idle:
            finished = self._idle.wait_for(lambda: self._active == 0, left())
            self._close_late = not finished
        if finished:
            self._close()
        log.info("stopped", clean=finished)
        return finished

    def _close(self) -> None:
        """Close the clients and dispose of the engine (once nothing uses them)."""
        try:
            with self._lock:
                clients, self._clients = list(self._clients.values()), {}
                alert_http, self._alert_http = self._alert_http, None
            for client in clients:
                client.close()
            if alert_http is not None:
                alert_http.close()
            self.engine.dispose()
        finally:
            self._closed.set()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ status

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready when the database answers at the head revision and the scheduler runs.

        Once :meth:`stop` has begun: not ready, ``shutting down``, without asking the
        database.
        """
        from watcher.store import current_revision

        reasons: list[str] = []
        with self.job() as go:  # once stop() began, the engine is not to be used
            if go:
                try:
                    current = current_revision(self.engine)
                    head = self.head()
                    if current != head:
                        reasons.append(
                            f"database schema at {current or 'none'}, needs {head}: run "
                            "`pyrowatch db upgrade`"
                        )
                except WatcherError as exc:
                    reasons.append(f"database unavailable: {self.redact(str(exc))}")
        if self.stopping.is_set():
            reasons.append("shutting down")
        elif self.scheduler is None or not self.scheduler.running:
            reasons.append("scheduler not running")
        ready = not reasons
        self.metrics.ready.set(1 if ready else 0)
        return ready, reasons

    def refresh_gauges(self) -> None:
        """Read the outbox depth, open regressions and disabled channels into the gauges."""
        try:
            self.metrics.outbox_depth.set(self.repo.outbox_depth())
            self.metrics.open_regressions.set(len(self.repo.open_regressions()))
            disabled = self.repo.disabled_channels()
        except StoreError:
            return  # the database is down: /readyz says so; keep the last values
        for name in self.notifiers:
            self.metrics.channel_disabled.labels(name).set(1 if name in disabled else 0)

    def render_metrics(self) -> tuple[bytes, str]:
        """The Prometheus exposition text and its content type.

        Once :meth:`stop` has begun, the database gauges keep their last values.
        """
        with self.job() as go:
            if go:
                self.refresh_gauges()
        return self.metrics.render()

    def api(self, resource: str, query: dict[str, list[str]]) -> Any:
        """The read-only JSON API: ``regressions``, ``snapshots`` and ``runs``.

        :raises ValueError: a bad query parameter (answered with 400).
        :raises StoreError: the database is down, or :meth:`stop` has begun (503).
        """
        with self.job() as go:
            if not go:
                raise StoreError("the watcher is shutting down")
            return self._api(resource, query)

    def _api(self, resource: str, query: dict[str, list[str]]) -> Any:
        limit = _int_arg(query, "limit", 100)
        if resource == "regressions":
            rows = self.repo.regressions(open_only=_flag(query, "open"), limit=limit)
            return {"regressions": json_ready(rows)}
        if resource == "snapshots":
            service = (query.get("service") or [""])[0]
            if not service:
                raise ValueError("pass ?service=NAME (and optionally &type=cpu, &functions=20)")
            profile_type: str | None = (query.get("type") or [""])[0] or None
            if profile_type:
                from watcher.profiletypes import resolve_profile_type

                profile_type = resolve_profile_type(profile_type)
            top = _int_arg(query, "functions", 20) if query.get("functions") else 0
            snapshots = self.repo.snapshots(
                service, profile_type, limit=limit, with_functions=top > 0
            )
            out = []
            for snap in snapshots:
                data = json_ready(snap)
                data["functions"] = data["functions"][:top]
                out.append(data)
            return {"snapshots": out}
        if resource == "runs":
            run_id = (query.get("id") or [""])[0]
            if run_id:
                try:
                    number = int(run_id)
                except ValueError:
                    raise ValueError(f"id must be a whole number, got {run_id[:40]!r}") from None
                run = self.repo.run(number)
                if run is None:
                    raise ValueError(f"no run with id {number}")
                pairs = self.repo.pair_results(number)
                return {"run": json_ready(run), "pairs": json_ready(pairs)}
            return {"runs": json_ready(self.repo.runs(limit=limit))}
        raise ValueError(f"no API resource {resource!r}; use regressions, snapshots or runs")
