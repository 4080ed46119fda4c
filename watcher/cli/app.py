"""The ``pyrowatch`` click group: every command, imported only when invoked.

``watcher.cli.main`` is this group (imported on first use); the console script runs
``watcher.cli.run``, which tries the fast path first.
"""

from __future__ import annotations

import click

from watcher import __version__
from watcher.cli import COMMANDS
from watcher.cli._core import LazyGroup, global_options

__all__ = ["main"]

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
