"""CLI machinery: per-process state, global options, the lazy group and the error handler.

Every entry point (``pyrowatch`` and each ``pyroscope-*``) goes through :func:`run_command`,
so there is exactly one place that turns exceptions into a one-line ``error: ...`` and an
exit code: 0 success, 1 runtime error, 2 usage error.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from watcher.cli.output import Palette, use_color
from watcher.errors import WatcherError

if TYPE_CHECKING:
    from watcher.config import Settings
    from watcher.querier.auth import DeploymentLike

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- state


@dataclass
class CliState:
    """What the global options set; shared by a group and its subcommands via ``ctx.obj``."""

    config: str | None = None
    debug: bool = False
    no_color: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    #: The secrets of a configuration read by the quick path (no :class:`Settings`).
    _quick_secrets: list[str] = field(default_factory=list, repr=False)

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

            from watcher.cli._common import quick_deployment

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


def state_of(ctx: click.Context) -> CliState:
    """The :class:`CliState` of this invocation (created when a command runs on its own)."""
    return ctx.ensure_object(CliState)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Remove credentials from a message: known secret values, URL userinfo, auth headers."""
    from watcher.redact import redact as _redact

    return _redact(text, secrets)


# --------------------------------------------------------------------------- global options


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        state_of(ctx).config = value


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        state = state_of(ctx)
        if not state.debug:
            state.debug = True
            _enable_debug_logging(state)


def _enable_debug_logging(state: CliState) -> None:
    """Debug logs of every library to stderr, with secrets removed."""
    import logging

    class RedactingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record), state.secrets())

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("debug: %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)


def _set_no_color(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        state_of(ctx).no_color = True


def global_options(func: F) -> F:
    """``--config``, ``--debug`` and ``--no-color``: accepted before or after the command."""
    func = click.option(
        "--no-color",
        is_flag=True,
        expose_value=False,
        callback=_set_no_color,
        help="Never colour output (also NO_COLOR=1; colour is only used on a terminal).",
    )(func)
    func = click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        callback=_set_debug,
        help="Show tracebacks and debug logs.",
    )(func)
    func = click.option(
        "--config",
        metavar="FILE",
        expose_value=False,
        callback=_set_config,
        help="Config file (default: $PYROWATCH_CONFIG, ~/.config/pyrowatch/config.toml, "
        "then the SRE toolkit's config).",
    )(func)
    return func


# --------------------------------------------------------------------------- lazy group


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A command known by its import path (``module:attribute``) and one-line help."""

    target: str
    help: str


class LazyGroup(click.Group):
    """A group whose commands are imported only when invoked (or when completing them).

    ``pyrowatch --help`` lists commands from the registry's help strings, so showing help
    imports no command module at all.
    """

    def __init__(self, *args: Any, lazy: dict[str, LazyCommand] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.lazy: dict[str, LazyCommand] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            return load_command(self.lazy[cmd_name].target)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name].help))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        run_command(self, args, prog_name=prog_name, complete_var=complete_var, **extra)


def load_command(target: str) -> click.Command:
    """Import ``module:attribute`` and return the click command it names."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    command = getattr(module, attr)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command")
    return command


# --------------------------------------------------------------------------- error handler


def _echo_error(message: str, state: CliState) -> None:
    pal = state.palette(sys.stderr)
    text = redact(message, state.secrets())
    # one line: collapse any newline a library message might carry
    text = " ".join(text.split())
    click.echo(f"{pal.style('error:', 'bold', 'red')} {text}", err=True)


def _usage_hint(exc: click.UsageError) -> str:
    ctx = exc.ctx
    if ctx is None:
        return ""
    return f" (see '{ctx.command_path} --help')"


def run_command(
    command: click.Command,
    args: Sequence[str] | None = None,
    *,
    prog_name: str | None = None,
    complete_var: str | None = None,
    **extra: Any,
) -> NoReturn:
    """Run a click command as a program: one-line errors, exit 0/1/2, no stray tracebacks."""
    state = CliState()
    extra.setdefault("obj", state)
    code = 0
    try:
        rv = click.Command.main(
            command, args, prog_name, complete_var, standalone_mode=False, **extra
        )
        if isinstance(rv, int) and not isinstance(rv, bool):
            code = rv
    except click.UsageError as exc:
        _echo_error(exc.format_message().rstrip(".") + _usage_hint(exc), state)
        code = 2
    except click.ClickException as exc:
        _echo_error(exc.format_message(), state)
        code = exc.exit_code
    except click.Abort:
        _echo_error("interrupted", state)
        code = 130
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly
        _silence_stdout()
        code = 0
    except WatcherError as exc:
        if state.debug:
            _print_traceback(state)
        _echo_error(f"{exc}{hint(exc)}", state)
        code = exc.exit_code
    except Exception as exc:  # the one place unexpected errors are reported
        if state.debug:
            _print_traceback(state)
            _echo_error(f"unexpected {type(exc).__name__}: {exc}", state)
        else:
            _echo_error(
                f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                state,
            )
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(code)


def hint(exc: WatcherError) -> str:
    """What to do next, for the errors where the message alone does not say it."""
    from watcher.errors import QuerierResponseError, QuerierUnavailable

    if isinstance(exc, QuerierResponseError):
        if exc.code == "unauthenticated" and "org id" in exc.message:
            return " (set tenant_id for this deployment in the config)"
        if exc.code == "unauthenticated":
            return " (check this deployment's credentials: pyrowatch config)"
        if exc.code == "permission_denied":
            return " (the credentials are valid but not allowed to read profiles)"
        if exc.code == "invalid_argument" and "exceeds the limit" in exc.message:
            return " (use a shorter --range)"
    if isinstance(exc, QuerierUnavailable):
        return " (check the deployment's url with `pyrowatch config`, and the network)"
    return ""


def _print_traceback(state: CliState) -> None:
    text = traceback.format_exc()
    sys.stderr.write(redact(text, state.secrets()))


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
