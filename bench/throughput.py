"""Benchmark: watcher throughput, one ``run_watch`` cycle over many service x profile-type pairs.

The sandbox runs in its own process (``python -m watcher.sandbox``), so its memory and most
of its CPU are not the daemon's. It is loaded through its control API (``/_sandbox/stacks``)
with one small profile per pair and window (current, previous, each baseline, and each
baseline of the previous window): 30 stacks over a pool of 60 functions, so the sandbox's
answer is cheap and the measurement is of the daemon. A quiet pair costs one query per
window it compares (current and baselines: 3 with the default ``-1d,-6d``); one pair in
``--regressed-every`` gets a +60 % function in its current and previous windows, so the run
also does what a finding costs (the previous window and its own baselines, version
lookups, a regression committed). Every
``SelectMergeStacktraces`` and ``LabelValues`` request waits ``--latency`` seconds first
(``/_sandbox/faults``), as a remote Pyroscope would.

The sandbox scans all its series for every query, so its CPU per query grows with the
fleet (a few ms at 1,000 series, over 10 ms at 5,000) and at thousands of pairs it, not the
daemon, would set the pace. ``--shards K`` starts K sandboxes, each holding every K-th
service, and gives the daemon a transport that routes each query to the right one (the
service listing goes to all of them); each shard's pool has the Querier client's limits.

Each cycle runs in a fresh subprocess: an :class:`~watcher.daemon.app.App` over a migrated
temporary SQLite database with one watch over every service (``svc-*``), timed around one
``run_watch`` (listing services, claiming every pair, evaluating them on the thread pool,
storing snapshots, recording pairs). The subprocess reports its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``), so the sandbox's memory never counts.

For every pair count (``--pairs``) and pool size (``--concurrency``) the table shows the
cycle time, the evaluation phase, the serial database work, queries per second, TCP
connections opened, the daemon's and the sandbox's CPU time in the cycle, the daemon's peak
RSS and the load average (other work on the machine slows every number). ``--repeat N``
runs each configuration N times and shows the median. ``--httpx-default-pool`` runs the
client with httpx's default pool (20 idle connections kept) for comparison. ``--profile N``
runs one extra 1,000-pair cycle under cProfile (every pool thread included) and prints the
top N functions; wall-clock waits in threads dominate it, so read own times.

Run: ``python bench/throughput.py [--pairs 100,1000,5000] [--concurrency 8,16,32,64]
[--latency 0.05] [--types 2] [--baselines=-1d,-6d] [--shards 1] [--repeat 1] [--profile N]``.
Goal (issue 7, goal 4): one cycle over 1,000 pairs (3 queries each) with 50 ms injected
latency in under 30 s with bounded concurrency, and the daemon's peak RSS under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

GOAL_S = 30.0
GOAL_RSS_MB = 300.0
GOAL_PAIRS = 1000
WINDOW = timedelta(hours=1)
PROFILE_TYPES = (
    "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
    "memory:alloc_space:bytes:space:bytes",
)
#: Value of one sample per profile type (10 ms of CPU at 100 Hz; 512 KiB of allocations).
UNIT = {PROFILE_TYPES[0]: 10_000_000, PROFILE_TYPES[1]: 512 * 1024}
SAMPLES = 6000
STACKS = 30
LOAD_CHUNK = 400
ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- data


def function_pool(rng: random.Random, size: int = 60) -> list[str]:
    """Go-like function names."""
    packages = ["main", "net/http", "encoding/json", "runtime", "database/sql", "app/cart"]
    verbs = ["Serve", "Handle", "Marshal", "Decode", "Query", "Scan", "Alloc", "Write", "Load"]
    names: list[str] = []
    while len(names) < size:
        name = f"{rng.choice(packages)}.{rng.choice(verbs)}{rng.randrange(1000)}"
        if name not in names:
            names.append(name)
    return names


def service_stacks(index: int, pool: Sequence[str]) -> list[tuple[str, float]]:
    """``STACKS`` folded stacks with Zipf-like weights that sum to 1 (fixed per service)."""
    rng = random.Random(index)
    stacks: dict[str, None] = {}
    while len(stacks) < STACKS:
        depth = rng.randint(3, 7)
        stacks[";".join(["main.main", *rng.sample(list(pool), depth - 1)])] = None
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(STACKS)]
    total = sum(weights)
    return [(stack, w / total) for stack, w in zip(stacks, weights, strict=True)]


def window_starts(scheduled_at: datetime, baselines: Sequence[timedelta]) -> list[datetime]:
    """Current, previous, the baselines, then the previous window's own baselines."""
    current = scheduled_at - WINDOW
    previous = current - WINDOW
    return [
        current,
        previous,
        *(current + offset for offset in baselines),
        *(previous + offset for offset in baselines),
    ]


def records(
    pairs: int,
    types: int,
    scheduled_at: datetime,
    baselines: Sequence[timedelta],
    regressed_every: int,
) -> Iterator[dict[str, Any]]:
    """One ``/_sandbox/stacks`` record per pair and window (timestamped mid-window)."""
    pool = function_pool(random.Random(7))
    starts = window_starts(scheduled_at, baselines)
    noise = random.Random(3)
    for index in range(services_for(pairs, types)):
        service = f"svc-{index:05d}"
        shape = service_stacks(index, pool)
        for t, profile_type in enumerate(PROFILE_TYPES[:types]):
            pair = index * types + t
            regressed = regressed_every > 0 and pair % regressed_every == 0
            for w, start in enumerate(starts):
                stacks: dict[str, int] = {}
                for rank, (stack, weight) in enumerate(shape):
                    mean = SAMPLES * weight * (1.6 if regressed and w < 2 and rank == 2 else 1.0)
                    count = max(1, round(noise.gauss(mean, math.sqrt(mean))))
                    stacks[stack] = count * UNIT[profile_type]
                yield {
                    "labels": {"service_name": service},
                    "profile_type": profile_type,
                    "timestamp_ms": int((start + WINDOW / 2).timestamp() * 1000),
                    "stacks": stacks,
                }


def services_for(pairs: int, types: int) -> int:
    return max(1, math.ceil(pairs / types))


# --------------------------------------------------------------------------- the sandbox


class SandboxProcess:
    """``python -m watcher.sandbox`` on a free port, driven through its control API."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watcher.sandbox", "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = ""
        for line in self.proc.stdout:
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].split()[0]
                break
        if not self.url:
            raise SystemExit("the sandbox did not start")
        # Keep draining its output so it never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.http = httpx.Client(base_url=self.url, timeout=120)

    def control(self, action: str, body: Any) -> Any:
        response = self.http.post(f"/_sandbox/{action}", json=body)
        response.raise_for_status()
        return response.json()

    def load(self, items: Iterator[dict[str, Any]]) -> int:
        self.control("reset", {})
        loaded = 0
        batch: list[dict[str, Any]] = []
        for item in items:
            batch.append(item)
            if len(batch) == LOAD_CHUNK:
                loaded += self.control("stacks", {"records": batch})["profiles"]
                batch = []
        if batch:
            loaded += self.control("stacks", {"records": batch})["profiles"]
        return loaded

    def faults(self, latency: float) -> None:
        fault = {"latency": latency} if latency > 0 else None
        plan = {m: fault for m in ("SelectMergeStacktraces", "LabelValues")} if fault else {}
        self.control("faults", plan)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the sandbox process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Sandboxes:
    """One sandbox, or ``count`` of them each holding the services ``svc-N`` with
    ``N % count`` equal to its index (see :class:`ShardRouter`)."""

    def __init__(self, count: int) -> None:
        self.members = [SandboxProcess() for _ in range(max(count, 1))]
        self.urls = [m.url for m in self.members]

    def load(self, items: Iterator[dict[str, Any]]) -> int:
        for member in self.members:
            member.control("reset", {})
        batches: list[list[dict[str, Any]]] = [[] for _ in self.members]
        loaded = 0
        for item in items:
            shard = shard_of(item["labels"]["service_name"], len(self.members))
            batch = batches[shard]
            batch.append(item)
            if len(batch) == LOAD_CHUNK:
                loaded += self.members[shard].control("stacks", {"records": batch})["profiles"]
                batch.clear()
        for member, batch in zip(self.members, batches, strict=True):
            if batch:
                loaded += member.control("stacks", {"records": batch})["profiles"]
        return loaded

    def faults(self, latency: float) -> None:
        for member in self.members:
            member.faults(latency)

    def cpu_seconds(self) -> float:
        return sum(m.cpu_seconds() for m in self.members)

    def close(self) -> None:
        for member in self.members:
            member.close()


def shard_of(service: str, count: int) -> int:
    return int(service.rsplit("-", 1)[1]) % count


class ShardRouter(httpx.BaseTransport):
    """A transport over several sandboxes: a query naming a service (``svc-N`` in its JSON
    body) goes to the sandbox holding it; one naming none (the service listing,
    ``LabelValues``) goes to all of them and their ``names`` are merged.

    The sandbox scans every series for every query, so one sandbox with thousands of series
    spends more CPU per query than the daemon; sharding keeps the daemon the thing measured.
    Each shard's connection pool has the limits the Querier client would use itself.
    """

    def __init__(self, urls: Sequence[str]) -> None:
        from watcher.querier import client

        size = getattr(client, "MAX_CONNECTIONS", None)
        limits = (
            httpx.Limits(max_connections=size, max_keepalive_connections=size)
            if size
            else httpx.Limits(max_connections=100, max_keepalive_connections=20)
        )
        self.urls = [httpx.URL(u) for u in urls]
        self.inner = [httpx.HTTPTransport(limits=limits) for _ in urls]

    def _to(self, request: httpx.Request, shard: int, body: bytes) -> httpx.Request:
        url = request.url.copy_with(host=self.urls[shard].host, port=self.urls[shard].port)
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
        return httpx.Request(request.method, url, headers=headers, content=body)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import re

        body = request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            import gzip

            text = gzip.decompress(body)
        else:
            text = body
        match = re.search(rb"svc-(\d+)", text)
        if match is not None:
            shard = int(match.group(1)) % len(self.urls)
            return self.inner[shard].handle_request(self._to(request, shard, body))
        names: set[str] = set()
        for shard, transport in enumerate(self.inner):
            forwarded = self._to(request, shard, body)
            forwarded.headers["Accept-Encoding"] = "identity"
            forwarded.headers["Accept"] = "application/json"
            response = transport.handle_request(forwarded)
            try:
                content = response.read()
            finally:
                response.close()
            if response.status_code != 200:
                return httpx.Response(response.status_code, content=content)
            names.update(json.loads(content).get("names") or [])
        return httpx.Response(200, json={"names": sorted(names)})

    def close(self) -> None:
        for transport in self.inner:
            transport.close()


# --------------------------------------------------------------------------- one cycle (child)


def write_config(path: Path, spec: dict[str, Any]) -> None:
    def value(v: Any) -> str:
        return json.dumps(v)

    lines = [
        "[pyroscope.deployments.sandbox]",
        f"url = {value(spec['url'])}",
        "",
        "[watcher]",
        f"database_url = {value(spec['database_url'])}",
        'listen = "127.0.0.1:0"',
    ]
    if spec.get("concurrency"):
        lines.append(f"concurrency = {int(spec['concurrency'])}")
    lines += [
        "",
        "[[watcher.watch]]",
        'name = "fleet"',
        'deployment = "sandbox"',
        'services = ["svc-*"]',
        f"profile_types = {value(list(PROFILE_TYPES[: spec['types']]))}",
        'window = "1h"',
        f"baselines = {value(spec['baselines'])}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextmanager
def thread_profiles() -> Iterator[Any]:
    """cProfile every pair evaluation in its pool thread, and the calling thread; yields a
    function that returns the merged ``pstats.Stats``."""
    import cProfile
    import pstats

    from watcher.daemon import jobs

    local = threading.local()
    profilers: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = jobs._Pair.evaluate

    def evaluate(self: Any) -> Any:
        prof = getattr(local, "prof", None)
        if prof is None:
            prof = local.prof = cProfile.Profile()
            with lock:
                profilers.append(prof)
        prof.enable()
        try:
            return original(self)
        finally:
            prof.disable()

    main = cProfile.Profile()
    jobs._Pair.evaluate = evaluate  # type: ignore[method-assign]
    main.enable()
    try:
        yield lambda: pstats.Stats(main, *profilers)
    finally:
        main.disable()
        jobs._Pair.evaluate = original  # type: ignore[method-assign]


def instrument(app: Any) -> dict[str, float]:
    """Time the phases of a run (summed over calls) and count TCP connections opened."""
    import httpcore._backends.sync as backend

    from watcher.daemon import jobs

    phases: dict[str, float] = {"connections": 0, "failed_connects": 0}
    lock = threading.Lock()

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    phases[name] = phases.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    jobs._evaluate_all = timed("evaluate", jobs._evaluate_all)
    jobs._settle = timed("settle", jobs._settle)
    jobs.expand_services = timed("expand", jobs.expand_services)
    app.repo.claim_pair = timed("claim", app.repo.claim_pair)
    app.repo.save_snapshots = timed("snapshots", app.repo.save_snapshots)
    connect = backend.SyncBackend.connect_tcp

    def counting_connect(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            phases["connections"] += 1
        try:
            return connect(self, *args, **kwargs)
        except Exception:
            with lock:
                phases["failed_connects"] = phases.get("failed_connects", 0) + 1
            raise

    backend.SyncBackend.connect_tcp = counting_connect  # type: ignore[method-assign]
    return phases


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one cycle in this process; return its measurements."""
    import logging

    from watcher.config import load_settings
    from watcher.daemon import jobs
    from watcher.daemon.app import App

    logging.disable(logging.WARNING)  # a line per pair would time the terminal
    workdir = Path(spec["workdir"])
    config = workdir / "config.toml"
    write_config(config, spec)
    settings = load_settings(str(config), env={})
    watch = settings.watcher.watch[0]
    scheduled_at = datetime.fromisoformat(spec["scheduled_at"])

    if spec.get("httpx_default_pool"):
        # For comparison: the pool httpx gives a client by default (100 connections, of
        # which 20 are kept alive), whatever the Querier client asks for.
        default_limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        httpx.Limits = lambda *args, **kwargs: default_limits  # type: ignore[assignment,misc]
    shards = spec.get("shards") or []
    transport = ShardRouter(shards) if len(shards) > 1 else None
    app = App(settings, transport=transport)
    phases = instrument(app)
    try:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        rss_before = usage.ru_maxrss / 1024
        cpu_before = usage.ru_utime + usage.ru_stime
        if spec.get("profile"):
            with thread_profiles() as stats:
                started = time.perf_counter()
                result = jobs.run_watch(app, watch, scheduled_at=scheduled_at)
                seconds = time.perf_counter() - started
            import io

            out = io.StringIO()
            stats_obj = stats()
            stats_obj.stream = out
            stats_obj.sort_stats("tottime").print_stats(int(spec["profile"]))
            stats_obj.sort_stats("cumulative").print_stats(int(spec["profile"]))
            profile_text = out.getvalue()
        else:
            started = time.perf_counter()
            result = jobs.run_watch(app, watch, scheduled_at=scheduled_at)
            seconds = time.perf_counter() - started
            profile_text = ""
    finally:
        app.stop(timeout=10)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    statuses: dict[str, int] = {}
    for pair in result.pairs:
        statuses[pair.status] = statuses.get(pair.status, 0) + 1
    errors = [p.error for p in result.pairs if p.status == "failed"][:3]
    return {
        "seconds": seconds,
        "phases": phases,
        "evaluate_seconds": phases.get("evaluate", 0.0),
        "queries": 1 + sum(p.query_count for p in result.pairs),
        "pairs": len(result.pairs),
        "statuses": statuses,
        "findings": len(result.findings),
        "snapshots": result.snapshots,
        "concurrency": settings.watcher.concurrency,
        "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu_before,
        "rss_before_mb": rss_before,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "errors": errors,
        "profile": profile_text,
    }


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"the cycle subprocess failed (exit {proc.returncode})")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- driver

HEADER = (
    f"{'pairs':>6} {'conc':>5} {'cycle s':>8} {'eval s':>7} {'db s':>5} {'queries':>8} "
    f"{'q/s':>5} {'conns':>5} {'cpu s':>6} {'sandbox cpu s':>13} {'peak RSS MB':>11} "
    f"{'load':>5}  pairs"
)


def format_row(row: dict[str, Any], status: str) -> str:
    """One table line. ``db s``: claiming pairs, storing snapshots and recording each pair's
    outcome (serial, on the run's thread); ``cpu s``: the daemon process's CPU time in the
    cycle; ``load``: the one-minute load average right after (other work on the machine)."""
    phases = row["phases"]
    db = sum(phases.get(k, 0.0) for k in ("claim", "snapshots", "settle"))
    return (
        f"{row['pairs']:>6} {row['concurrency']:>5} {row['seconds']:>8.1f} "
        f"{row['evaluate_seconds']:>7.1f} {db:>5.1f} {row['queries']:>8} "
        f"{row['queries'] / row['seconds']:>5.0f} {int(phases['connections']):>5} "
        f"{row['cpu_seconds']:>6.1f} {row['sandbox_cpu_seconds']:>13.1f} "
        f"{row['peak_rss_mb']:>11.0f} {row['load']:>5.1f}  {status}"
    )


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, {sys.platform}"


def parse_offsets(text: str) -> list[str]:
    from watcher.times import parse_duration

    offsets = ["-" + part.strip().lstrip("-") for part in text.split(",") if part.strip()]
    for part in offsets:
        parse_duration(part[1:])
    return offsets


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pairs", default="100,1000,5000", help="pair counts, comma-separated")
    parser.add_argument(
        "--concurrency",
        default="8,16,32,64",
        help="pool sizes, comma-separated; 0 = the configured default",
    )
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--types", type=int, choices=(1, 2), default=2, help="profile types")
    parser.add_argument(
        "--baselines",
        default="-1d,-6d",
        help="baseline offsets (the watch default -1d,-6d: 3 queries a quiet pair)",
    )
    parser.add_argument("--regressed-every", type=int, default=100, help="0 = no regression")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also profile one 1,000-pair cycle"
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=1,
        help="sandbox processes, each with a share of the services (1 = no sharding)",
    )
    parser.add_argument(
        "--httpx-default-pool",
        action="store_true",
        help="use httpx's default pool (20 idle connections kept), to compare",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="cycles per configuration (the median is shown)"
    )
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    from watcher.store.db import upgrade

    pair_counts = [int(p) for p in args.pairs.split(",") if p.strip()]
    pools = [int(c) for c in args.concurrency.split(",") if c.strip()]
    baselines = parse_offsets(args.baselines)
    from watcher.times import parse_duration

    offsets = [-parse_duration(b.lstrip("-")) for b in baselines]
    # A whole minute a little in the past: every window lies in the sandbox's lookback.
    scheduled_at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)

    print(f"machine: {machine()}")
    print(
        f"latency {args.latency * 1000:.0f} ms on SelectMergeStacktraces and LabelValues; "
        f"{args.types} profile type(s); baselines {', '.join(baselines)}; "
        f"{STACKS} stacks a profile; one regressed pair in {args.regressed_every}; "
        f"{args.shards} sandbox process(es)"
        + ("; httpx's default connection pool" if args.httpx_default_pool else "")
    )
    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="pyrowatch-throughput-"))
    sandbox = Sandboxes(args.shards)
    try:
        template = tmp / "template.db"
        upgrade(f"sqlite:///{template}")
        print(HEADER)
        runs: list[tuple[int, int, int]] = [(n, c, 0) for n in pair_counts for c in pools]
        if args.profile:
            runs.append((GOAL_PAIRS, pools[0], args.profile))
        loaded_for: int | None = None
        for pairs, pool, profile in runs:
            if loaded_for != pairs:
                sandbox.faults(0)
                started = time.perf_counter()
                count = sandbox.load(
                    records(pairs, args.types, scheduled_at, offsets, args.regressed_every)
                )
                print(
                    f"# loaded {count} profiles for {pairs} pairs in "
                    f"{time.perf_counter() - started:.1f} s"
                )
                loaded_for = pairs
            sandbox.faults(args.latency)
            attempts = []
            for attempt in range(1 if profile else max(args.repeat, 1)):
                run_dir = tmp / f"run-{pairs}-{pool}-{profile}-{attempt}"
                run_dir.mkdir()
                database = run_dir / "watcher.db"
                shutil.copyfile(template, database)
                spec = {
                    "url": sandbox.urls[0],
                    "shards": sandbox.urls,
                    "database_url": f"sqlite:///{database}",
                    "workdir": str(run_dir),
                    "concurrency": pool,
                    "types": args.types,
                    "baselines": baselines,
                    "scheduled_at": scheduled_at.isoformat(),
                    "profile": profile,
                    "httpx_default_pool": args.httpx_default_pool,
                }
                cpu_before = sandbox.cpu_seconds()
                attempt_row = run_child(spec)
                attempt_row["sandbox_cpu_seconds"] = sandbox.cpu_seconds() - cpu_before
                attempt_row["load"] = os.getloadavg()[0]
                shutil.rmtree(run_dir, ignore_errors=True)
                attempts.append(attempt_row)
            # The run with the median cycle time stands for the configuration.
            attempts.sort(key=lambda r: r["seconds"])
            row = attempts[len(attempts) // 2]
            row["all_seconds"] = [round(r["seconds"], 2) for r in attempts]
            row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in attempts)
            status = ", ".join(f"{k} {v}" for k, v in sorted(row["statuses"].items()))
            print(format_row(row, status + (" (profiled)" if profile else "")))
            phases = ", ".join(
                f"{k} {v:.2f}" for k, v in row["phases"].items() if "connect" not in k
            )
            print(
                f"#   phases (s): {phases}; runs (s): {row['all_seconds']}; "
                f"failed connects: {int(row['phases']['failed_connects'])}"
            )
            for error in row["errors"]:
                print(f"#   failed pair: {error}")
            if profile:
                print(row["profile"])
            else:
                rows.append(row)
    finally:
        sandbox.close()
        shutil.rmtree(tmp, ignore_errors=True)

    for row in rows:
        row.pop("profile", None)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    verdicts = [r for r in rows if r["pairs"] == GOAL_PAIRS]
    for row in verdicts:
        ok = row["seconds"] < GOAL_S and row["peak_rss_mb"] < GOAL_RSS_MB
        ok = ok and row["statuses"].get("ok", 0) == row["pairs"]
        print(
            f"goal ({GOAL_PAIRS} pairs, concurrency {row['concurrency']}): "
            f"{'PASS' if ok else 'MISS'}: {row['seconds']:.1f} s of {GOAL_S:.0f} s "
            f"({row['seconds'] / GOAL_S:.0%}), peak RSS {row['peak_rss_mb']:.0f} MB of "
            f"{GOAL_RSS_MB:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
