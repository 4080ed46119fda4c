"""The thin seam between the commands and the library.

Every library call whose shape the commands depend on goes through here, so a change of a
library signature is fixed in one place. Imports stay inside the functions (this module is
loaded for ``--help``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watcher.flamegraph.decode import FlameGraph
    from watcher.flamegraph.functions import FunctionTable
    from watcher.flamegraph.tree import Tree
    from watcher.querier import QuerierClient
    from watcher.times import TimeRange


# --------------------------------------------------------------------------- profile types


def sample_unit(profile_type: str) -> str:
    """The sample unit of a profile type ID (``nanoseconds``, ``bytes``, ``count``...)."""
    from watcher.profiletypes import ProfileTypeID

    return ProfileTypeID.parse(profile_type).sample_unit


def is_cpu(profile_type: str) -> bool:
    """True for CPU time profiles, shown as average cores."""
    from watcher.profiletypes import ProfileTypeID

    pt = ProfileTypeID.parse(profile_type)
    return pt.sample_type == "cpu" or pt.name == "process_cpu"


def describe(profile_type: str) -> str:
    """A short human name of a profile type."""
    from watcher.errors import ProfileTypeError
    from watcher.profiletypes import describe as _describe

    try:
        return _describe(profile_type)
    except ProfileTypeError:
        return ""


# --------------------------------------------------------------------------- flame graphs


def function_table(profile: Tree | FlameGraph) -> FunctionTable:
    """Per-function self and total of a tree or a decoded flame graph (recursion counted
    once). A flame graph is tabulated straight from its levels, without building a tree."""
    from watcher.flamegraph.functions import FunctionTable
    from watcher.flamegraph.tree import Tree

    if isinstance(profile, Tree):
        return FunctionTable.from_tree(profile)
    return FunctionTable.from_flamegraph(profile)


def as_tree(profile: Tree | FlameGraph) -> Tree:
    """The tree of a profile."""
    from watcher.flamegraph.tree import Tree

    if isinstance(profile, Tree):
        return profile
    return profile.to_tree()


def function_rows(table: FunctionTable) -> Iterable[tuple[str, int, int]]:
    """``(name, self, total)`` of every function."""
    return ((f.name, f.self, f.total) for f in table)


def folded(tree: Tree) -> str:
    """Collapsed stacks."""
    from watcher.flamegraph.folded import to_folded

    return to_folded(tree)


# --------------------------------------------------------------------------- statistics


def rate_test_p(x1: float, n1: float, x0: float, n0: float, *, phi: float) -> float:
    """One-sided p-value that the current share ``x1/n1`` rose above ``x0/n0``."""
    from watcher.analysis.stats import rate_test

    return rate_test(x1, n1, x0, n0, phi=phi).p_value


def samples_per_unit(profile_type: str, sample_rate: float) -> tuple[float, bool]:
    """Sample counts per unit of value, and whether they are Poisson counts."""
    from watcher.analysis.stats import sample_model

    model = sample_model(profile_type, sample_rate)
    return 1.0 / model.units_per_sample, model.poisson


def default_dispersion() -> float:
    """The dispersion assumed when it cannot be estimated from two windows."""
    from watcher.analysis.stats import DEFAULT_DISPERSION

    return DEFAULT_DISPERSION


# --------------------------------------------------------------------------- time


def from_ms(ms: int) -> datetime:
    """UTC datetime of epoch milliseconds."""
    from watcher.times import from_ms as _from_ms

    return _from_ms(ms)


# --------------------------------------------------------------------------- querier


def fetch_flamegraph(
    client: QuerierClient, profile_type: str, selector: str, rng: TimeRange, max_nodes: int
) -> FlameGraph | Tree:
    """The merged flame graph of ``selector`` over ``rng``, decoded but not made a tree
    (tabulating it needs none; :func:`as_tree` builds one when an output needs it)."""
    from watcher.flamegraph.decode import FlameGraph, decode_flamegraph

    result: Any = client.select_merge_stacktraces(
        profile_type, selector, rng, max_nodes=max_nodes, fmt="flamegraph"
    )
    if isinstance(result, FlameGraph):
        return result
    if isinstance(result, Mapping):
        return decode_flamegraph(result)
    return _to_tree(result)


def fetch_tree(
    client: QuerierClient, profile_type: str, selector: str, rng: TimeRange, max_nodes: int
) -> Tree:
    """The merged flame graph of ``selector`` over ``rng`` as a tree."""
    return as_tree(fetch_flamegraph(client, profile_type, selector, rng, max_nodes))


def _to_tree(result: Any) -> Tree:
    """The tree of a result that is neither a decoded flame graph nor its JSON."""
    from watcher.flamegraph.tree import Tree

    if isinstance(result, Tree):
        return result
    to_tree = getattr(result, "to_tree", None)
    if callable(to_tree):
        tree = to_tree()
        if isinstance(tree, Tree):
            return tree
    raise TypeError(f"unexpected flame graph result {type(result).__name__}")


def fetch_pprof(
    client: QuerierClient, profile_type: str, selector: str, rng: TimeRange, max_nodes: int
) -> bytes:
    """A pprof (SelectMergeStacktraces PPROF, else SelectMergeProfile) as bytes."""
    data: Any = client.select_merge_stacktraces(
        profile_type, selector, rng, max_nodes=max_nodes, fmt="pprof"
    )
    if isinstance(data, bytes | bytearray) and data:
        return bytes(data)
    fallback: Any = client.select_merge_profile(profile_type, selector, rng, max_nodes=max_nodes)
    return bytes(fallback or b"")


def raw_call(client: QuerierClient, method: str, body: str) -> Any:
    """A raw Querier call with the body bytes exactly as given; the parsed JSON answer.

    The client's public ``call`` takes a mapping and serialises it again, which would not
    send the user's bytes verbatim; this uses its transport step with the raw body.
    """
    import json

    from watcher.errors import DecodeError

    content = client._exchange(method, body.encode("utf-8"), "application/json")
    if not content.strip():
        return {}
    try:
        return json.loads(content)
    except ValueError:
        raise DecodeError(f"{method}: the response is not JSON") from None


def profile_type_id(pt: Any) -> str:
    """The ID of a ProfileTypes result entry."""
    for name in ("id", "ID", "profile_type_id"):
        value = pt.get(name) if isinstance(pt, Mapping) else getattr(pt, name, None)
        if isinstance(value, str):
            return value
    return str(pt)


def profile_type_name(pt: Any) -> str:
    """The name of a ProfileTypes result entry."""
    value = pt.get("name") if isinstance(pt, Mapping) else getattr(pt, "name", None)
    return value if isinstance(value, str) else ""


def series_item(series: Any) -> tuple[dict[str, str], list[tuple[int, float]]]:
    """``(labels, [(timestamp_ms, value)])`` of one SelectSeries series."""
    labels_raw = series.get("labels") if isinstance(series, Mapping) else series.labels
    labels: dict[str, str] = {}
    if isinstance(labels_raw, Mapping):
        labels = {str(k): str(v) for k, v in labels_raw.items()}
    elif labels_raw:
        for item in labels_raw:
            if isinstance(item, Mapping):
                labels[str(item["name"])] = str(item["value"])
            else:
                labels[str(item[0])] = str(item[1])
    points_raw = series.get("points") if isinstance(series, Mapping) else series.points
    points: list[tuple[int, float]] = []
    for p in points_raw or []:
        if isinstance(p, Mapping):
            points.append((int(p["timestamp"]), float(p["value"])))
        else:
            ts = getattr(p, "timestamp_ms", None)
            if ts is None:
                ts = p.timestamp
            if isinstance(ts, datetime):
                from watcher.times import to_ms

                ts = to_ms(ts)
            points.append((int(ts), float(p.value)))
    return labels, points
