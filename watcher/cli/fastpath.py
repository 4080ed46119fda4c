"""The fast path: the plain forms of a flame graph query, answered without click.

Importing click and building its commands costs a query more than its own work. The
console scripts ``pyrowatch`` and ``pyroscope-flamegraph`` therefore offer their arguments
here first. A plain form is answered here, through the same implementation the click
command calls (:func:`watcher.cli.flamegraph_report.show_flamegraph`), with the same
parameter values, output and errors::

    pyroscope-flamegraph DEPLOYMENT SERVICE [RANGE] [PROFILE_TYPE] [OPTIONS]
    pyrowatch [--config FILE] [--no-color] flamegraph DEPLOYMENT SERVICE [...] [OPTIONS]

    OPTIONS: --range D, --start T, --end T, -t/--type T, -l/--label M (repeatable),
             --max-nodes N, -n/--top N, --sort self|total, -f/--format table|json,
             --json, --no-color, --config FILE  (``--opt value`` or ``--opt=value``)

Anything else declines, and the click command gets the arguments untouched: help, other
commands and formats, ``-o``, ``--debug``, ``--``, short options with attached values, an
unknown option, any value the click command would reject (so usage errors, and their exit
code 2, are always click's), shell completion, and streams that are not UTF-8.
``tests/cli/test_fastpath.py`` runs many command lines both ways and compares the bytes.
Set ``_PYROWATCH_FAST_PATH=off`` to always use click.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple, NoReturn

if TYPE_CHECKING:
    from watcher.selectors import Matcher

__all__ = ["FastCall", "parse", "try_fast_path"]

#: Options taking a value -> the parameter they set.
_VALUED = {
    "--range": "range",
    "--start": "start",
    "--end": "end",
    "--type": "type",
    "-t": "type",
    "--label": "label",
    "-l": "label",
    "--max-nodes": "max_nodes",
    "--top": "top",
    "-n": "top",
    "--sort": "sort",
    "--format": "format",
    "-f": "format",
    "--config": "config",
}
_FLAGS = {"--json": "json", "--no-color": "no_color"}
#: Options of ``pyrowatch`` itself, before the command name.
_GROUP_VALUED = {"--config": "config"}
_GROUP_FLAGS = {"--no-color": "no_color"}


class FastCall(NamedTuple):
    """The parameter values of one plain flame graph query."""

    config: str | None
    no_color: bool
    deployment: str
    service: str
    range_: timedelta | None
    start: str | None
    end: str | None
    profile_type: str | None
    labels: tuple[Matcher, ...]
    max_nodes: int
    top: int
    sort: str
    fmt: str


class _Decline(Exception):
    """Not a plain form: click handles it."""


def _is_dash_digit(token: str) -> bool:
    """``-2h``, ``-30m``: a positional to the click command (``DashArgsCommand``)."""
    return len(token) > 1 and token[0] == "-" and token[1].isdigit()


def _options(
    tokens: Sequence[str],
    valued: dict[str, str],
    flags: dict[str, str],
    *,
    stop_at_positional: bool,
) -> tuple[dict[str, list[str]], list[str], int]:
    """Options (every value, in order) and positionals of ``tokens``; with
    ``stop_at_positional``, parsing stops at the first positional (a command name) and the
    index of that token is returned too."""
    values: dict[str, list[str]] = {}
    positionals: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-") and token != "-" and not _is_dash_digit(token):
            name, eq, value = token.partition("=")
            if not name.startswith("--") and eq:
                raise _Decline  # -t=cpu: click reads "=cpu" as the value
            if name in valued:
                if not eq:
                    i += 1
                    if i >= len(tokens):
                        raise _Decline  # the option's value is missing
                    value = tokens[i]
                values.setdefault(valued[name], []).append(value)
            elif name in flags and not eq:
                values.setdefault(flags[name], []).append("")
            else:
                raise _Decline  # help, an unknown option, a flag with a value, -tcpu
        else:
            if stop_at_positional:
                return values, positionals, i
            positionals.append(token)
        i += 1
    return values, positionals, i


def _last(values: dict[str, list[str]], name: str) -> str | None:
    got = values.get(name)
    return got[-1] if got else None


def _count(text: str | None, default: int) -> int:
    """A whole number of at least 1, written plainly (click accepts more; it words the
    errors too)."""
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise _Decline
    return int(text)


def parse(argv: Sequence[str], subcommand: str | None) -> FastCall | None:
    """The values of a plain flame graph query, or None when click must handle ``argv``.

    ``subcommand`` is ``"flamegraph"`` for ``pyroscope-flamegraph`` (its arguments start
    with the command's own) and None for ``pyrowatch`` (group options, then the command).
    """
    try:
        return _parse(list(argv), subcommand)
    except Exception:  # _Decline, or anything unforeseen: click parses it and words the error
        return None


def _parse(argv: list[str], subcommand: str | None) -> FastCall:
    from watcher.errors import ProfileTypeError, SelectorError, TimeSpecError

    config: str | None = None
    no_color = False
    if subcommand is None:
        group, _, at = _options(argv, _GROUP_VALUED, _GROUP_FLAGS, stop_at_positional=True)
        if at >= len(argv) or argv[at] != "flamegraph":
            raise _Decline
        config = _last(group, "config")
        no_color = "no_color" in group
        argv = argv[at + 1 :]
    values, positionals, _ = _options(argv, _VALUED, _FLAGS, stop_at_positional=False)
    if len(positionals) < 2 or any(_is_dash_digit(p) for p in positionals[:2]):
        raise _Decline
    config = _last(values, "config") if "config" in values else config
    no_color = no_color or "no_color" in values

    from watcher.cli import flamegraph_report as report
    from watcher.profiletypes import resolve_profile_type
    from watcher.times import parse_duration, parse_time, utcnow

    try:
        raw_range = _last(values, "range")
        range_ = parse_duration(raw_range) if raw_range is not None else None
        start, end = _last(values, "start"), _last(values, "end")
        for when in (start, end):
            if when is not None:
                parse_time(when, now=utcnow())
        raw_type = _last(values, "type")
        ptype = resolve_profile_type(raw_type) if raw_type is not None else None
        labels: tuple[Matcher, ...] = ()
        if "label" in values:
            from watcher.selectors import parse_label_arg

            labels = tuple(parse_label_arg(v) for v in values["label"])
        # click passes a dash-digit positional on with a leading space (DashArgsCommand)
        extra = [" " + p if _is_dash_digit(p) else p for p in positionals[2:]]
        range_, ptype = report.split_positionals(extra, range_, ptype, resolve_profile_type)
    except (TimeSpecError, ProfileTypeError, SelectorError, report.PositionalError):
        raise _Decline from None
    sort = _last(values, "sort") or report.DEFAULT_SORT
    fmt = _last(values, "format") or report.DEFAULT_FORMAT
    if sort not in report.SORTS or fmt not in ("table", "json"):
        raise _Decline  # tree, folded and pprof (and mistakes) are left to click
    return FastCall(
        config=config,
        no_color=no_color,
        deployment=positionals[0],
        service=positionals[1],
        range_=range_,
        start=start,
        end=end,
        profile_type=ptype,
        labels=labels,
        max_nodes=_count(_last(values, "max_nodes"), report.DEFAULT_MAX_NODES),
        top=_count(_last(values, "top"), report.DEFAULT_TOP),
        sort=sort,
        fmt="json" if "json" in values else fmt,
    )


def _environment_allows() -> bool:
    """False for the test switch, shell completion and streams that are not UTF-8 (click
    writes to those its own way)."""
    if os.environ.get("_PYROWATCH_FAST_PATH", "").lower() in ("0", "off", "no", "false"):
        return False
    if any(key.startswith("_") and key.endswith("_COMPLETE") for key in os.environ):
        return False
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if not isinstance(encoding, str) or encoding.lower().replace("-", "") != "utf8":
            return False
    return True


def try_fast_path(argv: Sequence[str], *, subcommand: str | None, quick_exit: bool = False) -> None:
    """Answer ``argv`` and exit when it is a plain flame graph query; return otherwise,
    having done nothing. ``quick_exit``: end the process without the interpreter's
    teardown (console scripts only; see :func:`~watcher.cli._report.finish`)."""
    if not _environment_allows():
        return
    call = parse(argv, subcommand)
    if call is not None:
        _run(call, quick_exit)


def _run(call: FastCall, quick_exit: bool = False) -> NoReturn:
    """Run the query; end as ``watcher.cli._core.run_command`` ends a click command."""
    from watcher.cli._report import echo_error, finish, report_error, silence_stdout
    from watcher.cli._session import CliState
    from watcher.cli.flamegraph_report import DEFAULT_MIN_SHARE, show_flamegraph

    state = CliState(config=call.config, no_color=call.no_color)
    code = 0
    try:
        show_flamegraph(
            state,
            deployment=call.deployment,
            service=call.service,
            range_=call.range_,
            start=call.start,
            end=call.end,
            profile_type=call.profile_type,
            labels=call.labels,
            max_nodes=call.max_nodes,
            top=call.top,
            sort=call.sort,
            fmt=call.fmt,
            min_share=DEFAULT_MIN_SHARE,
            output=None,
        )
    except KeyboardInterrupt:
        sys.stderr.write("\n")  # as click: close the terminal's ^C echo
        echo_error("interrupted", state)
        code = 130
    except BrokenPipeError:
        # as click: the reader went away while output was written; exit 1, quietly
        silence_stdout()
        code = 1
    except Exception as exc:
        code = report_error(exc, state)
    finish(code, quick=quick_exit)
