"""`--help` stays fast: no heavy library is imported to show help.

What a query imports (no httpx: a command talks through ``http.client``) is checked in
``tests/test_startup.py``, against a sandbox.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from watcher.cli import COMMANDS

#: Top-level packages that must not be imported at CLI start.
HEAVY = (
    "httpx",
    "httpcore",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "sqlalchemy",
    "alembic",
    "apscheduler",
    "structlog",
    "prometheus_client",
    "google",
)

_PROBE = """
import json, sys
{setup}
try:
    {call}
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print("\\n" + json.dumps(heavy))
"""


def _loaded_after(setup: str, call: str) -> list[str]:
    code = _PROBE.format(setup=setup, call=call, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage:" in proc.stdout
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def test_main_help_imports_no_heavy_module() -> None:
    """`pyrowatch --help` lists every command without importing any of them."""
    loaded = _loaded_after(
        "from watcher.cli import main", "main(['--help'], prog_name='pyrowatch')"
    )
    assert loaded == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_help_imports_no_heavy_module(command: str) -> None:
    """`pyrowatch <command> --help` imports the command module but no heavy library."""
    loaded = _loaded_after(
        "from watcher.cli import main", f"main([{command!r}, '--help'], prog_name='pyrowatch')"
    )
    assert loaded == []


def test_seed_entry_point_help_imports_no_heavy_module() -> None:
    """`pyroscope-flamegraph --help` is as light as `pyrowatch flamegraph --help`."""
    loaded = _loaded_after(
        "import sys; sys.argv = ['pyroscope-flamegraph', '--help']\n"
        "from watcher.cli.seed import flamegraph_main",
        "flamegraph_main()",
    )
    assert loaded == []


def test_importing_the_cli_package_is_light() -> None:
    """`import watcher.cli` (what every entry point does first) loads no heavy module."""
    code = (
        "import sys, json, watcher.cli\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(proc.stdout) == []
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert not {m for m in imported if m.split(".")[0] in HEAVY}
