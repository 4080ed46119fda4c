"""Benchmark: how long the command line takes to start, and which imports that time goes to.

1. Wall and CPU time of ``pyrowatch --help``, ``pyroscope-flamegraph --help`` and
   ``pyrowatch flamegraph --help`` as installed (the console scripts beside this Python), next
   to a bare ``python -c pass``. Each is run ``--runs`` times; the table shows the median and
   the fastest wall time and the median CPU time (user + system of the child), which other
   load on the machine inflates less than wall time.
2. ``python -X importtime`` of ``pyrowatch --help`` and of a real ``pyrowatch flamegraph`` call
   against an in-process sandbox: the slowest modules (cumulative, with what they import) and
   the import time per top-level package (self time summed). Each is the median over
   ``--importtime-runs`` runs.

Run: ``python bench/startup.py [--runs 21] [--importtime-runs 7] [--top 25] [--wait-load 1.5]``.
Goal (issue 7, goal 1): ``--help`` in under 150 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

GOAL_MS = 150.0
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"


def scripts_dir() -> Path:
    """Where the console scripts of this environment live (beside the interpreter)."""
    return Path(sys.executable).parent


def wait_for_quiet(limit: float | None, max_wait: float = 900.0) -> None:
    """On a shared machine, wait (up to ``max_wait`` s) for the 1-minute load average to
    drop below ``limit`` before measuring; print the load either way."""
    if limit is not None:
        deadline = time.monotonic() + max_wait
        while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
            time.sleep(5)
    print(f"Load average (1 min) at start: {os.getloadavg()[0]:.2f}.\n")


def bench_env(home: str) -> dict[str, str]:
    """The environment of the measured commands.

    No user config file is read (``HOME`` is an empty directory) and no ``PYROWATCH_*``
    variable applies. Bytecode caches are on, as after any install, but written below
    ``home`` rather than into the source tree (``PYTHONPYCACHEPREFIX``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYROWATCH_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(HOME=home, NO_COLOR="1", PYTHONPYCACHEPREFIX=str(Path(home) / "pycache"))
    return env


def no_site_hooks(args: Sequence[str]) -> list[str]:
    """``pyrowatch ARGS`` without ``site``: no ``.pth`` hooks run (an editable install's
    finder is one); the package and site-packages are put on ``sys.path`` by hand."""
    import sysconfig

    import watcher

    root = str(Path(watcher.__file__).resolve().parent.parent)
    paths = [root, sysconfig.get_paths()["purelib"]]
    code = (
        f"import sys; sys.path[:0] = {paths!r}; sys.argv[0] = 'pyrowatch'; "
        "from watcher.cli import run; run()"
    )
    return [sys.executable, "-S", "-c", code, *args]


def run_timed(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and child CPU seconds (user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv!r} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def time_commands(
    commands: Sequence[tuple[str, list[str]]], runs: int, env: dict[str, str]
) -> list[tuple[str, float, float, float]]:
    """``(label, median wall ms, min wall ms, median cpu ms)``; runs are interleaved."""
    walls: dict[str, list[float]] = defaultdict(list)
    cpus: dict[str, list[float]] = defaultdict(list)
    for _label, argv in commands:  # warm the page cache and the bytecode caches
        run_timed(argv, env)
    for _ in range(runs):
        for label, argv in commands:
            wall, cpu = run_timed(argv, env)
            walls[label].append(wall * 1000)
            cpus[label].append(cpu * 1000)
    return [
        (label, statistics.median(walls[label]), min(walls[label]), statistics.median(cpus[label]))
        for label, _ in commands
    ]


def parse_importtime(stderr: str) -> list[tuple[str, int, int, int]]:
    """``(module, self µs, cumulative µs, depth)`` of each ``-X importtime`` line."""
    rows: list[tuple[str, int, int, int]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        head, cum_us, name = line.split("|", 2)
        self_us = head.removeprefix("import time:").strip()
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((name.strip(), int(self_us), int(cum_us.strip()), depth))
    return rows


def importtime_profile(
    argv: Sequence[str], env: dict[str, str], runs: int
) -> tuple[dict[str, float], dict[str, float], dict[str, float], float]:
    """Median self ms and cumulative ms per module, self ms per top-level package, total ms."""
    selfs: dict[str, list[float]] = defaultdict(list)
    cums: dict[str, list[float]] = defaultdict(list)
    packages: dict[str, list[float]] = defaultdict(list)
    totals: list[float] = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{argv!r} failed: {proc.stderr[-500:]}")
        per_package: dict[str, float] = defaultdict(float)
        total = 0.0
        for name, self_us, cum_us, depth in parse_importtime(proc.stderr):
            selfs[name].append(self_us / 1000)
            cums[name].append(cum_us / 1000)
            per_package[name.split(".")[0]] += self_us / 1000
            if depth == 0:
                total += cum_us / 1000
        for name, ms in per_package.items():
            packages[name].append(ms)
        totals.append(total)
    return (
        {k: statistics.median(v) for k, v in selfs.items()},
        {k: statistics.median(v) for k, v in cums.items()},
        {k: statistics.median(v) for k, v in packages.items()},
        statistics.median(totals),
    )


def print_importtime(title: str, argv: Sequence[str], env: dict[str, str], runs: int, top: int):
    selfs, cums, packages, total = importtime_profile(argv, env, runs)
    print(f"\n### Imports: {title}\n")
    print(f"All imports: **{total:.1f} ms** (median of {runs} runs of `-X importtime`).\n")
    print("| top-level package | self ms (sum of its modules) | modules |")
    print("|---|---:|---:|")
    counts: dict[str, int] = defaultdict(int)
    for name in selfs:
        counts[name.split(".")[0]] += 1
    for name, ms in sorted(packages.items(), key=lambda kv: -kv[1])[:top]:
        print(f"| `{name}` | {ms:.1f} | {counts[name]} |")
    print(f"\nSlowest {top} modules by cumulative time (a module's own time plus its imports):\n")
    print("| module | cumulative ms | self ms |")
    print("|---|---:|---:|")
    for name, ms in sorted(cums.items(), key=lambda kv: -kv[1])[:top]:
        print(f"| `{name}` | {ms:.1f} | {selfs[name]:.1f} |")


def start_sandbox() -> tuple[object, str]:
    """A sandbox with one service's CPU profile in the last hour (a few thousand stacks)."""
    import random

    from watcher.sandbox import Sandbox

    rng = random.Random(7)
    names = [f"pkg{i % 40}/mod.fn{i}" for i in range(2000)]
    stacks: dict[tuple[str, ...], int] = {}
    while len(stacks) < 2000:
        depth = rng.randint(3, 20)
        stack = ("main", *(names[int(rng.paretovariate(1.2)) % len(names)] for _ in range(depth)))
        stacks[stack] = rng.randint(1, 100) * 10_000_000
    sandbox = Sandbox()
    url = sandbox.start()
    sandbox.store.add({"service_name": "checkout"}, CPU, int(time.time() * 1000) - 60_000, stacks)
    return sandbox, url


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--importtime-runs", type=int, default=7)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--wait-load", type=float, help="wait for a load average below this")
    args = parser.parse_args(argv)
    wait_for_quiet(args.wait_load)

    bindir = scripts_dir()
    with tempfile.TemporaryDirectory() as home:
        env = bench_env(home)
        commands = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("pyrowatch --help", [str(bindir / "pyrowatch"), "--help"]),
            ("pyroscope-flamegraph --help", [str(bindir / "pyroscope-flamegraph"), "--help"]),
            ("pyrowatch flamegraph --help", [str(bindir / "pyrowatch"), "flamegraph", "--help"]),
            ("pyrowatch --help, no site hooks (-S)", no_site_hooks(["--help"])),
        ]
        print("## CLI start\n")
        print(f"{args.runs} runs each, interleaved, after one warm-up run. The last row runs")
        print("the same entry point with `python -S` and the package and its dependencies on")
        print("`sys.path` directly: what start-up costs without `.pth` start-up hooks such as")
        print("an editable install's import finder.\n")
        print("| command | median wall ms | min wall ms | median CPU ms | goal < 150 ms |")
        print("|---|---:|---:|---:|---|")
        for label, median, fastest, cpu in time_commands(commands, args.runs, env):
            verdict = ""
            if "--help" in label:
                verdict = "PASS" if median < GOAL_MS else f"MISS by {median - GOAL_MS:.0f} ms"
            print(f"| `{label}` | {median:.1f} | {fastest:.1f} | {cpu:.1f} | {verdict} |")

        print_importtime(
            "`pyrowatch --help`",
            [str(bindir / "pyrowatch"), "--help"],
            env,
            args.importtime_runs,
            args.top,
        )

        sandbox, url = start_sandbox()
        try:
            config = Path(home) / "config.toml"
            config.write_text(f'[pyroscope.deployments.local]\nurl = "{url}"\n')
            env["PYROWATCH_CONFIG"] = str(config)
            print_importtime(
                "`pyrowatch flamegraph local checkout` against the sandbox",
                [str(bindir / "pyrowatch"), "flamegraph", "local", "checkout"],
                env,
                args.importtime_runs,
                args.top,
            )
        finally:
            sandbox.stop()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
