"""Property tests: random trees round-trip; random garbage never escapes as a stray error."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.analysis.tables import parents_from_stacks
from watcher.errors import DecodeError
from watcher.flamegraph import (
    DiffTable,
    FlameGraph,
    FlameGraphDiff,
    FunctionDiff,
    FunctionTable,
    Tree,
    decode_diff,
    decode_flamegraph,
    decode_tree_bytes,
    encode_diff,
    encode_flamegraph,
    encode_tree_bytes,
    parse_folded,
    to_connect_json,
    to_folded,
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GARBAGE = settings(max_examples=250, deadline=None)

# A small alphabet makes shared prefixes, recursion and name collisions likely.
frame = st.sampled_from(["main", "a", "b", "c", "other", "total", "f;g", "ü", ""])
stack = st.lists(frame, min_size=1, max_size=8).map(tuple)
samples = st.lists(st.tuples(stack, st.integers(min_value=-3, max_value=10**12)), max_size=30)


def _merged(pairs: list[tuple[tuple[str, ...], int]]) -> dict[tuple[str, ...], int]:
    total: Counter[tuple[str, ...]] = Counter()
    for s, v in pairs:
        if v > 0:
            total[s] += v
    return dict(total)


@SETTINGS
@given(samples)
def test_flamegraph_round_trip(pairs: list[tuple[tuple[str, ...], int]]) -> None:
    tree = Tree.from_stacks(pairs)
    encoded = encode_flamegraph(tree)
    graph = decode_flamegraph({"flamegraph": to_connect_json(encoded)})
    assert graph.to_dict() == encoded
    decoded = graph.to_tree()
    # A real child named "other" is folded by the renderer; everything else is exact.
    if not any("other" in s for s, v in pairs if v > 0):
        assert dict(decoded.stacks()) == _merged(pairs)
        assert decoded == tree
    assert decoded.total == tree.total == graph.total
    assert encode_flamegraph(decoded) == encoded
    direct = FunctionTable.from_flamegraph(graph)
    via_tree = FunctionTable.from_tree(decoded)
    assert direct.self_values == via_tree.self_values
    assert direct.total_values == via_tree.total_values
    # Callers from the levels, from the tree's nodes and from its stacks agree.
    assert graph.callers() == decoded.callers()
    assert tree.callers() == parents_from_stacks(stack for stack, _ in tree.stacks())
    assert direct.total_value == via_tree.total_value


@SETTINGS
@given(samples, st.integers(min_value=0, max_value=12))
def test_truncation_preserves_total(
    pairs: list[tuple[tuple[str, ...], int]], max_nodes: int
) -> None:
    tree = Tree.from_stacks(pairs)
    truncated = tree.truncated(max_nodes)
    assert truncated.total == tree.total
    assert decode_tree_bytes(encode_tree_bytes(tree, max_nodes)) == truncated
    rendered = decode_flamegraph(encode_flamegraph(tree, max_nodes)).to_tree()
    assert rendered.total == tree.total
    if max_nodes == 0 or tree.node_count() <= max_nodes:
        assert truncated == tree


@SETTINGS
@given(samples)
def test_tree_bytes_round_trip(pairs: list[tuple[tuple[str, ...], int]]) -> None:
    tree = Tree.from_stacks(pairs)
    assert decode_tree_bytes(encode_tree_bytes(tree)) == tree


@SETTINGS
@given(samples, samples, st.integers(min_value=0, max_value=10))
def test_diff_round_trip(
    left_pairs: list[tuple[tuple[str, ...], int]],
    right_pairs: list[tuple[tuple[str, ...], int]],
    max_nodes: int,
) -> None:
    left, right = Tree.from_stacks(left_pairs), Tree.from_stacks(right_pairs)
    encoded = encode_diff(left, right, max_nodes)
    diff = decode_diff(to_connect_json(encoded))
    assert diff.to_dict() == encoded
    got_left, got_right = diff.to_trees()
    assert (got_left.total, got_right.total) == (left.total, right.total)
    # The diff renderer keys the fake root by the empty name, so a real frame named ""
    # shares name index 0 and comes back as "total".
    if max_nodes == 0 and not any("" in s for s, _ in left_pairs + right_pairs):
        assert got_left == left
        assert got_right == right
    base, cur = FunctionTable.from_diff(diff)
    assert base.total_values == FunctionTable.from_tree(got_left).total_values
    assert cur.self_values == FunctionTable.from_tree(got_right).self_values


folded_frame = st.text(
    alphabet=st.characters(blacklist_characters=";\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
    min_size=1,
    max_size=6,
).filter(lambda s: s == s.strip())


@SETTINGS
@given(st.lists(st.tuples(st.lists(folded_frame, min_size=1, max_size=5), st.integers(1, 10**9))))
def test_folded_round_trip(pairs: list[tuple[list[str], int]]) -> None:
    tree = Tree.from_stacks(pairs)
    assert parse_folded(to_folded(tree)) == tree


# -- garbage -------------------------------------------------------------------------------------

scalar = st.one_of(
    st.integers(min_value=-5, max_value=40),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=0, max_value=40).map(str),
    st.sampled_from(["", "x", "1.5", " 3", "-1", "1e3", None, True, 1.0, [], {}]),
)
level = st.one_of(
    st.lists(scalar, max_size=16),
    st.lists(st.integers(min_value=0, max_value=12), max_size=24),
    st.fixed_dictionaries(
        {"values": st.lists(st.integers(min_value=0, max_value=12), max_size=24)}
    ),
    st.just({}),
    st.just(None),
    st.just("0000"),
)
names = st.one_of(st.lists(frame, max_size=6), st.none(), st.just(["total", 3]), st.just("total"))
message = st.fixed_dictionaries(
    {},
    optional={
        "names": names,
        "levels": st.one_of(st.lists(level, max_size=6), st.none(), st.just("levels")),
        "total": scalar,
        "maxSelf": scalar,
        "leftTicks": scalar,
        "rightTicks": scalar,
    },
)


def _reference_stacks(graph: FlameGraph) -> dict[tuple[str, ...], int]:
    """Stacks by the spec's own recipe (§3.2 "Decoding to stacks"): delta-decode, then for
    every node with self > 0 binary-search each parent as the last node with x <= child x."""
    xs: list[list[int]] = []
    for values in graph.levels:
        row, end = [], 0
        for i in range(0, len(values), 4):
            row.append(values[i] + end)
            end = row[-1] + values[i + 1]
        xs.append(row)
    out: Counter[tuple[str, ...]] = Counter()
    for d in range(1, len(graph.levels)):
        values = graph.levels[d]
        for k in range(len(values) // 4):
            if values[4 * k + 2] <= 0:
                continue
            frames = [graph.names[values[4 * k + 3]]]
            x = xs[d][k]
            for up in range(d - 1, 0, -1):
                j = bisect_right(xs[up], x) - 1
                frames.append(graph.names[graph.levels[up][4 * j + 3]])
                x = xs[up][j]
            out[tuple(reversed(frames))] += values[4 * k + 2]
    return dict(out)


def _exercise(result: Any) -> None:
    """Use every view of a decoded result; none may raise."""
    if isinstance(result, FlameGraphDiff):
        trees = result.to_trees()
        tables = FunctionTable.from_diff(result)
    else:
        trees = (result.to_tree(),)
        tables = (FunctionTable.from_flamegraph(result),)
        assert dict(trees[0].stacks()) == _reference_stacks(result)
        assert result.callers() == trees[0].callers()
    for tree in trees:
        assert tree.callers() == parents_from_stacks(stack for stack, _ in tree.stacks())
    for table, tree in zip(tables, trees, strict=True):
        via_tree = FunctionTable.from_tree(tree)
        assert table.self_values == via_tree.self_values
        assert table.total_values == via_tree.total_values
        assert table.total_value == via_tree.total_value
    for tree in trees:
        encode_flamegraph(tree)
        encode_tree_bytes(tree)
        FunctionTable.from_tree(tree)
        assert tree.total == sum(v for _, v in tree.stacks())


@GARBAGE
@given(message)
def test_garbage_flamegraph_is_decode_error_or_valid(msg: dict[str, Any]) -> None:
    try:
        result = decode_flamegraph(msg)
    except DecodeError:
        return
    _exercise(result)


@GARBAGE
@given(message)
def test_garbage_diff_is_decode_error_or_valid(msg: dict[str, Any]) -> None:
    try:
        result = decode_diff(msg)
    except DecodeError:
        return
    _exercise(result)


@GARBAGE
@given(st.binary(max_size=64))
def test_garbage_tree_bytes_is_decode_error_or_valid(data: bytes) -> None:
    try:
        tree = decode_tree_bytes(data)
    except DecodeError:
        return
    assert tree.total == sum(v for _, v in tree.stacks())
    encode_tree_bytes(tree)


@GARBAGE
@given(st.text(alphabet="ab; 0123-\n\r\t.x", max_size=60))
def test_garbage_folded_is_decode_error_or_valid(text: str) -> None:
    try:
        tree = parse_folded(text)
    except DecodeError:
        return
    assert tree.total == sum(v for _, v in tree.stacks())


@GARBAGE
@given(samples, samples, st.data())
def test_mutated_graphs_are_decode_error_or_valid(
    left_pairs: list[tuple[tuple[str, ...], int]],
    right_pairs: list[tuple[tuple[str, ...], int]],
    data: st.DataObject,
) -> None:
    """Near-valid input: one value of a real rendering changed, dropped or duplicated."""
    left, right = Tree.from_stacks(left_pairs), Tree.from_stacks(right_pairs)
    diff = data.draw(st.booleans())
    encoded = encode_diff(left, right) if diff else encode_flamegraph(left)
    levels = [list(level) for level in encoded["levels"]]
    d = data.draw(st.integers(min_value=0, max_value=len(levels) - 1))
    if levels[d]:
        i = data.draw(st.integers(min_value=0, max_value=len(levels[d]) - 1))
        action = data.draw(st.sampled_from(["set", "drop", "dup", "swap"]))
        if action == "set":
            levels[d][i] = data.draw(st.integers(min_value=-2, max_value=2 * encoded["total"] + 3))
        elif action == "drop":
            del levels[d][i]
        elif action == "dup":
            levels[d].insert(i, levels[d][i])
        else:
            j = data.draw(st.integers(min_value=0, max_value=len(levels[d]) - 1))
            levels[d][i], levels[d][j] = levels[d][j], levels[d][i]
    mutated = {**encoded, "levels": levels}
    try:
        result = decode_diff(mutated) if diff else decode_flamegraph(mutated)
    except DecodeError as exc:
        assert "level" in str(exc)
        return
    _exercise(result)


# -- totals computed when read -----------------------------------------------------------


@SETTINGS
@given(samples, samples, st.data())
def test_totals_of_a_few_names_match_the_tree(
    left_pairs: list[tuple[tuple[str, ...], int]],
    right_pairs: list[tuple[tuple[str, ...], int]],
    data: st.DataObject,
) -> None:
    """``totals_for`` and ``top`` on a table of a decoded graph (which computes totals of
    the names asked only) agree with the table of its tree, recursion and all."""
    left, right = Tree.from_stacks(left_pairs), Tree.from_stacks(right_pairs)
    graph = decode_flamegraph(encode_flamegraph(left))
    diff = decode_diff(encode_diff(left, right))
    cases = [(FunctionTable.from_flamegraph(graph), graph.to_tree())]
    cases += zip(FunctionTable.from_diff(diff), diff.to_trees(), strict=True)
    for table, tree in cases:
        want = FunctionTable.from_tree(tree)
        asked = data.draw(st.lists(st.sampled_from(["main", "a", "b", "c", "other", "zz"])))
        assert table.totals_for(asked) == {n: want.total_values.get(n, 0) for n in asked}
        n = data.draw(st.integers(min_value=0, max_value=6))
        for by in ("self", "total"):
            assert table.top(n, by) == want.top(n, by)  # type: ignore[arg-type]
        assert table.other_value == want.other_value
        assert len(table) == len(want) and list(table) == list(want)
        assert table.total_values == want.total_values


def _reference_rows(base: FunctionTable, cur: FunctionTable, kind: str) -> list[FunctionDiff]:
    """DiffTable's rows the obvious way: one row per function, sorted by a key."""
    b_values = base.self_values if kind == "self" else base.total_values
    c_values = cur.self_values if kind == "self" else cur.total_values
    b_total, c_total = base.total_value or 1, cur.total_value or 1
    rows = []
    for name in set(b_values) | set(c_values):
        b, c = b_values.get(name, 0), c_values.get(name, 0)
        if name == "other" or not (b or c):
            continue
        bs, cs = b / b_total, c / c_total
        rows.append(
            FunctionDiff(
                name, kind, b, c, bs, cs, c - b, cs - bs,  # type: ignore[arg-type]
                cs / bs - 1.0 if bs else None, not b, not c,
            )
        )  # fmt: skip
    return sorted(rows, key=lambda r: (-abs(r.absolute_change), r.name))


@SETTINGS
@given(samples, samples, st.integers(min_value=0, max_value=8))
def test_diff_table_matches_a_plain_sort(
    left_pairs: list[tuple[tuple[str, ...], int]],
    right_pairs: list[tuple[tuple[str, ...], int]],
    n: int,
) -> None:
    """Rows built when read come out as every row built up front and sorted would."""
    left, right = Tree.from_stacks(left_pairs), Tree.from_stacks(right_pairs)
    base, cur = FunctionTable.from_diff(decode_diff(encode_diff(left, right)))
    for kind in ("self", "total"):
        table = DiffTable(base, cur, kind)  # type: ignore[arg-type]
        want = _reference_rows(base, cur, kind)
        assert table.top(n) == want[:n]
        assert table.top(n, direction="up") == [r for r in want if r.absolute_change > 0][:n]
        assert table.top(n, direction="down") == [r for r in want if r.absolute_change < 0][:n]
        assert table.get("a") == next((r for r in want if r.name == "a"), None)
        assert len(table) == len(want) and table.rows == want and list(table) == want
