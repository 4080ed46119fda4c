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
from collections.abc import Callable, Collection, Iterable, Iterator
from functools import partial
from itertools import compress, islice, repeat
from operator import or_, sub, truediv
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
    """Per-function ``self`` and ``total`` of one tree; see the module docstring.

    A table made from a decoded graph computes totals when first read: all of them for
    :attr:`total_values`, :meth:`get` or iteration; only the few asked for by
    :meth:`top` and :meth:`totals_for`, which costs a fraction of all. A ranking by
    ``self`` (the usual one) then never pays for every total.
    """

    __slots__ = ("_known", "_totals_of", "self_values", "total_value")

    def __init__(
        self,
        self_values: dict[str, int],
        total_values: dict[str, int] | None,
        total_value: int,
        *,
        totals_of: Callable[[Collection[str] | None], dict[str, int]] | None = None,
    ) -> None:
        """``total_values`` may be ``None`` when ``totals_of`` computes them on demand
        (all for ``None``, else those of the names given). ``self_values`` has an entry
        for every function with a width (``self`` 0 included)."""
        if total_values is None and totals_of is None:
            raise ValueError("give total_values or a totals_of function")
        self.self_values = self_values
        self.total_value = total_value
        self._known: dict[str, int] = {} if total_values is None else total_values
        self._totals_of = None if total_values is not None else totals_of

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
        ``from_tree(graph.to_tree())``, several times faster); totals come when read."""
        if not graph.consistent:
            return cls.from_tree(graph.to_tree())
        return cls(
            graph.function_selfs(),
            None,
            sum(graph.levels[1][1::4]) if len(graph.levels) > 1 else 0,
            totals_of=graph.function_totals,
        )

    @classmethod
    def from_diff(cls, diff: FlameGraphDiff) -> tuple[FunctionTable, FunctionTable]:
        """The left (baseline) and right (current) tables of a decoded diff; totals come
        when read."""
        if not diff.consistent:
            left, right = diff.to_trees()
            return cls.from_tree(left), cls.from_tree(right)
        ls, rs = diff.function_selfs()
        levels = diff.levels
        top = levels[1] if len(levels) > 1 else []
        return (
            cls(ls, None, sum(top[1::7]), totals_of=partial(diff.function_totals, "left")),
            cls(rs, None, sum(top[4::7]), totals_of=partial(diff.function_totals, "right")),
        )

    # -- totals -----------------------------------------------------------------------------------

    @property
    def total_values(self) -> dict[str, int]:
        """Per function ``total``, a recursive frame counted once (computed on first read
        for a table of a decoded graph)."""
        if self._totals_of is not None:
            self._known = self._totals_of(None)
            self._totals_of = None  # complete: the graph is no longer needed
        return self._known

    def totals_for(self, names: Iterable[str]) -> dict[str, int]:
        """``total`` of each of ``names`` (0 for one not in the table), computing only
        those not known yet: one pass over the nodes of those names, or all totals once
        the names are a good part of the table."""
        wanted = list(names)
        if self._totals_of is not None:
            missing = {n for n in wanted if n not in self._known and n in self.self_values}
            if len(missing) * 4 > len(self.self_values):
                self.total_values  # noqa: B018 - completes the totals
            elif missing:
                self._known.update(self._totals_of(missing))
        known = self._known
        return {name: known.get(name, 0) for name in wanted}

    @property
    def other_value(self) -> int:
        """The value of the synthetic ``"other"`` nodes (truncation buckets)."""
        return self.totals_for((OTHER,))[OTHER]

    # -- reading ----------------------------------------------------------------------------------

    @property
    def truncated_share(self) -> float:
        """Fraction of the profile held by synthetic ``"other"`` nodes (0 when empty)."""
        return self.other_value / self.total_value if self.total_value else 0.0

    def __len__(self) -> int:
        return len(self.self_values)

    def __contains__(self, name: object) -> bool:
        return name in self.self_values

    def __iter__(self) -> Iterator[FunctionStats]:
        """Every function, in name order."""
        totals = self.total_values
        for name in sorted(totals):
            yield FunctionStats(name, self.self_values[name], totals[name])

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
        names = [name for name, _ in best]
        totals = self.totals_for(names)
        selfs = self.self_values
        return [FunctionStats(name, selfs.get(name, 0), totals[name]) for name in names]

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


class DiffTable:
    """Per-function comparison of two :class:`FunctionTable`s for one kind of value.

    ``rows`` holds every function present on either side, ordered by the size of the share
    change (largest first), ties by name. The order is computed up front from columns of
    values; a row is built when read, so asking for the top few of a large table builds a
    few rows, not one per function.
    """

    __slots__ = (
        "_base",
        "_changes",
        "_cur",
        "_index",
        "_names",
        "_rows",
        "_totals",
        "baseline",
        "current",
        "kind",
    )

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
        self._totals = (baseline.total_value or 1, current.total_value or 1)
        names = base_values.keys() | cur_values.keys()
        if not include_other:
            names.discard(OTHER)
        ordered = sorted(names)
        base = list(map(base_values.get, ordered, repeat(0)))
        cur = list(map(cur_values.get, ordered, repeat(0)))
        if 0 in base and 0 in cur:  # functions with a width but no value on either side
            keep = list(map(or_, base, cur))
            ordered = list(compress(ordered, keep))
            base = list(compress(base, keep))
            cur = list(compress(cur, keep))
        base_total, cur_total = self._totals
        changes = list(
            map(
                sub,
                map(truediv, cur, repeat(cur_total)),
                map(truediv, base, repeat(base_total)),
            )
        )
        # Largest share change first, ties by name: the names are sorted, the sort stable.
        order = sorted(range(len(ordered)), key=list(map(abs, changes)).__getitem__, reverse=True)
        self._names = list(map(ordered.__getitem__, order))
        self._base = list(map(base.__getitem__, order))
        self._cur = list(map(cur.__getitem__, order))
        self._changes = list(map(changes.__getitem__, order))
        self._rows: list[FunctionDiff] | None = None
        self._index: dict[str, int] | None = None

    def _row(self, i: int) -> FunctionDiff:
        b = self._base[i]
        c = self._cur[i]
        base_total, cur_total = self._totals
        b_share = b / base_total
        c_share = c / cur_total
        return _new_row(
            FunctionDiff,
            (
                self._names[i],
                self.kind,
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

    @property
    def rows(self) -> list[FunctionDiff]:
        """Every row, largest share change first (built on first read)."""
        if self._rows is None:
            self._rows = list(map(self._row, range(len(self._names))))
        return self._rows

    def get(self, name: str) -> FunctionDiff | None:
        """The row for ``name``, or ``None``."""
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self._names)}
        i = self._index.get(name)
        return None if i is None else self._row(i)

    def top(
        self, n: int, *, direction: Literal["up", "down", "both"] = "both"
    ) -> list[FunctionDiff]:
        """The ``n`` rows with the largest share change; ``"up"`` keeps only growth,
        ``"down"`` only shrinkage."""
        if direction == "up":
            found: Iterable[int] = (i for i, ch in enumerate(self._changes) if ch > 0)
        elif direction == "down":
            found = (i for i, ch in enumerate(self._changes) if ch < 0)
        elif direction == "both":
            found = range(len(self._names))
        else:
            raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
        return list(map(self._row, islice(found, max(n, 0))))

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[FunctionDiff]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"DiffTable(kind={self.kind!r}, rows={len(self)})"
