"""Which windows a run queries, and how the persistence check uses them.

A run fetches the current window and its baselines first; the previous window only when
detection has a candidate or the pair has an open regression; the previous window's own
baselines (the previous window shifted by each offset) only when there is a candidate.
The sandbox's querier records every query it answers, so the counts are the server's.

The fleet (CPU, watch window 1 h, baselines -1d and -2d, check at ``T``) has four services,
each with one function near a 3 % share:

- ``quiet``: no change.
- ``spiky``: a job raises the function 1.6x every day in ``[T - 2h, T - 1h)`` (so the
  previous window is ordinary for its hour), and a one-window spike raises it 1.6x in
  ``[T - 1h, T)``. Against the current window's baselines (an hour later in the day) the
  previous window looks raised.
- ``stepped``: 1.5x from ``T - 2h`` on: raised in the current and the previous window.
- ``recovering``: 1.6x during ``[T - 5h, T - 2h)``: found at ``T - 2h``, gone at ``T``.

Profiles sit at 5, 15, ... minutes past the hour, so no profile lies on a window edge
(ranges include both ends), and the data begins 5 minutes after ``T - 2d - 5h``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from watcher.daemon.delivery import drain
from watcher.daemon.jobs import Windows, run_watch
from watcher.sandbox.query import Querier

from .support import CPU, SECRET_PATH, Clock, ConfigWriter, webhook_alerts

T = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
BASELINES = ("-1d", "-2d")
SMS = "SelectMergeStacktraces"


@dataclass(frozen=True)
class Query:
    method: str
    #: ``service_name`` the query is about (``""`` for the service listing).
    service: str
    #: The label asked for (``LabelValues``), else ``""``.
    name: str
    start: datetime
    end: datetime


class RecordingQuerier(Querier):
    """The sandbox's querier, recording every query it answers."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.queries: list[Query] = []
        self._lock = threading.Lock()

    def call(self, method: str, request: Any, ctx: Any) -> Any:
        selectors = [str(request.label_selector)] if method == SMS else list(request.matchers)
        service = ""
        for selector in selectors:
            if 'service_name="' in selector:
                service = selector.split('service_name="', 1)[1].split('"', 1)[0]
        query = Query(
            method=method,
            service=service,
            name=str(getattr(request, "name", "") or "") if method == "LabelValues" else "",
            start=datetime.fromtimestamp(int(request.start) / 1000, UTC),
            end=datetime.fromtimestamp(int(request.end) / 1000, UTC),
        )
        with self._lock:
            self.queries.append(query)
        return super().call(method, request, ctx)

    def take(self) -> list[Query]:
        """The queries since the last call."""
        with self._lock:
            queries, self.queries = self.queries, []
        return queries


@dataclass
class Fleet:
    sandbox: Any
    querier: RecordingQuerier
    #: The function each service changes (``quiet``: the one it would).
    functions: dict[str, str]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    from watcher.sandbox.fleet import (
        Event,
        FleetSpec,
        StepRegression,
        TransientSpike,
        expected_shares,
        load_fleet,
    )
    from watcher.sandbox.server import Sandbox
    from watcher.sandbox.store import ProfileStore

    services = ("quiet", "spiky", "stepped", "recovering")
    base = FleetSpec(
        start=T - 2 * DAY - 5 * HOUR + timedelta(minutes=5),
        end=T + timedelta(minutes=5),
        services=services,
        profile_types=(CPU,),
        samples_per_profile=100_000.0,
        seed=5,
    )
    functions: dict[str, str] = {}
    for service in services:
        shares = expected_shares(base, service, CPU, "self")
        functions[service] = min(sorted(shares), key=lambda name: abs(shares[name] - 0.03))
    spiky, stepped, recovering = functions["spiky"], functions["stepped"], functions["recovering"]
    events: tuple[Event, ...] = (
        *(TransientSpike("spiky", spiky, 1.6, T - 2 * HOUR - d * DAY, HOUR) for d in (0, 1, 2)),
        TransientSpike("spiky", spiky, 1.6, T - HOUR, HOUR),
        StepRegression("stepped", stepped, 1.5, T - 2 * HOUR),
        TransientSpike("recovering", recovering, 1.6, T - 5 * HOUR, 3 * HOUR),
    )
    spec = FleetSpec(
        start=base.start,
        end=base.end,
        services=base.services,
        profile_types=base.profile_types,
        samples_per_profile=base.samples_per_profile,
        seed=base.seed,
        events=events,
    )
    store = ProfileStore()
    load_fleet(store, spec)
    moment = (T + timedelta(minutes=1)).timestamp()
    server = Sandbox(store, clock=lambda: moment)
    querier = RecordingQuerier(store)
    server.querier = querier
    with server:
        yield Fleet(server, querier, functions)


@pytest.fixture
def writer(tmp_path: Path, fleet: Fleet, sink: Any, database_url: str) -> ConfigWriter:
    return ConfigWriter(
        path=tmp_path / "config.toml",
        sandbox_url=fleet.sandbox.url,
        database_url=database_url,
        channels=[{"name": "hook", "kind": "webhook", "url": sink.url + SECRET_PATH}],
    )


def _app(writer: ConfigWriter, make_app: Callable[..., Any], clock: Clock, *services: str) -> Any:
    return make_app(writer.settings(services=services, baselines=BASELINES), clock=clock)


def _check(app: Any, clock: Clock, at: datetime, **kwargs: Any) -> Any:
    """A check as ``pyrowatch check --at`` does it: run (no claims), then deliver."""
    clock.set(at + timedelta(minutes=1))
    result = run_watch(app, app.settings.watcher.watch[0], scheduled_at=at, claim=False, **kwargs)
    drain(app)
    return result


def _pair(result: Any, service: str) -> Any:
    (pair,) = [p for p in result.pairs if p.service == service]
    return pair


def _trees(queries: list[Query], service: str) -> list[tuple[datetime, datetime]]:
    return sorted((q.start, q.end) for q in queries if q.method == SMS and q.service == service)


def _ranges(*windows: Any) -> list[tuple[datetime, datetime]]:
    return sorted((w.start, w.end) for w in windows)


def _versions(queries: list[Query], service: str) -> list[Query]:
    return [q for q in queries if q.method == "LabelValues" and q.service == service]


def test_a_quiet_pair_queries_only_the_current_window_and_its_baselines(
    writer: ConfigWriter, fleet: Fleet, make_app: Callable[..., Any]
) -> None:
    """No candidate and no open regression: 1 + len(baselines) queries, no previous window,
    and no note that persistence went unchecked (nothing needed it)."""
    clock = Clock(T)
    app = _app(writer, make_app, clock, "quiet")
    windows = Windows.of(app.settings.watcher.watch[0], T)
    fleet.querier.take()

    result = _check(app, clock, T)

    queries = fleet.querier.take()
    pair = _pair(result, "quiet")
    assert (pair.status, pair.findings, pair.cost_shifts, pair.warnings) == ("ok", (), (), ())
    assert _trees(queries, "quiet") == _ranges(windows.current, *windows.baselines)
    assert pair.query_count == 1 + len(BASELINES) == 3
    assert _versions(queries, "quiet") == []
    assert not any("persistence" in note for note in pair.notes), pair.notes
    (snapshot,) = app.repo.snapshots("quiet", CPU)
    assert snapshot.window_end == T


def test_a_one_window_spike_ordinary_for_its_hour_is_not_alerted(
    writer: ConfigWriter, fleet: Fleet, sink: Any, make_app: Callable[..., Any]
) -> None:
    """The spike is a candidate, so the previous window and its own baselines are fetched;
    at its own hour of the day the previous window is ordinary, so nothing is alerted."""
    from watcher.analysis.detect import DetectionContext, detect
    from watcher.analysis.tables import parents_from_stacks
    from watcher.flamegraph import FunctionTable

    clock = Clock(T)
    app = _app(writer, make_app, clock, "spiky")
    windows = Windows.of(app.settings.watcher.watch[0], T)
    fleet.querier.take()

    result = _check(app, clock, T)

    queries = fleet.querier.take()
    pair = _pair(result, "spiky")
    assert (pair.status, pair.findings, pair.warnings) == ("ok", (), ())
    assert _trees(queries, "spiky") == _ranges(
        windows.current, windows.previous, *windows.baselines, *windows.previous_baselines
    )
    assert pair.query_count == 2 + 2 * len(BASELINES) == 6
    assert _versions(queries, "spiky") == []
    assert app.repo.regressions() == []
    assert sink.received == []

    # The trap is real: the previous window compared with the current window's baselines
    # (as before) "confirms" the spike.
    client = app.client("sandbox")

    def tree(rng: Any) -> Any:
        return client.select_merge_stacktraces(CPU, '{service_name="spiky"}', rng, fmt="tree")

    current = tree(windows.current)
    old = detect(
        FunctionTable.from_tree(current),
        [FunctionTable.from_tree(tree(rng)) for rng in windows.baselines],
        previous=FunctionTable.from_tree(tree(windows.previous)),
        context=DetectionContext("spiky", CPU, windows.current.start, windows.current.end),
        parents=parents_from_stacks(stack for stack, _ in current.stacks()),
    )
    assert [(f.function, f.persistent) for f in old.findings] == [(fleet.functions["spiky"], True)]


def test_a_step_in_two_windows_is_alerted_as_persistent(
    writer: ConfigWriter, fleet: Fleet, sink: Any, make_app: Callable[..., Any]
) -> None:
    """Raised in the current and the previous window, against each one's own baselines:
    alerted once, ``persistent=True``, with the version lookups of a finding."""
    clock = Clock(T)
    app = _app(writer, make_app, clock, "stepped")
    windows = Windows.of(app.settings.watcher.watch[0], T)
    fleet.querier.take()

    result = _check(app, clock, T)

    queries = fleet.querier.take()
    pair = _pair(result, "stepped")
    assert pair.status == "ok"
    assert [(f.function, f.kind, f.persistent) for f in pair.findings] == [
        (fleet.functions["stepped"], "self", True)
    ]
    assert pair.findings[0].change_time == windows.previous.start
    assert _trees(queries, "stepped") == _ranges(
        windows.current, windows.previous, *windows.baselines, *windows.previous_baselines
    )
    versions = _versions(queries, "stepped")
    assert {q.name for q in versions} == {"version"}
    assert sorted((q.start, q.end) for q in versions) == _ranges(
        windows.current, windows.previous, *windows.baselines
    )
    assert pair.query_count == 2 + 2 * len(BASELINES) + 2 + len(BASELINES)
    (regression,) = app.repo.regressions(open_only=True)
    assert regression.function == fleet.functions["stepped"]
    alerts = webhook_alerts([r.json for r in sink.received])
    assert [a["labels"]["function"] for a in alerts] == [fleet.functions["stepped"]]


def test_an_open_regression_fetches_the_previous_window_and_resolves(
    writer: ConfigWriter, fleet: Fleet, sink: Any, make_app: Callable[..., Any]
) -> None:
    """Quiet again, but with an open regression: the previous window is fetched (its share
    decides resolution), its baselines are not, and the regression resolves."""
    clock = Clock(T - 2 * HOUR)
    app = _app(writer, make_app, clock, "recovering")
    function = fleet.functions["recovering"]
    opened = _check(app, clock, T - 2 * HOUR)
    assert [(f.function, f.persistent) for f in opened.findings] == [(function, True)]
    windows = Windows.of(app.settings.watcher.watch[0], T)
    fleet.querier.take()

    result = _check(app, clock, T)

    queries = fleet.querier.take()
    pair = _pair(result, "recovering")
    assert (pair.status, pair.findings, pair.warnings) == ("ok", (), ())
    assert pair.resolved == (function,)
    assert _trees(queries, "recovering") == _ranges(
        windows.current, windows.previous, *windows.baselines
    )
    assert pair.query_count == 2 + len(BASELINES)
    assert app.repo.regressions(open_only=True) == []
    statuses = [r.json["status"] for r in sink.received]
    assert statuses == ["firing", "resolved"]


def test_an_empty_baseline_of_the_previous_window_is_warned_and_nothing_alerted(
    writer: ConfigWriter, fleet: Fleet, make_app: Callable[..., Any]
) -> None:
    """At ``T - 4h`` the previous window's -2d baseline lies before the data: the candidate
    cannot be confirmed, and the pair's warning says so."""
    at = T - 4 * HOUR
    clock = Clock(at)
    app = _app(writer, make_app, clock, "recovering")
    windows = Windows.of(app.settings.watcher.watch[0], at)
    fleet.querier.take()

    result = _check(app, clock, at, dry_run=True)

    queries = fleet.querier.take()
    pair = _pair(result, "recovering")
    assert (pair.status, pair.findings) == ("ok", ())
    assert pair.warnings == (
        "no data in the previous window's -2d baseline: a change cannot be confirmed "
        "without it, so nothing is alerted this run",
    )
    assert _trees(queries, "recovering") == _ranges(
        windows.current, windows.previous, *windows.baselines, *windows.previous_baselines
    )
