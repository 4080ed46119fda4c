"""Configuration: Pyroscope deployments and the watcher daemon, from TOML and the environment.

File
====
The first of these that exists is read (``--config PATH`` must exist; the others are skipped
when missing):

1. ``--config PATH`` (the ``path`` argument of :func:`load_settings`)
2. ``$PYROWATCH_CONFIG``
3. ``~/.config/pyrowatch/config.toml``
4. ``$SRE_CONFIG``
5. ``${SRE_CONFIG_DIR:-~/.config/axiom-sre}/config.toml``

With no file, the settings are empty (no deployments) unless the environment adds some.
The file may be shared with other tools: top-level tables other than ``[pyroscope]`` and
``[watcher]`` are ignored, unless their name looks like a typo of those two.

::

    [pyroscope.deployments.prod]
    url = "https://pyroscope.example.com"
    token = "glsa_..."                  # Authorization: Bearer ...
    # username = "123456"               # HTTP basic; wins over token (as profilecli)
    # password = "glc_..."
    # cf_access_client_id = "....access"        # Cloudflare Access service token,
    # cf_access_client_secret = "..."           # both keys required
    # access_command = "cloudflared access curl"   # a curl-compatible wrapper; exclusive
    tenant_id = "team-a"                # sent as X-Scope-OrgID
    timeout = 30                        # seconds
    verify_tls = true
    # ca_file = "ca.pem"                # relative to the config file
    max_response_bytes = 268435456

    [watcher]
    database_url = "sqlite:///var/lib/pyrowatch/pyrowatch.db"
    listen = "127.0.0.1:9465"
    # grafana_url = "https://grafana.example.com"   # alert links open Profiles Drilldown
    # grafana_datasource_uid = "pyroscope-prod"      # its Pyroscope data source (optional)
    # pyroscope_ui_url = "https://pyroscope.example.com"   # Pyroscope UI diff links

    [[watcher.watch]]
    name = "checkout-cpu"
    deployment = "prod"
    services = ["checkout", "api-*"]
    profile_types = ["cpu", "alloc"]
    schedule = "*/15 * * * *"
    window = "1h"
    baselines = ["-1d", "-6d"]
    alerts = ["oncall"]

    [[watcher.alert]]
    name = "oncall"
    kind = "slack"
    url = "https://hooks.slack.com/services/..."

Environment overrides
=====================
Environment variables win over the file:

``PYROWATCH_DEPLOYMENTS__<NAME>__<KEY>``
    One key of one deployment, e.g. ``PYROWATCH_DEPLOYMENTS__PROD__TOKEN``. ``<NAME>``
    matches a deployment of the file case-insensitively, with ``_`` standing for ``-``
    (``PROD_EU`` sets ``prod-eu``); an unmatched name adds a deployment named in lower case.
``PYROWATCH_WATCHER__<KEY>``
    One key of ``[watcher]``, e.g. ``PYROWATCH_WATCHER__CONCURRENCY=4``. ``WATCH`` and
    ``ALERT`` take a JSON list of tables.

Errors
======
Every problem raises :class:`~watcher.errors.ConfigError` with one line naming the file (or
the environment variable), the dotted key (``pyroscope.deployments.prod.timeout``,
``watcher.watch[0].window``) and what is expected. Unknown keys are errors, with a
suggestion for near misses. Secret values (``token``, ``password``,
``cf_access_client_secret``, ``access_command``, alert ``url``, ``database_url``) are
``SecretStr`` or hidden from reprs, and are never quoted in a message.
"""

from __future__ import annotations

import contextvars
import difflib
import json
import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from watcher import configfile
from watcher.configfile import (
    DEPLOYMENT_ENV,
    NAME_PATTERN,
    WATCHER_ENV,
    AuthKind,
    default_database_url,
    find_config_file,
)
from watcher.errors import ConfigError
from watcher.profiletypes import ALIASES, resolve_profile_type
from watcher.times import DURATION_FORMS, format_duration, parse_duration, parse_offset

# tomli is the same parser for Python < 3.11 (a conditional dependency in pyproject.toml).
if sys.version_info >= (3, 11):  # noqa: UP036
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "AlertChannelConfig",
    "PYROSCOPE_DEFAULT_LOOKBACK",
    "AuthKind",
    "Deployment",
    "Settings",
    "Thresholds",
    "WatchConfig",
    "WatcherSettings",
    "default_database_url",
    "find_config_file",
    "load_settings",
    "normalize_cron",
]


ENV_PREFIX = "PYROWATCH_"
#: Pyroscope's default ``-querier.max-query-lookback``: older parts of a range are dropped.
PYROSCOPE_DEFAULT_LOOKBACK = timedelta(days=7)
_NAME = re.compile(NAME_PATTERN)
#: A path part this long in an alert URL is taken as a credential (see secret_values).
_TOKEN_LIKE = 16
#: Keys whose values are never quoted in a message, whatever the problem.
_SECRET_KEYS = frozenset(
    {"token", "password", "cf_access_client_secret", "access_command", "database_url"}
)


# --------------------------------------------------------------------------- value checks


class _KeyedError(ValueError):
    """A validation problem that belongs to a key below the one being validated."""

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc = loc


def _empty_to_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _duration(value: object) -> object:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"expected {DURATION_FORMS}, as a string")


def _baseline(value: object) -> object:
    if isinstance(value, timedelta):
        offset = value
    elif isinstance(value, str):
        offset = parse_offset(value)
    else:
        raise ValueError("expected a past offset such as -1d or -7d, as a string")
    if offset >= timedelta(0):
        raise ValueError(
            f"expected a past offset such as -1d or -7d, got {format_duration(offset)!r}"
        )
    return offset


def _no_control(value: str | None, what: str) -> None:
    if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{what} must not contain control characters or newlines")


def _header_text(value: str | None, what: str) -> None:
    """A value sent as an HTTP header as it is: no control characters, ASCII only."""
    _no_control(value, what)
    if value is not None and not value.isascii():
        raise ValueError(f"{what} must be ASCII: it is sent in an HTTP header")


def _http_url(value: str, *, secret: bool = False) -> str:
    """Check an http(s) URL; ``secret`` keeps the value out of the message."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = "" if secret else f", got {text!r}"
        raise ValueError(f"expected an http:// or https:// URL{shown}")
    return text


OptStr = Annotated[str | None, BeforeValidator(_empty_to_none)]
OptSecret = Annotated[SecretStr | None, BeforeValidator(_empty_to_none)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Offset = Annotated[timedelta, BeforeValidator(_baseline)]


def _check_name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"expected a {what} name of letters, digits, '.', '_' and '-', got {value!r}"
        )
    return value


# --------------------------------------------------------------------------- cron


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_CRON_ITEM = re.compile(r"(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:/(\d+))?")
_CRON_FORM = "5 cron fields (minute hour day-of-month month day-of-week), e.g. '*/15 * * * *'"


def _cron_value(text: str, label: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text.isdigit():
        number = int(text)
    elif text in names:
        number = names.index(text) + (1 if names is _MONTHS else 0)
    else:
        raise ValueError(f"{label} value {text!r} is not a number or a known name")
    if not low <= number <= high:
        raise ValueError(f"{label} value {number} is outside {low}-{high}")
    return number


def _cron_field(text: str, label: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    values: set[int] = set()
    for item in text.lower().split(","):
        match = _CRON_ITEM.fullmatch(item)
        if match is None:
            raise ValueError(f"{label} field {text!r} has an invalid part {item!r}")
        first_text, last_text, step_text = match.groups()
        if first_text == "*":
            if last_text is not None:
                raise ValueError(f"{label} field {text!r}: '*' cannot start a range")
            first, last = low, high
        else:
            first = _cron_value(first_text, label, low, high, names)
            if last_text is not None:
                last = _cron_value(last_text, label, low, high, names)
            else:
                last = high if step_text is not None else first
        if first > last:
            raise ValueError(f"{label} range {item!r} runs backwards")
        step = 1 if step_text is None else int(step_text)
        if not 1 <= step <= high - low:
            raise ValueError(f"{label} step {step} in {item!r} is outside 1-{high - low}")
        values.update(range(first, last + 1, step))
    return values


def normalize_cron(expr: str) -> str:
    """Validate a 5-field crontab expression and return it in a portable spelling.

    Fields are checked against their ranges (minute 0-59, hour 0-23, day 1-31, month 1-12 or
    jan-dec, weekday 0-7 or sun-sat, with ``*``, ``a-b``, ``/step`` and lists). Numeric
    weekdays are rewritten as names (``1-5`` -> ``mon-fri``), because APScheduler 3 counts
    weekday 0 as Monday while crontab counts it as Sunday; names mean the same to both.

    :raises ValueError: naming the bad field and the rule.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected {_CRON_FORM}; got {len(fields)} fields in {expr!r}")
    days: set[int] = set()
    for text, (label, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        values = _cron_field(text, label, low, high, names)
        if label == "day of week":
            days = {7 if v == 0 else v for v in values}  # Monday first: mon=1 .. sun=7
    weekday = fields[4]
    if weekday != "*" and ("/" in weekday or any(ch.isdigit() for ch in weekday)):
        fields[4] = _weekday_names(days)
    return " ".join(fields)


def _weekday_names(days: set[int]) -> str:
    if days == set(range(1, 8)):
        return "*"
    names = ("", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
    runs: list[str] = []
    ordered = sorted(days)
    start = prev = ordered[0]
    for day in [*ordered[1:], None]:
        if day is not None and day == prev + 1 and day != 7:
            prev = day
            continue
        runs.append(names[start] if start == prev else f"{names[start]}-{names[prev]}")
        if day is not None:
            start = prev = day
    return ",".join(runs)


# --------------------------------------------------------------------------- selectors


def _check_selector(text: str) -> str:
    """Parse a label selector (a :class:`~watcher.errors.SelectorError` is a ValueError)."""
    from watcher.selectors import parse_selector

    try:
        parse_selector(text)
    except ValueError as exc:
        raise ValueError(f'expected a label selector such as {{namespace="prod"}}: {exc}') from None
    return text.strip()


# --------------------------------------------------------------------------- models


class Deployment(BaseModel):
    """One Pyroscope server (``[pyroscope.deployments.NAME]``).

    Authentication is one of: ``access_command`` (a curl-compatible wrapper that does its own
    auth, exclusive with the rest); HTTP basic (``username``/``password``, wins over
    ``token`` like profilecli); bearer ``token``. Cloudflare Access service-token headers
    (both ``cf_access_client_id`` and ``cf_access_client_secret``) are added whenever set and
    may be combined with basic or bearer auth. ``tenant_id`` is sent as ``X-Scope-OrgID``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str
    token: OptSecret = None
    username: OptStr = None
    password: OptSecret = None
    access_command: OptStr = Field(default=None, repr=False)
    cf_access_client_id: OptStr = None
    cf_access_client_secret: OptSecret = None
    tenant_id: OptStr = None
    #: Seconds; at most a day (far larger values overflow the socket timeout).
    timeout: float = Field(default=30.0, gt=0, le=86400, allow_inf_nan=False)
    verify_tls: bool = True
    ca_file: Path | None = None
    max_response_bytes: int = Field(default=256 * 1024 * 1024, gt=0)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value, "deployment")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        text = _http_url(value)
        parts = urlsplit(text)
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "expected a URL without credentials; use username/password or token instead"
            )
        if parts.query or parts.fragment:
            raise ValueError("expected a base URL without a query string or fragment")
        return text.rstrip("/")

    @field_validator("access_command")
    @classmethod
    def _valid_command(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"expected a command line that splits like a shell's: {exc}") from None
        if not argv:
            raise ValueError("expected a command line, got only spaces")
        return value

    @field_validator("username")
    @classmethod
    def _plain_header_value(cls, value: str | None) -> str | None:
        _no_control(value, "the value")
        return value

    @field_validator("cf_access_client_id", "tenant_id")
    @classmethod
    def _raw_header_value(cls, value: str | None) -> str | None:
        _header_text(value, "the value")
        return value

    @field_validator("password")
    @classmethod
    def _secret_header_value(cls, value: SecretStr | None) -> SecretStr | None:
        _no_control(value.get_secret_value() if value is not None else None, "the secret")
        return value

    @field_validator("token", "cf_access_client_secret")
    @classmethod
    def _raw_secret_header_value(cls, value: SecretStr | None) -> SecretStr | None:
        _header_text(value.get_secret_value() if value is not None else None, "the secret")
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_file():
            raise ValueError(f"expected an existing CA bundle file, got {str(value)!r}")
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _auth_is_consistent(self) -> Deployment:
        has_id = self.cf_access_client_id is not None
        has_secret = self.cf_access_client_secret is not None
        if has_id != has_secret:
            given, missing = (
                ("cf_access_client_id", "cf_access_client_secret")
                if has_id
                else ("cf_access_client_secret", "cf_access_client_id")
            )
            raise _KeyedError(
                "Cloudflare Access needs both cf_access_client_id and cf_access_client_secret; "
                f"{missing} is not set",
                given,
            )
        if self.access_command is not None:
            others = [
                key
                for key in ("token", "username", "password", "cf_access_client_id")
                if getattr(self, key) is not None
            ]
            if others:
                raise _KeyedError(
                    f"access_command cannot be combined with {', '.join(others)}: "
                    "the wrapper authenticates on its own; remove one of them",
                    "access_command",
                )
        return self

    @property
    def auth_kind(self) -> AuthKind:
        """How requests authenticate: the Authorization scheme, or the wrapper.

        ``cf-access`` is reported only when CF Access is the sole mechanism; its headers are
        also sent alongside ``basic`` or ``bearer``.
        """
        return configfile.auth_kind(self)

    def secret_values(self) -> list[str]:
        """Every secret of this deployment in plain text, for redaction only."""
        return configfile.secret_values(self)


class Thresholds(BaseModel):
    """Practical-significance gates and the test level of one watch (detection.md §2.4)."""

    model_config = ConfigDict(frozen=True)

    min_relative_increase: float = 0.005
    min_share_increase: float = 0.0
    min_samples: int = 100
    alpha: float = 0.01


class WatchConfig(BaseModel):
    """One ``[[watcher.watch]]``: which services and profile types to check, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    deployment: str
    services: list[str] = Field(min_length=1)
    #: Full profile type IDs (aliases are resolved at load).
    profile_types: list[str] = Field(default_factory=lambda: [ALIASES["cpu"]], min_length=1)
    selector: OptStr = None
    #: A 5-field crontab expression, normalised by :func:`normalize_cron`.
    schedule: str = "*/15 * * * *"
    window: Duration = timedelta(hours=1)
    #: Negative offsets of the baseline windows from the current one.
    baselines: list[Offset] = Field(
        default_factory=lambda: [timedelta(days=-1), timedelta(days=-6)], min_length=1
    )
    min_relative_increase: float = Field(default=0.005, ge=0)
    min_share_increase: float = Field(default=0.0, ge=0, le=1)
    min_samples: int = Field(default=100, ge=0)
    alpha: float = Field(default=0.01, gt=0, lt=1)
    alerts: list[str] = Field(default_factory=list)
    #: The series label that carries a service's version, for deploy attribution.
    version_label: str = Field(default="version", min_length=1)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value, "watch")

    @field_validator("services")
    @classmethod
    def _valid_services(cls, value: list[str]) -> list[str]:
        for index, service in enumerate(value):
            if not service.strip():
                raise _KeyedError("expected a service name or glob, got an empty string", index)
        return [s.strip() for s in value]

    @field_validator("profile_types")
    @classmethod
    def _resolve_types(cls, value: list[str]) -> list[str]:
        resolved: list[str] = []
        for index, text in enumerate(value):
            try:
                full = resolve_profile_type(text)
            except ValueError as exc:
                raise _KeyedError(str(exc), index) from None
            if full not in resolved:
                resolved.append(full)
        return resolved

    @field_validator("selector")
    @classmethod
    def _valid_selector(cls, value: str | None) -> str | None:
        return None if value is None else _check_selector(value)

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        return normalize_cron(value)

    @field_validator("window")
    @classmethod
    def _positive_window(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a window longer than 0s")
        return value

    @property
    def warnings(self) -> list[str]:
        """What loads but will probably not work as meant (shown by ``config check``, logged
        at daemon start)."""
        out: list[str] = []
        longest = -(PYROSCOPE_DEFAULT_LOOKBACK - 2 * self.window)
        for offset in self.baselines:
            # The previous window's own baseline (persistence) starts one window earlier.
            reach = -offset + 2 * self.window
            if reach > PYROSCOPE_DEFAULT_LOOKBACK:
                out.append(
                    f"watch {self.name!r}: the {format_duration(offset)} baseline reaches "
                    f"{format_duration(reach)} back, past Pyroscope's default query lookback "
                    f"of {format_duration(PYROSCOPE_DEFAULT_LOOKBACK)}; such a baseline comes "
                    "back empty unless the server's -querier.max-query-lookback is longer: "
                    f"raise it, or use an offset of {format_duration(longest)} or less"
                )
        return out

    @property
    def thresholds(self) -> Thresholds:
        """The gates of this watch as one value object."""
        return Thresholds(
            min_relative_increase=self.min_relative_increase,
            min_share_increase=self.min_share_increase,
            min_samples=self.min_samples,
            alpha=self.alpha,
        )


class AlertChannelConfig(BaseModel):
    """One ``[[watcher.alert]]`` channel. ``url`` is a secret (it carries the credential)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["slack", "webhook", "alertmanager"]
    url: SecretStr
    repeat_interval: Duration = timedelta(hours=4)
    send_resolved: bool = True

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value, "alert channel")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: SecretStr) -> SecretStr:
        _http_url(value.get_secret_value(), secret=True)
        return value

    @field_validator("repeat_interval")
    @classmethod
    def _positive_interval(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected an interval longer than 0s")
        return value


def _default_database_secret() -> SecretStr:
    ctx = _CONTEXT.get()
    return SecretStr(default_database_url(ctx.env if ctx is not None else None))


class WatcherSettings(BaseModel):
    """The ``[watcher]`` section: the daemon, its store, watches and alert channels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: SQLAlchemy URL; a secret because a PostgreSQL URL may hold a password.
    database_url: SecretStr = Field(default_factory=_default_database_secret)
    listen: str = "127.0.0.1:9465"
    public_url: OptStr = None
    pyroscope_ui_url: OptStr = None
    #: Grafana base URL: alert links open Grafana Profiles Drilldown there.
    grafana_url: OptStr = None
    #: UID of the Pyroscope data source in Grafana (default: Grafana's choice).
    grafana_datasource_uid: OptStr = None
    concurrency: int = Field(default=32, ge=1)
    retention: Duration = timedelta(days=30)
    sample_rate_hz: float = Field(default=100.0, gt=0, allow_inf_nan=False)
    max_nodes: int = Field(default=65536, ge=1)
    watch: list[WatchConfig] = Field(default_factory=list)
    alert: list[AlertChannelConfig] = Field(default_factory=list)

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: SecretStr) -> SecretStr:
        if "://" not in value.get_secret_value():
            raise ValueError("expected an SQLAlchemy URL such as sqlite:///path/to/pyrowatch.db")
        return value

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        _split_listen(value)
        return value

    @field_validator("public_url", "pyroscope_ui_url", "grafana_url")
    @classmethod
    def _valid_urls(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value).rstrip("/")

    @field_validator("grafana_datasource_uid")
    @classmethod
    def _valid_datasource_uid(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value):
            raise ValueError(
                "expected a Grafana data source UID (up to 40 letters, digits, '-' and '_'), "
                f"got {value!r}"
            )
        if info.data.get("grafana_url", "") is None:
            raise ValueError("set grafana_url too: the data source UID is only used in its links")
        return value

    @field_validator("retention")
    @classmethod
    def _positive_retention(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a retention longer than 0s")
        return value

    @model_validator(mode="after")
    def _names_and_references(self) -> WatcherSettings:
        _unique([w.name for w in self.watch], "watch", "watch")
        _unique([a.name for a in self.alert], "alert", "alert channel")
        channels = [a.name for a in self.alert]
        for index, watch in enumerate(self.watch):
            for position, alert in enumerate(watch.alerts):
                if alert not in channels:
                    known = ", ".join(channels) if channels else "none are configured"
                    raise _KeyedError(
                        f"unknown alert channel {alert!r}; [[watcher.alert]] names: {known}",
                        "watch",
                        index,
                        "alerts",
                        position,
                    )
        return self

    @property
    def listen_host(self) -> str:
        """The host part of ``listen`` (brackets of an IPv6 address removed)."""
        return _split_listen(self.listen)[0]

    @property
    def listen_port(self) -> int:
        """The port part of ``listen``."""
        return _split_listen(self.listen)[1]


def _split_listen(value: str) -> tuple[str, int]:
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]*):(\d{1,5})", value.strip())
    if match is None or int(match.group(2)) > 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9465, got {value!r}")
    return match.group(1).strip("[]"), int(match.group(2))


def _unique(names: list[str], key: str, what: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise _KeyedError(f"duplicate {what} name {name!r}", key, index, "name")
        seen.add(name)


# --------------------------------------------------------------------------- loading


@dataclass
class _LoadContext:
    """What one load reads: the environment, the file and its reshaped contents."""

    env: Mapping[str, str]
    file: Path | None = None
    data: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    #: Location prefix in the settings model -> the environment variable that set it.
    origins: dict[tuple[str | int, ...], str] = field(default_factory=dict)
    #: Deployments only the environment defines: name -> the <NAME> part of the variables.
    env_deployments: dict[str, str] = field(default_factory=dict)

    @classmethod
    def discover(cls, explicit: str | None, env: Mapping[str, str]) -> _LoadContext:
        ctx = cls(env=env, file=find_config_file(explicit, env))
        if ctx.file is not None:
            ctx.data = _read_file(ctx.file)
        ctx.overrides = _env_overrides(
            env, ctx.data.get("deployments", {}), ctx.origins, ctx.env_deployments
        )
        return ctx


_CONTEXT: contextvars.ContextVar[_LoadContext | None] = contextvars.ContextVar(
    "pyrowatch_config_load", default=None
)


def _read_file(path: Path) -> dict[str, Any]:
    """Read and reshape the TOML file into the shape of :class:`Settings`."""
    where = str(path)
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=where) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", path=where) from None

    for key in raw:
        if key in ("pyroscope", "watcher"):
            continue
        near = difflib.get_close_matches(key, ["pyroscope", "watcher"], n=1, cutoff=0.75)
        if near:
            raise ConfigError(f"unknown table (did you mean [{near[0]}]?)", path=where, key=key)

    data: dict[str, Any] = {"path": str(path)}
    pyroscope = raw.get("pyroscope", {})
    if not isinstance(pyroscope, dict):
        raise ConfigError("expected a table", path=where, key="pyroscope")
    for key in pyroscope:
        if key != "deployments":
            raise ConfigError(
                f"unknown key {_suggest(key, ['deployments'])}", path=where, key=f"pyroscope.{key}"
            )
    deployments = pyroscope.get("deployments", {})
    if not isinstance(deployments, dict):
        raise ConfigError(
            "expected tables [pyroscope.deployments.NAME]", path=where, key="pyroscope.deployments"
        )
    shaped: dict[str, Any] = {}
    for name, table in deployments.items():
        dotted = f"pyroscope.deployments.{name}"
        if not isinstance(table, dict):
            raise ConfigError("expected a table", path=where, key=dotted)
        if "name" in table:
            raise ConfigError(
                "unknown key: the deployment's name is the table name",
                path=where,
                key=f"{dotted}.name",
            )
        entry = {"name": name, **table}
        ca_file = entry.get("ca_file")
        if isinstance(ca_file, str) and ca_file and not ca_file.startswith("~"):
            if not Path(ca_file).is_absolute():
                entry["ca_file"] = str(path.parent / ca_file)
        shaped[name] = entry
    data["deployments"] = shaped
    if "watcher" in raw:
        data["watcher"] = raw["watcher"]
    return data


def _normal(name: str) -> str:
    return name.lower().replace("-", "_")


def _env_overrides(
    env: Mapping[str, str],
    file_deployments: Mapping[str, Any],
    origins: dict[tuple[str | int, ...], str],
    env_deployments: dict[str, str],
) -> dict[str, Any]:
    """The nested overrides of ``PYROWATCH_DEPLOYMENTS__*`` and ``PYROWATCH_WATCHER__*``."""
    by_normal = {_normal(name): name for name in file_deployments}
    deployments: dict[str, dict[str, Any]] = {}
    watcher: dict[str, Any] = {}
    for var in sorted(env):
        upper = var.upper()
        value = env[var]
        if upper.startswith(DEPLOYMENT_ENV):
            parts = var[len(DEPLOYMENT_ENV) :].split("__")
            if len(parts) != 2 or not all(parts):
                raise ConfigError(
                    "expected PYROWATCH_DEPLOYMENTS__<NAME>__<KEY>, e.g. "
                    "PYROWATCH_DEPLOYMENTS__PROD__TOKEN",
                    key=var,
                )
            raw_name, raw_key = parts
            name = by_normal.get(_normal(raw_name))
            if name is None:
                name = raw_name.lower()
                env_deployments[name] = raw_name
            key = raw_key.lower()
            entry = deployments.setdefault(name, {"name": name})
            entry[key] = value
            origins[("deployments", name, key)] = var
        elif upper.startswith(WATCHER_ENV):
            key = var[len(WATCHER_ENV) :].lower()
            if not key or "__" in key:
                raise ConfigError(
                    "expected PYROWATCH_WATCHER__<KEY>, e.g. PYROWATCH_WATCHER__CONCURRENCY",
                    key=var,
                )
            parsed: Any = value
            if key in ("watch", "alert"):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    raise ConfigError("expected a JSON list of tables", key=var) from None
            watcher[key] = parsed
            origins[("watcher", key)] = var
    overrides: dict[str, Any] = {}
    if deployments:
        overrides["deployments"] = deployments
    if watcher:
        overrides["watcher"] = watcher
    return overrides


class _FileSource(PydanticBaseSettingsSource):
    """The TOML file, reshaped (``[pyroscope.deployments]`` -> ``deployments``)."""

    def __init__(self, settings_cls: type[BaseSettings], ctx: _LoadContext) -> None:
        super().__init__(settings_cls)
        self._ctx = ctx

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._ctx.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._ctx.data)


class _EnvOverrideSource(PydanticBaseSettingsSource):
    """``PYROWATCH_DEPLOYMENTS__<NAME>__<KEY>`` and ``PYROWATCH_WATCHER__<KEY>``."""

    def __init__(self, settings_cls: type[BaseSettings], ctx: _LoadContext) -> None:
        super().__init__(settings_cls)
        self._ctx = ctx

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._ctx.overrides.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._ctx.overrides)


class Settings(BaseSettings):
    """Everything pyrowatch is configured with. Build it with :func:`load_settings`.

    Sources, highest first: keyword arguments, the environment overrides, the TOML file.
    ``Settings()`` on its own reads ``os.environ`` and the default search order.
    """

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    deployments: dict[str, Deployment] = Field(default_factory=dict)
    watcher: WatcherSettings = Field(default_factory=WatcherSettings)
    #: The file the settings were read from, if any.
    path: Path | None = None

    def __init__(self, **values: Any) -> None:
        ctx = _CONTEXT.get()
        token = None
        if ctx is None:
            ctx = _LoadContext.discover(None, os.environ)
            token = _CONTEXT.set(ctx)
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _config_error(exc, ctx) from None
        finally:
            if token is not None:
                _CONTEXT.reset(token)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        ctx = _CONTEXT.get()
        if ctx is None:  # pragma: no cover - __init__ always sets one
            ctx = _LoadContext.discover(None, os.environ)
        return (
            init_settings,
            _EnvOverrideSource(settings_cls, ctx),
            _FileSource(settings_cls, ctx),
        )

    @field_validator("deployments")
    @classmethod
    def _names_match_keys(cls, value: dict[str, Deployment]) -> dict[str, Deployment]:
        for key, deployment in value.items():
            if deployment.name != key:
                raise _KeyedError(f"the deployment's name must be {key!r}", key, "name")
        return value

    @model_validator(mode="after")
    def _watches_use_known_deployments(self) -> Settings:
        for index, watch in enumerate(self.watcher.watch):
            if watch.deployment not in self.deployments:
                known = ", ".join(sorted(self.deployments)) or "none are configured"
                raise _KeyedError(
                    f"unknown deployment {watch.deployment!r}; [pyroscope.deployments] "
                    f"names: {known}",
                    "watcher",
                    "watch",
                    index,
                    "deployment",
                )
        return self

    def deployment(self, name: str) -> Deployment:
        """The deployment called ``name``.

        :raises ConfigError: listing the configured deployments when there is none by that name.
        """
        found = self.deployments.get(name)
        if found is not None:
            return found
        where = str(self.path) if self.path else None
        if not self.deployments:
            hint = (
                "no deployments are configured; add a [pyroscope.deployments.NAME] table"
                if where
                else "no config file found; create ~/.config/pyrowatch/config.toml with a "
                "[pyroscope.deployments.NAME] table"
            )
            raise ConfigError(f"unknown deployment {name!r}: {hint}", path=where)
        names = sorted(self.deployments)
        near = difflib.get_close_matches(name, names, n=1)
        mean = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(
            f"unknown deployment {name!r}{mean}; configured: {', '.join(names)}", path=where
        )

    def secret_values(self) -> list[str]:
        """Every configured secret in plain text, for last-resort redaction of messages."""
        values: list[str] = []
        for dep in self.deployments.values():
            values.extend(dep.secret_values())
        for alert in self.watcher.alert:
            url = alert.url.get_secret_value()
            values.append(url)
            # A webhook's credential is its path (Slack's /services/T/B/token): it shows on
            # its own in a relative redirect or a receiver's error. Only a path with a
            # token-like part (16 characters or more) counts: masking a short one such as
            # /api/v2/alerts or /a would garble every message that mentions it.
            path = urlsplit(url).path.rstrip("/")
            if any(len(part) >= _TOKEN_LIKE for part in path.split("/")):
                values.append(path)
        values.append(self.watcher.database_url.get_secret_value())
        return [v for v in values if v]


def load_settings(path: str | None = None, *, env: Mapping[str, str] | None = None) -> Settings:
    """Find, read and validate the configuration (see the module docstring).

    :param path: ``--config``; must exist when given.
    :param env: the environment to read (default ``os.environ``).
    :raises ConfigError: one line naming the file or variable, the key and the expectation.
    """
    ctx = _LoadContext.discover(path, os.environ if env is None else env)
    token = _CONTEXT.set(ctx)
    try:
        return Settings()
    finally:
        _CONTEXT.reset(token)


# --------------------------------------------------------------------------- error messages


_MODEL_AT: dict[str, type[BaseModel]] = {
    "deployments": Deployment,
    "watcher": WatcherSettings,
    "watch": WatchConfig,
    "alert": AlertChannelConfig,
}


def _suggest(key: str, known: list[str]) -> str:
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if near:
        return f"{key!r} (did you mean {near[0]!r}?)"
    return f"{key!r}; known keys: {', '.join(known)}"


def _dotted(loc: tuple[str | int, ...]) -> str:
    parts: list[str] = []
    for index, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
            continue
        if index == 0 and item == "deployments":
            item = "pyroscope.deployments"
        parts.append(("." if parts else "") + item)
    return "".join(parts)


def _parent_model(loc: tuple[str | int, ...]) -> type[BaseModel]:
    """The model whose field ``loc[-1]`` is (for unknown-key suggestions)."""
    parent = loc[:-1]
    if parent[:1] == ("deployments",) and len(parent) == 2:
        return Deployment
    named = [p for p in parent if isinstance(p, str)]
    if named:
        return _MODEL_AT.get(named[-1], Settings)
    return Settings


def _is_secret(loc: tuple[str | int, ...]) -> bool:
    names = [p for p in loc if isinstance(p, str)]
    if any(n in _SECRET_KEYS for n in names):
        return True
    return "alert" in names and names[-1:] == ["url"]


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _expectation(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind == "missing":
        return "required key is missing"
    if kind in ("string_type", "string_sub_type"):
        return "expected a string"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "expected an integer"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "expected a number"
    if kind in ("bool_parsing", "bool_type"):
        return "expected true or false"
    if kind in ("list_type", "tuple_type"):
        return "expected a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a table"
    if kind == "path_type":
        return "expected a file path"
    if kind == "greater_than":
        return f"expected a value greater than {_number(ctx.get('gt'))}"
    if kind == "greater_than_equal":
        return f"expected a value of at least {_number(ctx.get('ge'))}"
    if kind == "less_than":
        return f"expected a value less than {_number(ctx.get('lt'))}"
    if kind == "less_than_equal":
        return f"expected a value of at most {_number(ctx.get('le'))}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} item(s)"
    return str(error.get("msg", "invalid value"))


def _config_error(exc: ValidationError, ctx: _LoadContext) -> ConfigError:
    """One line for the first problem of ``exc``: where, which key, what is expected."""
    errors = exc.errors()
    first = errors[0]
    loc: tuple[str | int, ...] = tuple(first["loc"])
    error_obj = (first.get("ctx") or {}).get("error")
    if isinstance(error_obj, _KeyedError):
        loc = loc + error_obj.loc
    kind = first["type"]

    if kind == "extra_forbidden":
        known = [
            str(k)
            for k in _parent_model(loc).model_fields
            if k != "name" or loc[0] != "deployments"
        ]
        message = f"unknown key {_suggest(str(loc[-1]), known)}"
    else:
        message = _expectation(first)
        value = first.get("input")
        if (
            kind not in ("missing", "value_error")
            and not _is_secret(loc)
            and isinstance(value, str | int | float | bool)
            and len(repr(value)) <= 60
        ):
            message += f", got {value!r}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    message = " ".join(message.split())

    origin = _origin(loc, ctx)
    if origin is not None:
        return ConfigError(message, key=origin)
    return ConfigError(
        message, path=str(ctx.file) if ctx.file is not None else None, key=_dotted(loc)
    )


def _origin(loc: tuple[str | int, ...], ctx: _LoadContext) -> str | None:
    """The environment variable that supplied the value at ``loc``, if one did."""
    for size in range(len(loc), 0, -1):
        var = ctx.origins.get(loc[:size])
        if var is not None:
            return var
    if len(loc) >= 2 and loc[0] == "deployments" and loc[1] in ctx.env_deployments:
        var = f"{DEPLOYMENT_ENV}{ctx.env_deployments[str(loc[1])]}"
        return f"{var}__{str(loc[2]).upper()}" if len(loc) > 2 else var
    return None
