"""Serve a planned fleet from the sandbox over HTTP and run the daemon's detection on it.

:class:`PairEvaluator` runs the daemon's own evaluation of one (service, profile type)
pair, :func:`watcher.daemon.pair.evaluate_pair`, at a scheduled time ``t`` with the
daemon's defaults for an hourly watch: it fetches the current window ``[t - 1h, t]`` and
its -1d and -7d baselines as flame graphs (``SelectMergeStacktraces``, ``max_nodes``
65536) and runs a first detection pass without the previous window; only
when that pass has a candidate (a finding or a cost shift) are the previous window and
its own -1d and -7d windows fetched and detection run again with them (the second pass
also estimates the dispersion from both pairs of baselines), and when something was
found the ``version`` label values of every window are looked up and detection runs once
more. Every window is fetched once over HTTP and reused by later runs and the other
threshold configurations that need it (the answers would be identical).

``previous_baselines=False`` (``--current-baselines-for-previous``) never fetches the
previous window's own baselines: the second pass compares the previous window with the
current window's baselines, an hour of the day later (the older behaviour).

:func:`run_job` generates one job's fleet, loads it into a :class:`Sandbox` on
``127.0.0.1:0`` and judges every run: findings credited to the injected change, false
alerts, cost shifts labelled, transients suppressed, versions attributed.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bench.detection.corpus import (
    DAY,
    HOUR,
    SAMPLE_RATE_HZ,
    Injection,
    Job,
    hour_time,
)
from watcher.analysis.detect import DetectionResult, DetectionThresholds
from watcher.daemon.pair import FetchedWindow, Windows, evaluate_pair
from watcher.findings import Finding
from watcher.querier import QuerierClient
from watcher.sandbox.fleet import CPU, load_fleet
from watcher.sandbox.query import QueryLimits
from watcher.sandbox.server import Sandbox
from watcher.sandbox.store import ProfileStore
from watcher.selectors import Matcher, format_selector
from watcher.times import TimeRange

#: The two threshold configurations every run is judged under.
#: ``default`` is what a watch gets without settings (``WatchConfig`` and
#: ``DetectionThresholds`` defaults); ``strict`` is the earlier default: practical gates of
#: relative >= 5 % and share >= 0.1 pp, every baseline tested on its own. A watch can
#: still set those gates; the comparison shows what they cost.
CONFIGS: Mapping[str, DetectionThresholds] = {
    "default": DetectionThresholds(),
    "strict": DetectionThresholds(
        min_relative_increase=0.05, min_share_increase=0.001, pool_baselines=False
    ),
}
#: The default gates with every baseline tested on its own (``--per-baseline``).
PER_BASELINE: Mapping[str, DetectionThresholds] = {
    "per-baseline": DetectionThresholds(pool_baselines=False),
}
#: The daemon's defaults: window, baselines, tree size, version label.
WINDOW = HOUR
OFFSETS: tuple[timedelta, ...] = (-DAY, -7 * DAY)
MAX_NODES = 65536
VERSION_LABEL = "version"
#: Windows within which a step counts as detected (later windows only measure latency).
GOAL_WINDOWS = 2
#: Informational notes that mean "significant at the Bonferroni level".
_SIGNIFICANT_NOTES = ("significant but", "not confirmed")


class PairEvaluator:
    """The daemon's evaluation of one pair at a scheduled time
    (:func:`watcher.daemon.pair.evaluate_pair`), with fetched windows cached."""

    def __init__(
        self,
        client: QuerierClient,
        *,
        profile_type: str = CPU,
        window: timedelta = WINDOW,
        offsets: Sequence[timedelta] = OFFSETS,
        sample_rate_hz: float = SAMPLE_RATE_HZ,
        max_nodes: int = MAX_NODES,
        version_label: str = VERSION_LABEL,
        previous_baselines: bool = True,
    ) -> None:
        self.client = client
        self.previous_baselines = previous_baselines
        self.profile_type = profile_type
        self.window = window
        self.offsets = tuple(offsets)
        self.sample_rate_hz = sample_rate_hz
        self.max_nodes = max_nodes
        self.version_label = version_label
        self.queries = 0
        self._windows: dict[tuple[str, int], FetchedWindow] = {}
        self._versions: dict[tuple[str, int], tuple[str, ...]] = {}

    @staticmethod
    def selector(service: str) -> str:
        return format_selector([Matcher("service_name", "=", service)])

    def fetch(self, service: str, rng: TimeRange) -> FetchedWindow:
        """The window as a flame graph and function table (one query, as the daemon's, then
        cached)."""
        key = (service, rng.start_ms)
        hit = self._windows.get(key)
        if hit is None:
            graph = self.client.select_merge_stacktraces(
                self.profile_type, self.selector(service), rng, self.max_nodes
            )
            self.queries += 1
            hit = self._windows[key] = FetchedWindow(graph)
        return hit

    def versions(self, service: str, rng: TimeRange) -> tuple[str, ...]:
        key = (service, rng.start_ms)
        hit = self._versions.get(key)
        if hit is None:
            values = self.client.label_values(self.version_label, rng, [self.selector(service)])
            self.queries += 1
            hit = tuple(sorted(str(v) for v in values if v))
            self._versions[key] = hit
        return hit

    def evaluate(
        self,
        service: str,
        scheduled_at: datetime,
        configs: Mapping[str, DetectionThresholds] = CONFIGS,
    ) -> dict[str, DetectionResult]:
        """Detection results per threshold configuration (empty when the window is empty)."""
        windows = Windows.ending(scheduled_at, self.window, self.offsets)
        out: dict[str, DetectionResult] = {}
        for name, thresholds in configs.items():
            outcome = evaluate_pair(
                functools.partial(self.fetch, service),
                windows,
                service=service,
                profile_type=self.profile_type,
                thresholds=thresholds,
                sample_rate_hz=self.sample_rate_hz,
                versions=functools.partial(self.versions, service),
                own_previous_baselines=self.previous_baselines,
            )
            if outcome.version_error is not None:
                raise RuntimeError(f"version lookup failed: {outcome.version_error}")
            if outcome.result is None:
                return {}
            out[name] = outcome.result
        return out


# -- judging ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InjectionOutcome:
    """How one injected change fared under one threshold configuration.

    ``detected_at`` is the first window (1 = the onset window) with a finding credited to
    the change; ``true_findings``/``false_findings`` count every finding of the change's
    runs (in a transient's or a cost shift's runs every finding is a false alert);
    ``visible`` means the test itself saw the change as significant (a transient "not
    confirmed", a cost shift's receiver significant); ``labelled`` that a cost shift was
    reported as one; ``alerted`` that a transient or cost shift raised a finding.
    """

    ident: str
    config: str
    scenario: str
    size: float
    phi: float
    kind: str
    delta: float
    share: float
    share_bin: str
    detected_at: int | None
    version: tuple[str, str] | None
    version_ok: bool | None
    true_findings: int
    false_findings: int
    false_names: tuple[str, ...]
    labelled: bool
    alerted: bool
    visible: bool
    samples: float
    baseline_samples: float
    dispersion: float
    eligible: int
    finding_mde: float | None
    findings_total: int
    mde_missing: int


@dataclass(frozen=True, slots=True)
class AAOutcome:
    """A/A runs of one service under one configuration (every finding is a false alert).

    ``episodes`` counts findings whose fingerprint was not already present in the run an
    hour before: the alerts a user would get.
    """

    service: str
    config: str
    size: float
    phi: float
    runs: int
    runs_with_findings: int
    false_findings: int
    episodes: int
    false_names: tuple[str, ...]
    dispersion_mean: float
    samples_mean: float
    eligible_mean: float
    findings_total: int
    mde_missing: int


@dataclass(slots=True)
class JobResult:
    name: str
    injections: list[InjectionOutcome] = field(default_factory=list)
    aa: list[AAOutcome] = field(default_factory=list)
    queries: int = 0
    runs: int = 0
    seconds: float = 0.0


def _names(finding: Finding) -> set[str]:
    return {finding.function, *finding.callers}


def _mde_missing(findings: Sequence[Finding]) -> int:
    return sum(1 for f in findings if not (0.0 < f.mde < math.inf))


def judge(
    injection: Injection,
    size: float,
    phi: float,
    config: str,
    results: Sequence[DetectionResult | None],
) -> InjectionOutcome:
    """Classify the findings of an injection's runs (``results[0]`` ends W1)."""
    detected_at: int | None = None
    version_ok: bool | None = None
    finding_mde: float | None = None
    true = false = total = missing = 0
    false_names: list[str] = []
    labelled = alerted = visible = False
    last: DetectionResult | None = None
    for window, result in enumerate(results, start=1):
        if result is None:
            continue
        last = result if window <= 2 or last is None else last
        total += len(result.findings)
        missing += _mde_missing(result.findings)
        for finding in result.findings:
            credited = bool(_names(finding) & injection.credit)
            if injection.scenario == "step" and (credited or finding.function in injection.related):
                true += 1
                if credited and detected_at is None:
                    detected_at = window
                    finding_mde = finding.mde
                    if injection.version is not None:
                        version_ok = finding.version_change == injection.version
                continue
            false += 1
            false_names.append(f"{finding.function} ({finding.kind})")
            if credited:
                alerted = True
        if injection.scenario == "cost_shift":
            if any(c.function in injection.credit for c in result.cost_shifts):
                labelled = visible = True
        for info in result.informational:
            if info.function in injection.credit and info.note.startswith(_SIGNIFICANT_NOTES):
                if injection.scenario != "transient" or window == 1:
                    visible = True
        if injection.scenario == "transient" and window == 1 and alerted:
            visible = True
    if injection.scenario == "step" and injection.version is not None and detected_at is None:
        version_ok = None
    return InjectionOutcome(
        ident=injection.ident,
        config=config,
        scenario=injection.scenario,
        size=size,
        phi=phi,
        kind=injection.kind,
        delta=injection.delta,
        share=injection.share,
        share_bin=injection.share_bin,
        detected_at=detected_at,
        version=injection.version,
        version_ok=version_ok,
        true_findings=true,
        false_findings=false,
        false_names=tuple(false_names[:5]),
        labelled=labelled,
        alerted=alerted,
        visible=visible or alerted,
        samples=last.current_samples if last is not None else 0.0,
        baseline_samples=(
            sum(last.baseline_samples) / len(last.baseline_samples)
            if last is not None and last.baseline_samples
            else 0.0
        ),
        dispersion=last.dispersion if last is not None else math.nan,
        eligible=last.eligible_count if last is not None else 0,
        finding_mde=finding_mde,
        findings_total=total,
        mde_missing=missing,
    )


def run_job(
    job: Job,
    configs: Mapping[str, DetectionThresholds] = CONFIGS,
    *,
    previous_baselines: bool = True,
) -> JobResult:
    """Generate, serve and evaluate one job; everything goes through the sandbox's HTTP API.

    ``previous_baselines`` (on by default, as in the daemon) fetches the previous window's
    own baselines when a first pass has candidates; off compares the previous window with
    the current window's baselines instead (the older behaviour).
    """
    started = time.perf_counter()
    out = JobResult(job.name)
    store = ProfileStore()
    load_fleet(store, job.spec)
    sandbox = Sandbox(store, limits=QueryLimits(max_query_lookback_ms=None))
    with sandbox, QuerierClient(sandbox.url) as client:
        evaluator = PairEvaluator(
            client,
            sample_rate_hz=job.spec.sample_rate_hz,
            previous_baselines=previous_baselines,
        )
        for injection in job.injections:
            per_config: dict[str, list[DetectionResult | None]] = {c: [] for c in configs}
            found: set[str] = set()
            for window in range(1, injection.windows + 1):
                if (
                    injection.scenario == "step"
                    and window > GOAL_WINDOWS
                    and found.issuperset(configs)
                ):
                    break  # found within two windows everywhere: later windows change nothing
                scheduled = hour_time(injection.onset_hour + window)
                results = evaluator.evaluate(injection.service, scheduled, configs)
                out.runs += 1
                for name in configs:
                    result = results.get(name)
                    per_config[name].append(result)
                    if result is not None and any(
                        _names(f) & injection.credit for f in result.findings
                    ):
                        found.add(name)
            for name in configs:
                out.injections.append(judge(injection, job.size, job.phi, name, per_config[name]))
        for service in job.aa_services:
            out.aa.extend(_aa(evaluator, service, job, configs))
            out.runs += len(job.aa_hours)
        out.queries = evaluator.queries
    out.seconds = time.perf_counter() - started
    return out


def _aa(
    evaluator: PairEvaluator,
    service: str,
    job: Job,
    configs: Mapping[str, DetectionThresholds],
) -> list[AAOutcome]:
    stats = {
        name: {"runs": 0, "hit": 0, "false": 0, "episodes": 0, "phi": 0.0, "n": 0.0, "m": 0.0}
        for name in configs
    }
    names: dict[str, list[str]] = {name: [] for name in configs}
    previous: dict[str, set[str]] = {name: set() for name in configs}
    totals = {name: 0 for name in configs}
    missing = {name: 0 for name in configs}
    for hour in job.aa_hours:
        results = evaluator.evaluate(service, hour_time(hour + 1), configs)
        for name in configs:
            result = results.get(name)
            s = stats[name]
            if result is None:
                continue
            s["runs"] += 1
            s["phi"] += result.dispersion
            s["n"] += result.current_samples
            s["m"] += result.eligible_count
            prints = {f.fingerprint for f in result.findings}
            if result.findings:
                s["hit"] += 1
                s["false"] += len(result.findings)
                s["episodes"] += len(prints - previous[name])
                names[name].extend(f"{f.function} ({f.kind})" for f in result.findings)
            totals[name] += len(result.findings)
            missing[name] += _mde_missing(result.findings)
            previous[name] = prints
    out = []
    for name in configs:
        s = stats[name]
        runs = int(s["runs"]) or 1
        out.append(
            AAOutcome(
                service=service,
                config=name,
                size=job.size,
                phi=job.phi,
                runs=int(s["runs"]),
                runs_with_findings=int(s["hit"]),
                false_findings=int(s["false"]),
                episodes=int(s["episodes"]),
                false_names=tuple(dict.fromkeys(names[name]))[:5],
                dispersion_mean=s["phi"] / runs,
                samples_mean=s["n"] / runs,
                eligible_mean=s["m"] / runs,
                findings_total=totals[name],
                mde_missing=missing[name],
            )
        )
    return out
