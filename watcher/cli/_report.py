"""How a command ends: one-line errors, exit codes, a reader that went away.

Click-free, so the fast path (``watcher.cli.fastpath``) and click's
(``watcher.cli._core.run_command``) end a command the same way, byte for byte: 0 success,
1 runtime error, 2 usage error (click's), 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

from watcher.errors import WatcherError

if TYPE_CHECKING:
    from watcher.cli._session import CliState

__all__ = ["echo_error", "finish", "hint", "report_error", "silence_stdout"]


def echo_error(message: str, state: CliState) -> None:
    """``error: message`` on stderr: one line, secrets removed, red on a terminal."""
    from watcher.redact import redact

    pal = state.palette(sys.stderr)
    text = redact(message, state.secrets())
    # one line: collapse any newline a library message might carry
    text = " ".join(text.split())
    sys.stderr.write(f"{pal.style('error:', 'bold', 'red')} {text}\n")
    sys.stderr.flush()


def report_error(exc: Exception, state: CliState) -> int:
    """Report an error a command raised (not a usage error); its exit code."""
    if isinstance(exc, WatcherError):
        if state.debug:
            _print_traceback(state)
        echo_error(f"{exc}{hint(exc)}", state)
        return exc.exit_code
    if state.debug:
        _print_traceback(state)
        echo_error(f"unexpected {type(exc).__name__}: {exc}", state)
    else:
        echo_error(
            f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            state,
        )
    return 1


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
    import traceback

    from watcher.redact import redact

    sys.stderr.write(redact(traceback.format_exc(), state.secrets()))


def silence_stdout() -> None:
    """The reader went away (``| head``): send what is left of stdout nowhere."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def finish(code: int, *, quick: bool = False) -> NoReturn:
    """Flush stdout (quietly if its reader went away) and exit with ``code``.

    ``quick`` (a console script's read-only query, which holds nothing but stdout and
    stderr) ends the process right after flushing them, skipping the interpreter's
    teardown: freeing every object of a large flame graph one by one takes longer than
    the process exit that frees them at once (~8 ms of a 16k-node query).
    """
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    if quick:
        import os

        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(code)
    sys.exit(code)
