"""Shared option types and helpers of the query commands (click's side).

Library modules are imported inside functions, never at module level: this module is
imported to show ``--help``. What a command holds while it runs (state, session, window)
is click-free, in ``_session`` (``echo`` and ``note`` too, so both ways in write the same
bytes); what the click commands use of it is re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.shell_completion import CompletionItem

from watcher.cli import _session
from watcher.cli._core import state_of
from watcher.cli._session import (
    Session,
    echo,
    note,
    resolve_window,
    service_selector,
    window_json,
    window_text,
)

if TYPE_CHECKING:
    from watcher.selectors import Matcher

__all__ = [
    "CONTEXT_SETTINGS",
    "DURATION",
    "LABEL",
    "PROFILE_TYPE",
    "TIME",
    "DashArgsCommand",
    "DurationType",
    "LabelType",
    "ProfileTypeType",
    "Session",
    "TimeType",
    "complete_deployment",
    "deployment_argument",
    "echo",
    "json_option",
    "label_option",
    "note",
    "open_session",
    "range_options",
    "resolve_window",
    "service_selector",
    "type_option",
    "window_json",
    "window_text",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Context settings every command uses (``-h`` for help, a readable width).
CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
}


# --------------------------------------------------------------------------- param types

# click >= 8.4 makes ParamType generic; subscripting it at run time would break older click.
if TYPE_CHECKING:
    _DurationBase = click.ParamType[timedelta]
    _StrBase = click.ParamType[str]
    _MatcherBase = click.ParamType[Matcher]
else:
    _DurationBase = _StrBase = _MatcherBase = click.ParamType


class DurationType(_DurationBase):
    """A duration such as ``30m``, ``1h30m`` or ``7d``."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        from watcher.errors import TimeSpecError
        from watcher.times import parse_duration

        try:
            return parse_duration(str(value))
        except TimeSpecError as exc:
            self.fail(str(exc), param, ctx)


class TimeType(_StrBase):
    """A point in time; validated now, resolved later against one shared ``now``."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from watcher.errors import TimeSpecError
        from watcher.times import parse_time, utcnow

        try:
            parse_time(str(value), now=utcnow())
        except TimeSpecError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


class LabelType(_MatcherBase):
    """A label matcher: ``k=v``, ``k!=v``, ``k=~re`` or ``k!~re``."""

    name = "matcher"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Matcher:
        from watcher.errors import SelectorError
        from watcher.selectors import Matcher, parse_label_arg

        if isinstance(value, Matcher):
            return value
        try:
            return parse_label_arg(str(value))
        except SelectorError as exc:
            self.fail(str(exc), param, ctx)


class ProfileTypeType(_StrBase):
    """A profile type alias (``cpu``, ``memory``, ...) or a full ID."""

    name = "type"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from watcher.errors import ProfileTypeError
        from watcher.profiletypes import resolve_profile_type

        try:
            return resolve_profile_type(str(value))
        except ProfileTypeError as exc:
            self.fail(str(exc), param, ctx)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        from watcher.profiletypes import ALIASES

        return [CompletionItem(a) for a in sorted(ALIASES) if a.startswith(incomplete)]


DURATION = DurationType()
TIME = TimeType()
LABEL = LabelType()
PROFILE_TYPE = ProfileTypeType()


def complete_deployment(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Deployment names from the config file, for shell completion."""
    try:
        names = sorted(state_of(ctx).settings().deployments)
    except Exception:  # completion must never fail loudly
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


# --------------------------------------------------------------------------- commands

_DASH_DIGIT = re.compile(r"-\d")


class DashArgsCommand(click.Command):
    """A command whose positionals may start with a dash and a digit (``-2h``, ``-30m``).

    click would read ``-2h`` as the short options ``-2`` and ``-h``; such a token is passed
    as a positional instead (with a leading space, which the time parser ignores), unless
    it is the value of the option just before it (``--end -1h``).
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value: set[str] = set()
        for param in self.get_params(ctx):
            if isinstance(param, click.Option) and not param.is_flag and not param.count:
                takes_value.update(param.opts)
        out: list[str] = []
        value_next = False
        options_over = False
        for arg in args:
            if not options_over and not value_next and _DASH_DIGIT.match(arg):
                arg = " " + arg
            options_over = options_over or arg == "--"
            value_next = not options_over and arg in takes_value
            out.append(arg)
        return super().parse_args(ctx, out)


# --------------------------------------------------------------------------- decorators


def deployment_argument(func: F) -> F:
    """The ``DEPLOYMENT`` positional argument, completed from the config file."""
    return click.argument("deployment", shell_complete=complete_deployment)(func)


def range_options(func: F) -> F:
    """``--range``, ``--start`` and ``--end``."""
    func = click.option(
        "--end",
        type=TIME,
        help="End of the window (default now). Alone, the --range ends there.",
    )(func)
    func = click.option(
        "--start", type=TIME, help="Start of the window (with --end, or --range after it)."
    )(func)
    func = click.option(
        "--range",
        "range_",
        type=DURATION,
        help="Window length (default 1h), ending now or at --end.",
    )(func)
    return func


def label_option(func: F) -> F:
    """``--label`` / ``-l``, repeatable."""
    return click.option(
        "--label",
        "-l",
        "labels",
        type=LABEL,
        multiple=True,
        help="Label matcher k=v, k!=v, k=~regex or k!~regex (repeatable; values may hold "
        "any character, they are escaped).",
    )(func)


def type_option(func: F) -> F:
    """``--type`` / ``-t``."""
    return click.option(
        "--type",
        "-t",
        "profile_type",
        type=PROFILE_TYPE,
        help="Profile type: an alias (cpu, memory, alloc, goroutine, mutex, block, wall, ...) "
        "or a full ID. Default cpu.",
    )(func)


def json_option(func: F) -> F:
    """``--json``."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON on stdout instead of a table."
    )(func)


# --------------------------------------------------------------------------- helpers


@contextmanager
def open_session(ctx: click.Context, deployment: str) -> Iterator[Session]:
    """Load the config, find ``deployment`` and open a Querier client to it."""
    with _session.open_session(state_of(ctx), deployment) as session:
        yield session
