"""What a query command holds while it runs: its state, its deployment and a client.

Click-free: the fast path (``watcher.cli.fastpath``) and the click commands share it.
Library modules are imported inside functions, never at module level.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from watcher.cli.output import Palette, progress, short_duration, use_color, utc_iso

if TYPE_CHECKING:
    from watcher.config import Settings
    from watcher.querier import QuerierClient, RetryEvent
    from watcher.querier.auth import DeploymentLike
    from watcher.selectors import Matcher
    from watcher.times import TimeRange

__all__ = [
    "CliState",
    "Session",
    "echo",
    "note",
    "open_session",
    "resolve_window",
    "service_selector",
    "window_json",
    "window_text",
]


class CliState:
    """What the global options set (``--config``, ``--debug``, ``--no-color``); shared by a
    group and its subcommands via click's ``ctx.obj``, or built by the fast path."""

    __slots__ = ("config", "debug", "no_color", "_settings", "_quick_secrets")

    def __init__(
        self,
        config: str | None = None,
        debug: bool = False,
        no_color: bool = False,
        _settings: Settings | None = None,
        _quick_secrets: list[str] | None = None,
    ) -> None:
        self.config = config
        self.debug = debug
        self.no_color = no_color
        self._settings = _settings
        #: The secrets of a configuration read by the quick path (no :class:`Settings`).
        self._quick_secrets: list[str] = [] if _quick_secrets is None else _quick_secrets

    def __repr__(self) -> str:
        return f"CliState(config={self.config!r}, debug={self.debug!r}, no_color={self.no_color!r})"

    def palette(self, stream: Any = None) -> Palette:
        """Colour helpers for ``stream`` (stdout by default)."""
        return Palette(use_color(stream or sys.stdout, no_color=self.no_color))

    def settings(self) -> Settings:
        """The configuration, loaded once (``--config``, then the documented search order)."""
        if self._settings is None:
            from watcher.config import load_settings

            self._settings = load_settings(self.config)
        return self._settings

    def use_settings(self, settings: Settings) -> None:
        """Use settings loaded elsewhere (``config check FILE``)."""
        self._settings = settings

    def deployment(self, name: str) -> DeploymentLike:
        """The deployment a query command talks to.

        A plain configuration (deployment tables only, no environment overrides) is read
        without the validation models, which take longer to import than the rest of a
        query; anything else, and every problem, goes through :meth:`settings`, so the
        result and the error messages are the same either way.
        """
        if self._settings is None:
            import os

            from watcher.cli._quickconfig import quick_deployment

            quick = quick_deployment(self.config, name, os.environ)
            if quick is not None:
                deployment, self._quick_secrets = quick
                return deployment
        return self.settings().deployment(name)

    def secrets(self) -> list[str]:
        """Every secret value of the loaded configuration, for last-resort redaction."""
        if self._settings is None:
            return list(self._quick_secrets)
        return self._settings.secret_values()


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


class Session:
    """A deployment and an open client for one command."""

    __slots__ = ("name", "client", "state")

    def __init__(self, name: str, client: QuerierClient, state: CliState) -> None:
        self.name = name
        self.client = client
        self.state = state

    def __repr__(self) -> str:
        return f"Session(name={self.name!r}, client={self.client!r}, state={self.state!r})"

    def progress(self, what: str) -> Any:
        """Progress on a terminal's stderr while ``what`` runs."""
        return progress(f"{what} from {self.name}")


@contextmanager
def open_session(state: CliState, deployment: str) -> Iterator[Session]:
    """Load the config, find ``deployment`` and open a Querier client to it."""
    from watcher.querier import QuerierClient
    from watcher.redact import redact

    dep = state.deployment(deployment)

    def on_retry(event: RetryEvent) -> None:
        # progress, not a result: only where a person watches (a terminal) or with --debug
        if state.debug or sys.stderr.isatty():
            note(f"retrying {redact(str(event), state.secrets())}")

    # a command makes a few requests and exits: plain sockets (http://) or http.client
    # (https://), which import in a fraction of httpx's time (a proxy set in the environment,
    # or access_command, still gets its way)
    with QuerierClient(dep, on_retry=on_retry, http="socket") as client:
        yield Session(deployment, client, state)


def echo(text: str = "") -> None:
    """A line to stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """A diagnostic line to stderr."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
