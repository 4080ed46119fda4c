"""Drop-in ``pyroscope-*`` commands of the SRE toolkit, as thin entry points.

Each runs the same click command as ``pyrowatch <command>``, under the toolkit's name, so
runbooks that call ``pyroscope-flamegraph prod svc 30m`` keep working unchanged.
``pyroscope-flamegraph`` first offers its arguments to the fast path, as ``pyrowatch``
does. Nothing here imports click before it is needed.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from watcher.cli import COMMANDS

__all__ = [
    "SEED_COMMANDS",
    "config_main",
    "diff_main",
    "flamegraph_main",
    "labels_main",
    "profiles_main",
    "query_main",
    "services_main",
]

#: The toolkit's commands, each the same as ``pyrowatch <name>``.
SEED_COMMANDS = ("config", "services", "profiles", "labels", "flamegraph", "diff", "query")


def _run(name: str) -> NoReturn:
    from watcher.cli._core import load_command, run_command

    run_command(load_command(COMMANDS[name].target), prog_name=f"pyroscope-{name}")


def config_main() -> NoReturn:
    """``pyroscope-config``."""
    _run("config")


def services_main() -> NoReturn:
    """``pyroscope-services``."""
    _run("services")


def profiles_main() -> NoReturn:
    """``pyroscope-profiles``."""
    _run("profiles")


def labels_main() -> NoReturn:
    """``pyroscope-labels``."""
    _run("labels")


def flamegraph_main() -> NoReturn:
    """``pyroscope-flamegraph``."""
    from watcher.cli.fastpath import try_fast_path

    try_fast_path(sys.argv[1:], subcommand="flamegraph", quick_exit=True)
    _run("flamegraph")


def diff_main() -> NoReturn:
    """``pyroscope-diff``."""
    _run("diff")


def query_main() -> NoReturn:
    """``pyroscope-query``."""
    _run("query")
