"""Decoders: ``FlameGraph`` / ``FlameGraphDiff`` messages and ``PROFILE_FORMAT_TREE`` bytes.

The message decoders take the parsed Connect JSON (``{"names": [...], "levels": [{"values":
[...]}], "total": "123", ...}``) or the dicts the encoders return (levels as plain lists).
int64 fields may be strings or ints; missing keys default the way protojson omits zero
values. A response wrapper (``{"flamegraph": {...}}``) is unwrapped.

Everything is checked while decoding, in time linear in the node count: value counts,
negative values, ``self > total``, name indices, and that every node lies inside its
parent's span (``[x + self, x + total)`` of the parent). Anything malformed raises
:class:`~watcher.errors.DecodeError` naming the level and node index.

Speed comes from working a level at a time with whole-list operations (``map``,
``accumulate``, ``compress``, list equality) that run in C, instead of a Python loop per
node. A graph the server rendered has a fixed shape: on every level, the nodes with a
width exactly fill the child spans of the level above, in order. :func:`_tiles` checks
that shape with a few such list operations; a level without it (a gap, a stray node,
something malformed) is linked node by node by :func:`_link`, which names the first bad
node, or marks the graph inconsistent.

:func:`decode_flamegraph_json` / :func:`decode_diff_json` start from a response's bytes:
:func:`loads_flamegraph` reads the levels' int64 strings as ints in C, which saves the
``int()`` per value that otherwise costs more than parsing the JSON; a body it cannot
vouch for is parsed the usual way, so results and errors are the same either way.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from itertools import accumulate, chain, compress, islice
from operator import add, gt
from typing import Any, Literal

from watcher.errors import DecodeError
from watcher.flamegraph.tree import Node, Stack, Tree

try:  # C versions of the hot loops, built with the package where a compiler was found
    from watcher.flamegraph import _speedups
except ImportError:  # pragma: no cover - exercised where the extension is not built
    _speedups = None  # type: ignore[assignment]


__all__ = [
    "FlameGraph",
    "FlameGraphDiff",
    "decode_diff",
    "decode_diff_json",
    "decode_flamegraph",
    "decode_flamegraph_json",
    "decode_tree_bytes",
    "decoder_implementation",
    "loads_flamegraph",
]


def decoder_implementation() -> Literal["C", "Python"]:
    """Which code decodes large flame graphs: ``"C"`` where the package's C module was
    built at install (a C compiler was found), else ``"Python"`` (the same results, several
    times slower on large graphs)."""
    return "C" if _speedups is not None else "Python"


_MAX_INT64 = (1 << 63) - 1
_PAST_INT64 = 1 << 64  # above every checked offset
_INT_TYPES = frozenset({int, str})


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects without cycles.

    Each collection walks every live container, so with it running, building a big tree
    costs time that grows faster than the tree (2-3x the build time at 262k nodes).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
    if type(raw) is _DigitLevel:  # read from digits by loads_flamegraph: only arity is left
        digits: list[int] = raw["values"]
        if len(digits) % width:
            n = len(digits)
            raise DecodeError(
                f"{what} level {d}: {n} values is not a multiple of {width} "
                f"(node {n // width} is incomplete)"
            )
        return digits
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
    if not n:
        return []
    try:
        # Connect JSON sends every int64 as a string. Joining them checks that they all
        # are strings (no float or bool that int() would quietly accept), and one scan
        # for a minus sign then stands in for a sign check of every value.
        signed = "-" in "".join(raw)
        convert = True
    except TypeError:
        types = set(map(type, raw))
        if not types <= _INT_TYPES:
            for i, v in enumerate(raw):
                _scalar(v, f"{what} level {d} node {i // width}")
            raise AssertionError("unreachable") from None  # pragma: no cover
        signed = True
        convert = types != {int}
    values: list[int]
    if not convert:
        values = list(raw)
    else:
        try:
            values = list(map(int, raw))
        except ValueError:
            values = [_scalar(v, f"{what} level {d} node {i // width}") for i, v in enumerate(raw)]
    # Values too large for int64 are caught by the offset check of _layout, which bounds
    # every x and total (selfs are bounded by totals, name indices by the names).
    if signed and min(values) < 0:
        i = next(i for i, v in enumerate(values) if v < 0)
        raise DecodeError(f"{what} level {d} node {i // width}: value {values[i]} is out of range")
    return values


class _DigitLevel(dict[str, Any]):
    """A level (``{"values": [...]}``) whose values :func:`loads_flamegraph` read from digit
    strings: ints, none negative, so the decoders skip those checks (the upper bound is
    checked with the offsets, as for any values)."""

    __slots__ = ()


# One level's absolute layout on one side: (starts, ends, selfs, totals).
_Level = tuple[list[int], list[int], list[int], list[int]]


class _Side:
    """Absolute layout of one side of a graph, level by level, and the parent links of the
    levels :func:`_tiles` could not vouch for (the others are found when needed).

    Per level it keeps one list, the x and end of every node alternating; the rest is
    sliced from the wire values when needed. (Few objects per level: the garbage
    collector walks every young list, so each one kept makes its next pass longer.)
    """

    __slots__ = ("_col", "_parents", "_sums", "_values", "_width", "bounds", "consistent")

    def __init__(self, values: list[list[int]], width: int, col: int) -> None:
        self._values = values
        self._width = width
        self._col = col
        self.bounds: list[list[int]] = []
        self._parents: list[list[int] | None] = []
        self.consistent = True
        self._sums: _Sums | None | Literal[False] = False  # False: not computed yet

    def fast_sums(self, names: list[str]) -> _Sums | None:
        """Per function index ``(selfs, totals, present)`` of this consistent side from the
        C module, or ``None`` where it is not built or declines (the Python code then
        computes the same)."""
        if self._sums is False:
            self._sums = None
            if _speedups is not None:
                canonical = _canonical(names)
                self._sums = _speedups.function_sums(
                    self._values, self._width, self._col, len(names), canonical
                )
        return self._sums

    def __len__(self) -> int:
        return len(self.bounds)

    def selfs(self, d: int) -> list[int]:
        return self._values[d][self._col + 2 :: self._width]

    def totals(self, d: int) -> list[int]:
        return self._values[d][self._col + 1 :: self._width]

    def level(self, d: int) -> _Level:
        bounds = self.bounds[d]
        return bounds[::2], bounds[1::2], self.selfs(d), self.totals(d)

    def parents(self, d: int) -> list[int]:
        """Parent index on level ``d - 1`` of every node of level ``d`` (-1 for a node with
        no width: it has no samples and no children)."""
        known = self._parents[d]
        if known is None:
            known = self._parents[d] = _tiled_parents(self.level(d - 1), self.level(d))
        return known

    def subtotals(self) -> list[list[int]]:
        """Per node total rebuilt from the selfs below it (what the stacks carry)."""
        if self.consistent:
            return [self.totals(d) for d in range(len(self))]
        subs = [self.selfs(d) for d in range(len(self))]
        for d in range(len(subs) - 1, 0, -1):
            upper = subs[d - 1]
            for p, v in zip(self.parents(d), subs[d], strict=True):
                if v:
                    upper[p] += v
        return subs


# Per function self and total values.
_Values = tuple[dict[str, int], dict[str, int]]
# Per function index: selfs, totals, and the indices of the functions with a width.
_Sums = tuple[list[int], list[int], list[int]]


def _canonical(names: list[str]) -> list[int] | None:
    """The first index of each name, where some name is listed under several indices."""
    if len(set(names)) == len(names):
        return None
    first: dict[str, int] = {}
    return [first.setdefault(name, i) for i, name in enumerate(names)]


def _name_index(names: list[str], levels: list[list[int]], width: int) -> list[int]:
    """The name index of every node below the root, level after level; a name listed under
    several indices gets the first."""
    idx: list[int] = []
    for values in islice(levels, 1, None):
        idx += values[width - 1 :: width]
    canonical = _canonical(names)
    if canonical is not None:
        idx = list(map(canonical.__getitem__, idx))
    return idx


def _fast_selfs(names: list[str], sums: _Sums) -> dict[str, int]:
    selfs, _, present = sums
    return {names[i]: selfs[i] for i in present}


def _fast_totals(names: list[str], sums: _Sums, wanted: Collection[str] | None) -> dict[str, int]:
    _, totals, present = sums
    if wanted is None:
        return {names[i]: totals[i] for i in present}
    keep = set(wanted)
    return {names[i]: totals[i] for i in present if names[i] in keep}


def _column(side: _Side, field: int) -> Iterator[int]:
    """One field (0 x, 1 end, 2 self, 3 total) of every node below the root of ``side``,
    in the order of :func:`_name_index`."""
    below = range(1, len(side))
    if field == 0:
        return chain.from_iterable(side.bounds[d][::2] for d in below)
    if field == 1:
        return chain.from_iterable(side.bounds[d][1::2] for d in below)
    return chain.from_iterable(map(side.selfs if field == 2 else side.totals, below))


def _self_values(names: list[str], idx: list[int], sides: list[_Side]) -> list[dict[str, int]]:
    """Per function ``self`` of each side, keyed by every function with a width there
    (those with a ``self`` of 0 too)."""
    n_names = len(names)
    sums = [[0] * n_names for _ in sides]
    columns = [list(_column(side, 2)) for side in sides]
    if len(sides) == 2:
        left, right = sums
        for i, a, b in zip(idx, *columns, strict=True):
            left[i] += a
            right[i] += b
    else:
        for side_sums, selfs in zip(sums, columns, strict=True):
            for i, a in zip(idx, selfs, strict=True):
                side_sums[i] += a
    out = []
    for side, side_sums in zip(sides, sums, strict=True):
        present = set(compress(idx, _column(side, 3)))
        out.append({names[i]: side_sums[i] for i in present})
    return out


def _total_values(
    names: list[str], idx: list[int], side: _Side, wanted: Collection[str] | None = None
) -> dict[str, int]:
    """Per function ``total`` of one consistent side, a recursive frame counted once: of
    every function with a width, or of those in ``wanted`` only (one pass over the nodes of
    those names, much less work than all).

    On a consistent side a node's total is the width of its span. The nodes of one name
    have spans that are nested (ancestor and descendant) or disjoint, so visiting the nodes
    in pre-order, a node has an ancestor of its own name exactly when it starts before
    the end of the last counted span of that name. Pre-order is x order with ties broken
    by depth: one stable sort of the levels laid end to end, which merges the already
    sorted levels in C. Nodes with no width need no filtering: they add nothing, and a
    counted one moves the end of its name's last counted span to its own x, which no
    later node in pre-order lies before. Only nodes of the same name interact, so the
    nodes of the wanted names alone give the same totals for them.
    """
    if wanted is None:
        keep = None
        names_of = idx
    else:
        keep = list(map(list(map(set(wanted).__contains__, names)).__getitem__, idx))
        names_of = list(compress(idx, keep))
    xs, ends, totals = (
        list(_column(side, f) if keep is None else compress(_column(side, f), keep))
        for f in (0, 1, 3)
    )
    n_names = len(names)
    total_sums = [0] * n_names
    covered_to = [-1] * n_names
    for j in sorted(range(len(xs)), key=xs.__getitem__):
        i = names_of[j]
        if xs[j] >= covered_to[i]:
            total_sums[i] += totals[j]
            covered_to[i] = ends[j]
    return {names[i]: total_sums[i] for i in set(compress(names_of, totals))}


def _layout(levels: list[list[int]], width: int, col: int, what: str, side_name: str = "") -> _Side:
    """Check one side's columns (x at ``col``) and link every node to its parent."""
    side = _Side(levels, width, col)
    if _speedups is not None:
        fast = _speedups.layout(levels, width, col)
        if fast is not None:  # every level tiles the one above: no parents to keep
            side.bounds, side.consistent = fast
            side._parents = [None] * len(levels)
            if levels:
                side._parents[0] = [-1] * (len(levels[0]) // width)
            return side
    label = f"{what} {side_name}".rstrip()
    prev: _Level | None = None
    room = 0  # width of the previous level's child spans: sum of total - self
    for d, values in enumerate(levels):
        totals = values[col + 1 :: width]
        selfs = values[col + 2 :: width]
        if any(map(gt, selfs, totals)):
            j = next(j for j, (s, t) in enumerate(zip(selfs, totals, strict=True)) if s > t)
            raise DecodeError(f"{label} level {d} node {j}: self {selfs[j]} > total {totals[j]}")
        # x and end of every node, alternating: one running sum of the deltas and totals.
        bounds = [0] * (2 * len(totals))
        bounds[::2] = values[col::width]
        bounds[1::2] = totals
        bounds = list(accumulate(bounds))
        ends = bounds[1::2]
        if ends and ends[-1] > _MAX_INT64:
            j = next(j for j, end in enumerate(ends) if end > _MAX_INT64)
            raise DecodeError(f"{label} level {d} node {j}: offset {ends[j]} is out of range")
        level = (bounds[::2], ends, selfs, totals)
        used = sum(totals)
        parents: list[int] | None = None
        if prev is None:
            parents = [-1] * len(totals)
        # Children lie inside their parents' child spans without overlapping, so a level
        # is gap-free exactly when the widths add up.
        elif used != room:
            parents = _link(label, d, level, prev)
            side.consistent = False
        elif not _tiles(prev, level):
            parents = _link(label, d, level, prev)
        side.bounds.append(bounds)
        side._parents.append(parents)
        prev = level
        room = used - sum(selfs)
    if room:
        side.consistent = False  # the last level has child spans with no children
    return side


def _child_spans(upper: _Level) -> tuple[list[bool], list[int]]:
    """Which nodes of ``upper`` have a child span (``total > self``), and where each of
    those spans starts."""
    starts, _, selfs, totals = upper
    has = list(map(gt, totals, selfs))
    return has, list(map(add, compress(starts, has), compress(selfs, has)))


def _tiles(upper: _Level, level: _Level) -> bool:
    """Whether the nodes of ``level`` with a width fill the child spans of ``upper`` in
    order, given that their widths add up to the spans' (every rendered graph has this
    shape).

    If so, every such node lies inside its parent's child span, and the children of the
    k-th span are the nodes from the one starting at the k-th span start up to the next.
    Nodes neither overlap nor go back (offsets are not negative), so it is enough that
    the first node starts a span, and the nodes that end right before a span start (and
    the last node) end exactly at the span ends, in order: the k-th group of nodes then
    lies in the k-th span, and with the widths adding up, fills it.
    """
    has, lows = _child_spans(upper)
    starts, ends, _, totals = level
    if 0 in totals:  # leave out the nodes with no width (a total is true when not 0)
        starts = list(compress(starts, totals))
        ends = list(compress(ends, totals))
    if not starts or not lows:
        return not starts and not lows
    first = list(map(set(lows).__contains__, starts))
    if not first[0]:
        return False
    # The nodes before a span start, and the last one.
    last = islice(chain(first, (True,)), 1, None)
    return list(compress(ends, last)) == list(compress(upper[1], has))


def _tiled_parents(upper: _Level, level: _Level) -> list[int]:
    """Parent indices of a level that :func:`_tiles` accepted (-1 for a node with no
    width): the k-th node with a child span owns the nodes from the k-th span start on."""
    has, lows = _child_spans(upper)
    owners = list(compress(range(len(has)), has))
    starts, _, _, totals = level
    wide = 0 in totals
    if wide:
        starts = list(compress(starts, totals))
    starting = map(set(lows).__contains__, starts)
    found = map(owners.__getitem__, islice(accumulate(starting, initial=-1), 1, None))
    if not wide:
        return list(found)
    return [next(found) if t else -1 for t in totals]


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
    if not levels:
        return tree
    subs = side.subtotals()
    upper: list[Node | None] = [root] * len(levels[0])
    get_name = names.__getitem__
    with _no_gc():
        for d in range(1, len(levels)):
            level_names = map(get_name, levels[d][width - 1 :: width])
            level_subs = subs[d]
            nodes: list[Node | None] = [None] * len(level_subs)
            for j, (p, t, s, name) in enumerate(
                zip(side.parents(d), level_subs, side.selfs(d), level_names, strict=True)
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

    __slots__ = ("_idx", "_side", "levels", "max_self", "names", "total")

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
        self._idx: list[int] | None = None

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
        return self.function_selfs(), self.function_totals()

    def function_selfs(self) -> dict[str, int]:
        """Per function ``self``, keyed by every function in the graph (see
        :meth:`function_values`)."""
        self._check_consistent()
        sums = self._side.fast_sums(self.names)
        if sums is not None:
            return _fast_selfs(self.names, sums)
        return _self_values(self.names, self._name_index(), [self._side])[0]

    def function_totals(self, wanted: Collection[str] | None = None) -> dict[str, int]:
        """Per function ``total`` (see :meth:`function_values`); of the functions in
        ``wanted`` only, when given, which takes a fraction of the time for a few names."""
        self._check_consistent()
        sums = self._side.fast_sums(self.names)
        if sums is not None:
            return _fast_totals(self.names, sums, wanted)
        return _total_values(self.names, self._name_index(), self._side, wanted)

    def _check_consistent(self) -> None:
        if not self._side.consistent:
            raise DecodeError("flame graph totals do not add up; tabulate to_tree() instead")

    def _name_index(self) -> list[int]:
        if self._idx is None:
            self._idx = _name_index(self.names, self.levels, 4)
        return self._idx

    def callers(self) -> dict[str, set[str]]:
        """``function -> the functions that call it directly``, as :meth:`Tree.callers` of
        :meth:`to_tree` gives, from the levels' parent links without building the tree."""
        if not self._side.consistent:
            return self.to_tree().callers()
        names = self.names
        side = self._side
        tops: set[str] = set()
        pairs: set[tuple[str, str]] = set()
        upper: list[str] = []
        for d in range(1, len(self.levels)):
            values = self.levels[d]
            here = list(map(names.__getitem__, values[3::4]))
            widths = values[1::4]
            if d == 1:
                tops.update(compress(here, widths))
            else:  # a node with no width has parent -1: left out by its width of 0
                callers = map(upper.__getitem__, side.parents(d))
                pairs.update(compress(zip(here, callers, strict=True), widths))
            upper = here
        out: dict[str, set[str]] = {name: set() for name in tops}
        for name, caller in pairs:
            found = out.get(name)
            if found is None:
                found = out[name] = set()
            if caller and caller != name:  # as Tree.callers: an empty name calls nothing
                found.add(caller)
        return out

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
        "_idx",
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
        self._idx: list[int] | None = None

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
        left, right = self.function_selfs()
        return (left, self.function_totals("left")), (right, self.function_totals("right"))

    def function_selfs(self) -> tuple[dict[str, int], dict[str, int]]:
        """Per function ``self`` of the left and the right side, keyed by every function
        with a width on that side."""
        self._check_consistent()
        fast = self._left.fast_sums(self.names), self._right.fast_sums(self.names)
        if fast[0] is not None and fast[1] is not None:
            return _fast_selfs(self.names, fast[0]), _fast_selfs(self.names, fast[1])
        left, right = _self_values(self.names, self._name_index(), [self._left, self._right])
        return left, right

    def function_totals(
        self, side: Literal["left", "right"], wanted: Collection[str] | None = None
    ) -> dict[str, int]:
        """Per function ``total`` of one side; of the functions in ``wanted`` only, when
        given (see :meth:`FlameGraph.function_totals`)."""
        self._check_consistent()
        layout = self._left if side == "left" else self._right
        sums = layout.fast_sums(self.names)
        if sums is not None:
            return _fast_totals(self.names, sums, wanted)
        return _total_values(self.names, self._name_index(), layout, wanted)

    def _check_consistent(self) -> None:
        if not self.consistent:
            raise DecodeError("flame graph diff totals do not add up; use to_trees() instead")

    def _name_index(self) -> list[int]:
        if self._idx is None:
            self._idx = _name_index(self.names, self.levels, 7)
        return self._idx

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


# -- Connect JSON bytes ----------------------------------------------------------------------------

# The levels of a response, as protojson writes them: ``"levels":[{"values":["0","6",...]},
# {},...]``, a comma possibly followed by one space.
_LEVELS_KEY = re.compile(rb'"levels"[ \t\n\r]*:[ \t\n\r]*\[')
_LEVELS_END = re.compile(rb"\}\]")  # a regular expression finds it faster than find()
_DIGITS = b"0123456789"
# Turns the levels into nested lists of numbers: quotes become spaces (so values stay
# apart), the key goes, braces become brackets. ``{"values":["1","2"]}`` -> ``[  [ 1 , 2 ]]``.
_TO_NUMBERS = bytes.maketrans(b'"{}', b" []")
_KEY_BYTES = b":aelsuv"


def _skeleton(nested: list[Any]) -> bytes | None:
    """What levels parsed from :data:`_TO_NUMBERS`'s rewrite looked like in protojson with
    their digits left out, or ``None`` if they cannot have come from it."""
    parts = []
    for level in nested:
        if not level:
            parts.append(b"{}")
        elif len(level) != 1 or type(level[0]) is not list:
            return None
        elif level[0]:
            parts.append(b'{"values":[' + b'"",' * (len(level[0]) - 1) + b'""]}')
        else:
            parts.append(b'{"values":[]}')
    return b"[" + b",".join(parts) + b"]"


def _int_levels(span: bytes) -> list[Any] | None:
    """The levels array ``span`` parsed with its values as ints, or ``None`` when it is not
    exactly of protojson's shape (values all digit strings, no whitespace but one space
    after a comma or colon).

    One ``json.loads`` of a rewritten copy reads every value as an int, in C. The copy is
    then proved faithful: the span without its digits must be exactly the punctuation of
    the levels that came out (the same quotes, commas, brackets and keys, in order), and
    no string may be empty. So each value string holds only digits, the tokens are where
    the parsed levels say, and the rewrite merged or split nothing.
    """
    if _speedups is not None:
        fast = _speedups.int_levels(span)
        if fast is not None:
            return [{} if values is None else _DigitLevel(values=values) for values in fast]
    if b'""' in span:
        return None
    punctuation = span.translate(None, _DIGITS)
    if b" " in punctuation:
        spaces = punctuation.count(b" ")
        if spaces != punctuation.count(b", ") + punctuation.count(b": "):
            return None
        punctuation = punctuation.translate(None, b" ")
    try:
        nested = json.loads(span.translate(_TO_NUMBERS, _KEY_BYTES))
    except (ValueError, RecursionError):  # leading zeros, a value too long for int(), ...
        return None
    if type(nested) is not list or punctuation != _skeleton(nested):
        return None
    return [_DigitLevel(values=level[0]) if level else {} for level in nested]


def loads_flamegraph(body: bytes) -> Any:
    """``json.loads(body)`` of a response holding a flame graph or diff (or of a bare
    ``FlameGraph`` / ``FlameGraphDiff``), with the values of its levels read as ints
    rather than int64 strings, which the decoders take alike; or ``None`` when the body
    is not plainly of protojson's shape (then ``json.loads`` gives the answer, or the
    error).

    The levels are most of the body, and converting their strings one ``int()`` at a time
    costs more than parsing them. Here the ``levels`` array is cut out of the bytes and
    parsed as numbers (:func:`_int_levels`); the rest of the body, with ``NaN`` in its
    place, is parsed as usual. That ``NaN`` must come back as the ``levels`` field, and be
    the only one, which proves the cut was that field's value.
    """
    if json.detect_encoding(body) != "utf-8":
        return None
    found = _LEVELS_KEY.search(body)
    if found is None:
        return None
    start = found.end() - 1
    found = _LEVELS_END.search(body, start)
    if found is None:
        return None
    end = found.end()
    levels = _int_levels(body[start:end])
    if levels is None:
        return None
    cut = object()
    seen: list[str] = []

    def constant(name: str) -> object:
        seen.append(name)
        return cut

    try:
        msg = json.loads(body[:start] + b"NaN" + body[end:], parse_constant=constant)
    except ValueError:
        return None
    if len(seen) != 1 or type(msg) is not dict:
        return None
    inner = msg.get("flamegraph")
    if type(inner) is dict and inner.get("levels") is cut:
        inner["levels"] = levels
    elif msg.get("levels") is cut and "flamegraph" not in msg:  # a bare message
        msg["levels"] = levels
    else:
        return None
    return msg


def _loads_message(body: bytes, what: str) -> Any:
    msg = loads_flamegraph(body)
    if msg is not None:
        return msg
    try:
        return json.loads(body)
    except ValueError:
        raise DecodeError(f"{what}: the response is not JSON") from None


def decode_flamegraph_json(body: bytes) -> FlameGraph:
    """:func:`decode_flamegraph` of a ``SelectMergeStacktraces`` response's bytes (or a bare
    ``FlameGraph``'s), the int64 strings of its levels read at C speed."""
    return decode_flamegraph(_loads_message(body, "flame graph"))


def decode_diff_json(body: bytes) -> FlameGraphDiff:
    """:func:`decode_diff` of a ``Diff`` response's bytes (or a bare ``FlameGraphDiff``'s),
    the int64 strings of its levels read at C speed."""
    return decode_diff(_loads_message(body, "flame graph diff"))


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


def _read_tree_bytes(data: bytes) -> tuple[Node, list[tuple[Node, Node]]]:
    """The nodes of tree bytes under a virtual outer node, and every node created with its
    parent, in creation order. Varints of one byte (names and child counts nearly always)
    are read inline; longer ones by :func:`_uvarint`."""
    outer = Node("")
    # Open parents with the number of children still to read, innermost last.
    open_parents: list[list[Any]] = [[outer, 1]]
    created: list[tuple[Node, Node]] = []
    add_created = created.append
    size = len(data)
    pos = 0
    count = 0
    while open_parents:
        top = open_parents[-1]
        parent: Node = top[0]
        top[1] -= 1
        if top[1] == 0:
            open_parents.pop()
        if pos < size and data[pos] < 0x80:
            name_len = data[pos]
            pos += 1
        else:
            name_len, pos = _uvarint(data, pos, count, "name length")
        end = pos + name_len
        if end > size:
            raise DecodeError(
                f"tree bytes node {count}: name of {name_len} bytes is cut short at byte {pos}"
            )
        try:
            name = data[pos:end].decode()
        except UnicodeDecodeError:
            raise DecodeError(f"tree bytes node {count}: name at byte {pos} is not UTF-8") from None
        self_value, pos = _uvarint(data, end, count, "self")
        if self_value > _MAX_INT64:
            raise DecodeError(f"tree bytes node {count}: self {self_value} is out of range")
        if pos < size and data[pos] < 0x80:
            n_children = data[pos]
            pos += 1
        else:
            n_children, pos = _uvarint(data, pos, count, "child count")
        if n_children > size - pos:
            # Every child needs at least three bytes; this cannot be satisfied.
            raise DecodeError(
                f"tree bytes node {count}: {n_children} children cannot fit in the "
                f"{size - pos} bytes left"
            )
        children = parent.children
        node = children.get(name)
        if node is None:
            node = children[name] = Node(name)
            add_created((node, parent))
        node.self += self_value
        if n_children:
            open_parents.append([node, n_children])
        count += 1
    return outer, created


def decode_tree_bytes(data: bytes | bytearray | memoryview) -> Tree:
    """Read ``PROFILE_FORMAT_TREE`` bytes (spec §3.4) into a :class:`Tree`.

    Input shorter than 2 bytes is an empty tree. As on the server, reading stops once every
    declared child has been read; bytes after that are ignored. Siblings with the same
    name merge. Totals are rebuilt from the selfs.
    """
    data = bytes(data)
    if len(data) < 2:
        return Tree()
    with _no_gc():
        outer, created = _read_tree_bytes(data)
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
