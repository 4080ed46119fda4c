"""Helpers of the end-to-end CLI tests: a subprocess runner, a config writer, data seeding.

Every command runs as its installed console script (found next to ``sys.executable``), in
a fresh process, against a :class:`~watcher.sandbox.Sandbox` started in the test process on
127.0.0.1 with a free port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from watcher.sandbox import Sandbox

BIN = Path(sys.executable).parent
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
INUSE = "memory:inuse_space:bytes:space:bytes"
SECOND = 1_000_000_000  # one second of CPU in nanoseconds


@dataclass
class Result:
    """What one command printed and how it exited."""

    code: int
    out: str
    err: str
    argv: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"$ {' '.join(self.argv)}\n[exit {self.code}]\n{self.out}\n--- stderr\n{self.err}"


def script(name: str) -> str:
    """The installed console script ``name``; fails with the fix when it is missing."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to the interpreter: run pip install -e .")
    return str(path)


def _environ(env: Mapping[str, str] | None, unset: Sequence[str]) -> dict[str, str]:
    environ = dict(os.environ)
    environ.update(env or {})
    for name in unset:
        environ.pop(name, None)
    return environ


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    unset: Sequence[str] = (),
    stdin: str | None = None,
    cwd: Path | None = None,
) -> Result:
    """Run an installed command; ``argv[0]`` is its name (``pyrowatch``, ``pyroscope-diff``)."""
    full = [script(argv[0]), *argv[1:]]
    environ = _environ(env, unset)
    proc = subprocess.run(
        full,
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=120,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, list(argv))


def run_tty(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, unset: Sequence[str] = ()
) -> Result:
    """Run a command with stdout and stderr on a pseudo-terminal (both land in ``out``)."""
    import pty

    full = [script(argv[0]), *argv[1:]]
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        full, stdin=slave, stdout=slave, stderr=slave, env=_environ(env, unset), close_fds=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    code = proc.wait(timeout=120)
    os.close(master)
    return Result(code, b"".join(chunks).decode("utf-8", "replace"), "", list(argv))


@dataclass
class Env:
    """A sandbox, a config file pointing at it, and helpers to seed data and run commands."""

    sandbox: Sandbox
    config: Path
    tmp: Path

    @property
    def url(self) -> str:
        return self.sandbox.url

    def write_config(self, deployments: Mapping[str, Mapping[str, Any]], extra: str = "") -> Path:
        """Replace the config file with these deployments (TOML values)."""
        lines: list[str] = []
        for name, keys in deployments.items():
            lines.append(f"[pyroscope.deployments.{name}]")
            for key, value in keys.items():
                lines.append(f"{key} = {toml_value(value)}")
            lines.append("")
        self.config.write_text("\n".join(lines) + extra, encoding="utf-8")
        return self.config

    def run(
        self, *argv: str, env: Mapping[str, str] | None = None, unset: Sequence[str] = ()
    ) -> Result:
        """Run a command with ``PYROWATCH_CONFIG`` pointing at this config."""
        return run(argv, env={"PYROWATCH_CONFIG": str(self.config), **(env or {})}, unset=unset)

    def run_tty(self, *argv: str, unset: Sequence[str] = ("NO_COLOR",)) -> Result:
        """Run a command on a pseudo-terminal (colour allowed unless asked otherwise)."""
        return run_tty(argv, env={"PYROWATCH_CONFIG": str(self.config)}, unset=unset)

    def seed(
        self,
        service: str,
        stacks: Mapping[tuple[str, ...], int],
        *,
        at: datetime | None = None,
        profile_type: str = CPU,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Store one profile for ``service`` (default: five minutes ago)."""
        when = at or (datetime.now(UTC) - timedelta(minutes=5))
        self.sandbox.store.add(
            {"service_name": service, **(labels or {})},
            profile_type,
            int(when.timestamp() * 1000),
            dict(stacks),
        )


def toml_value(value: Any) -> str:
    """A TOML literal for a str, bool or number."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def aligned_window(minutes_ago: int = 30) -> tuple[datetime, datetime, datetime]:
    """A whole-minute instant ``minutes_ago`` before now, and a window of +-10 minutes."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    at = now - timedelta(minutes=minutes_ago)
    return at, at - timedelta(minutes=10), at + timedelta(minutes=10)


def iso(dt: datetime) -> str:
    """``2024-05-01T10:00:00Z``."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
