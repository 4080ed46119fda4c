"""Per-function tables: how much of a profile each function costs, and how that changed.

``self`` of a function is the sum of ``self`` over every node with its name. ``total`` is
the sum of ``total`` over the nodes with its name that have no ancestor of the same name,
so a recursive frame is counted once: ``a;b;a`` = 5 gives ``a`` a total of 5, not 10.

Synthetic ``"other"`` nodes (truncation buckets) are measured separately:
``other_value`` is their value and ``truncated_share`` the fraction of the profile they
hold. Rankings leave them out unless asked.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from operator import itemgetter
from typing import Literal, NamedTuple

from watcher.flamegraph.decode import FlameGraph, FlameGraphDiff
from watcher.flamegraph.tree import OTHER, Node, Tree

__all__ = ["DiffTable", "FunctionDiff", "FunctionStats", "FunctionTable", "ValueKind"]

#: Which per-function value a ranking or share uses.
ValueKind = Literal["self", "total"]


def _check_kind(kind: str) -> None:
    if kind not in ("self", "total"):
        raise ValueError(f"kind must be 'self' or 'total', not {kind!r}")


class FunctionStats(NamedTuple):
    """One function's values in one profile (a named tuple: cheaper to define than a
    dataclass, which a command pays for at every start)."""

    name: str
    self: int
    total: int


class FunctionTable:
    """Per-function ``self`` and ``total`` of one tree; see the module docstring."""

    __slots__ = ("other_value", "self_values", "total_value", "total_values")

    def __init__(
        self,
        self_values: dict[str, int],
        total_values: dict[str, int],
        total_value: int,
    ) -> None:
        self.self_values = self_values
        self.total_values = total_values
        self.total_value = total_value
        self.other_value = total_values.get(OTHER, 0)

    @classmethod
    def from_tree(cls, tree: Tree) -> FunctionTable:
        """Tabulate ``tree`` in one pass over its nodes."""
        selfs: dict[str, int] = {}
        totals: dict[str, int] = {}
        # Names on the current root-to-node path with how often each occurs there.
        on_path: dict[str, int] = {}
        path: list[str] = []
        todo: list[tuple[Node, int]] = [(c, 0) for c in tree.root.children.values()]
        pop = todo.pop
        push = todo.append
        while todo:
            node, depth = pop()
            while len(path) > depth:
                left = path.pop()
                count = on_path[left]
                if count == 1:
                    del on_path[left]
                else:
                    on_path[left] = count - 1
            name = node.name
            if node.self:
                selfs[name] = selfs.get(name, 0) + node.self
            seen = on_path.get(name)
            if seen is None:
                totals[name] = totals.get(name, 0) + node.total
                on_path[name] = 1
            else:
                on_path[name] = seen + 1
            path.append(name)
            children = node.children
            if children:
                depth += 1
                for child in children.values():
                    push((child, depth))
        for name in totals:
            selfs.setdefault(name, 0)
        return cls(selfs, totals, tree.total)

    @classmethod
    def from_flamegraph(cls, graph: FlameGraph) -> FunctionTable:
        """Tabulate a decoded graph without building its tree (same result as
        ``from_tree(graph.to_tree())``, several times faster)."""
        if not graph.consistent:
            return cls.from_tree(graph.to_tree())
        selfs, totals = graph.function_values()
        return cls(selfs, totals, sum(graph.levels[1][1::4]) if len(graph.levels) > 1 else 0)

    @classmethod
    def from_diff(cls, diff: FlameGraphDiff) -> tuple[FunctionTable, FunctionTable]:
        """The left (baseline) and right (current) tables of a decoded diff."""
        if not diff.consistent:
            left, right = diff.to_trees()
            return cls.from_tree(left), cls.from_tree(right)
        (ls, lt), (rs, rt) = diff.function_values()
        levels = diff.levels
        top = levels[1] if len(levels) > 1 else []
        return cls(ls, lt, sum(top[1::7])), cls(rs, rt, sum(top[4::7]))

    # -- reading ----------------------------------------------------------------------------------

    @property
    def truncated_share(self) -> float:
        """Fraction of the profile held by synthetic ``"other"`` nodes (0 when empty)."""
        return self.other_value / self.total_value if self.total_value else 0.0

    def __len__(self) -> int:
        return len(self.total_values)

    def __contains__(self, name: object) -> bool:
        return name in self.total_values

    def __iter__(self) -> Iterator[FunctionStats]:
        """Every function, in name order."""
        for name in sorted(self.total_values):
            yield FunctionStats(name, self.self_values[name], self.total_values[name])

    def get(self, name: str) -> FunctionStats | None:
        """One function's values, or ``None`` when it does not appear."""
        total = self.total_values.get(name)
        if total is None:
            return None
        return FunctionStats(name, self.self_values[name], total)

    def value(self, name: str, kind: ValueKind = "self") -> int:
        """``self`` or ``total`` of ``name`` (0 when it does not appear)."""
        _check_kind(kind)
        values = self.self_values if kind == "self" else self.total_values
        return values.get(name, 0)

    def share(self, name: str, kind: ValueKind = "self") -> float:
        """``value(name, kind)`` as a fraction of the profile total (0 when empty)."""
        if not self.total_value:
            _check_kind(kind)
            return 0.0
        return self.value(name, kind) / self.total_value

    def top(
        self, n: int, by: ValueKind = "self", *, include_other: bool = False
    ) -> list[FunctionStats]:
        """The ``n`` largest functions by ``by``, largest first, ties by name.

        Functions with a zero value are left out; so is ``"other"`` unless
        ``include_other``.
        """
        _check_kind(by)
        values = self.self_values if by == "self" else self.total_values
        candidates = (
            (name, v) for name, v in values.items() if v > 0 and (include_other or name != OTHER)
        )
        best = heapq.nsmallest(max(n, 0), candidates, key=lambda item: (-item[1], item[0]))
        return [self.get(name) or FunctionStats(name, 0, 0) for name, _ in best]

    def __repr__(self) -> str:
        return (
            f"FunctionTable(functions={len(self)}, total_value={self.total_value}, "
            f"other_value={self.other_value})"
        )


class FunctionDiff(NamedTuple):
    """One function compared between a baseline and a current profile.

    Shares are fractions of each profile's total. ``absolute_change`` is the share delta
    (``current_share - baseline_share``); ``relative_change`` is
    ``current_share / baseline_share - 1``, ``None`` when the baseline share is 0.
    ``value_change`` is the raw value delta, in the profile's unit. (A named tuple: tables
    of many thousand rows are built often.)
    """

    name: str
    kind: ValueKind
    baseline_value: int
    current_value: int
    baseline_share: float
    current_share: float
    value_change: int
    absolute_change: float
    relative_change: float | None
    is_new: bool
    vanished: bool


# Building rows straight from tuples skips the Python-level ``__new__`` of a named tuple.
_new_row = tuple.__new__
_row_name = itemgetter(FunctionDiff._fields.index("name"))
_row_change = itemgetter(FunctionDiff._fields.index("absolute_change"))


class DiffTable:
    """Per-function comparison of two :class:`FunctionTable`s for one kind of value.

    ``rows`` holds every function present on either side, ordered by the size of the share
    change (largest first), ties by name.
    """

    __slots__ = ("baseline", "by_name", "current", "kind", "rows")

    def __init__(
        self,
        baseline: FunctionTable,
        current: FunctionTable,
        kind: ValueKind = "self",
        *,
        include_other: bool = False,
    ) -> None:
        _check_kind(kind)
        self.baseline = baseline
        self.current = current
        self.kind: ValueKind = kind
        base_values = baseline.self_values if kind == "self" else baseline.total_values
        cur_values = current.self_values if kind == "self" else current.total_values
        # Every share of an empty profile is 0.
        base_total = baseline.total_value or 1
        cur_total = current.total_value or 1
        base_get = base_values.get
        cur_get = cur_values.get
        rows: list[FunctionDiff] = []
        append = rows.append
        for name in base_values.keys() | cur_values.keys():
            b = base_get(name, 0)
            c = cur_get(name, 0)
            if not (b or c) or (name == OTHER and not include_other):
                continue
            b_share = b / base_total
            c_share = c / cur_total
            append(
                _new_row(
                    FunctionDiff,
                    (
                        name,
                        kind,
                        b,
                        c,
                        b_share,
                        c_share,
                        c - b,
                        c_share - b_share,
                        (c_share / b_share - 1.0) if b_share else None,
                        not b,
                        not c,
                    ),
                )
            )
        # Largest share change first, ties by name: sort by name, then stably by size.
        rows.sort(key=_row_name)
        size = list(map(abs, map(_row_change, rows)))
        rows = list(
            map(rows.__getitem__, sorted(range(len(rows)), key=size.__getitem__, reverse=True))
        )
        self.rows = rows
        self.by_name = {row.name: row for row in rows}

    def get(self, name: str) -> FunctionDiff | None:
        """The row for ``name``, or ``None``."""
        return self.by_name.get(name)

    def top(
        self, n: int, *, direction: Literal["up", "down", "both"] = "both"
    ) -> list[FunctionDiff]:
        """The ``n`` rows with the largest share change; ``"up"`` keeps only growth,
        ``"down"`` only shrinkage."""
        if direction == "up":
            rows = [r for r in self.rows if r.absolute_change > 0]
        elif direction == "down":
            rows = [r for r in self.rows if r.absolute_change < 0]
        elif direction == "both":
            rows = self.rows
        else:
            raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
        return rows[: max(n, 0)]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[FunctionDiff]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"DiffTable(kind={self.kind!r}, rows={len(self.rows)})"
