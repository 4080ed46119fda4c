"""The quick configuration path: one deployment read without the validation models.

A query command needs one deployment. Validating the configuration with its pydantic
models costs more than the rest of the command (importing pydantic and pydantic-settings
and building the models), so a plain file is read here instead: the same search order,
deployment tables whose keys and values are all of the simple, unambiguous kinds below,
no [watcher] table and no PYROWATCH_DEPLOYMENTS__/PYROWATCH_WATCHER__ variables. Whatever
else the file holds, and every problem, is left to watcher.config (quick_deployment returns
None), so results and error messages are those of the full load. tests/test_startup.py
checks both paths agree.

Standard library only: the command line's fast path imports it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from watcher.configfile import (
    DEPLOYMENT_ENV,
    NAME_PATTERN,
    WATCHER_ENV,
    default_database_url,
    find_config_file,
)
from watcher.configfile import auth_kind as _auth_kind
from watcher.configfile import secret_values as _secret_values
from watcher.errors import ConfigError

__all__ = ["QUICK_KEYS", "QuickDeployment", "QuickSecret", "quick_deployment"]

#: Deployment keys the quick path reads; any other key leaves the file to watcher.config.
_FIELDS = (
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
)
QUICK_KEYS = frozenset(_FIELDS)
_QUICK_NAME = re.compile(NAME_PATTERN)
_QUICK_ENV = (DEPLOYMENT_ENV, WATCHER_ENV)


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


class QuickDeployment:
    """A deployment read by :func:`quick_deployment`, with the fields of ``Deployment``.

    Treat it as read-only once built. Its repr leaves out ``access_command`` (it may hold
    a credential); secrets show as ``QuickSecret('**********')``.
    """

    __slots__ = ("name", *_FIELDS)

    def __init__(
        self,
        name: str,
        url: str,
        token: QuickSecret | None = None,
        username: str | None = None,
        password: QuickSecret | None = None,
        access_command: str | None = None,
        cf_access_client_id: str | None = None,
        cf_access_client_secret: QuickSecret | None = None,
        tenant_id: str | None = None,
        timeout: float = 30.0,
        verify_tls: bool = True,
        ca_file: Path | None = None,
        max_response_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.name = name
        self.url = url
        self.token = token
        self.username = username
        self.password = password
        self.access_command = access_command
        self.cf_access_client_id = cf_access_client_id
        self.cf_access_client_secret = cf_access_client_secret
        self.tenant_id = tenant_id
        self.timeout = timeout
        self.verify_tls = verify_tls
        self.ca_file = ca_file
        self.max_response_bytes = max_response_bytes

    def __repr__(self) -> str:
        shown = (k for k in self.__slots__ if k != "access_command")
        return f"QuickDeployment({', '.join(f'{k}={getattr(self, k)!r}' for k in shown)})"

    @property
    def auth_kind(self) -> str:
        """As ``Deployment.auth_kind``."""
        return _auth_kind(self)

    def secret_values(self) -> list[str]:
        """As ``Deployment.secret_values``."""
        return _secret_values(self)


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
    secrets.append(default_database_url(env))
    return found, [v for v in secrets if v]


def _quick_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """The file ``watcher.config`` would read; None when there is none or ``--config`` is wrong."""
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
