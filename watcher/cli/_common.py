"""Shared option types and helpers of the query commands.

Library modules are imported inside functions, never at module level: this module is
imported to show ``--help``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.shell_completion import CompletionItem

from watcher.cli._core import CliState, state_of
from watcher.cli.output import progress, short_duration, utc_iso

if TYPE_CHECKING:
    from watcher.querier import QuerierClient, RetryEvent
    from watcher.selectors import Matcher
    from watcher.times import TimeRange

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


def resolve_window(
    range_: timedelta | None,
    start: str | None,
    end: str | None,
    *,
    now: datetime | None = None,
    default: timedelta = timedelta(hours=1),
) -> TimeRange:
    """The query window from ``--range/--start/--end`` (all times share one ``now``)."""
    from watcher.times import parse_time, resolve_range, utcnow

    now = now or utcnow().replace(microsecond=0)
    start_dt = parse_time(start, now=now) if start else None
    end_dt = parse_time(end, now=now) if end else None
    return resolve_range(range_, start_dt, end_dt, now=now, default=default)


def service_selector(service: str | None, labels: Sequence[Matcher]) -> str:
    """``{service_name="svc", k="v", ...}`` with every value escaped."""
    from watcher.selectors import Matcher, format_selector

    matchers: list[Matcher] = []
    if service is not None:
        matchers.append(Matcher("service_name", "=", service))
    matchers.extend(labels)
    return format_selector(matchers)


def window_json(rng: TimeRange) -> dict[str, Any]:
    """A window as JSON: ISO start/end and length in seconds."""
    return {"start": utc_iso(rng.start), "end": utc_iso(rng.end), "seconds": rng.seconds}


def window_text(rng: TimeRange) -> str:
    """``2024-05-01T10:00:00Z .. 2024-05-01T11:00:00Z (1h)``."""
    return f"{utc_iso(rng.start)} .. {utc_iso(rng.end)} ({short_duration(rng.seconds)})"


@dataclass
class Session:
    """A deployment and an open client for one command."""

    name: str
    client: QuerierClient
    state: CliState

    def progress(self, what: str) -> Any:
        """Progress on a terminal's stderr while ``what`` runs."""
        return progress(f"{what} from {self.name}")


@contextmanager
def open_session(ctx: click.Context, deployment: str) -> Iterator[Session]:
    """Load the config, find ``deployment`` and open a Querier client to it."""
    from watcher.cli._core import redact
    from watcher.querier import QuerierClient

    state = state_of(ctx)
    dep = state.deployment(deployment)

    def on_retry(event: RetryEvent) -> None:
        # progress, not a result: only where a person watches (a terminal) or with --debug
        if state.debug or sys.stderr.isatty():
            note(f"retrying {redact(str(event), state.secrets())}")

    # a command makes a few requests and exits: http.client, which imports in a fraction of
    # httpx's time (a proxy set in the environment, or access_command, still gets its way)
    with QuerierClient(dep, on_retry=on_retry, http="stdlib") as client:
        yield Session(deployment, client, state)


def echo(text: str = "") -> None:
    """A line to stdout."""
    click.echo(text)


def note(text: str) -> None:
    """A diagnostic line to stderr."""
    click.echo(text, err=True)


# --------------------------------------------------------------------------- quick config
#
# A query command needs one deployment. Validating the configuration with its pydantic
# models costs more than the rest of the command (importing pydantic and pydantic-settings
# and building the models), so a plain file is read here instead: the same search order,
# deployment tables whose keys and values are all of the simple, unambiguous kinds below,
# no [watcher] table and no PYROWATCH_DEPLOYMENTS__/PYROWATCH_WATCHER__ variables. Whatever
# else the file holds, and every problem, is left to watcher.config (quick_deployment returns
# None), so results and error messages are those of the full load. tests/test_startup.py
# checks both paths agree.

#: Deployment keys the quick path reads; any other key leaves the file to watcher.config.
QUICK_KEYS = frozenset(
    {
        "url",
        "token",
        "username",
        "password",
        "access_command",
        "cf_access_client_id",
        "cf_access_client_secret",
        "tenant_id",
        "timeout",
        "verify_tls",
        "ca_file",
        "max_response_bytes",
    }
)
_QUICK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_QUICK_ENV = ("PYROWATCH_DEPLOYMENTS__", "PYROWATCH_WATCHER__")


class QuickSecret:
    """A secret string that shows itself only through :meth:`get_secret_value`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QuickSecret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __str__(self) -> str:
        return "**********"

    def __repr__(self) -> str:
        return "QuickSecret('**********')"


@dataclass(frozen=True, slots=True)
class QuickDeployment:
    """A deployment read by :func:`quick_deployment`, with the fields of ``Deployment``."""

    name: str
    url: str
    token: QuickSecret | None = None
    username: str | None = None
    password: QuickSecret | None = None
    access_command: str | None = field(default=None, repr=False)
    cf_access_client_id: str | None = None
    cf_access_client_secret: QuickSecret | None = None
    tenant_id: str | None = None
    timeout: float = 30.0
    verify_tls: bool = True
    ca_file: Path | None = None
    max_response_bytes: int = 256 * 1024 * 1024

    @property
    def auth_kind(self) -> str:
        """As ``Deployment.auth_kind``."""
        from watcher import configfile

        return configfile.auth_kind(self)

    def secret_values(self) -> list[str]:
        """As ``Deployment.secret_values``."""
        from watcher import configfile

        return configfile.secret_values(self)


def quick_deployment(
    explicit: str | None, name: str, env: Mapping[str, str]
) -> tuple[QuickDeployment, list[str]] | None:
    """Deployment ``name`` and every secret of the configuration, read without pydantic.

    ``None`` when the configuration is not one the quick path reads with certainty (see
    above), including every configuration that has a problem: the caller then loads it with
    ``watcher.config.load_settings``, which reports the problem.
    """
    if any(var.upper().startswith(_QUICK_ENV) for var in env):
        return None
    path = _quick_config_file(explicit, env)
    if path is None:
        return None
    import tomllib

    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except (OSError, ValueError):
        return None
    if "watcher" in raw:
        return None
    others = [key for key in raw if key != "pyroscope"]
    if others:
        import difflib

        for key in others:
            if difflib.get_close_matches(key, ["pyroscope", "watcher"], n=1, cutoff=0.75):
                return None
    pyroscope = raw.get("pyroscope")
    if not isinstance(pyroscope, dict) or set(pyroscope) != {"deployments"}:
        return None
    tables = pyroscope["deployments"]
    if not isinstance(tables, dict):
        return None
    deployments: dict[str, QuickDeployment] = {}
    for key, table in tables.items():
        quick = _quick_one(key, table, path) if isinstance(table, dict) else None
        if quick is None:
            return None
        deployments[key] = quick
    found = deployments.get(name)
    if found is None:
        return None
    secrets = [v for dep in deployments.values() for v in dep.secret_values()]
    from watcher.configfile import default_database_url

    secrets.append(default_database_url(env))
    return found, [v for v in secrets if v]


def _quick_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """The file ``watcher.config`` would read; None when there is none or ``--config`` is wrong."""
    from watcher.configfile import find_config_file
    from watcher.errors import ConfigError

    try:
        return find_config_file(explicit, env)
    except ConfigError:
        return None  # the full loader reports it


def _quick_text(table: Mapping[str, Any], key: str) -> tuple[bool, str | None]:
    """An optional string without control characters (blank is None); (ok, value)."""
    value = table.get(key)
    if value is None:
        return True, None
    if type(value) is not str:
        return False, None
    if not value.strip():
        return True, None
    if not value.isascii() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return False, None  # the full loader decides (and words the error)
    return True, value


def _quick_one(name: str, table: Mapping[str, Any], path: Path) -> QuickDeployment | None:
    """One deployment table, or None when it is not plainly valid."""
    if not _QUICK_NAME.fullmatch(name) or not set(table) <= QUICK_KEYS:
        return None
    url = table.get("url")
    if type(url) is not str:
        return None
    from urllib.parse import urlsplit

    text = url.strip()
    try:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        if parts.username is not None or parts.password is not None:
            return None
    except ValueError:
        return None
    if parts.query or parts.fragment:
        return None
    texts: dict[str, str | None] = {}
    for key in (
        "token",
        "username",
        "password",
        "cf_access_client_id",
        "cf_access_client_secret",
        "tenant_id",
    ):
        ok, texts[key] = _quick_text(table, key)
        if not ok:
            return None
    command = table.get("access_command")
    if command is not None:
        if type(command) is not str:
            return None
        if not command.strip():
            command = None
        else:
            import shlex

            try:
                if not shlex.split(command):
                    return None
            except ValueError:
                return None
    timeout = table.get("timeout", 30.0)
    if type(timeout) not in (int, float) or not 0 < timeout <= 86400:
        return None
    verify_tls = table.get("verify_tls", True)
    if type(verify_tls) is not bool:
        return None
    limit = table.get("max_response_bytes", 256 * 1024 * 1024)
    if type(limit) is not int or limit <= 0:
        return None
    ca_file: Path | None = None
    if "ca_file" in table:
        raw_ca = table["ca_file"]
        if type(raw_ca) is not str or not raw_ca:
            return None
        if not raw_ca.startswith("~") and not Path(raw_ca).is_absolute():
            raw_ca = str(path.parent / raw_ca)
        ca_file = Path(raw_ca).expanduser()
        if not ca_file.is_file():
            return None
    if (texts["cf_access_client_id"] is None) != (texts["cf_access_client_secret"] is None):
        return None
    if command is not None and any(
        texts[key] is not None for key in ("token", "username", "password", "cf_access_client_id")
    ):
        return None

    def secret(key: str) -> QuickSecret | None:
        value = texts[key]
        return None if value is None else QuickSecret(value)

    return QuickDeployment(
        name=name,
        url=text.rstrip("/"),
        token=secret("token"),
        username=texts["username"],
        password=secret("password"),
        access_command=command,
        cf_access_client_id=texts["cf_access_client_id"],
        cf_access_client_secret=secret("cf_access_client_secret"),
        tenant_id=texts["tenant_id"],
        timeout=float(timeout),
        verify_tls=verify_tls,
        ca_file=ca_file,
        max_response_bytes=limit,
    )
