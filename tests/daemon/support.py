"""Helpers of the daemon tests: the synthetic fleet, config files, CLI subprocesses.

The fleet has two services on CPU: ``checkout`` with a +50 % self regression of one
function during ``[T0 - 2h, T0 + 1h)`` and a stable ``cart``. A check at ``T0`` sees the
regression in its current and previous windows; a check at ``T1 = T0 + 3h`` sees neither
(the regression ended), so it resolves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, overload

BIN = Path(sys.executable).parent
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
#: The end of the window of the first check.
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
#: A check after the regression ended (its current and previous windows are clean).
T1 = T0 + timedelta(hours=3)
REGRESSION_START = T0 - timedelta(hours=2)
REGRESSION_LENGTH = timedelta(hours=3)
#: The sandbox's clock: just after the fleet's data ends.
SANDBOX_NOW = T1 + timedelta(minutes=1)
#: Distinctive secret in the webhook path: it must never appear in output or storage.
SECRET = "hookSECRETtoken9876543210"
SECRET_PATH = f"/hooks/T0/B0/{SECRET}"


def fleet_spec() -> tuple[Any, str]:
    """The test fleet and the function whose self time grows 50 %."""
    from watcher.sandbox.fleet import FleetSpec, TransientSpike, expected_shares

    base = FleetSpec(
        start=T0 - timedelta(days=1, hours=2),
        end=T1,
        services=("checkout", "cart"),
        profile_types=(CPU,),
        service_samples={"checkout": 240_000.0, "cart": 120_000.0},
        seed=11,
    )
    shares = expected_shares(base, "checkout", CPU, "self")
    function = min(sorted(shares), key=lambda name: abs(shares[name] - 0.03))
    spike = TransientSpike("checkout", function, 1.5, REGRESSION_START, REGRESSION_LENGTH)
    spec = FleetSpec(
        start=base.start,
        end=base.end,
        services=base.services,
        profile_types=base.profile_types,
        service_samples=base.service_samples,
        seed=base.seed,
        events=(spike,),
    )
    return spec, function


@contextmanager
def open_sandbox(store: Any, moment: datetime) -> Iterator[Any]:
    """A running sandbox serving ``store`` whose clock stands still at ``moment``."""
    from watcher.sandbox.server import Sandbox

    now = moment.timestamp()
    with Sandbox(store, clock=lambda: now) as server:
        yield server


@dataclass
class ConfigWriter:
    """Writes a pyrowatch TOML config for the sandbox, a database and alert channels."""

    path: Path
    sandbox_url: str
    database_url: str
    channels: list[dict[str, Any]] = field(default_factory=list)

    def write(
        self,
        *,
        services: Sequence[str] = ("checkout", "cart"),
        profile_types: Sequence[str] = ("cpu",),
        alerts: Sequence[str] | None = None,
        listen: str = "127.0.0.1:0",
        extra_watcher: Mapping[str, Any] | None = None,
        schedule: str = "*/15 * * * *",
        name: str = "shop",
        baselines: Sequence[str] = ("-1d",),
    ) -> Path:
        def value(v: Any) -> str:
            if isinstance(v, bool):
                return "true" if v else "false"
            return json.dumps(v)

        lines = [
            "[pyroscope.deployments.sandbox]",
            f"url = {value(self.sandbox_url)}",
            "",
            "[watcher]",
            f"database_url = {value(self.database_url)}",
            f"listen = {value(listen)}",
        ]
        for key, v in (extra_watcher or {}).items():
            lines.append(f"{key} = {value(v)}")
        names = [c["name"] for c in self.channels] if alerts is None else list(alerts)
        lines += [
            "",
            "[[watcher.watch]]",
            f"name = {value(name)}",
            'deployment = "sandbox"',
            f"services = {value(list(services))}",
            f"profile_types = {value(list(profile_types))}",
            f"schedule = {value(schedule)}",
            'window = "1h"',
            f"baselines = {value(list(baselines))}",
            f"alerts = {value(names)}",
        ]
        for channel in self.channels:
            lines += ["", "[[watcher.alert]]"]
            lines += [f"{k} = {value(v)}" for k, v in channel.items()]
        self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.path

    def settings(self, **kwargs: Any) -> Any:
        from watcher.config import load_settings

        return load_settings(str(self.write(**kwargs)), env={})


_Writer = TypeVar("_Writer", bound=ConfigWriter)


@overload
def hook_config(path: Path, sandbox_url: str, database_url: str, sink: Any) -> ConfigWriter: ...
@overload
def hook_config(
    path: Path, sandbox_url: str, database_url: str, sink: Any, *, writer: type[_Writer]
) -> _Writer: ...
def hook_config(
    path: Path,
    sandbox_url: str,
    database_url: str,
    sink: Any,
    *,
    writer: type[ConfigWriter] = ConfigWriter,
) -> ConfigWriter:
    """A config writer (``writer``, a :class:`ConfigWriter` by default) for the sandbox, the
    database and one webhook channel ``hook`` at ``sink.url + SECRET_PATH``."""
    return writer(
        path=path,
        sandbox_url=sandbox_url,
        database_url=database_url,
        channels=[{"name": "hook", "kind": "webhook", "url": sink.url + SECRET_PATH}],
    )


@dataclass
class Result:
    code: int
    out: str
    err: str
    argv: list[str]

    def __str__(self) -> str:
        return f"$ {' '.join(self.argv)}\n[exit {self.code}]\n{self.out}\n--- stderr\n{self.err}"

    def json(self) -> Any:
        return json.loads(self.out)


def cli(*args: str, config: Path | None = None, timeout: float = 120) -> Result:
    """Run ``pyrowatch ARGS`` as the installed console script in a fresh process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYROWATCH_", "SRE_"))}
    env["NO_COLOR"] = "1"
    if config is not None:
        env["PYROWATCH_CONFIG"] = str(config)
    argv = [str(BIN / "pyrowatch"), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr, argv)


class Clock:
    """A settable clock for :class:`~watcher.daemon.app.App` (``clock=Clock(T0)``)."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        with self._lock:
            self._now = now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together by a barrier; return their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def worker(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def webhook_alerts(payloads: Sequence[Any]) -> list[dict[str, Any]]:
    """Every alert of Alertmanager-v4-shaped webhook payloads."""
    return [alert for p in payloads for alert in p["alerts"]]


class CheckedOut:
    """The connections of an engine checked out and not yet given back.

    Kept by pool events, which an engine hands on to the pool ``dispose()`` creates: the
    old pool's own ``checkedout()`` reads 0 after a dispose, whatever is still out. By
    record, not by count: a checkout that fails (the database is down) is checked in
    without having been reported as checked out.
    """

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self._lock = threading.Lock()
        self._out: set[Any] = set()
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._out)

    def _checkout(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        with self._lock:
            self._out.add(record)

    def _checkin(self, _dbapi: Any, record: Any) -> None:
        with self._lock:
            self._out.discard(record)
