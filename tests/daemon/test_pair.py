"""One pair's evaluation over a fake fetcher: which windows are fetched when, and why.

Windows are exact trees (no noise): 40 functions of 1 % each, ``hot`` at 1 % and ``idle``
holding the rest, 1M samples at 100 Hz. A raised ``hot`` (3 %) is far beyond any test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from watcher.analysis.detect import DetectionThresholds
from watcher.daemon.pair import FetchedWindow, PairOutcome, Windows, evaluate_pair
from watcher.errors import QuerierError
from watcher.flamegraph import Tree, decode_flamegraph, encode_flamegraph
from watcher.times import TimeRange

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
T = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WINDOWS = Windows.ending(T, HOUR, (-DAY, -2 * DAY))
N = 1_000_000
NS = 10_000_000  # one sample at 100 Hz


def _tree(hot: float = 0.01, samples: int = N) -> Tree:
    stacks = [(("main", "hot"), round(hot * samples) * NS)]
    stacks += [(("main", f"f{i:02d}"), round(0.01 * samples) * NS) for i in range(40)]
    stacks.append((("main", "idle"), round((0.59 - hot) * samples) * NS))
    return Tree.from_stacks(s for s in stacks if s[1] > 0)


class Fetcher:
    """Serves fixed trees per window (an ordinary one by default) as the flame graphs the
    daemon fetches, recording the order."""

    def __init__(self, trees: Mapping[TimeRange, Tree] | None = None) -> None:
        self.trees = dict(trees or {})
        self.fetched: list[TimeRange] = []
        self.failing: TimeRange | None = None

    def __call__(self, rng: TimeRange) -> FetchedWindow:
        self.fetched.append(rng)
        if rng == self.failing:
            raise QuerierError("503 from querier")
        return FetchedWindow(decode_flamegraph(encode_flamegraph(self.trees.get(rng) or _tree())))


def _evaluate(fetch: Fetcher, **options: Any) -> PairOutcome:
    return evaluate_pair(
        fetch,
        WINDOWS,
        service="svc",
        profile_type=CPU,
        thresholds=DetectionThresholds(),
        **options,
    )


def _stepped() -> Fetcher:
    return Fetcher({WINDOWS.current: _tree(0.03), WINDOWS.previous: _tree(0.03)})


def test_a_quiet_pair_fetches_the_current_window_and_its_baselines_only() -> None:
    fetch = Fetcher()
    outcome = _evaluate(fetch)
    assert fetch.fetched == [WINDOWS.current, *WINDOWS.baselines]
    assert outcome.result is not None and outcome.result.findings == ()
    assert (outcome.previous, outcome.previous_baselines, outcome.warnings) == (None, None, [])
    assert [label for label, _ in outcome.tables()] == [
        "current",
        "-1d baseline",
        "-2d baseline",
    ]


def test_want_previous_fetches_the_previous_window_but_not_its_baselines() -> None:
    fetch = Fetcher()
    outcome = _evaluate(fetch, want_previous=True)
    assert fetch.fetched == [WINDOWS.current, *WINDOWS.baselines, WINDOWS.previous]
    assert outcome.previous is not None and outcome.previous_baselines is None
    assert outcome.result is not None and not outcome.result.persistence_checked


def test_a_step_is_confirmed_against_the_previous_windows_own_baselines() -> None:
    fetch = _stepped()
    looked_up: list[TimeRange] = []

    def versions(rng: TimeRange) -> tuple[str, ...]:
        looked_up.append(rng)
        return ("v1",) if rng in WINDOWS.baselines else ("v2",)

    outcome = _evaluate(fetch, versions=versions)
    assert fetch.fetched == [
        WINDOWS.current,
        *WINDOWS.baselines,
        WINDOWS.previous,
        *WINDOWS.previous_baselines,
    ]
    assert looked_up == [WINDOWS.current, WINDOWS.previous, *WINDOWS.baselines]
    assert outcome.result is not None
    assert [(f.function, f.persistent, f.version_change) for f in outcome.result.findings] == [
        ("hot", True, ("v1", "v2"))
    ]


def test_current_baselines_for_the_previous_window_skip_its_own() -> None:
    fetch = _stepped()
    outcome = _evaluate(fetch, own_previous_baselines=False)
    assert fetch.fetched == [WINDOWS.current, *WINDOWS.baselines, WINDOWS.previous]
    assert outcome.result is not None
    assert [(f.function, f.persistent) for f in outcome.result.findings] == [("hot", True)]


def test_a_spike_is_not_alerted() -> None:
    fetch = Fetcher({WINDOWS.current: _tree(0.03)})
    outcome = _evaluate(fetch)
    assert len(fetch.fetched) == 2 + 2 * len(WINDOWS.baselines)
    assert outcome.result is not None and outcome.result.findings == ()
    assert any(i.note.startswith("not confirmed") for i in outcome.result.informational)


def test_an_empty_baseline_is_dropped_with_a_warning() -> None:
    empty = Tree()
    fetch = Fetcher({WINDOWS.baselines[1]: empty, WINDOWS.previous_baselines[1]: empty})
    fetch.trees.update(_stepped().trees)
    outcome = _evaluate(fetch)
    assert outcome.windows.offsets == (-DAY,)
    assert fetch.fetched == [
        WINDOWS.current,
        *WINDOWS.baselines,
        WINDOWS.previous,
        WINDOWS.previous_baselines[0],
    ]
    assert outcome.warnings == [
        "no data in the -2d baseline (the service may be newer than that, or the server's "
        "query lookback shorter): compared with the -1d baseline only"
    ]
    assert outcome.result is not None and [f.function for f in outcome.result.findings] == ["hot"]


def test_an_empty_current_window_ends_the_evaluation() -> None:
    fetch = Fetcher({WINDOWS.current: Tree()})
    outcome = _evaluate(fetch)
    assert fetch.fetched == [WINDOWS.current]
    assert outcome.result is None and outcome.baselines is None


def test_a_failed_version_lookup_keeps_the_findings_unattributed() -> None:
    def versions(rng: TimeRange) -> tuple[str, ...]:
        raise QuerierError("timed out")

    outcome = _evaluate(_stepped(), versions=versions)
    assert outcome.version_error == "QuerierError: timed out"
    assert outcome.result is not None
    assert [(f.function, f.version_change) for f in outcome.result.findings] == [("hot", None)]


@pytest.mark.parametrize(
    ("failing", "has_baselines"),
    [(lambda w: w.baselines[1], False), (lambda w: w.previous_baselines[0], True)],
)
def test_a_passed_outcome_keeps_what_came_before_a_failed_fetch(
    failing: Callable[[Windows], TimeRange], has_baselines: bool
) -> None:
    fetch = _stepped()
    fetch.failing = failing(WINDOWS)
    outcome = PairOutcome(WINDOWS)
    with pytest.raises(QuerierError):
        _evaluate(fetch, outcome=outcome)
    assert outcome.current is not None and outcome.result is None
    assert (outcome.baselines is not None) == has_baselines
