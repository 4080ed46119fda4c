"""``sandbox``: a local Pyroscope-compatible server, in the foreground."""

from __future__ import annotations

import click

from watcher.cli._common import CONTEXT_SETTINGS
from watcher.cli._core import global_options


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4040,
    show_default=True,
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False),
    multiple=True,
    help="Load profiles from FILE (pprof, folded stacks or a fleet spec); repeatable.",
)
@global_options
def sandbox(host: str, port: int, data: tuple[str, ...]) -> None:
    """Run the sandbox server (the Querier and Push APIs) until interrupted.

    Prints its URL; point a deployment's url at it, or push profiles to it with any
    Pyroscope SDK.

    \b
    Examples:
      pyrowatch sandbox
      pyrowatch sandbox --port 0 --data cpu.pb.gz
    """
    from watcher.sandbox import serve

    try:
        serve(host=host, port=port, data=list(data))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {reason}; pick another --port (0 = any free one)"
        ) from None
