"""Benchmark: snapshot writes, database growth and retention pruning, on SQLite and PostgreSQL.

One *cycle* is what a watcher run stores for ``--pairs`` service x profile-type pairs: one
snapshot per pair with its top ``--functions`` functions, written through
``Repository.save_snapshots``. Cycles are 15 minutes apart (the default schedule). The
benchmark

1. times each cycle's writes: in batches of the daemon's size (``SNAPSHOT_BATCH``), and
   once as a single call and once as one call per pair, to show what batching buys;
2. measures how much the database grows per cycle (tables, indexes and TOAST on PostgreSQL;
   used pages after a WAL checkpoint on SQLite), per pair per day at a 15-minute cadence,
   and what a retention window holds at that rate;
3. prunes the older half with ``Repository.prune`` at the daemon's batch size and reports the
   transactions it used (count, rows and time per transaction), to show the batches are
   bounded.

Function names are synthetic, Go-like (``github.com/org/repo/pkg.(*Type).Method``), with
the mean length given by ``--name-length`` (46 by default: the mean of the Go profiles in
Pyroscope's test data). Growth scales with it.

PostgreSQL: a throwaway database is created on the server of ``--pg-url`` (default
``$PYROWATCH_TEST_PG_URL``, as set by ``eval "$(bash scripts/pg start)"``) and dropped at
the end; without a URL only SQLite runs.

Run: ``python bench/storage.py [--pairs 1000] [--functions 500] [--cycles 6]``.
Goal (issue 7, goal 5): one cycle of 1,000 pairs x top-500 functions written in under 5 s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url

from watcher.store.db import make_engine, upgrade
from watcher.store.records import FunctionStat, SnapshotInput
from watcher.store.repo import Repository

GOAL_S = 5.0
CADENCE = timedelta(minutes=15)
CYCLES_PER_DAY = int(timedelta(days=1) / CADENCE)
PROFILE_TYPES = (
    "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
    "memory:alloc_space:bytes:space:bytes",
    "memory:inuse_space:bytes:space:bytes",
)
START = datetime(2026, 1, 5, tzinfo=UTC)


def daemon_batches() -> tuple[int, int]:
    """The daemon's snapshot batch and prune batch sizes (100 and 500 if it cannot load)."""
    try:
        from watcher.daemon.jobs import SNAPSHOT_BATCH
        from watcher.daemon.scheduler import PRUNE_BATCH
    except ImportError:  # pragma: no cover - the daemon package is optional here
        return 100, 500
    return SNAPSHOT_BATCH, PRUNE_BATCH


# --------------------------------------------------------------------------- data


def name_pool(size: int, mean_length: int, rng: random.Random) -> list[str]:
    """Go-like function names whose mean length is about ``mean_length``."""
    words = [
        "server",
        "handler",
        "cache",
        "codec",
        "query",
        "store",
        "index",
        "merge",
        "parse",
        "render",
        "client",
        "stream",
        "buffer",
        "encode",
        "decode",
        "worker",
    ]
    names: list[str] = []
    while len(names) < size:
        pkg = f"github.com/org{rng.randrange(20)}/{rng.choice(words)}/{rng.choice(words)}"
        func = f"({rng.choice(words).title()}{rng.randrange(500)}).{rng.choice(words).title()}"
        name = f"{pkg}.{func}"
        target = max(8, int(rng.gauss(mean_length, mean_length / 4)))
        while len(name) < target:
            name += f".func{rng.randrange(10)}"
        names.append(name[-target:])
    return names


@dataclass
class Fleet:
    """The pairs of the benchmark and the function names each one reports."""

    pairs: list[tuple[str, str]]
    functions: list[list[str]]
    rng: random.Random = field(default_factory=lambda: random.Random(3))

    @classmethod
    def make(cls, n_pairs: int, n_functions: int, name_length: int) -> Fleet:
        rng = random.Random(1)
        pool = name_pool(max(20_000, n_functions * 4), name_length, rng)
        pairs = [(f"svc-{i // 3:04d}", PROFILE_TYPES[i % 3]) for i in range(n_pairs)]
        # Pairs of one service share most function names, as real profile types do.
        functions = []
        for i in range(n_pairs):
            base = (i // 3) * 97 % len(pool)
            names = {pool[(base + j) % len(pool)] for j in range(n_functions)}
            while len(names) < n_functions:
                names.add(rng.choice(pool))
            functions.append(sorted(names))
        return cls(pairs, functions)

    def cycle(self, index: int) -> tuple[datetime, list[SnapshotInput]]:
        """Every pair's snapshot of cycle ``index`` and the time it is written."""
        end = START + index * CADENCE
        snapshots = []
        for (service, ptype), names in zip(self.pairs, self.functions, strict=True):
            stats = []
            for name in names:
                self_value = int(self.rng.paretovariate(1.2) * 10_000_000)
                stats.append(FunctionStat(name, self_value, self_value * self.rng.randint(1, 40)))
            snapshots.append(
                SnapshotInput(
                    service=service,
                    profile_type=ptype,
                    deployment="prod",
                    window_start=end - timedelta(hours=1),
                    window_end=end,
                    selector=f'{{service_name="{service}"}}',
                    total_value=sum(s.total_value for s in stats),
                    sample_count=float(self.rng.randint(10_000, 400_000)),
                    functions=stats,
                    truncated_share=round(self.rng.random() * 0.02, 4),
                    labels={"service_name": service, "namespace": "prod"},
                    version=f"v1.{index % 7}.0",
                )
            )
        return end, snapshots


# --------------------------------------------------------------------------- databases


@dataclass
class Backend:
    name: str
    url: str
    engine: Engine
    size: Any  # () -> bytes used by the snapshot tables

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def sqlite_backend(directory: str) -> Iterator[Backend]:
    path = Path(directory) / "bench.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)

    def size() -> int:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            page = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
        return int((pages - free) * page)

    backend = Backend("SQLite", url, engine, size)
    try:
        yield backend
    finally:
        backend.close()


@contextmanager
def postgres_backend(base_url: str) -> Iterator[Backend]:
    base = make_url(base_url)
    name = f"pyrowatch_bench_{os.getpid()}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.set(database=name)
    engine = None
    try:
        upgrade(url)
        engine = make_engine(url)

        def size() -> int:
            with engine.connect() as conn:
                return int(
                    conn.execute(
                        text(
                            "SELECT pg_total_relation_size('snapshots') "
                            "+ pg_total_relation_size('snapshot_functions')"
                        )
                    ).scalar_one()
                )

        yield Backend("PostgreSQL", url.render_as_string(hide_password=True), engine, size)
    finally:
        if engine is not None:
            engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class Transactions:
    """Counts committed transactions on an engine and how long each one took."""

    def __init__(self, engine: Engine) -> None:
        self.durations: list[float] = []
        self._started: dict[int, float] = {}
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._commit)

    def _begin(self, conn: Any) -> None:
        self._started[id(conn)] = time.perf_counter()

    def _commit(self, conn: Any) -> None:
        start = self._started.pop(id(conn), None)
        if start is not None:
            self.durations.append(time.perf_counter() - start)

    def take(self) -> list[float]:
        taken, self.durations = self.durations, []
        return taken


# --------------------------------------------------------------------------- the benchmark


def run_backend(backend: Backend, fleet: Fleet, cycles: int) -> dict[str, Any]:
    batch, prune_batch = daemon_batches()
    repo = Repository(backend.engine)
    plans = [batch, len(fleet.pairs), 1] + [batch] * max(cycles - 3, 0)
    plans = plans[:cycles]
    sizes = [backend.size()]
    writes: list[tuple[int, float, int]] = []
    ends: list[datetime] = []
    for index, per_call in enumerate(plans):
        end, snapshots = fleet.cycle(index)
        rows = sum(len(s.functions) for s in snapshots)
        t0 = time.perf_counter()
        for start in range(0, len(snapshots), per_call):
            repo.save_snapshots(snapshots[start : start + per_call], now=end)
        writes.append((per_call, time.perf_counter() - t0, rows))
        ends.append(end)
        sizes.append(backend.size())

    growth = [b - a for a, b in zip(sizes, sizes[1:], strict=False)]
    per_cycle = statistics.median(growth)

    # Retention: prune the older half of the cycles, in the daemon's batches.
    tx = Transactions(backend.engine)
    keep_from = ends[len(ends) // 2]
    t0 = time.perf_counter()
    deleted = repo.prune(keep_from, batch_size=prune_batch)
    prune_s = time.perf_counter() - t0
    durations = tx.take()
    size_after = backend.size()
    remaining = len(repo.snapshots(fleet.pairs[0][0], fleet.pairs[0][1], limit=10_000))
    return {
        "writes": writes,
        "batch": batch,
        "growth": growth,
        "per_cycle": per_cycle,
        "size": sizes[-1],
        "prune_batch": prune_batch,
        "deleted": deleted,
        "prune_s": prune_s,
        "prune_tx": durations,
        "size_after_prune": size_after,
        "remaining_cycles": remaining,
        "pruned_cycles": len(ends) // 2,
    }


def compact_size(fleet: Fleet) -> float:
    """Mean bytes of one snapshot's function table as zlib-compressed JSON (a comparison)."""
    import json
    import zlib

    _, snapshots = fleet.cycle(0)
    sizes = [
        len(
            zlib.compress(
                json.dumps(
                    [[f.function, f.self_value, f.total_value] for f in s.functions]
                ).encode(),
                6,
            )
        )
        for s in snapshots[:100]
    ]
    return statistics.mean(sizes)


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def report(name: str, r: dict[str, Any], pairs: int, functions: int) -> list[str]:
    lines = [f"\n### {name}\n"]
    lines.append("| cycle | snapshots per call | calls | function rows | seconds | goal < 5 s |")
    lines.append("|---:|---:|---:|---:|---:|---|")
    for i, (per_call, seconds, rows) in enumerate(r["writes"], start=1):
        calls = -(-pairs // per_call)
        verdict = ""
        if per_call == r["batch"]:
            over = seconds - GOAL_S
            verdict = "PASS" if over <= 0 else f"MISS by {over:.1f} s"
        lines.append(
            f"| {i} | {per_call:,} | {calls:,} | {rows:,} | **{seconds:.2f}** | {verdict} |"
        )
    daemon = [s for p, s, _ in r["writes"] if p == r["batch"]]
    lines.append(
        f"\nAt the daemon's batch size ({r['batch']} snapshots per call): median "
        f"**{statistics.median(daemon):.2f} s** per cycle of {pairs:,} pairs."
    )
    per_pair_cycle = r["per_cycle"] / pairs
    per_pair_day = per_pair_cycle * CYCLES_PER_DAY
    lines += [
        "",
        "| growth | bytes |",
        "|---|---:|",
        f"| per cycle ({pairs:,} pairs, median of {len(r['growth'])}) "
        f"| {r['per_cycle']:,.0f} ({mib(r['per_cycle'])} MiB) |",
        f"| per snapshot (one pair, one cycle) | {per_pair_cycle:,.0f} |",
        f"| per function row | {per_pair_cycle / functions:,.1f} |",
        f"| **per pair per day** (15-minute cadence, {CYCLES_PER_DAY} snapshots) "
        f"| **{per_pair_day:,.0f} ({mib(per_pair_day)} MiB)** |",
        f'| {pairs:,} pairs, 30 days (`retention = "30d"`) '
        f"| {per_pair_day * pairs * 30:,.0f} ({per_pair_day * pairs * 30 / 2**30:,.1f} GiB) |",
    ]
    tx = r["prune_tx"]
    lines += [
        "",
        f"Prune of the older {r['pruned_cycles']} cycles at batch size {r['prune_batch']}: "
        f"{r['deleted']:,} rows deleted in {r['prune_s']:.2f} s over {len(tx)} transactions "
        f"(median {statistics.median(tx) * 1000:.0f} ms, longest {max(tx) * 1000:.0f} ms); "
        f"each deletes at most {r['prune_batch']} snapshots and their function rows "
        f"(≤ {r['prune_batch'] * functions:,}). The newest {r['remaining_cycles']} cycles "
        f"remain. Space in use after the prune: {mib(r['size_after_prune'])} MiB "
        f"(before: {mib(r['size'])} MiB).",
    ]
    return lines


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--functions", type=int, default=500)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--name-length", type=int, default=46)
    parser.add_argument("--pg-url", default=os.environ.get("PYROWATCH_TEST_PG_URL"))
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(argv)
    if args.cycles < 4:
        parser.error("--cycles must be at least 4 (three write plans, then growth)")

    fleet = Fleet.make(args.pairs, args.functions, args.name_length)
    mean_name = statistics.mean(len(n) for names in fleet.functions for n in names)
    print("## Snapshot storage\n")
    print(
        f"{args.pairs:,} pairs x {args.functions} functions per snapshot, {args.cycles} "
        f"cycles 15 minutes apart; mean function name {mean_name:.0f} characters; "
        f"load average at start {os.getloadavg()[0]:.2f}."
    )
    results: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as directory, sqlite_backend(directory) as sqlite:
        results.append((sqlite.name, run_backend(sqlite, fleet, args.cycles)))
    if args.pg_url and not args.sqlite_only:
        with postgres_backend(args.pg_url) as pg:
            results.append((pg.name, run_backend(pg, fleet, args.cycles)))
    else:
        print("\nPostgreSQL skipped: no --pg-url and no PYROWATCH_TEST_PG_URL.")
    for name, result in results:
        for line in report(name, result, args.pairs, args.functions):
            print(line)
    blob = compact_size(fleet)
    print(
        f"\nFor comparison: one snapshot's function table as zlib-compressed JSON (one value "
        f"per snapshot instead of {args.functions} rows) takes {blob:,.0f} bytes, "
        f"{blob * CYCLES_PER_DAY / 2**20:,.1f} MiB per pair per day."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
