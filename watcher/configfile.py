"""Where the configuration file is, and facts about a deployment that need no validation.

Standard library only: the command line's quick path (``watcher.cli._quickconfig``) and
the full loader (``watcher.config``) share these, so the search order, the secret list,
the override prefixes and the name pattern have one definition.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Protocol

from watcher.errors import ConfigError

AuthKind = Literal["none", "bearer", "basic", "cf-access", "access-command"]

#: Environment variables that override one deployment key, or one ``[watcher]`` key.
DEPLOYMENT_ENV = "PYROWATCH_DEPLOYMENTS__"
WATCHER_ENV = "PYROWATCH_WATCHER__"
#: What a deployment, watch or alert channel name may look like.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


class _Secret(Protocol):
    def get_secret_value(self) -> str: ...


class DeploymentFacts(Protocol):
    """The attributes of a deployment that :func:`auth_kind` and :func:`secret_values` read."""

    @property
    def access_command(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> _Secret | None: ...
    @property
    def token(self) -> _Secret | None: ...
    @property
    def cf_access_client_id(self) -> str | None: ...
    @property
    def cf_access_client_secret(self) -> _Secret | None: ...


def home(env: Mapping[str, str]) -> Path:
    """``$HOME``, else the user's home directory."""
    value = env.get("HOME")
    return Path(value) if value else Path.home()


def expand(path: str, env: Mapping[str, str]) -> Path:
    """``~`` and ``~/...`` against ``$HOME`` of ``env``."""
    if path == "~" or path.startswith("~/"):
        return home(env) / path[2:]
    return Path(path)


def find_config_file(explicit: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file to read, following the search order of ``watcher.config``.

    :raises ConfigError: when ``explicit`` is given and does not exist.
    """
    env = os.environ if env is None else env
    if explicit:
        path = expand(explicit, env)
        if not path.is_file():
            raise ConfigError("config file not found (given with --config)", path=str(path))
        return path
    candidates: list[Path] = []
    if env.get("PYROWATCH_CONFIG"):
        candidates.append(expand(env["PYROWATCH_CONFIG"], env))
    candidates.append(home(env) / ".config" / "pyrowatch" / "config.toml")
    if env.get("SRE_CONFIG"):
        candidates.append(expand(env["SRE_CONFIG"], env))
    sre_dir = env.get("SRE_CONFIG_DIR") or "~/.config/axiom-sre"
    candidates.append(expand(sre_dir, env) / "config.toml")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def default_database_url(env: Mapping[str, str] | None = None) -> str:
    """``sqlite:///$XDG_DATA_HOME/pyrowatch/pyrowatch.db`` (``~/.local/share`` by default).

    The directory is not created here.
    """
    env = os.environ if env is None else env
    data_home = env.get("XDG_DATA_HOME", "")
    if not data_home or not Path(data_home).is_absolute():
        data_home = str(home(env) / ".local" / "share")
    return f"sqlite:///{Path(data_home) / 'pyrowatch' / 'pyrowatch.db'}"


def auth_kind(dep: DeploymentFacts) -> AuthKind:
    """``access-command``, ``basic`` (wins over a token), ``bearer``, ``cf-access`` or ``none``.

    ``cf-access`` is reported only when CF Access is the sole mechanism; its headers are
    also sent alongside ``basic`` or ``bearer``.
    """
    if dep.access_command is not None:
        return "access-command"
    if dep.username is not None or dep.password is not None:
        return "basic"
    if dep.token is not None:
        return "bearer"
    if dep.cf_access_client_id is not None:
        return "cf-access"
    return "none"


def secret_values(dep: DeploymentFacts) -> list[str]:
    """Every secret of a deployment in plain text, for redaction only."""
    values = [
        s.get_secret_value()
        for s in (dep.token, dep.password, dep.cf_access_client_secret)
        if s is not None
    ]
    return [v for v in values if v]
