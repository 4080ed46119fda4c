"""Exit codes, one-line errors, colour rules and redaction, end to end."""

from __future__ import annotations

import re
import socket

import pytest

from .support import SECOND, Env

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _one_line_error(err: str) -> None:
    assert err.startswith("error: "), err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_unknown_deployment_lists_the_configured_ones(env: Env) -> None:
    """Exit 1, one line naming the deployments that exist."""
    r = env.run("pyroscope-services", "prdo")
    assert r.code == 1, r
    _one_line_error(r.err)
    assert "prod" in r.err and "staging" in r.err and "'prdo'" in r.err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["pyrowatch", "flamegraph", "prod", "svc", "--range", "5x"], "duration"),
        (["pyrowatch", "flamegraph", "prod", "svc", "--start", "yesterday-ish"], "time"),
        (["pyrowatch", "flamegraph", "prod", "svc", "--label", "novalue"], "--label"),
        (["pyrowatch", "flamegraph", "prod", "svc", "--type", "bogus"], "cpu"),
        (["pyroscope-flamegraph", "prod", "svc", "30m", "bogus"], "cpu"),
        (["pyroscope-flamegraph", "prod", "svc", "30m", "1h"], "twice"),
        (["pyrowatch", "flamegraph", "prod", "svc", "--no-such-option"], "--no-such-option"),
        (["pyrowatch", "no-such-command"], "no-such-command"),
        (["pyroscope-flamegraph"], "DEPLOYMENT"),
    ],
)
def test_usage_errors_exit_two_with_one_line(env: Env, argv: list[str], needle: str) -> None:
    """Bad arguments: exit 2, one line on stderr that names the problem, nothing on stdout."""
    r = env.run(*argv)
    assert r.code == 2, r
    assert r.out == ""
    _one_line_error(r.err)
    assert needle in r.err


def test_unreachable_server_is_one_line_exit_one(env: Env) -> None:
    """Connection refused: exit 1, one line, no traceback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.write_config({"down": {"url": f"http://127.0.0.1:{port}", "timeout": 2}})
    r = env.run("pyroscope-services", "down")
    assert r.code == 1, r
    _one_line_error(r.err)


def test_server_error_shows_connect_code_and_message(env: Env) -> None:
    """A Connect error from the server is shown with its code and message."""
    from watcher.sandbox import Fault

    env.sandbox.faults.set(
        "SelectMergeStacktraces",
        Fault(status=403, code="permission_denied", message="tenant is read-only"),
    )
    r = env.run("pyrowatch", "flamegraph", "prod", "checkout")
    assert r.code == 1, r
    _one_line_error(r.err)
    assert "permission_denied" in r.err and "tenant is read-only" in r.err


def test_malformed_response_is_one_line(env: Env) -> None:
    """A garbled body is reported, not a traceback."""
    from watcher.sandbox import Fault

    env.seed("checkout", {("main",): SECOND})
    env.sandbox.faults.set("SelectMergeStacktraces", Fault(malformed=True))
    r = env.run("pyrowatch", "flamegraph", "prod", "checkout")
    assert r.code == 1, r
    _one_line_error(r.err)


def test_debug_shows_the_traceback(env: Env) -> None:
    """`--debug` adds the traceback before the one-line error."""
    r = env.run("pyrowatch", "--debug", "services", "prdo")
    assert r.code == 1, r
    assert "Traceback" in r.err
    assert r.err.splitlines()[-1].startswith("error: ")


def test_json_output_keeps_diagnostics_on_stderr(env: Env) -> None:
    """With --json, stdout is JSON even for an empty result; the note goes to stderr."""
    import json

    r = env.run("pyrowatch", "flamegraph", "prod", "nothing", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["functions"] == []
    assert r.err.startswith("no ")


def test_pipe_output_has_no_colour_even_without_no_color(env: Env) -> None:
    """Output to a pipe never carries escape codes."""
    env.seed("checkout", {("main", "hot"): SECOND})
    r = env.run("pyrowatch", "flamegraph", "prod", "checkout", unset=("NO_COLOR",))
    assert r.code == 0, r
    assert not ANSI.search(r.out + r.err)


def test_colour_on_a_terminal_unless_disabled(env: Env) -> None:
    """A terminal gets colour; --no-color and NO_COLOR turn it off."""
    env.seed("checkout", {("main", "hot"): SECOND})
    r = env.run_tty("pyrowatch", "flamegraph", "prod", "checkout")
    assert r.code == 0, r
    assert ANSI.search(r.out)
    r = env.run_tty("pyrowatch", "flamegraph", "prod", "checkout", "--no-color")
    assert r.code == 0 and "hot" in r.out and not ANSI.search(r.out)
    r = env.run_tty("pyrowatch", "--no-color", "flamegraph", "prod", "checkout")
    assert not ANSI.search(r.out)
    r = env.run_tty("pyrowatch", "flamegraph", "prod", "checkout", unset=())
    assert not ANSI.search(r.out)  # NO_COLOR=1 from the test environment


def test_sparkline_on_a_terminal(env: Env) -> None:
    """`series` draws a one-line sparkline when stdout is a terminal."""
    env.seed("checkout", {("main",): SECOND})
    r = env.run_tty("pyrowatch", "series", "prod", "checkout", "--step", "1m")
    assert r.code == 0, r
    assert re.search("[▁▂▃▄▅▆▇█]", r.out)
