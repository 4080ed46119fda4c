"""``flamegraph``: the hottest functions of a service, as a ranked table, tree, folded
stacks, pprof or JSON.

The click command only parses and checks its arguments; :func:`show_flamegraph`
(``flamegraph_report``) does the work, as it does for the fast path of the plain forms
(``fastpath``), so both give the same output and errors.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from watcher.cli._common import (
    CONTEXT_SETTINGS,
    PROFILE_TYPE,
    DashArgsCommand,
    deployment_argument,
    json_option,
    label_option,
    range_options,
    type_option,
)
from watcher.cli._core import global_options, state_of
from watcher.cli.flamegraph_report import (
    DEFAULT_FORMAT,
    DEFAULT_MAX_NODES,
    DEFAULT_MIN_SHARE,
    DEFAULT_SORT,
    DEFAULT_TOP,
    FORMATS,
    SORTS,
    PositionalError,
    Query,
    render,
    show_flamegraph,
    split_positionals,
    table_json,
)

if TYPE_CHECKING:
    from watcher.selectors import Matcher

__all__ = ["FORMATS", "Query", "flamegraph", "render", "table_json"]


@click.command(cls=DashArgsCommand, context_settings=CONTEXT_SETTINGS)
@deployment_argument
@click.argument("service")
@click.argument("extra", nargs=-1, metavar="[RANGE] [PROFILE_TYPE]")
@range_options
@type_option
@label_option
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_NODES,
    show_default=True,
    help="Node budget of the server's flame graph; the rest is summed into 'other'.",
)
@click.option(
    "--top",
    "-n",
    type=click.IntRange(min=1),
    default=DEFAULT_TOP,
    show_default=True,
    help="Rows to show.",
)
@click.option(
    "--sort",
    type=click.Choice(SORTS),
    default=DEFAULT_SORT,
    show_default=True,
    help="Rank functions by self or total value.",
)
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(FORMATS),
    default=DEFAULT_FORMAT,
    show_default=True,
    help="table: ranked functions; tree: hottest paths; folded: collapsed stacks "
    "(flamegraph.pl, speedscope); pprof: gzipped pprof (go tool pprof); json.",
)
@click.option(
    "--min-share",
    type=click.FloatRange(min=0, max=100),
    default=DEFAULT_MIN_SHARE,
    show_default=True,
    help="tree: hide paths below this percentage of the total.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to FILE instead of stdout (needed for pprof on a terminal).",
)
@json_option
@global_options
@click.pass_context
def flamegraph(
    ctx: click.Context,
    deployment: str,
    service: str,
    extra: tuple[str, ...],
    range_: timedelta | None,
    start: str | None,
    end: str | None,
    profile_type: str | None,
    labels: tuple[Matcher, ...],
    max_nodes: int,
    top: int,
    sort: str,
    fmt: str,
    min_share: float,
    output: str | None,
    as_json: bool,
) -> None:
    """Where a service spends: functions ranked by self value, with total and share.

    RANGE (default 1h) and PROFILE_TYPE (default cpu) may also be given as positionals,
    as the SRE toolkit took them. Values are in the profile's unit made human; CPU also as
    average cores over the window.

    \b
    Examples:
      pyroscope-flamegraph prod checkout 30m
      pyroscope-flamegraph prod checkout 1h memory:inuse_space:bytes:space:bytes
      pyrowatch flamegraph prod checkout --label pod=~'checkout-7.*' --top 40
      pyrowatch flamegraph prod checkout --start 2024-05-01T10:00 --end 2024-05-01T11:00
      pyrowatch flamegraph prod checkout -f pprof -o checkout.pb.gz
    """
    try:
        range_, profile_type = split_positionals(
            extra, range_, profile_type, lambda value: PROFILE_TYPE.convert(value, None, ctx)
        )
    except PositionalError as exc:
        raise click.UsageError(str(exc), ctx) from None
    if as_json:
        fmt = "json"
    if fmt == "pprof" and output is None and sys.stdout.isatty():
        raise click.UsageError("pprof is binary: write it to a file with -o FILE", ctx)
    show_flamegraph(
        state_of(ctx),
        deployment=deployment,
        service=service,
        range_=range_,
        start=start,
        end=end,
        profile_type=profile_type,
        labels=labels,
        max_nodes=max_nodes,
        top=top,
        sort=sort,
        fmt=fmt,
        min_share=min_share,
        output=output,
    )
