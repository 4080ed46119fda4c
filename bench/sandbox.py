"""Benchmark: the sandbox holding a week of a 20-service synthetic fleet.

20 services x 3 profile types x one profile per 10 minutes x 7 days = 60,480 profiles of a
few hundred stacks each. Times the fleet generation, the store ingest rate and the memory
the store takes, then the latency of Querier calls over real HTTP (Connect JSON, gzip
accepted, as a client sends them). Prints markdown tables.

Run: ``python bench/sandbox.py [--quick]`` (``--quick``: 5 services, 2 days).
Goal: SelectMergeStacktraces over a day of the whole fleet well under a second.
"""

from __future__ import annotations

import gc
import itertools
import resource
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from watcher.sandbox import ProfileStore, Sandbox
from watcher.sandbox.fleet import FleetSpec, generate

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
ALLOC = "memory:alloc_space:bytes:space:bytes"
INUSE = "memory:inuse_space:bytes:space:bytes"
Q = "/querier.v1.QuerierService/"
REPEAT = 5


def rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Any, repeat: int = REPEAT) -> tuple[float, float, Any]:
    samples = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), max(samples), result


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    services = 5 if quick else 20
    days = 2 if quick else 7
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    spec = FleetSpec(
        start=end - timedelta(days=days),
        end=end,
        services=tuple(f"svc-{i:02d}" for i in range(services)),
        profile_types=(CPU, ALLOC, INUSE),
        step=timedelta(minutes=10),
        samples_per_profile=20_000,
        functions=300,
        seed=7,
    )

    gc.collect()
    rss_before = rss_mib()
    store = ProfileStore()
    gen_s = ingest_s = 0.0
    stack_count = 0
    records = generate(spec)
    while True:
        t0 = time.perf_counter()
        chunk = list(itertools.islice(records, 500))
        gen_s += time.perf_counter() - t0
        if not chunk:
            break
        stack_count += sum(len(r.stacks) for r in chunk)
        t0 = time.perf_counter()
        store.add_records(chunk)
        ingest_s += time.perf_counter() - t0
    del chunk
    gc.collect()
    rss_after = rss_mib()
    stats = store.stats()

    print(f"## Sandbox store: {services} services x 3 types x {days} days, 10-minute profiles\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| profiles | {stats.profiles:,} |")
    print(f"| series | {stats.series:,} |")
    print(f"| distinct stacks (interned) | {stats.stacks:,} |")
    print(f"| mean stacks per profile | {stack_count / stats.profiles:,.0f} |")
    print(f"| fleet generation | {gen_s:.1f} s |")
    rate = f"{stats.profiles / ingest_s:,.0f} profiles/s, {stack_count / ingest_s:,.0f} stacks/s"
    print(f"| store ingest | {ingest_s:.2f} s ({rate}) |")
    print(f"| peak RSS growth (generation + store) | {rss_after - rss_before:,.0f} MiB |")
    print(f"| peak RSS of the process | {rss_after:,.0f} MiB |")
    print()

    now_ms = int(end.timestamp() * 1000)
    day = 86_400_000
    one = '{service_name="svc-00"}'
    calls: list[tuple[str, str, dict[str, Any]]] = [
        (
            "SelectMergeStacktraces, 1 service, 1 h",
            "SelectMergeStacktraces",
            {
                "profileTypeID": CPU,
                "labelSelector": one,
                "start": now_ms - 3_600_000,
                "end": now_ms,
            },
        ),
        (
            "SelectMergeStacktraces, 1 service, 1 d",
            "SelectMergeStacktraces",
            {"profileTypeID": CPU, "labelSelector": one, "start": now_ms - day, "end": now_ms},
        ),
        (
            "SelectMergeStacktraces, whole fleet, 1 d",
            "SelectMergeStacktraces",
            {"profileTypeID": CPU, "labelSelector": "{}", "start": now_ms - day, "end": now_ms},
        ),
        (
            "SelectMergeStacktraces TREE, whole fleet, 1 d",
            "SelectMergeStacktraces",
            {
                "profileTypeID": CPU,
                "labelSelector": "{}",
                "start": now_ms - day,
                "end": now_ms,
                "format": "PROFILE_FORMAT_TREE",
            },
        ),
        (
            "Diff, 1 service, day vs previous day",
            "Diff",
            {
                "left": {
                    "profileTypeID": CPU,
                    "labelSelector": one,
                    "start": now_ms - 2 * day,
                    "end": now_ms - day,
                },
                "right": {
                    "profileTypeID": CPU,
                    "labelSelector": one,
                    "start": now_ms - day,
                    "end": now_ms,
                },
            },
        ),
        (
            "SelectSeries by service, 1 d, 10 min step",
            "SelectSeries",
            {
                "profileTypeID": CPU,
                "labelSelector": "{}",
                "start": now_ms - day,
                "end": now_ms,
                "step": 600,
                "groupBy": ["service_name"],
            },
        ),
        (
            "LabelValues service_name, 1 d",
            "LabelValues",
            {"name": "service_name", "start": now_ms - day, "end": now_ms},
        ),
        ("ProfileTypes, last hour", "ProfileTypes", {}),
    ]
    print("## Query latency over HTTP (median and max of 5)\n")
    print("| call | median | max | response bytes |")
    print("|---|---|---|---|")
    with Sandbox(store) as sandbox, httpx.Client(base_url=sandbox.url, timeout=120) as client:
        for label, method, body in calls:

            def run(method: str = method, body: dict[str, Any] = body) -> httpx.Response:
                response = client.post(Q + method, json=body)
                response.raise_for_status()
                return response

            median, worst, response = timed(run)
            size = len(response.content)
            print(f"| {label} | {median * 1000:,.0f} ms | {worst * 1000:,.0f} ms | {size:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
