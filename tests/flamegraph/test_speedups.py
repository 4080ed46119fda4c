"""The optional C module ``watcher.flamegraph._speedups`` changes nothing but speed.

Every test here runs the same input through the decoders twice, with the module and with
``decode._speedups`` set to ``None`` (the pure-Python path, the oracle), and compares
everything that can be read from the result, or the exact :class:`DecodeError`. The
module's own functions are checked against their Python twins directly: ``int_levels``
must accept a subset of what ``_int_levels`` accepts and give the same values; ``layout``
and ``function_sums`` must answer what ``_layout`` / ``_self_values`` / ``_total_values``
answer, or decline with ``None``.
"""

from __future__ import annotations

import copy
import importlib
import json
import random
import shutil
import sysconfig
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.errors import DecodeError
from watcher.flamegraph import (
    DiffTable,
    FlameGraph,
    FlameGraphDiff,
    FunctionTable,
    Tree,
    decode,
    decode_diff,
    decode_diff_json,
    decode_flamegraph,
    decode_flamegraph_json,
    encode_diff,
    encode_flamegraph,
    to_connect_json,
)

INT64_MAX = (1 << 63) - 1

# Example counts keep this module to about 15 s: many examples where one is cheap (a byte
# string), fewer where each decodes a graph both ways and reads every view of it.
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
CHEAP = settings(max_examples=300, deadline=None, suppress_health_check=_HEALTH)
GRAPHS = settings(max_examples=200, deadline=None, suppress_health_check=_HEALTH)
FEW = settings(max_examples=100, deadline=None, suppress_health_check=_HEALTH)


# -- switching the module ------------------------------------------------------------------------


@contextmanager
def _using(module: ModuleType | None) -> Iterator[None]:
    """Decode with ``module`` as ``decode._speedups`` (``None``: the pure-Python path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(decode, "_speedups", module)
        yield


def _both(speedups: ModuleType, run: Callable[[], Any]) -> tuple[Any, Any]:
    """``run()`` with the C module, then without it."""
    with _using(speedups):
        fast = run()
    with _using(None):
        slow = run()
    return fast, slow


def _attempt(run: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", run()
    except DecodeError as exc:
        return "error", str(exc)


# -- everything that can be read from a decoded graph ------------------------------------------

ASKED = ["main", "a", "b", "other", "", "zz"]


def _table_view(table: FunctionTable, asked: list[str]) -> dict[str, Any]:
    # The order matters: top() and totals_for() compute the totals asked for only, before
    # total_values computes them all.
    return {
        "top_self": table.top(4, "self"),
        "top_total": table.top(4, "total"),
        "totals_for": table.totals_for(asked),
        "other": table.other_value,
        "selfs": table.self_values,
        "totals": table.total_values,
        "total_value": table.total_value,
        "rows": list(table),
        "share": table.truncated_share,
    }


def _graph_view(graph: FlameGraph, asked: list[str]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "dict": graph.to_dict(),
        "repr": repr(graph),
        "consistent": graph.consistent,
    }
    # On a fresh graph the wanted totals come first, as the Python path computes only those.
    view["wanted"] = _attempt(lambda: graph.function_totals(asked))
    view["selfs"] = _attempt(graph.function_selfs)
    view["totals"] = _attempt(graph.function_totals)
    view["values"] = _attempt(graph.function_values)
    tree = graph.to_tree()
    view["tree"] = tree
    view["stacks"] = sorted(tree.stacks())
    view["tree_total"] = tree.total
    view["callers"] = graph.callers()
    view["table"] = _table_view(FunctionTable.from_flamegraph(graph), asked)
    return view


def _diff_view(diff: FlameGraphDiff, asked: list[str]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "dict": diff.to_dict(),
        "repr": repr(diff),
        "consistent": diff.consistent,
    }
    view["wanted_left"] = _attempt(lambda: diff.function_totals("left", asked))
    view["wanted_right"] = _attempt(lambda: diff.function_totals("right", asked))
    view["selfs"] = _attempt(diff.function_selfs)
    view["totals"] = _attempt(lambda: (diff.function_totals("left"), diff.function_totals("right")))
    view["values"] = _attempt(diff.function_values)
    left, right = diff.to_trees()
    view["trees"] = (left, right, left.total, right.total)
    view["stacks"] = (sorted(left.stacks()), sorted(right.stacks()))
    base, cur = FunctionTable.from_diff(diff)
    view["base"] = _table_view(base, asked)
    view["cur"] = _table_view(cur, asked)
    for kind in ("self", "total"):
        table = DiffTable(base, cur, kind)
        view[f"diff_{kind}"] = (
            table.top(3),
            table.top(3, direction="up"),
            table.top(3, direction="down"),
            table.get("a"),
            table.rows,
            len(table),
        )
    return view


def _decoded(decoder: Callable[[Any], Any], arg: Any, asked: list[str]) -> tuple[str, Any]:
    """The error a decoder raises for ``arg``, or every view of what it returns."""
    try:
        result = decoder(copy.deepcopy(arg))
    except DecodeError as exc:
        return "error", str(exc)
    if isinstance(result, FlameGraphDiff):
        return "ok", _diff_view(result, asked)
    return "ok", _graph_view(result, asked)


def _same_both_ways(
    speedups: ModuleType, decoder: Callable[[Any], Any], arg: Any, asked: list[str] = ASKED
) -> tuple[str, Any]:
    fast, slow = _both(speedups, lambda: _decoded(decoder, arg, asked))
    assert fast == slow
    kind, view = slow
    return kind, view


# -- random graphs -------------------------------------------------------------------------------

# A small alphabet makes shared prefixes, recursion and name collisions likely.
frame = st.sampled_from(["main", "a", "b", "c", "other", "total", "f;g", "ü", ""])
stack = st.lists(frame, min_size=1, max_size=7).map(tuple)
samples = st.lists(st.tuples(stack, st.integers(min_value=-1, max_value=10**12)), max_size=25)
scales = st.sampled_from([1, 1, 1, 7, 10**12, 2**40, 2**59, 2**61])

# Values a mutation may put anywhere: off by one, the int64 edges, and types that are no int.
ODD_VALUES: list[Any] = [
    -1,
    0,
    1,
    2,
    INT64_MAX,
    INT64_MAX + 1,
    2**64,
    10**19,
    10**18,
    True,
    False,
    1.0,
    None,
    "7",
    "x",
]


@st.composite
def raw_single(draw: st.DrawFn) -> dict[str, Any]:
    """A ``FlameGraph`` built level by level, not by the encoder: names listed twice,
    several roots, zero-width nodes, gaps, child spans left short (an inconsistent graph),
    and values up to near the int64 limit (scaled)."""
    names = draw(st.lists(frame, min_size=1, max_size=6))
    scale = draw(scales)
    rnd = draw(st.randoms(use_true_random=False))

    def pick() -> int:
        return rnd.randrange(len(names))

    levels: list[list[tuple[int, int, int, int]]] = []  # absolute (x, total, self, name)
    if draw(st.integers(0, 9)):
        roots = []
        x = 0
        for _ in range(rnd.choice([1, 1, 1, 1, 0, 2])):
            total = rnd.randrange(13)
            x += rnd.choice([0, 0, 0, 1])
            roots.append((x, total, rnd.randint(0, total), pick()))
            x += total
        levels.append(roots)
        for _ in range(draw(st.integers(0, 6))):
            below: list[tuple[int, int, int, int]] = []
            for x, total, self_value, _name in levels[-1]:
                pos, end = x + self_value, x + total
                while pos < end and len(below) < 14:
                    kind = rnd.choice("nnnnnnnzgs")
                    if kind == "s":  # leave the rest of the span empty
                        break
                    if kind == "z":  # a node with no width
                        below.append((pos, 0, 0, pick()))
                        continue
                    width = rnd.randint(1, end - pos)
                    if kind == "n":
                        below.append((pos, width, rnd.randint(0, width), pick()))
                    pos += width
            if rnd.random() < 0.1:  # a stray node past the others
                last = max((n[0] + n[1] for n in below), default=0)
                width = rnd.randrange(3)
                below.append((last + rnd.randrange(3), width, 0, pick()))
            if not below:
                break
            levels.append(below)
    flat = []
    for level in levels:
        values: list[int] = []
        end = 0
        for x, total, self_value, name in level:
            values += [(x - end) * scale, total * scale, self_value * scale, name]
            end = x + total
        flat.append(values)
    total = sum(flat[0][1::4]) if flat else 0
    return {"names": names, "levels": flat, "total": total, "maxSelf": 0}


def _duplicate_names(msg: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """``msg`` with a name listed again at the end and some of its nodes moved there."""
    names = list(msg["names"])
    if not names:
        return msg
    k = rnd.randrange(len(names))
    names.append(names[k])
    width = 7 if "leftTicks" in msg else 4
    levels = [list(level) for level in msg["levels"]]
    for level in levels:
        for i in range(width - 1, len(level), width):
            if level[i] == k and rnd.random() < 0.5:
                level[i] = len(names) - 1
    return {**msg, "names": names, "levels": levels}


def _mutated(msg: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """``msg`` with one value of its levels changed, dropped, duplicated or swapped."""
    levels = [list(level) for level in msg["levels"]]
    if not levels:
        return msg
    level = rnd.choice(levels)
    if not level:
        return msg
    i = rnd.randrange(len(level))
    action = rnd.choice(["set", "set", "nudge", "drop", "dup", "swap"])
    if action == "set":
        level[i] = rnd.choice(ODD_VALUES)
    elif action == "nudge" and type(level[i]) is int:
        level[i] += rnd.choice([-1, 1, 2])
    elif action == "drop":
        del level[i]
    elif action == "dup":
        level.insert(i, level[i])
    else:
        j = rnd.randrange(len(level))
        level[i], level[j] = level[j], level[i]
    return {**msg, "levels": levels}


@st.composite
def single_messages(draw: st.DrawFn) -> dict[str, Any]:
    rnd = draw(st.randoms(use_true_random=False))
    if draw(st.booleans()):
        msg = encode_flamegraph(Tree.from_stacks(draw(samples)), draw(st.integers(0, 8)))
    else:
        msg = draw(raw_single())
    if rnd.random() < 0.3:
        msg = _duplicate_names(msg, rnd)
    if rnd.random() < 0.4:
        msg = _mutated(msg, rnd)
    return msg


@st.composite
def diff_messages(draw: st.DrawFn) -> dict[str, Any]:
    rnd = draw(st.randoms(use_true_random=False))
    left, right = Tree.from_stacks(draw(samples)), Tree.from_stacks(draw(samples))
    msg = encode_diff(left, right, draw(st.integers(0, 8)))
    if rnd.random() < 0.3:
        msg = _duplicate_names(msg, rnd)
    if rnd.random() < 0.4:
        msg = _mutated(msg, rnd)
    return msg


def _dumps(obj: Any, rnd: random.Random) -> str:
    """JSON as protojson writes it: no whitespace but, at random, one space after a comma
    or a colon."""
    if isinstance(obj, dict):
        items = (json.dumps(k) + rnd.choice([":", ": "]) + _dumps(v, rnd) for k, v in obj.items())
        return "{" + rnd.choice([",", ", "]).join(items) + "}"
    if isinstance(obj, list):
        return "[" + rnd.choice([",", ", "]).join(_dumps(v, rnd) for v in obj) + "]"
    return json.dumps(obj)


def _body(msg: dict[str, Any], rnd: random.Random) -> bytes:
    wire = to_connect_json(msg)
    return _dumps({"flamegraph": wire} if rnd.random() < 0.7 else wire, rnd).encode()


def _levels_span(msg: dict[str, Any], rnd: random.Random) -> bytes:
    return _dumps(to_connect_json(msg).get("levels", []), rnd).encode()


def _checked_levels(raw: list[Any], width: int) -> list[list[int]] | None:
    """The levels as the decoders pass them on (ints, arity and sign checked), or ``None``
    where the Python code rejects them."""
    with _using(None):
        try:
            return [decode._level_ints(level, d, width, "graph") for d, level in enumerate(raw)]
        except DecodeError:
            return None


# -- whole decoders, both ways -------------------------------------------------------------------


@GRAPHS
@given(single_messages(), st.randoms(use_true_random=False))
def test_flamegraph_decoders_agree(
    speedups: ModuleType, msg: dict[str, Any], rnd: random.Random
) -> None:
    _same_both_ways(speedups, decode_flamegraph, msg)
    _same_both_ways(speedups, decode_flamegraph, to_connect_json(msg))
    _same_both_ways(speedups, decode_flamegraph_json, _body(msg, rnd))


@FEW
@given(diff_messages(), st.randoms(use_true_random=False))
def test_diff_decoders_agree(speedups: ModuleType, msg: dict[str, Any], rnd: random.Random) -> None:
    _same_both_ways(speedups, decode_diff, msg)
    _same_both_ways(speedups, decode_diff, to_connect_json(msg))
    _same_both_ways(speedups, decode_diff_json, _body(msg, rnd))


@GRAPHS
@given(st.one_of(single_messages(), diff_messages()))
def test_layout_matches_python(speedups: ModuleType, msg: dict[str, Any]) -> None:
    """Where ``layout`` answers, ``_layout`` accepts the levels too, with the same bounds,
    consistency, parent of every node and rebuilt totals."""
    width = 7 if "leftTicks" in msg else 4
    levels = _checked_levels(msg["levels"], width)
    if levels is None:
        return
    for col in (0, 3) if width == 7 else (0,):
        fast = speedups.layout(levels, width, col)
        with _using(None):
            slow = _attempt(lambda: decode._layout(levels, width, col, "graph"))  # noqa: B023
        if fast is None:
            continue
        assert slow[0] == "ok", slow
        side = slow[1]
        assert fast == (side.bounds, side.consistent)
        with _using(speedups):
            via_c = decode._layout(levels, width, col, "graph")
        parents = [side.parents(d) for d in range(1, len(levels))]
        assert [via_c.parents(d) for d in range(1, len(levels))] == parents
        assert via_c.subtotals() == side.subtotals()


@GRAPHS
@given(st.one_of(single_messages(), diff_messages()))
def test_function_sums_match_python(speedups: ModuleType, msg: dict[str, Any]) -> None:
    """On a consistent side, ``function_sums`` gives the selfs and totals that
    ``_self_values`` and ``_total_values`` give (or declines)."""
    width = 7 if "leftTicks" in msg else 4
    levels, names = _checked_levels(msg["levels"], width), msg["names"]
    if levels is None:
        return
    for col in (0, 3) if width == 7 else (0,):
        with _using(None):
            try:
                decode._check_names(levels, width, len(names), "graph")
                side = decode._layout(levels, width, col, "graph")
            except DecodeError:
                continue
            if not side.consistent:
                continue
            idx = decode._name_index(names, levels, width)
            selfs = decode._self_values(names, idx, [side])[0]
            totals = decode._total_values(names, idx, side)
        sums = speedups.function_sums(levels, width, col, len(names), decode._canonical(names))
        if sums is None:
            continue
        assert decode._fast_selfs(names, sums) == selfs
        assert decode._fast_totals(names, sums, None) == totals


@FEW
@given(samples, samples, st.integers(0, 8), st.randoms(use_true_random=False))
def test_rendered_graphs_take_the_fast_path(
    speedups: ModuleType,
    left_pairs: list[tuple[tuple[str, ...], int]],
    right_pairs: list[tuple[tuple[str, ...], int]],
    max_nodes: int,
    rnd: random.Random,
) -> None:
    """The comparisons here are not vacuous: for what the encoders render (as a server
    does), every function of the module answers rather than declining."""
    left, right = Tree.from_stacks(left_pairs), Tree.from_stacks(right_pairs)
    for msg in (encode_flamegraph(left, max_nodes), encode_diff(left, right, max_nodes)):
        width = 7 if "leftTicks" in msg else 4
        levels, names = msg["levels"], msg["names"]
        span = _levels_span(msg, rnd)
        assert speedups.int_levels(span) is not None, span
        canonical = decode._canonical(names)
        for col in (0, 3) if width == 7 else (0,):
            assert speedups.layout(levels, width, col) is not None
            assert speedups.function_sums(levels, width, col, len(names), canonical) is not None


@FEW
@given(
    st.lists(st.tuples(stack, st.integers(min_value=1, max_value=50)), max_size=12),
    st.lists(st.tuples(stack, st.integers(min_value=1, max_value=50)), max_size=12),
)
def test_duplicate_names_sum_under_the_first(
    speedups: ModuleType,
    left_pairs: list[tuple[tuple[str, ...], int]],
    right_pairs: list[tuple[tuple[str, ...], int]],
) -> None:
    """Every other node renamed to a second copy of its name in ``names``: both paths count
    it under the same name, recursion across the two copies counted once."""
    for msg in (
        encode_flamegraph(Tree.from_stacks(left_pairs)),
        encode_diff(Tree.from_stacks(left_pairs), Tree.from_stacks(right_pairs)),
    ):
        width = 7 if "leftTicks" in msg else 4
        names = list(msg["names"])
        copies = {i: len(names) + i for i in range(len(names))}
        names += names
        levels = [list(level) for level in msg["levels"]]
        for d, level in enumerate(levels):
            for i in range(width - 1, len(level), width):
                if (d + i) % 2:  # every other node, so the copies alternate along stacks
                    level[i] = copies[level[i]]
        decoder = decode_diff if width == 7 else decode_flamegraph
        _same_both_ways(speedups, decoder, {**msg, "names": names, "levels": levels})


# -- malformed input: the same error both ways ---------------------------------------------------

WORKED = [(("main", "a", "b"), 3), (("main", "a"), 1), (("main", "c"), 2)]
WORKED_RIGHT = [(("main", "a", "b"), 1), (("main", "c"), 4), (("main", "d"), 2)]
SINGLE = to_connect_json(encode_flamegraph(Tree.from_stacks(WORKED)))
DIFF = to_connect_json(encode_diff(Tree.from_stacks(WORKED), Tree.from_stacks(WORKED_RIGHT)))


def _levels_text(wire: dict[str, Any], edit: Callable[[list[list[str]]], None]) -> str:
    """The levels of ``wire`` as protojson writes them, each value a raw JSON token that
    ``edit`` may change, drop or add to."""
    tokens = [[json.dumps(v) for v in level["values"]] for level in wire["levels"]]
    edit(tokens)
    return "[" + ",".join('{"values":[' + ",".join(level) + "]}" for level in tokens) + "]"


def _body_with(wire: dict[str, Any], levels: str, tail: str = "") -> bytes:
    """A response holding ``wire`` with ``levels`` as the raw text of its levels."""
    fields = [f'"names":{json.dumps(wire["names"])}', f'"levels":{levels}']
    fields += [f'"{k}":{json.dumps(v)}' for k, v in wire.items() if k not in ("names", "levels")]
    return ('{"flamegraph":{' + ",".join(fields) + "}}" + tail).encode()


def _set(level: int, index: int, token: str) -> Callable[[list[list[str]]], None]:
    def edit(tokens: list[list[str]]) -> None:
        row = tokens[level % len(tokens)]
        row[index % len(row)] = token

    return edit


def _insert(level: int, index: int, token: str) -> Callable[[list[list[str]]], None]:
    def edit(tokens: list[list[str]]) -> None:
        row = tokens[level % len(tokens)]
        row.insert(index % (len(row) + 1), token)

    return edit


def _drop(level: int, index: int) -> Callable[[list[list[str]]], None]:
    def edit(tokens: list[list[str]]) -> None:
        row = tokens[level % len(tokens)]
        del row[index % len(row)]

    return edit


def _keep(tokens: list[list[str]]) -> None:
    return None


# Values put into the worked example: each field of a node of each level, as the wire has
# it (strings), the edge cases of the int64 reading, and tokens that are no int64 string.
TOKENS = {
    "zero": '"0"',
    "one": '"1"',
    "seven": '"7"',
    "negative": '"-1"',
    "negative-zero": '"-0"',
    "int64-max": f'"{INT64_MAX}"',
    "int64-max-plus-1": f'"{INT64_MAX + 1}"',
    "19-digits": '"1000000000000000000"',
    "19-nines": '"9999999999999999999"',
    "20-digits": '"10000000000000000000"',
    "20-nines": '"99999999999999999999"',
    "2-pow-64": f'"{2**64}"',
    "2-pow-64-minus-1": f'"{2**64 - 1}"',
    "leading-zero": '"06"',
    "zeros": '"00"',
    "long-leading-zeros": '"0000000000000000000000001"',
    "empty": '""',
    "space-before": '" 1"',
    "space-after": '"1 "',
    "plus": '"+1"',
    "hex": '"0x1"',
    "letters": '"1a"',
    "word": '"abc"',
    "underscore": '"1_0"',
    "arabic-digit": '"\\u0661"',
    "fullwidth-digit": '"\\uff11"',
    "true": "true",
    "false": "false",
    "null": "null",
    "float": "1.5",
    "float-whole": "6.0",
    "exponent": "1e3",
    "bare-int": "6",
    "bare-negative": "-6",
    "bare-big": str(2**64),
    "list": "[]",
    "object": "{}",
    "float-string": '"1.0"',
}

# Where each token goes, (level, index): every field of a node of levels 0 and 1 (x, total,
# self, name of a single graph; the left x, total, self and right x of a diff), later nodes.
PLACES = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3), (2, 4), (2, 6), (3, 0)]

EDITS: dict[str, Callable[[list[list[str]]], None]] = {
    "as-rendered": _keep,
    "self-greater-than-total": _set(1, 2, '"9"'),
    "name-out-of-range": _set(2, 3, '"99"'),
    "name-index-int64-max": _set(2, 3, f'"{INT64_MAX}"'),
    "outside-parent": _set(1, 1, '"9"'),
    "gap": _set(2, 0, '"1"'),
    "gap-at-the-end": _set(3, 0, '"2"'),
    "child-left-of-span": _set(3, 0, '"0"'),
    "offset-past-int64": _set(1, 0, f'"{INT64_MAX}"'),
    "one-value-short": _drop(1, 3),
    "one-value-short-deep": _drop(2, 7),
    "one-value-extra": _insert(1, 4, '"0"'),
    "nodes-repeated": lambda t: t[3].extend(t[3]),
    "zero-width-node-appended": lambda t: t[3].extend(['"0"'] * len(t[3])),
    "empty-values": lambda t: t[2].clear(),
    "empty-root-values": lambda t: t[0].clear(),
    "empty-level-appended": lambda t: t.append([]),
    "no-levels": lambda t: t.clear(),
}

# Edits of the levels' text: whitespace, other empty levels, and garbage.
TEXT_EDITS: dict[str, tuple[str, str, int]] = {
    "space-after-comma": (",", ", ", -1),
    "space-after-colon": (":", ": ", -1),
    "one-space-after-comma": ('","', '", "', 1),
    "two-spaces-after-comma": ('","', '",  "', 1),
    "space-before-comma": ('","', '" ,"', 1),
    "tab-after-comma": ('","', '",\t"', 1),
    "newline-after-comma": ('","', '",\n"', 1),
    "space-before-colon": ('"values":', '"values" :', 1),
    "two-spaces-after-colon": ('"values":', '"values":  ', 1),
    "space-in-brackets": ('["', '[ "', 1),
    "space-before-bracket": ('"]', '" ]', 1),
    "space-in-object": ('{"', '{ "', 1),
    "space-after-levels-bracket": ("[{", "[ {", 1),
    "newline-between-levels": ("},{", "},\n{", 1),
    "values-spaced-empty": ('{"values":{V1}}', '{"values": []}', 1),
    "values-empty": ('{"values":{V1}}', '{"values":[]}', 1),
    "level-empty-object": ('{"values":{V1}}', "{}", 1),
    "level-null": ('{"values":{V1}}', "null", 1),
    "values-null": ("{V1}", "null", 1),
    "level-list": ('{"values":{V1}}', "{V1}", 1),
    "other-key": ('"values"', '"valuez"', 1),
    "key-twice": ('{"values":{V1}}', '{"values":[],"values":{V1}}', 1),
    "extra-key": ('{"values":{V1}}', '{"values":{V1},"x":1}', 1),
    "trailing-comma-values": ('"]}', '",]}', 1),
    "trailing-comma-levels": ("}]", "},]", -1),
    "extra-brace": ("}]", "}}]", -1),
    "extra-bracket": ("}]", "}]]", -1),
    "missing-bracket": ("]}", "}", 1),
    "unterminated-string": ('"6"', '"6', 1),
    "escaped-digit": ('"6"', '"\\u0036"', 1),
    "single-quotes": ('"6"', "'6'", 1),
}

TAILS = {
    "garbage-after-body": "x",
    "second-object": '{"levels":[]}',
    "trailing-space": " ",
    "trailing-newline": "\n",
}


def _text_edit(wire: dict[str, Any], levels: str, old: str, new: str, count: int) -> str:
    """``levels`` with ``old`` replaced by ``new``; ``{V1}`` in either stands for the
    values array of level 1."""
    v1 = "[" + ",".join(json.dumps(v) for v in wire["levels"][1]["values"]) + "]"
    return levels.replace(old.replace("{V1}", v1), new.replace("{V1}", v1), count)


def _check_body(speedups: ModuleType, body: bytes, width: int) -> None:
    json_decoder = decode_diff_json if width == 7 else decode_flamegraph_json
    decoder = decode_diff if width == 7 else decode_flamegraph
    _same_both_ways(speedups, json_decoder, body)
    try:
        msg = json.loads(body)
    except ValueError:
        return
    _same_both_ways(speedups, decoder, msg)


@pytest.mark.parametrize("wire", [SINGLE, DIFF], ids=["single", "diff"])
def test_worked_examples_take_the_fast_path(speedups: ModuleType, wire: dict[str, Any]) -> None:
    """The edits below start from a body the module reads (so they test its declining)."""
    levels = _levels_text(wire, _keep)
    assert speedups.int_levels(levels.encode()) is not None
    decoder = decode_diff_json if "leftTicks" in wire else decode_flamegraph_json
    kind, view = _same_both_ways(speedups, decoder, _body_with(wire, levels))
    assert kind == "ok"
    assert view["consistent"]


@pytest.mark.parametrize("wire", [SINGLE, DIFF], ids=["single", "diff"])
@pytest.mark.parametrize("token", list(TOKENS.values()), ids=list(TOKENS))
def test_tokens_agree(speedups: ModuleType, wire: dict[str, Any], token: str) -> None:
    """Each token in each place of the worked example: the same graph, or the same error."""
    for level, index in PLACES:
        body = _body_with(wire, _levels_text(wire, _set(level, index, token)))
        _check_body(speedups, body, 7 if "leftTicks" in wire else 4)


@pytest.mark.parametrize("wire", [SINGLE, DIFF], ids=["single", "diff"])
@pytest.mark.parametrize("edit", list(EDITS.values()), ids=list(EDITS))
def test_edited_values_agree(
    speedups: ModuleType, wire: dict[str, Any], edit: Callable[[list[list[str]]], None]
) -> None:
    body = _body_with(wire, _levels_text(wire, edit))
    _check_body(speedups, body, 7 if "leftTicks" in wire else 4)


@pytest.mark.parametrize("wire", [SINGLE, DIFF], ids=["single", "diff"])
@pytest.mark.parametrize("edit", list(TEXT_EDITS.values()), ids=list(TEXT_EDITS))
def test_edited_text_agrees(
    speedups: ModuleType, wire: dict[str, Any], edit: tuple[str, str, int]
) -> None:
    levels = _levels_text(wire, _keep)
    edited = _text_edit(wire, levels, *edit)
    assert edited != levels, "the edit must apply to the example"
    _check_body(speedups, _body_with(wire, edited), 7 if "leftTicks" in wire else 4)


@pytest.mark.parametrize("wire", [SINGLE, DIFF], ids=["single", "diff"])
@pytest.mark.parametrize("tail", list(TAILS.values()), ids=list(TAILS))
def test_trailing_bytes_agree(speedups: ModuleType, wire: dict[str, Any], tail: str) -> None:
    _check_body(
        speedups, _body_with(wire, _levels_text(wire, _keep), tail), 7 if "leftTicks" in wire else 4
    )


@pytest.mark.parametrize(
    "msg",
    [
        {},
        {"names": []},
        {"levels": []},
        {"levels": None},
        {"names": ["total"], "levels": [[0, 0, 0, 0]]},
        {"names": ["total"], "levels": [[0, 1, 1, 0]]},
        {"names": ["total", "a"], "levels": [[0, 1, 0, 0], [0, 1, 1, 1]]},
        {"names": ["total", "a"], "levels": [[0, 2, 0, 0], [0, 1, 1, 1]]},  # short child
        {"names": ["total", "a"], "levels": [[0, 2, 0, 0], [1, 1, 1, 1]]},  # a gap first
        {"names": ["total", "a"], "levels": [[0, 2, 0, 0], [], [0, 1, 1, 1]]},
        {"names": ["total", "a"], "levels": [[0, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 1]]},
        {"names": ["total", "a"], "levels": [[0, 1, 0, 0, 0, 0, 0, 0], [0, 1, 1, 1]]},
        {"names": ["total", "a"], "levels": [[0, 0, 0, 0, 0, 1, 0, 0], [0, 1, 1, 1]]},
        {"names": ["total", "a", "a"], "levels": [[0, 2, 0, 0], [0, 2, 0, 1], [0, 2, 2, 2]]},
        {"names": ["t", "a"], "levels": [[0, INT64_MAX, 0, 0], [0, INT64_MAX, INT64_MAX, 1]]},
        {"names": ["t", "a"], "levels": [[1, INT64_MAX, 0, 0], [0, 1, 1, 1]]},
        {"names": ["t", "a"], "levels": [[0, INT64_MAX, 0, 0], [1, INT64_MAX - 1, 0, 1]]},
        {"names": ["t", "a"], "levels": [[0, 2, 0, 0], [0, 1, 1, 1, 0, INT64_MAX, 0, 1]]},
        {"names": ["t", "a"], "levels": [[0, 2, 0, 0], [0, 1, 1, 1, INT64_MAX, 1, 0, 1]]},
        {"names": ["t", "a"], "levels": [[0, 2, 0, 0], [0, 2, 0, 1], [0, 1, 1, 1, 0, 1, 1, 1]]},
        {"names": ["t", "a"], "levels": [[0, 2, 0, 0], [0, 2, 0, 1], [1, 1, 1, 1, 0, 0, 0, 1]]},
        {"names": ["t", "a"], "levels": [[0, 2, 0, 0], [0, 2, True, 1]]},
        {"names": ["t", "a"], "levels": [[0, 2, 0, 0], [0, 2, 0, 1.0]]},
        {"names": ["t", "a"], "levels": [[0, 2, 0, 0], (0, 2, 0, 1)]},
        {"names": ["t", "a"], "levels": [[0, 2, 0, 0], {"values": (0, 2, 2, 1)}]},
    ],
)
def test_small_messages_agree(speedups: ModuleType, msg: dict[str, Any]) -> None:
    """Empty graphs, one node, zero-width nodes, several roots, names listed twice, the
    int64 edges: as dicts, Connect JSON and bytes, single and diff (diff messages made by
    widening each node to the same values on both sides)."""
    _same_both_ways(speedups, decode_flamegraph, msg)
    wire = to_connect_json(msg)
    _same_both_ways(speedups, decode_flamegraph, wire)
    _same_both_ways(speedups, decode_flamegraph_json, json.dumps(wire).encode())
    as_diff = {**msg}
    if msg.get("levels"):
        as_diff["levels"] = [_as_diff_level(level) for level in msg["levels"]]
    as_diff["leftTicks"] = 1
    _same_both_ways(speedups, decode_diff, as_diff)
    _same_both_ways(speedups, decode_diff_json, json.dumps(to_connect_json(as_diff)).encode())


def _as_diff_level(level: Any) -> Any:
    values = level["values"] if isinstance(level, dict) else level
    out = []
    for i in range(0, len(values) - 3, 4):
        out += [*values[i : i + 3], *values[i : i + 3], values[i + 3]]
    return out


@FEW
@given(
    st.one_of(single_messages(), diff_messages()),
    st.randoms(use_true_random=False),
    st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "replace"]),
            st.floats(min_value=0, max_value=1, exclude_max=True),
            st.one_of(
                st.sampled_from(list(b'0123456789",:[]{} \t\n-+.eE\\uv')), st.integers(0, 255)
            ),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_bodies_agree(
    speedups: ModuleType,
    msg: dict[str, Any],
    rnd: random.Random,
    edits: list[tuple[str, float, int]],
) -> None:
    body = _mutate(_body(msg, rnd), edits)
    width = 7 if "leftTicks" in msg else 4
    _same_both_ways(speedups, decode_diff_json if width == 7 else decode_flamegraph_json, body)


# -- int_levels against _int_levels --------------------------------------------------------------


def _mutate(data: bytes, edits: list[tuple[str, float, int]]) -> bytes:
    out = bytearray(data)
    for action, where, byte in edits:
        i = int(where * (len(out) + (action == "insert")))
        if action == "insert":
            out.insert(i, byte)
        elif out and action == "delete":
            del out[min(i, len(out) - 1)]
        elif out:
            out[min(i, len(out) - 1)] = byte
    return bytes(out)


def _python_int_levels(span: bytes) -> list[Any] | None:
    with _using(None):
        return decode._int_levels(span)


def _check_subset(speedups: ModuleType, span: bytes) -> list[Any] | None:
    """``int_levels(span)``, checked: ``None``, or the levels ``_int_levels`` gives too."""
    fast = speedups.int_levels(span)
    if fast is None:
        return None
    assert type(fast) is list
    for level in fast:
        assert level is None or (type(level) is list and {type(v) for v in level} <= {int})
    slow = _python_int_levels(span)
    assert slow is not None, span
    assert fast == [None if level == {} else level["values"] for level in slow], span
    with _using(speedups):
        wrapped = decode._int_levels(span)
    assert wrapped == slow
    assert wrapped is not None
    assert list(map(type, wrapped)) == list(map(type, slow))
    return fast


byte_edits = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.floats(min_value=0, max_value=1, exclude_max=True),
        st.one_of(st.sampled_from(list(b'0123456789",:[]{} \t\n-+.eE\\uv')), st.integers(0, 255)),
    ),
    max_size=5,
)


@CHEAP
@given(st.one_of(single_messages(), diff_messages()), st.randoms(use_true_random=False), byte_edits)
def test_int_levels_accepts_a_subset(
    speedups: ModuleType,
    msg: dict[str, Any],
    rnd: random.Random,
    edits: list[tuple[str, float, int]],
) -> None:
    span = _levels_span(msg, rnd)
    _check_subset(speedups, _mutate(span, edits))


@FEW
@given(samples, st.randoms(use_true_random=False))
def test_int_levels_reads_rendered_levels(
    speedups: ModuleType, pairs: list[tuple[tuple[str, ...], int]], rnd: random.Random
) -> None:
    """Levels as a server writes them (one space after a comma or colon, at random) are
    read by the module, to the same values."""
    msg = encode_flamegraph(Tree.from_stacks(pairs))
    assert _check_subset(speedups, _levels_span(msg, rnd)) is not None


@CHEAP
@given(
    st.one_of(
        st.binary(max_size=120),
        st.text(alphabet='0123456789",:[]{} values\n', max_size=120).map(str.encode),
    )
)
def test_int_levels_never_crashes(speedups: ModuleType, data: bytes) -> None:
    _check_subset(speedups, data)
    _check_subset(speedups, b'[{"values":[' + data)
    _check_subset(speedups, data + b"]}]")


@pytest.mark.parametrize(
    "span",
    [
        b'[{"values":["0","6","0","0"]},{},{"values":["1","2","3","4"]}]',
        b'[{"values": ["0", "6"]}, {}]',
        b'[{"values":[]}]',
        b"[{}]",
        b'[{"values":["' + str(INT64_MAX).encode() + b'"]}]',
        b'[{"values":["' + str(INT64_MAX + 1).encode() + b'"]}]',
        b'[{"values":["1000000000000000000"]}]',
        b'[{"values":["10000000000000000000"]}]',
        b'[{"values":["06"]}]',
        b'[{"values":["0"]}]',
        b'[{"values":[""]}]',
        b"[]",
        b"",
        b"[",
        b'[{"values":["1"]}] ',
        b'[{"values":["1"]}]]',
        b'[{"values":["1"],}]',
        b'[{"values":["1"]},]',
        b'[{"values" :["1"]}]',
        b'[{"values":  ["1"]}]',
        b'[{"values":["1",  "2"]}]',
        b'[{"values":[1]}]',
    ],
)
def test_int_levels_edge_cases(speedups: ModuleType, span: bytes) -> None:
    _check_subset(speedups, span)


def test_int_levels_buffers(speedups: ModuleType) -> None:
    """Any contiguous buffer reads as its bytes; a non-contiguous one or a str is refused
    with the usual errors (never a crash, never a wrong answer)."""
    span = b'[{"values":["0","6","0","0"]},{}]'
    expected = speedups.int_levels(span)
    assert expected == [[0, 6, 0, 0], None]
    assert speedups.int_levels(bytearray(span)) == expected
    assert speedups.int_levels(memoryview(span)) == expected
    assert speedups.int_levels(memoryview(b"xx" + span + b"yy")[2:-2]) == expected
    with pytest.raises(BufferError):
        speedups.int_levels(memoryview(span)[::2])
    for wrong in (span.decode(), None, 5, [span]):
        with pytest.raises(TypeError):
            speedups.int_levels(wrong)


# -- layout and function_sums: arguments -------------------------------------------------------

GOOD = [[0, 6, 0, 0], [0, 6, 0, 1], [0, 4, 1, 3, 0, 2, 2, 2], [1, 3, 3, 4]]
GOOD_NAMES = ["total", "main", "c", "a", "b"]


def test_layout_and_function_sums_of_the_worked_example(speedups: ModuleType) -> None:
    with _using(None):
        side = decode._layout(GOOD, 4, 0, "graph")
        idx = decode._name_index(GOOD_NAMES, GOOD, 4)
        selfs = decode._self_values(GOOD_NAMES, idx, [side])[0]
        totals = decode._total_values(GOOD_NAMES, idx, side)
    assert speedups.layout(GOOD, 4, 0) == (side.bounds, True)
    sums = speedups.function_sums(GOOD, 4, 0, len(GOOD_NAMES), None)
    assert sums is not None
    assert decode._fast_selfs(GOOD_NAMES, sums) == selfs
    assert decode._fast_totals(GOOD_NAMES, sums, None) == totals
    # A wider node (columns at 3 of 7) reads the same.
    wide = [_as_diff_level(level) for level in GOOD]
    for col in (0, 3):
        assert speedups.layout(wide, 7, col) == (side.bounds, True)
        assert speedups.function_sums(wide, 7, col, len(GOOD_NAMES), None) == sums


@pytest.mark.parametrize(
    ("width", "col"),
    [(0, 0), (1, 0), (2, 0), (-4, 0), (4, -1), (4, 2), (4, 4), (7, 5), (3, 1), (2, -1)],
)
def test_layout_rejects_bad_width_or_column(speedups: ModuleType, width: int, col: int) -> None:
    with pytest.raises(ValueError, match="bad width or column"):
        speedups.layout(GOOD, width, col)


@pytest.mark.parametrize(
    ("width", "col", "count"),
    [(0, 0, 5), (3, 0, 5), (4, 1, 5), (4, -1, 5), (7, 4, 5), (4, 0, -1), (-7, 0, 5)],
)
def test_function_sums_rejects_bad_arguments(
    speedups: ModuleType, width: int, col: int, count: int
) -> None:
    with pytest.raises(ValueError, match="bad width, column or name count"):
        speedups.function_sums(GOOD, width, col, count, None)


@pytest.mark.parametrize(
    "canonical", [[0, 1, 2, 3], [0, 1, 2, 3, 4, 5], [], (0, 1, 2, 3, 4), {0: 0}, "01234", 0]
)
def test_function_sums_rejects_a_wrong_canonical(speedups: ModuleType, canonical: Any) -> None:
    with pytest.raises(ValueError, match="canonical"):
        speedups.function_sums(GOOD, 4, 0, len(GOOD_NAMES), canonical)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.layout(tuple(GOOD), 4, 0),
        lambda s: s.layout(GOOD, "4", 0),
        lambda s: s.layout(GOOD, 4.0, 0),
        lambda s: s.layout(GOOD, 4),
        lambda s: s.layout(GOOD, 4, 0, 0),
        lambda s: s.function_sums(tuple(GOOD), 4, 0, 5, None),
        lambda s: s.function_sums(GOOD, 4, 0, "5", None),
        lambda s: s.function_sums(GOOD, 4, 0, 5),
    ],
)
def test_wrong_argument_types_raise_type_error(speedups: ModuleType, call: Any) -> None:
    with pytest.raises(TypeError):
        call(speedups)


def test_huge_width_raises_overflow(speedups: ModuleType) -> None:
    with pytest.raises(OverflowError):
        speedups.layout(GOOD, 2**70, 0)
    with pytest.raises(OverflowError):
        speedups.function_sums(GOOD, 4, 0, 2**70, None)


class _Int(int):
    pass


NOT_WIRE_INTS: list[Any] = [
    -1,
    INT64_MAX + 1,
    2**64,
    -(2**64),
    True,
    False,
    1.0,
    "1",
    None,
    _Int(1),
    [1],
]


@pytest.mark.parametrize("bad", NOT_WIRE_INTS, ids=repr)
@pytest.mark.parametrize("position", range(20))
def test_values_that_are_not_int64_decline(speedups: ModuleType, bad: Any, position: int) -> None:
    """A value that is no non-negative int64 (exact int) makes both functions answer
    ``None``, not raise: the Python path then names the bad value. ``layout`` does not read
    the name column, nor ``function_sums`` the root's name."""
    levels = [list(level) for level in GOOD]
    flat = [(d, i) for d, level in enumerate(levels) for i in range(len(level))]
    d, i = flat[position]
    levels[d][i] = bad
    layout = speedups.layout(levels, 4, 0)
    sums = speedups.function_sums(levels, 4, 0, len(GOOD_NAMES), None)
    if i % 4 != 3:
        assert layout is None
        assert sums is None
    else:
        assert layout == speedups.layout(GOOD, 4, 0)
        if d == 0:  # the root's name is never read (as by _name_index)
            assert sums == speedups.function_sums(GOOD, 4, 0, len(GOOD_NAMES), None)
        else:
            assert sums is None
    # The Python path raises the error the module leaves to it (or, for a name, accepts
    # what it can): decoding agrees both ways.
    _same_both_ways(speedups, decode_flamegraph, {"names": GOOD_NAMES, "levels": levels})


@pytest.mark.parametrize(
    "canonical",
    [[0, 1, 2, 3, None], [0, 1, 2, 3, -1], [0, 1, 2, 3, 5], [0, 1, 2, 3, 1.0], [0, 1, 2, 3, True]],
)
def test_function_sums_declines_bad_canonical_entries(
    speedups: ModuleType, canonical: list[Any]
) -> None:
    assert speedups.function_sums(GOOD, 4, 0, len(GOOD_NAMES), canonical) is None


@pytest.mark.parametrize(
    "levels",
    [
        [(0, 6, 0, 0)],
        [[0, 6, 0, 0], (0, 6, 0, 1)],
        [[0, 6, 0, 0], [0, 6, 0]],
        [[0, 6, 0, 0], {"values": [0, 6, 0, 1]}],
        [[0, 6, 7, 0]],
        [[INT64_MAX, 1, 0, 0]],
        [[0, 6, 0, 0], [1, 5, 0, 1]],  # a gap
        [[0, 6, 0, 0], [0, 5, 0, 1]],  # a child span left short
        [[0, 6, 0, 0], [0, 7, 0, 1]],  # wider than the parent
    ],
)
def test_layout_declines_what_python_must_check(speedups: ModuleType, levels: list[Any]) -> None:
    assert speedups.layout(levels, 4, 0) is None


def test_name_index_out_of_range_declines(speedups: ModuleType) -> None:
    levels = [list(level) for level in GOOD]
    levels[3][3] = len(GOOD_NAMES)
    assert speedups.function_sums(levels, 4, 0, len(GOOD_NAMES), None) is None
    assert speedups.function_sums(GOOD, 4, 0, 0, []) is None


# -- golden vectors ------------------------------------------------------------------------------

VECTORS = "generated/flamegraph_golden_vectors.json"


@pytest.mark.shared
def test_golden_vectors_agree(speedups: ModuleType, testdata: Path) -> None:
    vectors = json.loads((testdata / VECTORS).read_text())
    cases = [(c, "flamegraph", 4) for c in vectors["single"]]
    cases += [(c, "flamegraph_diff", 7) for c in vectors["diff"]]
    assert len(cases) > 20
    rnd = random.Random(0)
    for case, key, width in cases:
        message = case[key]
        plain = {**message, "levels": [level["values"] for level in message["levels"]]}
        decoder = decode_diff if width == 7 else decode_flamegraph
        json_decoder = decode_diff_json if width == 7 else decode_flamegraph_json
        kind, _ = _same_both_ways(speedups, decoder, message)
        assert kind == "ok", case["name"]
        _same_both_ways(speedups, decoder, plain)
        _same_both_ways(speedups, decoder, to_connect_json(plain))
        for wrap in (True, False):
            wire = to_connect_json(plain)
            body = _dumps({"flamegraph": wire} if wrap else wire, rnd).encode()
            _same_both_ways(speedups, json_decoder, body)
            assert speedups.int_levels(_dumps(wire.get("levels", []), rnd).encode()) is not None


# -- the build -----------------------------------------------------------------------------------


def test_extension_is_built_where_a_compiler_exists() -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not compiler:
        pytest.skip("no C compiler (cc or gcc) on PATH: the package runs without _speedups")
    if not headers.is_file():
        pytest.skip(f"no Python headers at {headers}: the package runs without _speedups")
    try:
        importlib.import_module("watcher.flamegraph._speedups")
    except ImportError as exc:
        pytest.fail(
            f"watcher.flamegraph._speedups is not built although {compiler} and {headers} "
            f"exist ({exc}); reinstall with `pip install -e .` to build it"
        )
    # ... and the decoders use it (the fixtures switch it only for the tests they double).
    assert decode._speedups is importlib.import_module("watcher.flamegraph._speedups")
