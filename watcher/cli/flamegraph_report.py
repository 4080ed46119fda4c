"""The ``flamegraph`` report: fetch a service's merged flame graph and print its hottest
functions (table, JSON, tree or folded stacks) or write its pprof.

Click-free. :func:`show_flamegraph` is the one implementation behind both ways in: the click
command (``watcher.cli.flamegraph``, every form) and the fast path (``watcher.cli.fastpath``,
the plain forms); each only turns its arguments into the same parameter values.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from watcher.cli import _adapt
from watcher.cli._session import (
    CliState,
    note,
    open_session,
    resolve_window,
    service_selector,
    window_json,
    window_text,
)
from watcher.cli.output import (
    Cell,
    Column,
    Palette,
    dumps_json,
    format_cores,
    human_rate,
    human_value,
    is_time,
    percent,
    render_table,
    terminal_width,
    to_seconds,
    unit_kind_of,
)

if TYPE_CHECKING:
    from watcher.flamegraph.decode import FlameGraph
    from watcher.flamegraph.functions import FunctionTable
    from watcher.flamegraph.tree import Node, Tree
    from watcher.selectors import Matcher
    from watcher.times import TimeRange

__all__ = [
    "DEFAULT_FORMAT",
    "DEFAULT_MAX_NODES",
    "DEFAULT_MIN_SHARE",
    "DEFAULT_SORT",
    "DEFAULT_TOP",
    "FORMATS",
    "SORTS",
    "PositionalError",
    "Query",
    "header_lines",
    "ranked",
    "render",
    "show_flamegraph",
    "split_positionals",
    "table_json",
    "table_lines",
    "tree_lines",
]

FORMATS = ("table", "tree", "folded", "pprof", "json")
SORTS = ("self", "total")
#: Defaults of the command's options (the click command and the fast path share them).
DEFAULT_MAX_NODES = 16384
DEFAULT_TOP = 20
DEFAULT_SORT = "self"
DEFAULT_FORMAT = "table"
DEFAULT_MIN_SHARE = 1.0


class PositionalError(Exception):
    """The ``[RANGE] [PROFILE_TYPE]`` positionals do not fit (a usage error)."""


def split_positionals(
    extra: Sequence[str],
    range_: timedelta | None,
    ptype: str | None,
    convert_type: Callable[[str], str],
) -> tuple[timedelta | None, str | None]:
    """The seed toolkit's optional ``[RANGE] [PROFILE_TYPE]`` positionals, in either order.

    A value that parses as a duration is the range; anything else is a profile type, given
    to ``convert_type`` (which raises the caller's own usage error for an unknown one).
    Raises :class:`PositionalError` for too many values, or one given twice.
    """
    if len(extra) > 2:
        raise PositionalError(
            f"too many arguments: {' '.join(extra[2:])!r}; expected at most RANGE and PROFILE_TYPE"
        )
    from watcher.errors import TimeSpecError
    from watcher.times import parse_duration

    range_from = "--range"
    type_from = "--type"
    for raw in extra:
        value = raw.strip()
        try:
            duration = parse_duration(value.removeprefix("-"))
        except TimeSpecError:
            if ptype is not None:
                raise PositionalError(
                    f"the profile type is given twice ({value!r} and {type_from})"
                ) from None
            ptype = convert_type(value)
            type_from = repr(value)
        else:
            if range_ is not None:
                raise PositionalError(
                    f"the range is given twice ({value!r} and {range_from})"
                ) from None
            range_ = duration
            range_from = repr(value)
    return range_, ptype


class Query(NamedTuple):
    """What one flamegraph (or one side of a diff) asks for."""

    deployment: str
    service: str
    profile_type: str
    selector: str
    window: TimeRange
    max_nodes: int

    @property
    def unit(self) -> str:
        return _adapt.sample_unit(self.profile_type)

    @property
    def kind(self) -> str:
        return unit_kind_of(self.unit)

    @property
    def is_cpu(self) -> bool:
        return _adapt.is_cpu(self.profile_type)


def show_flamegraph(
    state: CliState,
    *,
    deployment: str,
    service: str,
    range_: timedelta | None,
    start: str | None,
    end: str | None,
    profile_type: str | None,
    labels: Sequence[Matcher],
    max_nodes: int,
    top: int,
    sort: str,
    fmt: str,
    min_share: float,
    output: str | None,
) -> None:
    """Fetch the flame graph and write it in ``fmt``, to stdout or ``output``.

    The values are the command's, validated (``profile_type`` resolved to a full ID;
    ``--json`` already folded into ``fmt``).
    """
    from watcher.profiletypes import resolve_profile_type

    q = Query(
        deployment=deployment,
        service=service,
        profile_type=profile_type or resolve_profile_type("cpu"),
        selector=service_selector(service, labels),
        window=resolve_window(range_, start, end),
        max_nodes=max_nodes,
    )
    with open_session(state, deployment) as s:
        if fmt == "pprof":
            with s.progress("fetching pprof"):
                data = _adapt.fetch_pprof(s.client, q.profile_type, q.selector, q.window, max_nodes)
            _write_pprof(data, output, q)
            return
        with s.progress("fetching flame graph"):
            graph = _adapt.fetch_flamegraph(
                s.client, q.profile_type, q.selector, q.window, max_nodes
            )
    table = _adapt.function_table(graph)
    if table.total_value == 0:
        note(
            f"no {q.profile_type} profiles for service {service!r} in {deployment} "
            f"for {window_text(q.window)} (see: pyrowatch services {deployment})"
        )
        if fmt != "json":
            return
    pal = state.palette(_OutputTarget(output))
    width = terminal_width(sys.stdout) if output is None else None
    lines = render(fmt, q, graph, table, pal, top=top, sort=sort, min_share=min_share, width=width)
    _emit(lines, output)


def render(
    fmt: str,
    q: Query,
    graph: Tree | FlameGraph,
    table: FunctionTable,
    pal: Palette,
    *,
    top: int,
    sort: str,
    min_share: float,
    width: int | None,
) -> list[str]:
    """The output lines of one text format (all but pprof).

    ``table`` is ``graph``'s function table (``_adapt.function_table``), computed once by
    the caller; the ``table`` and ``json`` formats use it alone; only ``tree`` and
    ``folded`` build the graph's tree.
    """
    if fmt == "json":
        return [dumps_json(table_json(q, table, top, sort))]
    if fmt == "folded":
        return [_adapt.folded(_adapt.as_tree(graph)).rstrip("\n")]
    if fmt == "tree":
        tree = _adapt.as_tree(graph)
        return header_lines(q, table, pal) + tree_lines(q, tree, min_share / 100, pal)
    lines = table_lines(q, table, top, sort, pal, width)  # first: it reads the totals needed
    return header_lines(q, table, pal) + lines


class _OutputTarget:
    """Stands in for the output stream when deciding on colour (files get none)."""

    def __init__(self, output: str | None) -> None:
        self.output = output

    def isatty(self) -> bool:
        return self.output is None and sys.stdout.isatty()


def _emit(lines: list[str], output: str | None) -> None:
    text = "\n".join(lines) + ("\n" if lines else "")
    if output is None:
        sys.stdout.write(text)
        return
    Path(output).write_text(text, encoding="utf-8")
    note(f"wrote {output} ({len(lines)} lines)")


def _write_pprof(data: bytes, output: str | None, q: Query) -> None:
    if not data.startswith(b"\x1f\x8b"):
        import gzip

        data = gzip.compress(data, mtime=0)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    Path(output).write_bytes(data)
    note(
        f"wrote {output} ({len(data):,} bytes, {q.profile_type}); open with: go tool pprof {output}"
    )


# --------------------------------------------------------------------------- rendering


def header_lines(q: Query, ft: FunctionTable, pal: Palette) -> list[str]:
    """Deployment, service, type, exact UTC window, total, and the share lost to 'other'."""
    total = ft.total_value
    lines = [
        pal.bold(f"{q.deployment} · {q.service} · {q.profile_type}")
        + pal.dim(f" · {_adapt.describe(q.profile_type)}"),
        f"window {window_text(q.window)}",
        f"total {human_value(total, q.kind)}" + _per_second(total, q),
    ]
    other = ft.other_value
    if other:
        share = other / total if total else 0.0
        text = (
            f"other: {percent(share)} of the total was truncated into 'other' "
            f"(raise --max-nodes above {q.max_nodes})"
        )
        lines.append(pal.yellow(text) if share >= 0.01 else text)
    else:
        lines.append("other: 0% (nothing truncated)")
    lines.append("")
    return lines


def _per_second(value: float, q: Query) -> str:
    secs = q.window.seconds
    if not secs:
        return ""
    if is_time(q.kind) and q.is_cpu:
        return f" = {format_cores(to_seconds(value, q.kind) / secs)} cores on average"
    return f" = {human_rate(value / secs, q.kind)} on average"


def ranked(ft: FunctionTable, sort: str, top: int) -> tuple[list[tuple[str, int, int]], int]:
    """The first ``top`` of ``[(name, self, total)]`` ranked by ``sort``, without 'other';
    and how many there are in all.

    By ``self`` (ties by total, then name), only the totals of the rows shown (and of
    those tied with the last one) are computed, not every function's.
    """
    if sort != "self":
        rows = [(name, s, t) for name, s, t in _adapt.function_rows(ft) if name != "other"]
        rows.sort(key=lambda r: (-r[2], -r[1], r[0]))
        return rows[: max(top, 0)], len(rows)
    selfs = [(name, s) for name, s in ft.self_values.items() if s > 0 and name != "other"]
    count = len(selfs)
    if top <= 0:
        return [], count
    if top < count:
        cutoff = heapq.nlargest(top, [s for _, s in selfs])[-1]
        selfs = [(name, s) for name, s in selfs if s >= cutoff]
    # 'other' too: the header reads it, and one pass over the nodes finds both.
    totals = ft.totals_for([name for name, _ in selfs] + ["other"])
    rows = [(name, s, totals[name]) for name, s in selfs]
    rows.sort(key=lambda r: (-r[1], -r[2], r[0]))
    return rows[:top], count


def table_lines(
    q: Query, ft: FunctionTable, top: int, sort: str, pal: Palette, width: int | None
) -> list[str]:
    """The ranked function table."""
    total = ft.total_value
    if not total:
        return []
    rows, count = ranked(ft, sort, top)
    show_cores = is_time(q.kind) and q.is_cpu and q.window.seconds > 0
    columns = [Column("#"), Column("SELF"), Column("SELF%")]
    if show_cores:
        columns.append(Column("CORES"))
    columns += [Column("TOTAL"), Column("TOTAL%")]
    columns.append(Column("FUNCTION", "<"))
    body: list[list[str | Cell]] = []
    for i, (name, self_v, total_v) in enumerate(rows, 1):
        row: list[str | Cell] = [str(i), human_value(self_v, q.kind)]
        self_share = self_v / total
        row.append(Cell(percent(self_share), ("red",) if self_share >= 0.1 else ()))
        if show_cores:
            row.append(format_cores(to_seconds(self_v, q.kind) / q.window.seconds))
        row += [human_value(total_v, q.kind), percent(total_v / total)]
        row.append(Cell(name, ("bold",) if i == 1 else ()))
        body.append(row)
    lines = render_table(columns, body, palette=pal, max_width=width)
    if count > top:
        lines.append(pal.dim(f"… {count - top} more functions (--top {count} to see all)"))
    return lines


def table_json(q: Query, ft: FunctionTable, top: int, sort: str) -> dict[str, Any]:
    """The ranked table as JSON (values in the profile's unit; shares as fractions)."""
    total = ft.total_value
    rows, count = ranked(ft, sort, top)
    secs = q.window.seconds
    functions: list[dict[str, Any]] = []
    for i, (name, self_v, total_v) in enumerate(rows, 1):
        item: dict[str, Any] = {
            "rank": i,
            "name": name,
            "self": self_v,
            "self_share": self_v / total if total else 0.0,
            "total": total_v,
            "total_share": total_v / total if total else 0.0,
        }
        if is_time(q.kind) and q.is_cpu and secs:
            item["self_cores"] = to_seconds(self_v, q.kind) / secs
            item["total_cores"] = to_seconds(total_v, q.kind) / secs
        functions.append(item)
    return {
        "deployment": q.deployment,
        "service": q.service,
        "profile_type": q.profile_type,
        "selector": q.selector,
        "unit": q.unit,
        "window": window_json(q.window),
        "total": total,
        "other": ft.other_value,
        "other_share": ft.other_value / total if total else 0.0,
        "max_nodes": q.max_nodes,
        "sort": sort,
        "function_count": count,
        "functions": functions,
    }


def tree_lines(q: Query, tree: Tree, min_share: float, pal: Palette) -> list[str]:
    """The hottest call paths, children by total, pruned below ``min_share`` of the total."""
    total = tree.total
    if not total:
        return []
    cut = min_share * total
    lines: list[str] = []
    # (node, prefix for its children, own connector)
    todo: list[tuple[Node | _Marker, str, str]] = []

    def push_children(node: Node, prefix: str) -> None:
        kids = sorted(node.children.values(), key=lambda n: (-n.total, n.name))
        shown = [k for k in kids if k.total >= cut and k.total > 0]
        hidden = len(kids) - len(shown)
        entries: list[tuple[Node | None, str, str]] = [(k, prefix, "") for k in shown]
        if hidden:
            entries.append((None, prefix, f"… {hidden} below {percent(min_share)}"))
        for idx in range(len(entries) - 1, -1, -1):
            kid, pre, text = entries[idx]
            last = idx == len(entries) - 1
            connector = "└─ " if last else "├─ "
            if kid is None:
                todo.append((_Marker(text), pre + connector, ""))
            else:
                todo.append((kid, pre + connector, pre + ("   " if last else "│  ")))

    lines.append(f"{percent(1.0):>7}  {human_value(total, q.kind):>10}  {pal.bold('total')}")
    push_children(tree.root, "")
    while todo:
        node, line_prefix, child_prefix = todo.pop()
        if isinstance(node, _Marker):
            lines.append(f"{'':>7}  {'':>10}  {line_prefix}{pal.dim(node.name)}")
            continue
        share = node.total / total
        self_note = f"  (self {percent(node.self / total)})" if node.self else ""
        lines.append(
            f"{percent(share):>7}  {human_value(node.total, q.kind):>10}  "
            f"{line_prefix}{node.name}{pal.dim(self_note)}"
        )
        push_children(node, child_prefix)
    return lines


class _Marker:
    """A placeholder line in the tree (``… N below 1%``)."""

    __slots__ = ("children", "name", "self", "total")

    def __init__(self, text: str) -> None:
        self.name = text
        self.self = 0
        self.total = 0
        self.children: dict[str, Node] = {}
