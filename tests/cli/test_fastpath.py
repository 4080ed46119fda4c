"""The fast path and click give the same bytes: a differential test over many command lines.

Each command line runs twice as a real subprocess against the sandbox, through its console
script (``pyrowatch flamegraph ...`` and ``pyroscope-flamegraph ...``): once as installed,
once with ``_PYROWATCH_FAST_PATH=off`` (always click). Stdout, stderr and the exit code
must be identical. Which path ran is read from the modules the process imported
(``PYTHONPROFILEIMPORTTIME``, whose lines are removed before comparing): the plain forms
must not import click, everything else must reach it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from watcher.sandbox import Fault

from .support import INUSE, SECOND, Env, Result, aligned_window, iso, script

STACKS = {
    ("main", "handler", "json.Marshal"): 6 * SECOND,
    ("main", "handler", "db.Query"): 3 * SECOND,
    ("main", "runtime.gcBgMarkWorker"): 1 * SECOND,
}
_AT, _START, _END = aligned_window()
S, E = iso(_START), iso(_END)
#: Relative windows are resolved against the clock of each run: their times may differ.
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")

#: Plain forms: answered without click. (arguments after the command, needs a fault)
FAST: dict[str, list[str]] = {
    "table": ["prod", "checkout", "--start", S, "--end", E],
    "json flag": ["prod", "checkout", "--start", S, "--end", E, "--json"],
    "json format, top 1": [
        "prod",
        "checkout",
        f"--start={S}",
        f"--end={E}",
        "-f",
        "json",
        "-n",
        "1",
    ],
    "sort total, top 2": [
        "prod",
        "checkout",
        "--start",
        S,
        "--end",
        E,
        "--sort",
        "total",
        "--top",
        "2",
    ],
    "options first": ["--top", "2", "--start", S, "--end", E, "prod", "checkout"],
    "last value wins": ["prod", "checkout", "--start", S, "--end", E, "-n", "1", "-n", "3"],
    "type alias": ["prod", "checkout", "--start", S, "--end", E, "-t", "memory"],
    "type id": ["prod", "checkout", "--start", S, "--end", E, f"--type={INUSE}"],
    "positional range": ["prod", "checkout", "30m"],
    "dash-digit range": ["prod", "checkout", "-30m"],
    "positional range and type": ["prod", "checkout", "1h", INUSE],
    "positional type then range": ["prod", "checkout", "cpu", "2h"],
    "range option, end": ["prod", "checkout", "--range", "10m", "--end", E],
    "end alone": ["prod", "checkout", "--end", E],
    "relative start": ["prod", "checkout", "--start", "now-2h", "--end", "now-1m"],
    "labels": ["prod", "checkout", "--start", S, "--end", E, "-l", "pod=a", "--label", "pod!~b.*"],
    "label matching nothing": ["prod", "checkout", "--start", S, "--end", E, "-l", "pod=zz"],
    "nodes budget": ["prod", "checkout", "--start", S, "--end", E, "--max-nodes", "2"],
    "no color": ["prod", "checkout", "--start", S, "--end", E, "--no-color"],
    "no data": ["prod", "nosuch", "--start", S, "--end", E],
    "no data, json": ["prod", "nosuch", "--start", S, "--end", E, "--json"],
    "unknown deployment": ["nowhere", "checkout", "--start", S, "--end", E],
    "start after end": ["prod", "checkout", "--start", E, "--end", S],
    "other config file": ["prod", "checkout", "--config", "{other}", "--start", S, "--end", E],
    "missing config file": ["prod", "checkout", "--config", "{tmp}/missing.toml"],
    "server error": ["prod", "checkout", "--start", S, "--end", E, "--fault"],
    "auth refused": ["prod", "checkout", "--start", S, "--end", E, "--auth"],
}

#: Everything else: the fast path declines, click answers (usage errors included).
CLICK: dict[str, list[str]] = {
    "help": ["--help"],
    "short help": ["prod", "checkout", "-h"],
    "missing service": ["prod"],
    "nothing": [],
    "tree": ["prod", "checkout", "--start", S, "--end", E, "-f", "tree"],
    "folded": ["prod", "checkout", "--start", S, "--end", E, "--format", "folded"],
    "min share": ["prod", "checkout", "--start", S, "--end", E, "-f", "tree", "--min-share", "5"],
    "unknown option": ["prod", "checkout", "--colour"],
    "bad top": ["prod", "checkout", "--top", "x"],
    "zero top": ["prod", "checkout", "-n", "0"],
    "attached short value": ["prod", "checkout", "-n5", "--start", S, "--end", E],
    "bad sort": ["prod", "checkout", "--sort", "hot"],
    "bad format": ["prod", "checkout", "-f", "xml"],
    "flag with a value": ["prod", "checkout", "--json=yes"],
    "missing option value": ["prod", "checkout", "--range"],
    "bad range": ["prod", "checkout", "--range", "5q"],
    "bad time": ["prod", "checkout", "--start", "soonish"],
    "bad type": ["prod", "checkout", "--type", "nosuch"],
    "bad positional type": ["prod", "checkout", "30m", "nosuch"],
    "bad label": ["prod", "checkout", "-l", "pod"],
    "range twice": ["prod", "checkout", "30m", "--range", "1h"],
    "type twice": ["prod", "checkout", "cpu", "-t", "memory"],
    "too many positionals": ["prod", "checkout", "30m", "cpu", "extra"],
    "double dash": ["prod", "checkout", "--", "30m"],
    # beyond int()'s digit limit: the fast path must decline, not crash
    "huge count": ["prod", "checkout", "-n", "9" * 5000],
    "output file": ["prod", "checkout", "--start", S, "--end", E, "-o", "{tmp}/out.txt"],
}

#: ``pyrowatch`` only: options of the group before the command name.
GROUP_FAST = {
    "group no-color": ["--no-color", "flamegraph", "prod", "checkout", "--start", S, "--end", E],
    "group config": [
        "--config",
        "{other}",
        "flamegraph",
        "prod",
        "checkout",
        "--start",
        S,
        "--end",
        E,
    ],
    "group and command config": [
        "--config={tmp}/missing.toml",
        "flamegraph",
        "--config",
        "{config}",
        "prod",
        "checkout",
        "--start",
        S,
        "--end",
        E,
    ],
}
GROUP_CLICK = {
    "group help": ["--help"],
    "version": ["--version"],
    "group debug": ["--debug", "flamegraph", "prod", "checkout", "--start", S, "--end", E],
    "other command": ["services", "prod"],
    "no command": [],
}


def _cases() -> Iterator[object]:
    for entry in ("pyrowatch", "pyroscope-flamegraph"):
        prefix = ["flamegraph"] if entry == "pyrowatch" else []
        for name, args in FAST.items():
            yield pytest.param(entry, [*prefix, *args], True, id=f"{entry}: {name}")
        for name, args in CLICK.items():
            yield pytest.param(entry, [*prefix, *args], False, id=f"{entry}: {name}")
    for name, args in GROUP_FAST.items():
        yield pytest.param("pyrowatch", args, True, id=f"pyrowatch: {name}")
    for name, args in GROUP_CLICK.items():
        yield pytest.param("pyrowatch", args, False, id=f"pyrowatch: {name}")


def _split(result: Result) -> tuple[str, set[str]]:
    """Stderr without the import-time report, and the modules that report names."""
    kept: list[str] = []
    modules: set[str] = set()
    for line in result.err.splitlines(keepends=True):
        if line.startswith("import time:"):
            modules.add(line.rsplit("|", 1)[-1].strip())
        else:
            kept.append(line)
    return "".join(kept), modules


@pytest.mark.parametrize(("entry", "args", "fast"), list(_cases()))
def test_fast_path_and_click_give_the_same_bytes(
    env: Env, entry: str, args: list[str], fast: bool
) -> None:
    env.seed("checkout", STACKS, at=_AT, labels={"pod": "a"})
    env.seed("checkout", {("main", "cache.Fill"): 1024}, at=_AT, profile_type=INUSE)
    other = env.tmp / "other.toml"
    other.write_text(f'[pyroscope.deployments.prod]\nurl = "{env.url}/"\ntimeout = 5\n')
    argv = [a.format(tmp=env.tmp, other=other, config=env.config) if "{" in a else a for a in args]
    if "--fault" in argv:
        argv.remove("--fault")
        env.sandbox.faults.set("SelectMergeStacktraces", Fault(status=500))
    if "--auth" in argv:
        from watcher.sandbox import AuthConfig

        argv.remove("--auth")
        env.sandbox.auth = AuthConfig(bearer_token="not-the-one")
    probe = {"PYTHONPROFILEIMPORTTIME": "1", "COLUMNS": "100"}
    as_is = env.run(entry, *argv, env=probe, unset=("_PYROWATCH_FAST_PATH",))
    forced = env.run(entry, *argv, env={**probe, "_PYROWATCH_FAST_PATH": "off"})
    err, modules = _split(as_is)
    click_err, click_modules = _split(forced)
    assert "click" in click_modules
    relative = not ("--start" in argv and "--end" in argv and E in argv)
    out, click_out = as_is.out, forced.out
    if relative:  # each run resolves "now" itself
        out, click_out = _TIME.sub("T", out), _TIME.sub("T", click_out)
        err, click_err = _TIME.sub("T", err), _TIME.sub("T", click_err)
    assert (as_is.code, out, err) == (forced.code, click_out, click_err), f"{as_is}\n\n{forced}"
    took_fast_path = "click" not in modules
    assert took_fast_path == fast, f"fast path expected: {fast}\n{as_is}"
    if fast and "pydantic" not in modules:
        # a plain config and an http:// deployment: no http.client, ssl or email (the full
        # config validation, which words configuration errors, may import them)
        assert not modules & {"http.client", "ssl", "email", "httpx"}, sorted(modules)


def _run_with_stdout(env: Env, entry: str, argv: list[str], stdout: int, fast: bool) -> Result:
    """Run ``entry argv`` with stdout on the file descriptor ``stdout``."""
    environ = {**os.environ, "PYROWATCH_CONFIG": str(env.config)}
    environ.pop("_PYROWATCH_FAST_PATH", None)
    environ.pop("PYTHONUNBUFFERED", None)  # a file or pipe gets a block-buffered stdout
    if not fast:
        environ["_PYROWATCH_FAST_PATH"] = "off"
    proc = subprocess.run(
        [script(entry), *argv], stdout=stdout, stderr=subprocess.PIPE, env=environ, timeout=120
    )
    return Result(proc.returncode, "", proc.stderr.decode(), [entry, *argv])


@pytest.mark.parametrize("entry", ["pyrowatch", "pyroscope-flamegraph"])
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_output_to_a_file_is_whole_after_the_quick_exit(env: Env, entry: str, fmt: str) -> None:
    """The fast path ends its process with ``os._exit`` once stdout is flushed: output
    redirected to a file (block-buffered) must still be all there, as click writes it."""
    env.seed("checkout", STACKS, at=_AT)
    prefix = ["flamegraph"] if entry == "pyrowatch" else []
    argv = [*prefix, "prod", "checkout", "--start", S, "--end", E, "-f", fmt, "-n", "500"]
    outputs = {}
    for fast in (True, False):
        path = env.tmp / f"out-{fast}.txt"
        with path.open("wb") as f:
            result = _run_with_stdout(env, entry, argv, f.fileno(), fast)
        assert (result.code, result.err) == (0, ""), result
        outputs[fast] = path.read_bytes()
    assert outputs[True] == outputs[False]
    assert b"json.Marshal" in outputs[True] and outputs[True].endswith(b"\n")


@pytest.mark.parametrize("entry", ["pyrowatch", "pyroscope-flamegraph"])
def test_a_reader_that_went_away_ends_the_fast_path_as_click(env: Env, entry: str) -> None:
    """Stdout is a pipe nobody reads (``| head`` gone): both paths end alike, quietly."""
    env.seed("checkout", STACKS, at=_AT)
    prefix = ["flamegraph"] if entry == "pyrowatch" else []
    argv = [*prefix, "prod", "checkout", "--start", S, "--end", E]
    results = []
    for fast in (True, False):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            results.append(_run_with_stdout(env, entry, argv, write_end, fast))
        finally:
            os.close(write_end)
    (fast_result, click_result) = results
    assert (fast_result.code, fast_result.err) == (click_result.code, click_result.err)
    assert "Traceback" not in fast_result.err and "Exception ignored" not in fast_result.err
