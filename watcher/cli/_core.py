"""CLI machinery: per-process state, global options, the lazy group and the error handler.

Every entry point (``pyrowatch`` and each ``pyroscope-*``) goes through :func:`run_command`,
so there is exactly one place that turns exceptions into a one-line ``error: ...`` and an
exit code: 0 success, 1 runtime error, 2 usage error.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from watcher.cli import LazyCommand
from watcher.cli._report import echo_error, finish, report_error, silence_stdout
from watcher.cli._session import CliState

__all__ = [
    "CliState",
    "LazyCommand",
    "LazyGroup",
    "global_options",
    "load_command",
    "redact",
    "run_command",
    "state_of",
]

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- state


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
    """Run a click command as a program: one-line errors, exit 0/1/2, no stray tracebacks.

    Errors a command raises are reported by ``watcher.cli._report``, as on the fast path.
    """
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
        echo_error(exc.format_message().rstrip(".") + _usage_hint(exc), state)
        code = 2
    except click.ClickException as exc:
        echo_error(exc.format_message(), state)
        code = exc.exit_code
    except click.Abort:
        echo_error("interrupted", state)
        code = 130
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly
        silence_stdout()
        code = 0
    except Exception as exc:  # the one place unexpected errors are reported
        code = report_error(exc, state)
    finish(code)
