"""One pair's evaluation: which windows are fetched, in which order, and the detection passes.

:func:`evaluate_pair` is the decision sequence for one (service, profile type) pair at a
scheduled time, shared by the daemon (:mod:`watcher.daemon.jobs`, around which it keeps
its thread pool, query metrics, snapshots and storage) and the detection benchmark
(``bench/detection``, which fetches from a cache). Only the fetching is the caller's:

1. **Current window.** When it holds no data there is nothing to evaluate.
2. **Baselines** (the current window shifted by each offset). Those that hold no data are
   dropped with a warning as long as one holds data: a service younger than its oldest
   baseline, or a server that answers less far back, is still watched. With none holding
   data the warning says there is nothing to compare with.
3. **First pass**: detection without the previous window. Every candidate then comes out
   as a finding or a cost shift, so this pass tells whether the persistence check (and
   its queries) is needed at all.
4. **Previous window**, fetched only when that pass has a candidate or the caller asks
   for it (``want_previous``: the daemon resolving an open regression reads its shares).
5. **Second pass**, only with a candidate: the previous window's own baselines (the
   previous window shifted by each offset) are fetched and detection runs again with
   both, so persistence compares the previous window with the same hour of earlier days,
   not with the current window's baselines. An empty previous window or previous
   baseline is warned about: the change cannot be confirmed, so nothing is alerted.
6. **Versions**, only with a finding: the ``version`` label of the current, previous and
   baseline windows, and detection once more with them, for attribution. A failed lookup
   leaves the findings unattributed and is reported in :attr:`PairOutcome.version_error`.

So a quiet pair costs ``1 + len(baselines)`` fetches and a pair with a candidate up to
``2 + 2 * len(baselines)``, plus ``2 + len(baselines)`` version lookups with a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from watcher.errors import WatcherError
from watcher.times import TimeRange, format_duration

if TYPE_CHECKING:
    from watcher.analysis.detect import DetectionResult, ThresholdsLike
    from watcher.config import WatchConfig
    from watcher.flamegraph import FlameGraph, FunctionTable

__all__ = ["FetchedWindow", "PairOutcome", "Windows", "evaluate_pair"]


@dataclass(frozen=True, slots=True)
class Windows:
    """The windows of one run: current ``[t - w, t]``, previous, the baselines, and the
    previous window's own baselines (the previous window shifted by each offset)."""

    current: TimeRange
    previous: TimeRange
    baselines: tuple[TimeRange, ...]
    previous_baselines: tuple[TimeRange, ...]
    #: The watch's baseline offsets, one per baseline.
    offsets: tuple[timedelta, ...]

    @classmethod
    def of(cls, watch: WatchConfig, scheduled_at: datetime) -> Windows:
        return cls.ending(scheduled_at, watch.window, watch.baselines)

    @classmethod
    def ending(cls, end: datetime, window: timedelta, offsets: Sequence[timedelta]) -> Windows:
        """The windows of length ``window`` whose current window ends at ``end``."""
        current = TimeRange(end - window, end)
        previous = current.shifted(-window)
        return cls(
            current=current,
            previous=previous,
            baselines=tuple(current.shifted(offset) for offset in offsets),
            previous_baselines=tuple(previous.shifted(offset) for offset in offsets),
            offsets=tuple(offsets),
        )

    def keeping(self, indices: Sequence[int]) -> Windows:
        """The same windows with only the baselines at ``indices``."""
        return replace(
            self,
            baselines=tuple(self.baselines[i] for i in indices),
            previous_baselines=tuple(self.previous_baselines[i] for i in indices),
            offsets=tuple(self.offsets[i] for i in indices),
        )

    def baseline_labels(self, prefix: str = "", *, omit: Sequence[int] = ()) -> list[str]:
        """``-1d baseline``, ... (with ``prefix``: ``previous -1d baseline``, ...) of the
        baselines, except those at the indices in ``omit``."""
        return [
            f"{prefix}{format_duration(offset)} baseline"
            for i, offset in enumerate(self.offsets)
            if i not in omit
        ]


class FetchedWindow:
    """One fetched window: its flame graph, its function table and (built on first use)
    its caller graph, which detection takes from the current window."""

    __slots__ = ("_parents", "graph", "table")

    def __init__(self, graph: FlameGraph) -> None:
        from watcher.flamegraph import FunctionTable

        self.graph = graph
        self.table = FunctionTable.from_flamegraph(graph)
        self._parents: dict[str, set[str]] | None = None

    @property
    def parents(self) -> dict[str, set[str]]:
        """``function -> direct callers`` over the graph's stacks."""
        if self._parents is None:
            self._parents = self.graph.callers()
        return self._parents


@dataclass(slots=True)
class PairOutcome:
    """What :func:`evaluate_pair` fetched and concluded.

    It is filled in step by step, so a caller that passes one in still holds what came
    before a fetch that raised: ``baselines`` is set once every baseline is in, and
    ``previous`` only when the previous window was needed. ``windows`` are those in use
    (without the baselines dropped for holding no data); ``warnings`` are about the data.
    ``result`` is the last detection pass, ``None`` when the current window holds no data.
    """

    windows: Windows
    current: FunctionTable | None = None
    baselines: list[FunctionTable] | None = None
    previous: FunctionTable | None = None
    previous_baselines: list[FunctionTable] | None = None
    warnings: list[str] = field(default_factory=list)
    result: DetectionResult | None = None
    #: ``"<error type>: <message>"`` of a failed version lookup.
    version_error: str | None = None

    def tables(self) -> list[tuple[str, FunctionTable]]:
        """Every fetched window's table with its label (``current``, ``-1d baseline``,
        ``previous``, ``previous -1d baseline``, ...), in fetch order."""
        out: list[tuple[str, FunctionTable]] = []
        if self.current is not None:
            out.append(("current", self.current))
        if self.baselines is not None:
            out.extend(zip(self.windows.baseline_labels(), self.baselines, strict=True))
        if self.previous is not None:
            out.append(("previous", self.previous))
        if self.previous_baselines is not None:
            labels = self.windows.baseline_labels("previous ")
            out.extend(zip(labels, self.previous_baselines, strict=True))
        return out


def evaluate_pair(
    fetch: Callable[[TimeRange], FetchedWindow],
    windows: Windows,
    *,
    service: str,
    profile_type: str,
    thresholds: ThresholdsLike,
    sample_rate_hz: float = 100.0,
    labels: tuple[tuple[str, str], ...] = (),
    versions: Callable[[TimeRange], tuple[str, ...]] | None = None,
    want_previous: bool = False,
    own_previous_baselines: bool = True,
    outcome: PairOutcome | None = None,
) -> PairOutcome:
    """Evaluate one pair over ``windows`` (see the module docstring for the steps).

    ``fetch`` returns one window of the pair, ``versions`` the distinct values of its
    version label in a window (without it, findings are not attributed). ``labels`` are
    copied onto findings. ``want_previous`` fetches the previous window even without a
    candidate. ``own_previous_baselines=False`` never fetches the previous window's own
    baselines: the second pass compares it with the current window's, one window later
    in the day (the earlier behaviour, kept for the benchmark's comparison). Pass ``outcome``
    to keep what was fetched when ``fetch`` raises; errors of ``fetch`` propagate, those of
    ``versions`` (:class:`~watcher.errors.WatcherError`) end up in ``version_error``.
    """
    from watcher.analysis.detect import DetectionContext, detect

    out = outcome if outcome is not None else PairOutcome(windows)
    out.windows = windows
    fetched = fetch(windows.current)
    current = out.current = fetched.table
    if current.total_value <= 0:
        return out
    baselines = [fetch(rng).table for rng in windows.baselines]
    full = [i for i, b in enumerate(baselines) if b.total_value > 0]
    if len(full) < len(baselines):
        missing = ", ".join(windows.baseline_labels(omit=full))
        if not full:
            out.warnings.append(
                f"no data in any baseline window ({missing}): nothing to compare with; "
                "the service may be newer than the baselines, or the server's query "
                "lookback shorter"
            )
        else:
            windows = out.windows = windows.keeping(full)
            baselines = [baselines[i] for i in full]
            out.warnings.append(
                f"no data in the {missing} (the service may be newer than that, or the "
                "server's query lookback shorter): compared with the "
                f"{', '.join(windows.baseline_labels())} only"
            )
    out.baselines = baselines

    context = DetectionContext(
        service=service,
        profile_type=profile_type,
        window_start=windows.current.start,
        window_end=windows.current.end,
        baseline_starts=tuple(rng.start for rng in windows.baselines),
        sample_rate_hz=sample_rate_hz,
        labels=labels,
    )
    parents = fetched.parents

    def run(
        context: DetectionContext,
        previous: FunctionTable | None = None,
        previous_baselines: Sequence[FunctionTable] | None = None,
    ) -> DetectionResult:
        return detect(
            current,
            baselines,
            previous=previous,
            previous_baselines=previous_baselines,
            thresholds=thresholds,
            context=context,
            parents=parents,
        )

    result = run(context)
    candidates = bool(result.findings or result.cost_shifts)
    if candidates or want_previous:
        out.previous = fetch(windows.previous).table
    if candidates:
        _fetch_previous_baselines(fetch, out, own_previous_baselines)
        result = run(context, out.previous, out.previous_baselines)
    if result.findings and versions is not None:
        try:
            context = replace(
                context,
                current_versions=versions(windows.current),
                previous_versions=versions(windows.previous),
                baseline_versions=tuple(versions(rng) for rng in windows.baselines),
            )
        except WatcherError as exc:
            out.version_error = f"{type(exc).__name__}: {exc}"
        else:
            result = run(context, out.previous, out.previous_baselines)
    out.result = result
    return out


def _fetch_previous_baselines(
    fetch: Callable[[TimeRange], FetchedWindow], out: PairOutcome, own: bool
) -> None:
    """Fetch the previous window's own baselines (when ``own`` and the previous window
    holds data), warning about empty windows: a change cannot be confirmed without them."""
    previous, windows = out.previous, out.windows
    if previous is None or previous.total_value <= 0:
        out.warnings.append(
            "the previous window holds no data: a change cannot be confirmed "
            "without it, so nothing is alerted this run"
        )
        return
    if not own:
        return
    tables = out.previous_baselines = [fetch(rng).table for rng in windows.previous_baselines]
    empty = [
        format_duration(offset)
        for offset, table in zip(windows.offsets, tables, strict=True)
        if table.total_value <= 0
    ]
    if empty:
        out.warnings.append(
            f"no data in the previous window's {', '.join(empty)} baseline: a "
            "change cannot be confirmed without it, so nothing is alerted this run"
        )
