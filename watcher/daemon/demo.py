"""``pyrowatch demo``: the whole product on synthetic data, with no configuration.

:class:`Demo` starts, in-process:

- the sandbox (a Pyroscope-compatible server) on ``127.0.0.1:0`` with a seeded synthetic
  fleet: four services, CPU and allocation profiles, two days and an hour at 10-minute
  steps, and a +50 % self regression injected in one function of ``checkout`` two hours
  before "now";
- a webhook sink as the alert channel (Alertmanager-shaped webhook);
- a temporary SQLite database, migrated to head;

then runs one watch over every service with :func:`~watcher.daemon.jobs.run_watch`,
delivers the alerts it enqueued, and returns a :class:`DemoResult` for the command to
print. Nothing outside a temporary directory is read or written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watcher.daemon.app import App
    from watcher.daemon.delivery import DeliveryStats
    from watcher.daemon.jobs import RunResult
    from watcher.sandbox.fleet import FleetSpec
    from watcher.sandbox.server import Sandbox
    from watcher.sandbox.sink import WebhookSink

__all__ = ["Demo", "DemoResult", "demo_fleet"]

SERVICES = ("checkout", "cart", "catalog", "payments")
REGRESSED_SERVICE = "checkout"
FACTOR = 1.5
STEP = timedelta(minutes=10)
WINDOW = timedelta(hours=1)
BASELINES = ("-1d", "-2d")
#: The injected change starts this long before "now": the current and previous windows
#: both hold it, so one run confirms it.
ONSET = timedelta(hours=2)
TARGET_SHARE = 0.03
#: Samples per 10-minute profile: checkout runs on about 4 cores at 100 Hz, the rest on 1.
SAMPLES = {"checkout": 240_000.0}


def demo_fleet(now: datetime) -> tuple[FleetSpec, str]:
    """The demo's fleet ending at ``now`` and the function whose self time grows 50 %."""
    from watcher.profiletypes import resolve_profile_type
    from watcher.sandbox.fleet import CPU, FleetSpec, StepRegression, expected_shares

    base = FleetSpec(
        start=now - timedelta(days=2, hours=1),
        end=now,
        services=SERVICES,
        profile_types=(CPU, resolve_profile_type("alloc")),
        step=STEP,
        service_samples=SAMPLES,
        seed=7,
    )
    shares = expected_shares(base, REGRESSED_SERVICE, CPU, "self")
    function = min(sorted(shares), key=lambda name: abs(shares[name] - TARGET_SHARE))
    event = StepRegression(REGRESSED_SERVICE, function, FACTOR, now - ONSET)
    return FleetSpec(
        start=base.start,
        end=base.end,
        services=base.services,
        profile_types=base.profile_types,
        step=base.step,
        service_samples=base.service_samples,
        seed=base.seed,
        events=(event,),
    ), function


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo did and found."""

    sandbox_url: str
    spec: FleetSpec
    function: str
    injected_at: datetime
    run: RunResult
    delivery: DeliveryStats
    payloads: tuple[Any, ...]
    seconds: float

    @property
    def service(self) -> str:
        return REGRESSED_SERVICE


class Demo:
    """The demo's sandbox, sink, database and app; a context manager that cleans up."""

    def __init__(self, *, now: datetime | None = None) -> None:
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        self.now = moment.replace(
            minute=moment.minute - moment.minute % 10, second=0, microsecond=0
        )
        self.sandbox: Sandbox | None = None
        self.sink: WebhookSink | None = None
        self.app: App | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> Demo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.app is not None:
            self.app.stop(timeout=5)
            self.app = None
        if self.sink is not None:
            self.sink.stop()
            self.sink = None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _config(self, sandbox_url: str, sink_url: str, database: Path) -> Path:
        assert self._tmp is not None
        baselines = ", ".join(json.dumps(b) for b in BASELINES)
        text = f"""
[pyroscope.deployments.sandbox]
url = {json.dumps(sandbox_url)}

[watcher]
database_url = {json.dumps(f"sqlite:///{database}")}
listen = "127.0.0.1:0"

[[watcher.watch]]
name = "demo"
deployment = "sandbox"
services = ["*"]
profile_types = ["cpu", "alloc"]
schedule = "*/10 * * * *"
window = "1h"
baselines = [{baselines}]
alerts = ["demo-webhook"]

[[watcher.alert]]
name = "demo-webhook"
kind = "webhook"
url = {json.dumps(sink_url + "/alerts")}
"""
        path = self._tmp / "pyrowatch-demo.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def run(self) -> DemoResult:
        """Start everything, run the watch once, deliver its alerts."""
        from watcher.config import load_settings
        from watcher.daemon.app import App
        from watcher.daemon.delivery import drain
        from watcher.daemon.jobs import run_watch
        from watcher.sandbox.fleet import load_fleet
        from watcher.sandbox.server import Sandbox
        from watcher.sandbox.sink import WebhookSink
        from watcher.store import upgrade

        started = time.monotonic()
        spec, function = demo_fleet(self.now)
        self._tmp = Path(tempfile.mkdtemp(prefix="pyrowatch-demo-"))
        self.sandbox = Sandbox()
        load_fleet(self.sandbox.store, spec)
        sandbox_url = self.sandbox.start("127.0.0.1", 0)
        self.sink = WebhookSink()
        sink_url = self.sink.start()
        database = self._tmp / "demo.db"
        upgrade(f"sqlite:///{database}")
        settings = load_settings(str(self._config(sandbox_url, sink_url, database)), env={})
        self.app = App(settings)
        watch = settings.watcher.watch[0]
        result = run_watch(self.app, watch, scheduled_at=self.now)
        delivery = drain(self.app)
        payloads = tuple(r.json for r in self.sink.received)
        return DemoResult(
            sandbox_url=sandbox_url,
            spec=spec,
            function=function,
            injected_at=self.now - ONSET,
            run=result,
            delivery=delivery,
            payloads=payloads,
            seconds=time.monotonic() - started,
        )
