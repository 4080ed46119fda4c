"""The ``pyrowatch`` command line.

Commands are registered by import path in :data:`COMMANDS` and imported only when invoked,
so ``pyrowatch --help`` starts fast and loads none of the heavy libraries (httpx, pydantic,
SQLAlchemy, ...). Adding a command is one line in that dict::

    "run": LazyCommand("watcher.cli.daemon:run", "Run the watcher daemon."),

The console scripts (``pyrowatch`` runs :func:`run`; ``pyroscope-*`` are in ``seed``) first
offer their arguments to the fast path (``fastpath``), which answers the plain forms of a
flame graph query without importing click; anything else goes to the click group
(``app``, also importable as ``watcher.cli.main``) exactly as given. This module imports
no click.

Shell completion (click's mechanism)::

    eval "$(_PYROWATCH_COMPLETE=bash_source pyrowatch)"   # bash, in ~/.bashrc
    eval "$(_PYROWATCH_COMPLETE=zsh_source pyrowatch)"    # zsh, in ~/.zshrc
    _PYROWATCH_COMPLETE=fish_source pyrowatch | source    # fish
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NamedTuple, NoReturn

__all__ = ["COMMANDS", "LazyCommand", "console", "main", "run"]


class LazyCommand(NamedTuple):
    """A command known by its import path (``module:attribute``) and one-line help."""

    target: str
    help: str


#: Every ``pyrowatch`` command: name -> where it lives and its one-line help.
COMMANDS: dict[str, LazyCommand] = {
    "config": LazyCommand("watcher.cli.config:config", "List deployments; check the config."),
    "services": LazyCommand("watcher.cli.query:services", "Services with data in a time range."),
    "profiles": LazyCommand("watcher.cli.query:profiles", "Profile types with data in a range."),
    "labels": LazyCommand("watcher.cli.query:labels", "Label names, or the values of one label."),
    "flamegraph": LazyCommand("watcher.cli.flamegraph:flamegraph", "Hottest functions."),
    "diff": LazyCommand("watcher.cli.diff:diff", "What grew between two time windows."),
    "series": LazyCommand("watcher.cli.query:series", "Profile total over time."),
    "query": LazyCommand("watcher.cli.query:query", "Raw Querier API call, JSON in and out."),
    "sandbox": LazyCommand("watcher.cli.sandbox:sandbox", "Run a local Pyroscope-like server."),
    "run": LazyCommand("watcher.cli.daemon:run", "Run the watcher daemon in the foreground."),
    "check": LazyCommand("watcher.cli.daemon:check", "Run the watches once and print findings."),
    "regressions": LazyCommand("watcher.cli.daemon:regressions", "List stored regressions."),
    "snapshots": LazyCommand("watcher.cli.daemon:snapshots", "Stored top-function snapshots."),
    "alerts": LazyCommand("watcher.cli.alerts:alerts", "List, test and re-enable alert channels."),
    "db": LazyCommand("watcher.cli.db:db", "Create or upgrade the watcher database."),
    "demo": LazyCommand("watcher.cli.daemon:demo", "See the watcher work on synthetic data."),
}


def run(
    args: Sequence[str] | None = None, prog_name: str | None = None, *, quick_exit: bool = False
) -> NoReturn:
    """``pyrowatch``: the fast path, else the click group with the arguments untouched.
    ``quick_exit``: a query the fast path answers ends without the interpreter's teardown
    (the console script; callers that go on after ``SystemExit`` leave it off)."""
    from watcher.cli.fastpath import try_fast_path

    try_fast_path(
        list(sys.argv[1:] if args is None else args), subcommand=None, quick_exit=quick_exit
    )
    from watcher.cli.app import main as group

    group.main(args, prog_name=prog_name)
    raise SystemExit(0)  # pragma: no cover - the group exits itself


def console() -> NoReturn:
    """The ``pyrowatch`` console script."""
    run(quick_exit=True)


def __getattr__(name: str) -> Any:
    if name == "main":
        from watcher.cli.app import main as group

        return group
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
