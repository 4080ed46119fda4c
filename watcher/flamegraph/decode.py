"""Decoders: ``FlameGraph`` / ``FlameGraphDiff`` messages and ``PROFILE_FORMAT_TREE`` bytes.

The message decoders take the parsed Connect JSON (``{"names": [...], "levels": [{"values":
[...]}], "total": "123", ...}``) or the dicts the encoders return (levels as plain lists).
int64 fields may be strings or ints; missing keys default the way protojson omits zero
values. A response wrapper (``{"flamegraph": {...}}``) is unwrapped.

Everything is checked while decoding, in time linear in the node count: value counts,
negative values, ``self > total``, name indices, and that every node lies inside its
parent's span (``[x + self, x + total)`` of the parent). Parents are found with one merge
pass per level, since both levels are sorted by x. Anything malformed raises
:class:`~watcher.errors.DecodeError` naming the level and node index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import accumulate
from operator import add, gt, sub
from typing import Any

from watcher.errors import DecodeError
from watcher.flamegraph.tree import Node, Stack, Tree

__all__ = ["FlameGraph", "FlameGraphDiff", "decode_diff", "decode_flamegraph", "decode_tree_bytes"]

_MAX_INT64 = (1 << 63) - 1
_PAST_INT64 = 1 << 64  # above every checked offset
_INT_TYPES = frozenset({int, str})


# -- helpers --------------------------------------------------------------------------------------


def _message(msg: object, wrapper: str, what: str) -> Mapping[str, Any]:
    if not isinstance(msg, Mapping):
        raise DecodeError(f"{what}: expected a JSON object, got {type(msg).__name__}")
    inner = msg.get(wrapper)
    if isinstance(inner, Mapping) and "names" not in msg and "levels" not in msg:
        return inner
    return msg


def _scalar(value: object, where: str) -> int:
    if type(value) is int:
        result = value
    elif type(value) is str:
        try:
            result = int(value)
        except ValueError:
            raise DecodeError(f"{where}: {value[:40]!r} is not an integer") from None
    else:
        raise DecodeError(f"{where}: {value!r:.40} is not an integer")
    if result < 0 or result > _MAX_INT64:
        raise DecodeError(f"{where}: {result} is out of range")
    return result


def _field(msg: Mapping[str, Any], names: tuple[str, ...], what: str) -> int:
    for name in names:
        if name in msg:
            value = msg[name]
            return 0 if value is None else _scalar(value, f"{what} {names[0]}")
    return 0


def _names(msg: Mapping[str, Any], what: str) -> list[str]:
    names = msg.get("names")
    if names is None:
        return []
    if not isinstance(names, list | tuple):
        raise DecodeError(f"{what}: names is not a list")
    if not set(map(type, names)) <= {str}:
        i = next(i for i, n in enumerate(names) if type(n) is not str)
        raise DecodeError(f"{what}: names[{i}] is not a string")
    return list(names)


def _raw_levels(msg: Mapping[str, Any], what: str) -> list[object]:
    levels = msg.get("levels")
    if levels is None:
        return []
    if not isinstance(levels, list | tuple):
        raise DecodeError(f"{what}: levels is not a list")
    return list(levels)


def _level_ints(raw: object, d: int, width: int, what: str) -> list[int]:
    """One level's values as ints, checked for type, arity, sign and range."""
    if isinstance(raw, Mapping):
        raw = raw.get("values")
        if raw is None:
            return []
    if not isinstance(raw, list | tuple):
        raise DecodeError(f"{what} level {d}: values is not a list")
    n = len(raw)
    if n % width:
        raise DecodeError(
            f"{what} level {d}: {n} values is not a multiple of {width} "
            f"(node {n // width} is incomplete)"
        )
    types = set(map(type, raw))
    if types == {int}:
        values: list[int] = list(raw)
    elif types <= _INT_TYPES:
        try:
            values = list(map(int, raw))
        except ValueError:
            values = [_scalar(v, f"{what} level {d} node {i // width}") for i, v in enumerate(raw)]
    else:
        for i, v in enumerate(raw):
            _scalar(v, f"{what} level {d} node {i // width}")
        raise AssertionError("unreachable")  # pragma: no cover
    # Values too large for int64 are caught by the offset check of _layout, which bounds
    # every x and total (selfs are bounded by totals, name indices by the names).
    if values and min(values) < 0:
        i = next(i for i, v in enumerate(values) if v < 0)
        raise DecodeError(f"{what} level {d} node {i // width}: value {values[i]} is out of range")
    return values


class _Side:
    """Absolute layout of one side of a graph: per level totals, selfs and parent indices."""

    __slots__ = ("consistent", "parents", "selfs", "starts", "totals")

    def __init__(self) -> None:
        self.starts: list[list[int]] = []
        self.totals: list[list[int]] = []
        self.selfs: list[list[int]] = []
        self.parents: list[list[int]] = []
        self.consistent = True

    def subtotals(self) -> list[list[int]]:
        """Per node total rebuilt from the selfs below it (what the stacks carry)."""
        if self.consistent:
            return self.totals
        subs = [list(s) for s in self.selfs]
        for d in range(len(subs) - 1, 0, -1):
            upper = subs[d - 1]
            for p, v in zip(self.parents[d], subs[d], strict=True):
                if v:
                    upper[p] += v
        return subs

    def function_values(self, names: list[str], levels: list[list[int]], width: int) -> _Values:
        """Per function ``self`` and ``total`` (a recursive frame counted once).

        Needs a consistent side. Walks the nodes in pre-order without building a tree: the
        children of a node are the next nodes of the level below whose parent it is, so one
        cursor per level suffices. Pre-order visits x in increasing order, and spans of one
        name are nested (ancestor and descendant) or disjoint, so a node has an ancestor of
        its own name exactly when it starts before the end of the last counted span of that
        name.
        """
        get_name = names.__getitem__
        depth = len(levels)
        if depth < 2:
            return {}, {}
        level_names: list[list[str]] = [[]]
        level_names += (list(map(get_name, levels[d][width - 1 :: width])) for d in range(1, depth))
        level_names.append([])
        sizes = [len(level) for level in level_names]
        starts, totals, selfs = self.starts, self.totals, self.selfs
        # Every top-level frame hangs off the (merged) root, path[0].
        parents = [[], [0] * sizes[1], *self.parents[2:], []]
        cursor = [0] * (depth + 1)
        path = [0] * (depth + 1)
        self_by_name: dict[str, int] = {}
        total_by_name: dict[str, int] = {}
        covered_to: dict[str, int] = {}
        d = 1
        while d:
            j = cursor[d]
            if j < sizes[d] and parents[d][j] == path[d - 1]:
                cursor[d] = j + 1
                t = totals[d][j]
                if not t:
                    continue  # a zero-width top-level node: no samples, no children
                path[d] = j
                name = level_names[d][j]
                x = starts[d][j]
                if x >= covered_to.get(name, -1):
                    total_by_name[name] = total_by_name.get(name, 0) + t
                    covered_to[name] = x + t
                self_by_name[name] = self_by_name.get(name, 0) + selfs[d][j]
                d += 1
            elif j < sizes[d] and not totals[d][j]:
                cursor[d] = j + 1  # a zero-width node between siblings
            else:
                d -= 1
        return self_by_name, total_by_name


# Per function self and total values.
_Values = tuple[dict[str, int], dict[str, int]]


def _layout(levels: list[list[int]], width: int, col: int, what: str, side_name: str = "") -> _Side:
    """Check one side's columns (x at ``col``) and link every node to its parent."""
    side = _Side()
    label = f"{what} {side_name}".rstrip()
    prev: _Level | None = None
    for d, values in enumerate(levels):
        deltas = values[col::width]
        totals = values[col + 1 :: width]
        selfs = values[col + 2 :: width]
        if any(map(gt, selfs, totals)):
            j = next(j for j, (s, t) in enumerate(zip(selfs, totals, strict=True)) if s > t)
            raise DecodeError(f"{label} level {d} node {j}: self {selfs[j]} > total {totals[j]}")
        ends = list(accumulate(map(add, deltas, totals)))
        if ends and ends[-1] > _MAX_INT64:
            j = next(j for j, end in enumerate(ends) if end > _MAX_INT64)
            raise DecodeError(f"{label} level {d} node {j}: offset {ends[j]} is out of range")
        level = (list(map(sub, ends, totals)), ends, selfs, totals)
        if prev is None:
            parents = [-1] * len(totals)
        else:
            parents = _link(label, d, level, prev)
            # Children lie inside their parents' child spans without overlapping, so the
            # level is gap-free exactly when the sums agree.
            if side.consistent and sum(totals) != sum(prev[3]) - sum(prev[2]):
                side.consistent = False
        side.starts.append(level[0])
        side.totals.append(totals)
        side.selfs.append(selfs)
        side.parents.append(parents)
        prev = level
    if prev is not None and side.consistent and prev[2] != prev[3]:
        side.consistent = False
    return side


# One level's absolute layout: (starts, ends, selfs, totals).
_Level = tuple[list[int], list[int], list[int], list[int]]


def _link(label: str, d: int, level: _Level, upper: _Level) -> list[int]:
    """Parent index on ``upper`` of every node of ``level`` (-1 for zero-width nodes).

    A node's parent is the right-most node of ``upper`` with a non-zero width that starts
    at or before it. Both levels are sorted by x, so one merge pass finds every parent;
    the bounds of the current parent stay in locals. The node must lie inside the
    parent's child span ``[x + self, x + total)``.
    """
    starts, ends, _, _ = level
    p_starts, p_ends, p_selfs, p_totals = upper
    n_upper = len(p_starts)
    lows = list(map(add, p_starts, p_selfs))
    parents: list[int] = []
    append = parents.append
    scan = p = -1  # the last upper node passed, and the last one with a width
    low = end = 0
    next_start = p_starts[0] if n_upper else _PAST_INT64
    for x, e in zip(starts, ends, strict=True):
        if x == e:
            append(-1)
            continue
        if x >= next_start:
            scan += 1
            if p_totals[scan]:
                p = scan
            while scan + 1 < n_upper and p_starts[scan + 1] <= x:
                scan += 1
                if p_totals[scan]:
                    p = scan
            if p >= 0:
                low = lows[p]
                end = p_ends[p]
            next_start = p_starts[scan + 1] if scan + 1 < n_upper else _PAST_INT64
        if p < 0 or x < low or e > end:
            raise DecodeError(_outside(label, d, len(parents), x, e - x, p, upper))
        append(p)
    return parents


def _outside(
    label: str,
    d: int,
    j: int,
    x: int,
    t: int,
    p: int,
    prev: _Level,
) -> str:
    span = f"[{x}, {x + t})"
    if p < 0:
        return f"{label} level {d} node {j}: span {span} has no parent on level {d - 1}"
    p_starts, p_ends, p_selfs, _ = prev
    return (
        f"{label} level {d} node {j}: span {span} lies outside its parent's children "
        f"span [{p_starts[p] + p_selfs[p]}, {p_ends[p]}) (level {d - 1} node {p})"
    )


def _check_names(levels: list[list[int]], width: int, count: int, what: str) -> None:
    for d, values in enumerate(levels):
        idx = values[width - 1 :: width]
        if idx and max(idx) >= count:
            j = next(j for j, i in enumerate(idx) if i >= count)
            raise DecodeError(
                f"{what} level {d} node {j}: name index {idx[j]} is out of range ({count} names)"
            )


def _build_tree(names: list[str], levels: list[list[int]], width: int, side: _Side) -> Tree:
    tree = Tree()
    root = tree.root
    subs = side.subtotals()
    if not levels:
        return tree
    upper: list[Node | None] = [root] * len(levels[0])
    get_name = names.__getitem__
    for d in range(1, len(levels)):
        level_names = list(map(get_name, levels[d][width - 1 :: width]))
        level_subs = subs[d]
        nodes: list[Node | None] = [None] * len(level_subs)
        for j, (p, t, s, name) in enumerate(
            zip(side.parents[d], level_subs, side.selfs[d], level_names, strict=True)
        ):
            if t <= 0:
                continue
            parent = upper[p]
            assert parent is not None
            children = parent.children
            node = children.get(name)
            if node is None:
                node = children[name] = Node(name, s, t)
            else:
                node.self += s
                node.total += t
            nodes[j] = node
        upper = nodes
    root.total = sum(child.total for child in root.children.values())
    return tree


# -- FlameGraph -----------------------------------------------------------------------------------


class FlameGraph:
    """A decoded, checked ``FlameGraph``: ``names``, ``levels`` (delta-encoded ints as on
    the wire), ``total`` and ``max_self``."""

    __slots__ = ("_side", "levels", "max_self", "names", "total")

    def __init__(
        self,
        names: list[str],
        levels: list[list[int]],
        total: int,
        max_self: int,
        side: _Side,
    ) -> None:
        self.names = names
        self.levels = levels
        self.total = total
        self.max_self = max_self
        self._side = side

    @property
    def node_count(self) -> int:
        """Number of emitted nodes, the root included."""
        return sum(len(level) for level in self.levels) // 4

    @property
    def consistent(self) -> bool:
        """Whether every node's total is its self plus its children's totals (always so
        for a graph the server rendered)."""
        return self._side.consistent

    def function_values(self) -> _Values:
        """Per function ``(self, total)`` dicts, a recursive frame counted once in total,
        computed straight from the levels; equal to tabulating :meth:`to_tree`."""
        if not self._side.consistent:
            raise DecodeError("flame graph totals do not add up; tabulate to_tree() instead")
        return self._side.function_values(self.names, self.levels, 4)

    def to_tree(self) -> Tree:
        """The tree the stacks of this graph build (spec §3.2 "Decoding to stacks").

        Every node with ``self > 0`` contributes its stack (depth 1 first) with value
        ``self``; names repeated under one parent merge.
        """
        return _build_tree(self.names, self.levels, 4, self._side)

    def stacks(self) -> Iterator[tuple[Stack, int]]:
        """``(stack, self)`` pairs, as :meth:`Tree.stacks` of :meth:`to_tree`."""
        return self.to_tree().stacks()

    def to_dict(self) -> dict[str, Any]:
        """The message as the encoders return it."""
        return {
            "names": list(self.names),
            "levels": [list(level) for level in self.levels],
            "total": self.total,
            "maxSelf": self.max_self,
        }

    def __repr__(self) -> str:
        return (
            f"FlameGraph(names={len(self.names)}, levels={len(self.levels)}, "
            f"nodes={self.node_count}, total={self.total}, max_self={self.max_self})"
        )


def decode_flamegraph(msg: Mapping[str, Any]) -> FlameGraph:
    """Decode and check a ``FlameGraph`` message (or a response holding one)."""
    what = "flame graph"
    body = _message(msg, "flamegraph", what)
    names = _names(body, what)
    levels = [_level_ints(raw, d, 4, what) for d, raw in enumerate(_raw_levels(body, what))]
    _check_names(levels, 4, len(names), what)
    side = _layout(levels, 4, 0, what)
    total = _field(body, ("total",), what)
    max_self = _field(body, ("maxSelf", "max_self"), what)
    return FlameGraph(names, levels, total, max_self, side)


# -- FlameGraphDiff -------------------------------------------------------------------------------


class FlameGraphDiff:
    """A decoded, checked ``FlameGraphDiff`` (7 ints per node, see spec §3.5)."""

    __slots__ = (
        "_left",
        "_right",
        "left_ticks",
        "levels",
        "max_self",
        "names",
        "right_ticks",
        "total",
    )

    def __init__(
        self,
        names: list[str],
        levels: list[list[int]],
        total: int,
        max_self: int,
        left_ticks: int,
        right_ticks: int,
        left: _Side,
        right: _Side,
    ) -> None:
        self.names = names
        self.levels = levels
        self.total = total
        self.max_self = max_self
        self.left_ticks = left_ticks
        self.right_ticks = right_ticks
        self._left = left
        self._right = right

    @property
    def node_count(self) -> int:
        """Number of emitted nodes, the fake root included."""
        return sum(len(level) for level in self.levels) // 7

    @property
    def consistent(self) -> bool:
        """Whether on both sides every node's total is its self plus its children's
        totals (always so for a diff the server rendered)."""
        return self._left.consistent and self._right.consistent

    def function_values(self) -> tuple[_Values, _Values]:
        """Per function ``(self, total)`` dicts for the left and the right side; see
        :meth:`FlameGraph.function_values`."""
        if not self.consistent:
            raise DecodeError("flame graph diff totals do not add up; use to_trees() instead")
        return (
            self._left.function_values(self.names, self.levels, 7),
            self._right.function_values(self.names, self.levels, 7),
        )

    def to_trees(self) -> tuple[Tree, Tree]:
        """The left (baseline) and right (comparison) trees."""
        return (
            _build_tree(self.names, self.levels, 7, self._left),
            _build_tree(self.names, self.levels, 7, self._right),
        )

    def to_dict(self) -> dict[str, Any]:
        """The message as :func:`~watcher.flamegraph.encode.encode_diff` returns it."""
        return {
            "names": list(self.names),
            "levels": [list(level) for level in self.levels],
            "total": self.total,
            "maxSelf": self.max_self,
            "leftTicks": self.left_ticks,
            "rightTicks": self.right_ticks,
        }

    def __repr__(self) -> str:
        return (
            f"FlameGraphDiff(names={len(self.names)}, levels={len(self.levels)}, "
            f"nodes={self.node_count}, left_ticks={self.left_ticks}, "
            f"right_ticks={self.right_ticks})"
        )


def decode_diff(msg: Mapping[str, Any]) -> FlameGraphDiff:
    """Decode and check a ``FlameGraphDiff`` message (or a Diff response holding one)."""
    what = "flame graph diff"
    body = _message(msg, "flamegraph", what)
    names = _names(body, what)
    levels = [_level_ints(raw, d, 7, what) for d, raw in enumerate(_raw_levels(body, what))]
    _check_names(levels, 7, len(names), what)
    left = _layout(levels, 7, 0, what, "left")
    right = _layout(levels, 7, 3, what, "right")
    return FlameGraphDiff(
        names,
        levels,
        _field(body, ("total",), what),
        _field(body, ("maxSelf", "max_self"), what),
        _field(body, ("leftTicks", "left_ticks"), what),
        _field(body, ("rightTicks", "right_ticks"), what),
        left,
        right,
    )


# -- PROFILE_FORMAT_TREE bytes --------------------------------------------------------------------


def _uvarint(data: bytes, pos: int, node: int, what: str) -> tuple[int, int]:
    result = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise DecodeError(f"tree bytes node {node}: {what} is cut short at byte {pos}")
        byte = data[pos]
        pos += 1
        if shift == 63 and byte > 1:
            raise DecodeError(f"tree bytes node {node}: {what} overflows 64 bits at byte {pos}")
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError(f"tree bytes node {node}: {what} overflows 64 bits at byte {pos}")


def decode_tree_bytes(data: bytes | bytearray | memoryview) -> Tree:
    """Read ``PROFILE_FORMAT_TREE`` bytes (spec §3.4) into a :class:`Tree`.

    Input shorter than 2 bytes is an empty tree. As on the server, reading stops once every
    declared child has been read; bytes after that are ignored. Siblings with the same
    name merge. Totals are rebuilt from the selfs.
    """
    data = bytes(data)
    if len(data) < 2:
        return Tree()
    outer = Node("")
    # Open parents with the number of children still to read, innermost last.
    open_parents: list[list[Any]] = [[outer, 1]]
    created: list[tuple[Node, Node]] = []
    pos = 0
    count = 0
    while open_parents:
        top = open_parents[-1]
        parent: Node = top[0]
        top[1] -= 1
        if top[1] == 0:
            open_parents.pop()
        name_len, pos = _uvarint(data, pos, count, "name length")
        if pos + name_len > len(data):
            raise DecodeError(
                f"tree bytes node {count}: name of {name_len} bytes is cut short at byte {pos}"
            )
        try:
            name = data[pos : pos + name_len].decode()
        except UnicodeDecodeError:
            raise DecodeError(f"tree bytes node {count}: name at byte {pos} is not UTF-8") from None
        pos += name_len
        self_value, pos = _uvarint(data, pos, count, "self")
        if self_value > _MAX_INT64:
            raise DecodeError(f"tree bytes node {count}: self {self_value} is out of range")
        n_children, pos = _uvarint(data, pos, count, "child count")
        if n_children > len(data) - pos:
            # Every child needs at least three bytes; this cannot be satisfied.
            raise DecodeError(
                f"tree bytes node {count}: {n_children} children cannot fit in the "
                f"{len(data) - pos} bytes left"
            )
        children = parent.children
        node = children.get(name)
        if node is None:
            node = children[name] = Node(name)
            created.append((node, parent))
        node.self += self_value
        if n_children:
            open_parents.append([node, n_children])
        count += 1
    # Rebuild totals: a node was created after its parent, so walk backwards.
    for node, _ in created:
        node.total = node.self
    for node, parent in reversed(created):
        parent.total += node.total
    first = next(iter(outer.children.values()))
    tree = Tree()
    tree.root.children = first.children
    tree.root.total = sum(child.total for child in first.children.values())
    return tree
