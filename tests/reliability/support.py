"""Helpers of the reliability tests: bounded waits, the sandbox control API, database reads,
subprocesses of the daemon, and the one-line error rule.

Nothing here sleeps to let a race settle: :func:`wait_until` polls an observable state (a
database row, the sink's log, the sandbox's fault hits) with a deadline, and fails with
what it was waiting for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from daemon.support import BIN, T0, ConfigWriter
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
PG_SCRIPT = REPO / "scripts" / "pg"
MINUTE = timedelta(minutes=1)
AT_T0 = T0.strftime("%Y-%m-%dT%H:%M:%SZ")
#: A schedule that never fires while a test runs.
YEARLY = "0 0 1 1 *"


# ---------------------------------------------------------------------------- waiting


def wait_until(predicate: Callable[[], T], *, what: str, timeout: float = 60.0) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds.

    A liveness bound, not a performance assertion: the timeouts are generous.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


# ---------------------------------------------------------------------------- servers


class SandboxControl:
    """The sandbox's control API (``/_sandbox/*``), as a test in another process uses it."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def faults(self, plan: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the fault plan (``{}`` clears it)."""
        response = httpx.post(f"{self.url}/_sandbox/faults", json=dict(plan), timeout=10)
        assert response.status_code == 200, response.text

    def hits(self, method: str) -> int:
        """How many requests of ``method`` a fault has affected so far (counted on arrival)."""
        response = httpx.get(f"{self.url}/_sandbox/faults", timeout=10)
        assert response.status_code == 200, response.text
        return int(response.json()["hits"].get(method, 0))


def acked(sink: Any) -> list[Any]:
    """The sink's requests it answered with a 2xx: what a channel actually accepted.

    A request held by ``hang`` (answered ``None``) or refused is not a delivery.
    """
    return [r for r in sink.received if r.answered is not None and 200 <= r.answered < 300]


def alert_keys(requests: Sequence[Any]) -> list[tuple[str, str]]:
    """``(status, function)`` of every alert in webhook payloads, in arrival order."""
    keys: list[tuple[str, str]] = []
    for request in requests:
        body = request.json
        if isinstance(body, dict) and "alerts" in body:
            keys += [(a["status"], a["labels"]["function"]) for a in body["alerts"]]
        else:
            keys.append(("other", json.dumps(body, sort_keys=True)))
    return keys


# ---------------------------------------------------------------------------- database


def query(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of one SQL query, on a connection of its own."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def dump_tables(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the database (the stored record, for secret checks)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        names = inspect(engine).get_table_names()
        with engine.connect() as conn:
            return {
                name: [dict(r._mapping) for r in conn.execute(text(f'SELECT * FROM "{name}"'))]
                for name in names
            }
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------- config


def toml_value(value: Any) -> str:
    """A TOML literal (strings through JSON, which TOML's basic strings accept)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@dataclass
class Config(ConfigWriter):
    """:class:`~daemon.support.ConfigWriter` plus extra keys of the sandbox deployment."""

    deployment: dict[str, Any] = field(default_factory=dict)

    def write(self, **kwargs: Any) -> Path:
        path = super().write(**kwargs)
        if self.deployment:
            lines = path.read_text(encoding="utf-8").splitlines()
            extra = [f"{key} = {toml_value(value)}" for key, value in self.deployment.items()]
            lines[2:2] = extra  # after the table header and its url
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


# ---------------------------------------------------------------------------- processes


def cli_env(config: Path | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: no developer configuration, no colour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYROWATCH_", "SRE_"))}
    env["NO_COLOR"] = "1"
    if config is not None:
        env["PYROWATCH_CONFIG"] = str(config)
    env.update(extra or {})
    return env


@dataclass
class Proc:
    """A background ``pyrowatch`` process whose output goes to files (never a full pipe)."""

    popen: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path
    argv: list[str]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def kill(self) -> int:
        """SIGKILL and reap; returns the exit status (negative: the signal)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        return self.popen.wait(timeout=60)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    @property
    def out(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def __str__(self) -> str:
        head = f"$ {' '.join(self.argv)}\n[exit {self.popen.poll()}]"
        return f"{head}\n{self.out}\n--- stderr\n{self.err}"


@dataclass
class Processes:
    """Starts ``pyrowatch`` subprocesses and kills whichever is left at teardown."""

    workdir: Path
    started: list[Proc] = field(default_factory=list)

    def start(
        self,
        *args: str,
        config: Path | None,
        env: Mapping[str, str] | None = None,
        program: str | None = None,
    ) -> Proc:
        index = len(self.started)
        out = self.workdir / f"proc-{index}.out"
        err = self.workdir / f"proc-{index}.err"
        argv = [program or str(BIN / "pyrowatch"), *args]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            popen = subprocess.Popen(
                argv,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=cli_env(config, env),
            )
        proc = Proc(popen, out, err, argv)
        self.started.append(proc)
        return proc

    def run(self, *args: str, config: Path | None, timeout: float = 120, **kw: Any) -> Proc:
        """Start a command and wait for it to exit on its own."""
        proc = self.start(*args, config=config, **kw)
        proc.wait(timeout)
        return proc

    def run_all(self, commands: Sequence[tuple[Sequence[str], Path | None]]) -> list[Proc]:
        """Run several commands at once (they are independent); wait for every one."""
        procs = [self.start(*args, config=config) for args, config in commands]
        for proc in procs:
            proc.wait(120)
        return procs

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.alive():
                proc.kill()


def assert_one_line_error(proc: Proc, *, code: int | None = None) -> str:
    """Exit non-zero, stderr ends with one ``error: ...`` line, no traceback anywhere."""
    exit_code = proc.popen.returncode
    assert exit_code is not None and exit_code != 0, proc
    if code is not None:
        assert exit_code == code, proc
    assert "Traceback" not in proc.err and "Traceback" not in proc.out, proc
    lines = proc.err.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), proc
    assert sum(line.startswith("error: ") for line in lines) == 1, proc
    return lines[-1]


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a Prometheus exposition, or None when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return None


def pg_script(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    """``bash scripts/pg ARGS`` on the cluster kept in ``state``."""
    env = {**os.environ, "PYROWATCH_PG_DIR": str(state)}
    return subprocess.run(
        ["bash", str(PG_SCRIPT), *args], capture_output=True, text=True, env=env, timeout=180
    )


class PrivateCluster:
    """A PostgreSQL cluster of the reliability tests alone, driven by ``scripts/pg``."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.url = ""

    def start(self) -> str:
        result = pg_script("start", state=self.state)
        assert result.returncode == 0, result.stderr
        self.url = result.stdout.strip().split("=", 1)[1]
        return self.url

    def restart(self) -> None:
        """``scripts/pg restart``; the server comes back on the same URL (a daemon's
        configuration cannot follow a new port)."""
        result = pg_script("restart", state=self.state)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().split("=", 1)[1] == self.url, "the restart moved the port"

    def running(self) -> bool:
        return pg_script("status", state=self.state).returncode == 0

    def postmaster_pid(self) -> int:
        return int((self.state / "data" / "postmaster.pid").read_text().splitlines()[0])

    def stop(self) -> None:
        pg_script("stop", state=self.state)
