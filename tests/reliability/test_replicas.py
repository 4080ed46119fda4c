"""Several replicas against one PostgreSQL: the work is split by database claims, each
regression is alerted once, and a killed replica's pairs are taken over at the next
scheduled time.

The fleet here has six services (six pairs per run). Replicas are
:class:`~watcher.daemon.app.App` instances released together by a barrier, and, for the
kill, a separate process (``_replica.py``) that claims its pairs and is SIGKILLed while
its queries hang.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from daemon.support import (
    CPU,
    REGRESSION_LENGTH,
    REGRESSION_START,
    T0,
    Clock,
    hook_config,
    open_sandbox,
    run_together,
)

from watcher.daemon.delivery import drain
from watcher.daemon.jobs import run_watch

from .support import (
    MINUTE,
    YEARLY,
    Config,
    Processes,
    SandboxControl,
    acked,
    alert_keys,
    query,
    wait_until,
)

SERVICES = ("checkout", "cart", "catalog", "search", "payments", "shipping")
SMS = "SelectMergeStacktraces"
REPLICA = Path(__file__).with_name("_replica.py")


@pytest.fixture(scope="module")
def six_services() -> tuple[Any, str]:
    """``(store, regressed function)``: six services around T0 (and a day before, for the
    baselines); checkout's chosen function runs +50 % from two hours before T0."""
    from watcher.sandbox.fleet import FleetSpec, TransientSpike, expected_shares, load_fleet
    from watcher.sandbox.store import ProfileStore

    samples = {name: 60_000.0 for name in SERVICES}
    samples.update({"checkout": 240_000.0, "cart": 120_000.0})
    base = FleetSpec(
        start=T0 - timedelta(hours=2),
        end=T0 + timedelta(minutes=30),
        services=SERVICES,
        profile_types=(CPU,),
        service_samples=samples,
        seed=11,
    )
    shares = expected_shares(base, "checkout", CPU, "self")
    function = min(sorted(shares), key=lambda name: abs(shares[name] - 0.03))
    spike = TransientSpike("checkout", function, 1.5, REGRESSION_START, REGRESSION_LENGTH)
    recent = dataclasses.replace(base, events=(spike,))
    day_before = dataclasses.replace(
        recent,
        start=T0 - timedelta(days=1, hours=1),
        end=T0 - timedelta(days=1) + timedelta(minutes=30),
    )
    store = ProfileStore()
    load_fleet(store, day_before)
    load_fleet(store, recent)
    return store, function


@pytest.fixture
def replica_sandbox(six_services: tuple[Any, str]) -> Iterator[Any]:
    with open_sandbox(six_services[0], T0 + timedelta(hours=1)) as server:
        yield server


@pytest.fixture
def replica_config(tmp_path: Path, replica_sandbox: Any, sink: Any, database_url: str) -> Config:
    path = tmp_path / "config.toml"
    return hook_config(path, replica_sandbox.url, database_url, sink, writer=Config)


def _evaluations(url: str) -> Counter[tuple[Any, str]]:
    """How many times each (scheduled time, service) was evaluated, across every replica."""
    rows = query(
        url,
        "SELECT r.scheduled_at, p.service FROM pair_results p JOIN runs r ON r.id = p.run_id "
        "WHERE p.status = 'ok'",
    )
    return Counter((row["scheduled_at"], row["service"]) for row in rows)


def test_three_replicas_split_every_run_and_alert_each_regression_once(
    replica_config: Config,
    six_services: tuple[Any, str],
    sink: Any,
    make_app: Callable[..., Any],
) -> None:
    """Three replicas fire at the same scheduled times: each pair is claimed once and
    evaluated once per time (database claims, no coordinator), the others record it as
    claimed elsewhere; the regression is stored once and alerted once."""
    settings = replica_config.settings(services=SERVICES, schedule=YEARLY)
    watch = settings.watcher.watch[0]
    clock = Clock(T0 + MINUTE)
    replicas = [make_app(settings, owner=f"replica-{n}", clock=clock) for n in (1, 2, 3)]
    times = (T0, T0 + 15 * MINUTE)

    results = []
    for at in times:
        clock.set(at + MINUTE)
        results += run_together(
            *(lambda app=app, at=at: run_watch(app, watch, scheduled_at=at) for app in replicas)
        )
        run_together(*(lambda app=app: drain(app) for app in replicas))

    for index, at in enumerate(times):
        of_time = results[3 * index : 3 * index + 3]
        ok = sorted(p.service for r in of_time for p in r.pairs if p.status == "ok")
        claimed = Counter(p.service for r in of_time for p in r.pairs if p.status == "claimed")
        assert ok == sorted(SERVICES), at
        assert claimed == Counter({s: 2 for s in SERVICES}), at
    assert set(_evaluations(replica_config.database_url).values()) == {1}
    claims = query(
        replica_config.database_url,
        "SELECT scheduled_at, service, count(*) AS n FROM pair_claims "
        "GROUP BY scheduled_at, service",
    )
    assert len(claims) == 12 and {c["n"] for c in claims} == {1}
    regressions = query(replica_config.database_url, "SELECT function, seen_count FROM regressions")
    assert regressions == [{"function": six_services[1], "seen_count": 2}]
    assert alert_keys(acked(sink)) == [("firing", six_services[1])]
    assert len(sink.received) == 1


def test_a_killed_replicas_pairs_are_taken_over_at_the_next_schedule(
    replica_config: Config,
    replica_sandbox: Any,
    six_services: tuple[Any, str],
    sink: Any,
    make_app: Callable[..., Any],
    processes: Processes,
) -> None:
    """A replica process claims every pair of T0 and is SIGKILLed while its queries hang.
    Its claims stand for T0 (the survivors skip those pairs); at T0+15m the two survivors
    evaluate all six pairs between them, once each, and the regression is alerted once."""
    path = replica_config.write(services=SERVICES, schedule=YEARLY)
    settings = replica_config.settings(services=SERVICES, schedule=YEARLY)
    watch = settings.watcher.watch[0]
    control = SandboxControl(replica_sandbox.url)
    control.faults({SMS: {"latency": 600}})
    doomed = processes.start(
        str(REPLICA),
        str(path),
        T0.isoformat(),
        "replica-doomed",
        config=path,
        program=sys.executable,
    )

    def claimed_by_doomed() -> bool:
        rows = query(
            replica_config.database_url,
            "SELECT count(*) AS n FROM pair_claims WHERE owner = 'replica-doomed'",
        )
        return rows[0]["n"] == len(SERVICES) and control.hits(SMS) >= 1 or not doomed.alive()

    wait_until(claimed_by_doomed, what="the doomed replica to claim its pairs and query")
    assert doomed.alive(), doomed
    assert doomed.kill() == -signal.SIGKILL
    control.faults({})

    clock = Clock(T0 + MINUTE)
    survivors = [make_app(settings, owner=f"survivor-{n}", clock=clock) for n in (1, 2)]
    skipped = run_together(
        *(lambda app=app: run_watch(app, watch, scheduled_at=T0) for app in survivors)
    )
    clock.set(T0 + 16 * MINUTE)
    taken = run_together(
        *(lambda app=app: run_watch(app, watch, scheduled_at=T0 + 15 * MINUTE) for app in survivors)
    )
    run_together(*(lambda app=app: drain(app) for app in survivors))

    assert {p.status for r in skipped for p in r.pairs} == {"claimed"}
    ok = sorted(p.service for r in taken for p in r.pairs if p.status == "ok")
    assert ok == sorted(SERVICES)
    owners = query(
        replica_config.database_url,
        "SELECT DISTINCT owner FROM pair_claims WHERE scheduled_at > :t",
        t=T0,
    )
    assert {o["owner"] for o in owners} <= {"survivor-1", "survivor-2"}
    assert [f.function for r in taken for f in r.findings] == [six_services[1]]
    assert alert_keys(acked(sink)) == [("firing", six_services[1])]
    assert len(sink.received) == 1
