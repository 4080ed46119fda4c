"""The ``pyrowatch`` command line.

Commands are registered by import path in :data:`COMMANDS` and imported only when invoked,
so ``pyrowatch --help`` starts fast and loads none of the heavy libraries (httpx, pydantic,
SQLAlchemy, ...). Adding a command is one line in that dict::

    "run": LazyCommand("watcher.cli.daemon:run", "Run the watcher daemon."),

Shell completion (click's mechanism)::

    eval "$(_PYROWATCH_COMPLETE=bash_source pyrowatch)"   # bash, in ~/.bashrc
    eval "$(_PYROWATCH_COMPLETE=zsh_source pyrowatch)"    # zsh, in ~/.zshrc
    _PYROWATCH_COMPLETE=fish_source pyrowatch | source    # fish
"""

from __future__ import annotations

import click

from watcher import __version__
from watcher.cli._core import LazyCommand, LazyGroup, global_options

__all__ = ["COMMANDS", "LazyCommand", "main"]

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

_EPILOG = """\
Times: now, -2h, now-30m, ISO 8601 (no zone = UTC), YYYY-MM-DD, unix seconds or
milliseconds. Durations: 30s 10m 1h 1h30m 1d 1w. Exit codes: 0 ok (also an empty
result), 1 runtime error, 2 usage error.
"""


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=_EPILOG,
)
@global_options
@click.version_option(
    __version__, "--version", prog_name="pyrowatch", message="%(prog)s %(version)s"
)
def main() -> None:
    """Query Grafana Pyroscope and watch its profiles for performance regressions."""
