"""One run of one watch: fetch, snapshot, detect, record, enqueue alerts.

:func:`run_watch` is a plain function the scheduler, ``pyrowatch check``, the demo and the
tests all call. For a watch and a scheduled time ``t`` (the end of the current window):

1. **Record the run** (``runs`` row, owner = this process).
2. **Expand services**: ``LabelValues(service_name)`` over ``[t - window, t]`` with the
   watch's selector; globs (``api-*``) match with :func:`fnmatch.fnmatchcase`; exact names
   are kept even when absent, and recorded as *skipped*.
3. **Claim** each service x profile type pair for ``t``; a pair another replica claimed
   is left to it, so every pair is evaluated once per scheduled time.
4. **Evaluate** claimed pairs on a bounded thread pool (``[watcher] concurrency``): the
   current window and each baseline window (same length, shifted by each ``baselines``
   offset) as flame graphs (``max_nodes`` from settings); function tables; a top-frame snapshot;
   detection (:func:`watcher.analysis.detect.detect`) with the watch's thresholds and the
   caller graph. The previous window is fetched only when that pass has a candidate (a
   finding or a cost shift) or the pair has open regressions (resolving one needs the
   previous window's shares); the previous window's own baselines (the previous window
   shifted by each offset) only when there is a candidate, which is then confirmed by
   running detection again with both (persistence compares the previous window with the
   same hour of earlier days, not with the current window's baselines). So a quiet pair
   costs ``1 + len(baselines)`` queries, a pair with a candidate up to
   ``2 + 2 * len(baselines)``. A warning is recorded when more than 1 % of a window was
   truncated or a baseline window is empty. When something is found, the ``version``
   label of the current, previous and baseline windows is looked up for attribution.
   That sequence is :func:`watcher.daemon.pair.evaluate_pair`, which the detection
   benchmark runs too; the thread pool, query metrics and snapshot are this module's.
   A failing pair is recorded with its (redacted) error and never stops the others.
5. **Store** the snapshots of all pairs in one batch.
6. **Commit and enqueue**, per pair, in one transaction: regressions are opened or
   updated, open ones back within 10 % of their baseline in both the current and the
   previous window are resolved (compare-and-swap), and the notifications
   :mod:`watcher.daemon.planning` decides on are enqueued under deterministic dedup keys.
   Delivery happens later (:mod:`watcher.daemon.delivery`): nothing is sent before the
   regression it describes is committed.
7. **Finish the run** with its counts, and log one canonical line.

``dry_run`` queries and detects but stores, claims and enqueues nothing; the findings are
in the returned :class:`RunResult`.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from watcher.daemon.pair import Windows
from watcher.errors import StoreError, WatcherError
from watcher.findings import Finding, FindingKind
from watcher.log import get_logger
from watcher.times import TimeRange

if TYPE_CHECKING:
    from watcher.alerts import AlertGroup, AlertStatus
    from watcher.analysis.detect import DetectionResult
    from watcher.config import WatchConfig
    from watcher.daemon.app import App
    from watcher.daemon.planning import TrackedRegression
    from watcher.flamegraph import FlameGraph, FunctionTable
    from watcher.querier import QuerierClient
    from watcher.selectors import Matcher
    from watcher.store.records import (
        OutboxEntry,
        RegressionChange,
        RegressionRecord,
        SnapshotInput,
    )

__all__ = [
    "PairReport",
    "RunResult",
    "Windows",
    "expand_services",
    "finding_from_record",
    "run_watch",
]

#: Functions kept in a snapshot, by self and by total (their union is stored).
SNAPSHOT_TOP = 500
#: Snapshots stored per transaction.
SNAPSHOT_BATCH = 100
#: Share of a window in truncation buckets above which a warning is recorded.
TRUNCATION_WARNING = 0.01
#: A regression resolves when its share is back within this fraction of its baseline.
RESOLVE_TOLERANCE = 0.10
#: Glob characters that make a ``services`` entry a pattern rather than a name.
_GLOB = frozenset("*?[")
log = get_logger("watcher.run")


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class PairReport:
    """How one (service, profile type) pair of a run went.

    ``status``: ``ok``, ``failed``, ``skipped`` (no data, or an absent exact name) or
    ``claimed`` (another replica evaluates it). ``warnings`` are about the data (truncation,
    empty baselines) and stored with the pair; ``notes`` are detection's remarks.
    """

    service: str
    profile_type: str
    status: str
    error: str | None = None
    findings: tuple[Finding, ...] = ()
    cost_shifts: tuple[Finding, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    enqueued: int = 0
    query_count: int = 0
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one run did; ``findings`` are every pair's, in pair order."""

    watch: str
    scheduled_at: datetime
    run_id: int | None
    status: str
    pairs: tuple[PairReport, ...]
    dry_run: bool = False
    error: str | None = None
    snapshots: int = 0

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for p in self.pairs for f in p.findings)

    @property
    def enqueued(self) -> int:
        return sum(p.enqueued for p in self.pairs)

    @property
    def resolved(self) -> tuple[str, ...]:
        return tuple(name for p in self.pairs for name in p.resolved)

    def count(self, status: str) -> int:
        return sum(1 for p in self.pairs if p.status == status)


# ---------------------------------------------------------------------------- evaluation


@dataclass(slots=True)
class _Evaluation:
    """The outcome of evaluating one pair (in a worker thread; no database access)."""

    service: str
    profile_type: str
    status: str = "ok"
    error: str | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: ``(function, kind) -> (current share, previous share)`` of the open regressions of
    #: the pair (the tables themselves are dropped once evaluated: a run may hold many pairs).
    shares: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    #: Whether both the current and the previous window hold data (``False`` when the
    #: previous window was not needed, so not fetched).
    comparable: bool = False
    result: DetectionResult | None = None
    snapshot: SnapshotInput | None = None
    query_count: int = 0
    query_seconds: float = 0.0
    duration: float = 0.0


class _Pair:
    """Fetches and evaluates one pair; counts its queries."""

    def __init__(
        self,
        app: App,
        watch: WatchConfig,
        client: QuerierClient,
        windows: Windows,
        service: str,
        profile_type: str,
        extra: Sequence[Matcher],
        watched: Sequence[tuple[str, str]] = (),
    ) -> None:
        from watcher.selectors import Matcher, format_selector

        self.watched = watched
        self.app = app
        self.watch = watch
        self.client = client
        self.windows = windows
        self.ev = _Evaluation(service, profile_type)
        self.selector = format_selector([Matcher("service_name", "=", service), *extra])

    def _timed(self, method: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            elapsed = time.perf_counter() - started
            self.ev.query_count += 1
            self.ev.query_seconds += elapsed
            self.app.metrics.query_seconds.labels(method).observe(elapsed)

    def graph(self, rng: TimeRange) -> FlameGraph:
        """The window's merged flame graph. (A flame graph rather than tree bytes: every
        server version answers it, and it decodes several times faster: its values are
        read by the JSON parser in C, where tree bytes take a Python loop per varint.)"""
        max_nodes = self.app.settings.watcher.max_nodes
        return cast(
            "FlameGraph",
            self._timed(
                "SelectMergeStacktraces",
                lambda: self.client.select_merge_stacktraces(
                    self.ev.profile_type, self.selector, rng, max_nodes
                ),
            ),
        )

    def versions(self, rng: TimeRange) -> tuple[str, ...]:
        values = self._timed(
            "LabelValues",
            lambda: self.client.label_values(self.watch.version_label, rng, [self.selector]),
        )
        return tuple(sorted(str(v) for v in values if v))

    def evaluate(self) -> _Evaluation:
        started = time.perf_counter()
        try:
            self._evaluate()
        except WatcherError as exc:
            self.ev.status = "failed"
            self.ev.reason = type(exc).__name__
            self.ev.error = self.app.redact(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # one broken pair must never stop the others
            self.ev.status = "failed"
            self.ev.reason = "unexpected"
            self.ev.error = self.app.redact(f"unexpected {type(exc).__name__}: {exc}")
            log.exception(
                "pair evaluation crashed",
                watch=self.watch.name,
                service=self.ev.service,
                profile_type=self.ev.profile_type,
            )
        self.ev.duration = time.perf_counter() - started
        return self.ev

    def _evaluate(self) -> None:
        from watcher.analysis.detect import DetectionThresholds
        from watcher.daemon.pair import FetchedWindow, PairOutcome, evaluate_pair

        ev, watch = self.ev, self.watch
        outcome = PairOutcome(self.windows)
        try:
            evaluate_pair(
                lambda rng: FetchedWindow(self.graph(rng)),
                self.windows,
                service=ev.service,
                profile_type=ev.profile_type,
                thresholds=DetectionThresholds(
                    min_relative_increase=watch.min_relative_increase,
                    min_share_increase=watch.min_share_increase,
                    min_samples=watch.min_samples,
                    alpha=watch.alpha,
                ),
                sample_rate_hz=self.app.settings.watcher.sample_rate_hz,
                labels=_selector_labels(watch.selector),
                versions=self.versions,
                want_previous=bool(self.watched),
                outcome=outcome,
            )
        finally:
            # Kept when a later query fails too: the data warnings so far, and the
            # snapshot once the current window and its baselines are in.
            ev.warnings.extend(outcome.warnings)
            if outcome.current is not None and outcome.baselines is not None:
                ev.snapshot = self._snapshot(outcome.current)
        current, previous = outcome.current, outcome.previous
        if outcome.result is None or current is None:
            ev.status = "skipped"
            ev.error = "no data for this profile type in the current window"
            return
        if previous is not None:
            ev.comparable = previous.total_value > 0
            for function, kind in self.watched:
                if kind in ("self", "total"):
                    value_kind = cast(Any, kind)
                    ev.shares[(function, kind)] = (
                        current.share(function, value_kind),
                        previous.share(function, value_kind),
                    )
        for label, table in outcome.tables():
            if table.truncated_share > TRUNCATION_WARNING:
                ev.warnings.append(
                    f"{table.truncated_share:.1%} of the {label} window was truncated into "
                    f"'other' (max_nodes={self.app.settings.watcher.max_nodes}); raise "
                    "[watcher] max_nodes for exact results"
                )
        if outcome.version_error is not None:
            ev.warnings.append(self.app.redact(f"version lookup failed ({outcome.version_error})"))
        ev.result = outcome.result

    def _snapshot(self, table: FunctionTable) -> SnapshotInput:
        from watcher.analysis.stats import sample_model
        from watcher.store.records import FunctionStat, SnapshotInput

        names: dict[str, None] = {}
        for top in (*table.top(SNAPSHOT_TOP, "self"), *table.top(SNAPSHOT_TOP, "total")):
            names[top.name] = None
        functions = []
        for name in names:
            stats = table.get(name)
            if stats is not None:
                functions.append(FunctionStat(name, stats.self, stats.total))
        model = sample_model(self.ev.profile_type, self.app.settings.watcher.sample_rate_hz)
        return SnapshotInput(
            service=self.ev.service,
            profile_type=self.ev.profile_type,
            deployment=self.watch.deployment,
            window_start=self.windows.current.start,
            window_end=self.windows.current.end,
            selector=self.selector,
            total_value=int(table.total_value),
            sample_count=float(table.total_value) / model.units_per_sample,
            functions=functions,
            truncated_share=table.truncated_share,
            labels={"watch": self.watch.name},
        )


def _selector_matchers(selector: str | None) -> list[Matcher]:
    if not selector:
        return []
    from watcher.selectors import parse_selector

    return [m for m in parse_selector(selector) if m.name != "service_name"]


def _selector_labels(selector: str | None) -> tuple[tuple[str, str], ...]:
    """The equality matchers of a selector, as labels for alerts (``namespace=prod``)."""
    return tuple((m.name, m.value) for m in _selector_matchers(selector) if m.op == "=")


# ---------------------------------------------------------------------------- services


def expand_services(
    client: QuerierClient, watch: WatchConfig, window: TimeRange
) -> tuple[list[str], list[str]]:
    """``(present, absent)``: the services to check, and exact names with no data.

    Globs match the ``service_name`` values seen in ``window`` (with the watch's selector);
    exact names are checked when present and reported absent otherwise.
    """
    matchers = [watch.selector] if watch.selector else []
    seen = sorted(set(client.label_values("service_name", window, matchers)))
    present: dict[str, None] = {}
    absent: list[str] = []
    for entry in watch.services:
        if _GLOB & set(entry):
            for name in seen:
                if fnmatch.fnmatchcase(name, entry):
                    present[name] = None
        elif entry in seen:
            present[entry] = None
        elif entry not in absent:
            absent.append(entry)
    return list(present), [a for a in absent if a not in present]


# ---------------------------------------------------------------------------- run


def run_watch(
    app: App,
    watch: WatchConfig,
    *,
    scheduled_at: datetime,
    dry_run: bool = False,
    claim: bool = True,
) -> RunResult:
    """Run ``watch`` once for ``scheduled_at`` (the end of its current window).

    ``claim=False`` evaluates every pair even if another process claimed it for the same
    time (``pyrowatch check``: a manual pass always looks; alert dedup keys still keep
    notifications single). See the module docstring for the steps.

    :raises StoreError: the database failed while starting or finishing the run.
    """
    if scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    scheduled_at = scheduled_at.astimezone(UTC)
    started = time.perf_counter()
    with app.activity():
        run_id = None
        if not dry_run:
            run_id = app.repo.start_run(watch.name, scheduled_at, owner=app.owner, now=app.now())
        bound = log.bind(watch=watch.name, run_id=run_id, scheduled_at=scheduled_at.isoformat())
        try:
            result = _run(app, watch, scheduled_at, run_id, dry_run, claim)
        except BaseException as exc:
            if run_id is not None:
                try:
                    app.repo.finish_run(
                        run_id,
                        status="failed",
                        error=app.redact(f"{type(exc).__name__}: {exc}"),
                        now=app.now(),
                    )
                except StoreError:
                    pass
            app.metrics.runs.labels(watch.name, "failed").inc()
            bound.error("run failed", error=app.redact(f"{type(exc).__name__}: {exc}"))
            raise
    app.metrics.runs.labels(watch.name, result.status).inc()
    app.metrics.last_run.labels(watch.name).set(time.time())
    bound.info(
        "run finished",
        status=result.status,
        dry_run=dry_run,
        pairs=len(result.pairs),
        ok=result.count("ok"),
        failed=result.count("failed"),
        skipped=result.count("skipped"),
        claimed_elsewhere=result.count("claimed"),
        findings=len(result.findings),
        resolved=len(result.resolved),
        enqueued=result.enqueued,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        error=result.error,
    )
    return result


def _run(
    app: App,
    watch: WatchConfig,
    scheduled_at: datetime,
    run_id: int | None,
    dry_run: bool,
    claim: bool,
) -> RunResult:
    windows = Windows.of(watch, scheduled_at)
    client = app.client(watch.deployment)
    run_error: str | None = None
    reports: list[PairReport] = []

    try:
        services, absent = expand_services(client, watch, windows.current)
    except WatcherError as exc:
        run_error = app.redact(f"listing services failed ({type(exc).__name__}: {exc})")
        services = [s for s in watch.services if not _GLOB & set(s)]
        absent = []
        if not services:
            return _finish(app, watch, scheduled_at, run_id, reports, dry_run, run_error, 0)

    for service in absent:
        for profile_type in watch.profile_types:
            why = "no data for this service in the current window"
            reports.append(PairReport(service, profile_type, "skipped", why))
            app.metrics.pairs.labels(watch.name, "skipped").inc()
            if run_id is not None:
                app.repo.record_pair(
                    run_id, service, profile_type, "skipped", error=why, now=app.now()
                )

    pairs = [(s, t) for s in services for t in watch.profile_types]
    mine: list[tuple[str, str]] = []
    for service, profile_type in pairs:
        if dry_run or not claim:
            mine.append((service, profile_type))
        elif app.repo.claim_pair(
            watch.name, service, profile_type, scheduled_at, app.owner, now=app.now()
        ):
            mine.append((service, profile_type))
        else:
            reports.append(PairReport(service, profile_type, "claimed"))

    watched: dict[tuple[str, str], list[tuple[str, str]]] = {}
    if not dry_run and mine:
        for regression in app.repo.open_regressions():
            key = (regression.service, regression.profile_type)
            watched.setdefault(key, []).append((regression.function, regression.kind))
    evaluations = _evaluate_all(app, watch, client, windows, mine, watched)

    snapshots = [replace(ev.snapshot, run_id=run_id) for ev in evaluations if ev.snapshot]
    saved = 0
    if not dry_run:
        for start in range(0, len(snapshots), SNAPSHOT_BATCH):
            batch = snapshots[start : start + SNAPSHOT_BATCH]
            saved += len(app.repo.save_snapshots(batch, now=app.now()))

    for ev in evaluations:
        reports.append(_settle(app, watch, windows, scheduled_at, run_id, ev, dry_run))
    return _finish(app, watch, scheduled_at, run_id, reports, dry_run, run_error, saved)


def _finish(
    app: App,
    watch: WatchConfig,
    scheduled_at: datetime,
    run_id: int | None,
    reports: list[PairReport],
    dry_run: bool,
    run_error: str | None,
    saved: int,
) -> RunResult:
    evaluated = [r for r in reports if r.status in ("ok", "failed")]
    if not evaluated:
        status = "failed" if run_error else "ok"
    else:
        failed = sum(1 for r in evaluated if r.status == "failed")
        status = "ok" if failed == 0 else ("failed" if failed == len(evaluated) else "partial")
        if run_error and status == "ok":
            status = "partial"
    if run_id is not None:
        record = app.repo.finish_run(run_id, status=status, error=run_error, now=app.now())
        status = record.status
    return RunResult(
        watch=watch.name,
        scheduled_at=scheduled_at,
        run_id=run_id,
        status=status,
        pairs=tuple(reports),
        dry_run=dry_run,
        error=run_error,
        snapshots=saved,
    )


def _evaluate_all(
    app: App,
    watch: WatchConfig,
    client: QuerierClient,
    windows: Windows,
    pairs: Sequence[tuple[str, str]],
    watched: dict[tuple[str, str], list[tuple[str, str]]],
) -> list[_Evaluation]:
    """Evaluate pairs on at most ``concurrency`` threads; pairs not started when the app
    stops are abandoned (recorded as failed)."""
    if not pairs:
        return []
    extra = _selector_matchers(watch.selector)
    workers = max(1, min(app.settings.watcher.concurrency, len(pairs)))
    futures: list[Future[_Evaluation]] = []

    def work(service: str, profile_type: str) -> _Evaluation:
        if app.stopping.is_set():
            ev = _Evaluation(service, profile_type, status="failed", reason="abandoned")
            ev.error = "abandoned: the daemon is shutting down"
            return ev
        return _Pair(
            app,
            watch,
            client,
            windows,
            service,
            profile_type,
            extra,
            watched.get((service, profile_type), ()),
        ).evaluate()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pyrowatch-pair") as pool:
        for service, profile_type in pairs:
            futures.append(pool.submit(work, service, profile_type))
    return [f.result() for f in futures]


# ---------------------------------------------------------------------------- commit


def finding_from_record(record: RegressionRecord) -> Finding:
    """The finding a stored regression was last seen as (for notifications)."""
    details = record.details or {}

    def when(value: Any) -> datetime | None:
        if not isinstance(value, str) or not value:
            return None
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None

    starts = tuple(t for t in (when(v) for v in details.get("baseline_starts") or ()) if t)
    version = details.get("version_change")
    labels = details.get("labels") or {}
    return Finding(
        service=record.service,
        profile_type=record.profile_type,
        function=record.function,
        kind=cast(FindingKind, record.kind),
        baseline_share=record.baseline_share,
        current_share=record.current_share,
        relative_change=record.relative_change,
        absolute_change=record.absolute_change,
        impact_per_second=record.impact_per_second,
        impact_unit=record.impact_unit,
        p_value=record.p_value,
        ci_low=record.ci_low,
        ci_high=record.ci_high,
        mde=record.mde,
        window_start=record.window_start,
        window_end=record.window_end,
        baseline_starts=starts,
        severity=cast(Any, record.severity),
        callers=tuple(str(c) for c in details.get("callers") or ()),
        version_change=(str(version[0]), str(version[1]))
        if isinstance(version, list) and len(version) == 2
        else None,
        change_time=when(details.get("change_time")),
        labels=tuple((str(k), str(v)) for k, v in labels.items())
        if isinstance(labels, dict)
        else (),
    )


def _back_to_baseline(record: RegressionRecord, ev: _Evaluation) -> bool:
    """Within 10 % of the regression's baseline share in both the current and the previous
    window (detection.md §1.3)."""
    shares = ev.shares.get((record.function, record.kind))
    if shares is None or not ev.comparable:
        return False
    bound = record.baseline_share * (1.0 + RESOLVE_TOLERANCE)
    return shares[0] <= bound and shares[1] <= bound


def _settle(
    app: App,
    watch: WatchConfig,
    windows: Windows,
    scheduled_at: datetime,
    run_id: int | None,
    ev: _Evaluation,
    dry_run: bool,
) -> PairReport:
    """Commit one evaluated pair: regressions, resolutions, notifications, pair record."""
    result = ev.result
    findings = tuple(result.findings) if result is not None else ()
    cost_shifts = tuple(result.cost_shifts) if result is not None else ()
    warnings = tuple(ev.warnings)
    notes = tuple(result.notes) if result is not None else ()
    status, error = ev.status, ev.error
    enqueued = 0
    resolved: tuple[str, ...] = ()
    if status == "ok" and not dry_run:
        try:
            enqueued, resolved = _commit(app, watch, windows, scheduled_at, run_id, ev, findings)
        except WatcherError as exc:
            status, error = "failed", app.redact(f"recording failed ({type(exc).__name__}: {exc})")
            ev.reason = type(exc).__name__
    for finding in findings if status == "ok" else ():
        app.metrics.findings.labels(watch.name, finding.kind).inc()
    app.metrics.pairs.labels(watch.name, status).inc()
    if status == "failed":
        app.metrics.pair_failures.labels(watch.name, ev.reason or "unknown").inc()
        log.warning(
            "pair failed",
            watch=watch.name,
            run_id=run_id,
            service=ev.service,
            profile_type=ev.profile_type,
            error=error,
        )
    for text in notes:
        log.info(
            "detection note",
            watch=watch.name,
            run_id=run_id,
            service=ev.service,
            profile_type=ev.profile_type,
            note=text,
        )
    for warning in warnings:
        log.warning(
            "pair warning",
            watch=watch.name,
            run_id=run_id,
            service=ev.service,
            profile_type=ev.profile_type,
            warning=warning,
        )
    if run_id is not None:
        note = error
        if status == "ok" and warnings:
            note = "warning: " + "; ".join(warnings)
        try:
            app.repo.record_pair(
                run_id,
                ev.service,
                ev.profile_type,
                status,
                error=note,
                duration_ms=ev.duration * 1000,
                query_duration_ms=ev.query_seconds * 1000,
                query_count=ev.query_count,
                findings=len(findings) if status == "ok" else 0,
                now=app.now(),
            )
        except StoreError as exc:
            log.error("recording a pair failed", run_id=run_id, error=app.redact(str(exc)))
    return PairReport(
        service=ev.service,
        profile_type=ev.profile_type,
        status=status,
        error=error,
        findings=findings if status == "ok" else (),
        cost_shifts=cost_shifts,
        warnings=warnings,
        notes=notes,
        resolved=resolved,
        enqueued=enqueued,
        query_count=ev.query_count,
        duration_ms=ev.duration * 1000,
    )


def _commit(
    app: App,
    watch: WatchConfig,
    windows: Windows,
    scheduled_at: datetime,
    run_id: int | None,
    ev: _Evaluation,
    findings: Sequence[Finding],
) -> tuple[int, tuple[str, ...]]:
    """Record the pair's regressions and enqueue its notifications in one transaction."""
    from watcher.daemon._store import last_notifications
    from watcher.daemon.planning import (
        FIRING_CODES,
        ChannelHistory,
        TrackedRegression,
        group_prefix,
        plan_channel,
    )

    open_regressions = app.repo.open_regressions(ev.service, ev.profile_type)
    fingerprints = {f.fingerprint for f in findings}
    resolve = [
        (r.id, r.version)
        for r in open_regressions
        if r.fingerprint not in fingerprints and _back_to_baseline(r, ev)
    ]
    if not findings and not resolve and not open_regressions:
        return 0, ()
    channels = [app.notifiers[name] for name in watch.alerts if name in app.notifiers]
    if not findings and not resolve and not any(c.kind == "alertmanager" for c in channels):
        return 0, ()

    prefixes = {
        c.name: group_prefix(c.name, watch.deployment, ev.service, ev.profile_type)
        for c in channels
    }
    histories = {
        c.name: ChannelHistory(
            *last_notifications(app.engine, c.name, prefixes[c.name], firing_codes=FIRING_CODES)
        )
        for c in channels
    }
    now = app.now()
    by_fingerprint = {f.fingerprint: f for f in findings}
    resolving = {regression_id for regression_id, _ in resolve}
    group_context = _GroupContext(app, watch, windows, ev.service, ev.profile_type, run_id, now)

    def track(record: RegressionRecord) -> TrackedRegression:
        fresh = by_fingerprint.get(record.fingerprint)
        finding = (
            replace(fresh, severity=cast(Any, record.severity))
            if fresh is not None
            else finding_from_record(record)
        )
        return TrackedRegression(record.id, record.severity, finding, record.started_at)

    def plan(changes: Sequence[RegressionChange]) -> list[OutboxEntry]:
        touched = {c.regression.id for c in changes}
        firing = [track(c.regression) for c in changes if c.change != "resolved"]
        firing += [
            track(r) for r in open_regressions if r.id not in touched and r.id not in resolving
        ]
        resolved = [track(c.regression) for c in changes if c.change == "resolved"]
        entries: list[OutboxEntry] = []
        for channel in channels:
            entries.extend(
                plan_channel(
                    channel,
                    histories[channel.name],
                    prefix=prefixes[channel.name],
                    firing=firing,
                    resolved=resolved,
                    now=now,
                    scheduled_at=scheduled_at,
                    make_group=group_context.group,
                )
            )
        return entries

    outcome = app.repo.record_findings_and_enqueue(findings, now=now, plan=plan, resolve=resolve)
    resolved_names = tuple(c.regression.function for c in outcome.changes if c.change == "resolved")
    for change in outcome.changes:
        if change.change in ("opened", "escalated", "resolved"):
            log.info(
                f"regression {change.change}",
                watch=watch.name,
                run_id=run_id,
                regression_id=change.regression.id,
                service=ev.service,
                profile_type=ev.profile_type,
                function=change.regression.function,
                kind=change.regression.kind,
                severity=change.regression.severity,
            )
    return len(outcome.enqueued), resolved_names


@dataclass(frozen=True, slots=True)
class _GroupContext:
    """Everything an alert group of one pair shares."""

    app: App
    watch: WatchConfig
    windows: Windows
    service: str
    profile_type: str
    run_id: int | None
    now: datetime

    def group(self, regressions: Sequence[TrackedRegression], status: AlertStatus) -> AlertGroup:
        from watcher.alerts import AlertGroup, build_links
        from watcher.daemon.scheduler import cycle_of

        settings = self.app.settings
        grafana = settings.watcher.grafana_url  # then Pyroscope UI links need pyroscope_ui_url
        ui_url = settings.watcher.pyroscope_ui_url or (
            None if grafana else settings.deployment(self.watch.deployment).url
        )
        current = (self.windows.current.start, self.windows.current.end)
        baseline = None
        if self.windows.baselines:
            first = self.windows.baselines[0]
            baseline = (first.start, first.end)
        try:
            links = build_links(
                ui_url,
                service=self.service,
                profile_type=self.profile_type,
                current=current,
                baseline=baseline,
                selector=self.watch.selector,
                grafana_url=grafana,
                datasource_uid=settings.watcher.grafana_datasource_uid,
            )
        except ValueError:
            from watcher.alerts import AlertLinks

            links = AlertLinks()
        return AlertGroup(
            service=self.service,
            profile_type=self.profile_type,
            deployment=self.watch.deployment,
            run_id=self.run_id if self.run_id is not None else "dry-run",
            window_start=self.windows.current.start,
            window_end=self.windows.current.end,
            findings=[r.finding for r in regressions],
            status=status,
            links=links,
            resolved_at=self.now if status == "resolved" else None,
            cycle=cycle_of(self.watch.schedule),
            watch=self.watch.name,
            labels=dict(_selector_labels(self.watch.selector)),
            external_url=settings.watcher.public_url or "",
            starts={r.finding.fingerprint: r.opened_at for r in regressions},
        )
