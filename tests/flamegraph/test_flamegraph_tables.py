"""Per-function tables straight from decoded graphs agree with the stacks they hold.

The table built from the levels (``FunctionTable.from_flamegraph`` / ``from_diff``) takes a
different road from the one built by walking the decoded tree (``from_tree(to_tree())``);
both are checked against a third, naive reading of the definition: a function's total is
the sum of the values of the stacks it appears in (once per stack, however often), its
self the sum of the values of the stacks it ends.
"""

from __future__ import annotations

import gc
import random
from collections import Counter
from typing import Any

import pytest

from watcher.errors import DecodeError
from watcher.flamegraph import (
    OTHER,
    FunctionTable,
    Node,
    Tree,
    decode_diff,
    decode_flamegraph,
    encode_diff,
    encode_flamegraph,
    to_connect_json,
)

Pairs = list[tuple[tuple[str, ...], int]]


def _by_definition(tree: Tree) -> tuple[dict[str, int], dict[str, int]]:
    """(self, total) per function, read off the stacks one by one."""
    selfs: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for stack, value in tree.stacks():
        selfs[stack[-1]] += value
        for name in set(stack):
            totals[name] += value
    for name in totals:
        selfs.setdefault(name, 0)
    return dict(selfs), dict(totals)


def _assert_table(table: FunctionTable, tree: Tree) -> None:
    selfs, totals = _by_definition(tree)
    assert table.self_values == selfs
    assert table.total_values == totals
    assert table.total_value == tree.total
    via_tree = FunctionTable.from_tree(tree)
    assert via_tree.self_values == selfs
    assert via_tree.total_values == totals


def _graph(tree: Tree, max_nodes: int = 0) -> Any:
    """``tree`` as the server sends it (Connect JSON, int64 as strings), decoded."""
    return decode_flamegraph({"flamegraph": to_connect_json(encode_flamegraph(tree, max_nodes))})


def _random_tree(rng: random.Random, n_nodes: int, n_names: int, scale: int = 1) -> Tree:
    """A tree of exactly ``n_nodes`` nodes; a small name set makes recursion (direct and
    through other frames) and repeated names on unrelated branches common."""
    names = [f"f{i}" for i in range(n_names)]
    tree = Tree()
    nodes: list[Node] = [tree.root]
    parents: list[Node | None] = [None]
    while len(nodes) <= n_nodes:
        # Mostly extend a recent node (deep stacks), sometimes branch anywhere.
        if rng.random() < 0.7:
            parent = nodes[-1 - min(int(rng.expovariate(0.3)), len(nodes) - 1)]
        else:
            parent = rng.choice(nodes)
        name = rng.choice(names)
        if name in parent.children:
            continue
        child = Node(name, rng.choice([0, 0, 1, 2, 7, 1000]) * scale)
        parent.children[name] = child
        nodes.append(child)
        parents.append(parent)
    for node in nodes[1:]:
        if not node.children and not node.self:
            node.self = scale
    for node in nodes:
        node.total = node.self
    for node, parent in zip(reversed(nodes), reversed(parents), strict=True):
        if parent is not None:
            parent.total += node.total
    return tree


# -- shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "expected_totals"),
    [
        # Recursion through another frame: a counted once on a;b;a.
        ([(("a", "b", "a"), 5), (("a",), 1), (("a", "b"), 2)], {"a": 8, "b": 7}),
        # Direct recursion whose inner frames start where the outer one does (self 0).
        ([(("a", "a", "a"), 4), (("a", "a"), 0)], {"a": 4}),
        # The same name at several depths on unrelated branches: every one counts.
        ([(("m", "x"), 3), (("m", "y", "x"), 4), (("m", "y", "z", "x"), 5)], {"x": 12}),
        # Recursion that leaves and comes back, next to a branch without it.
        (
            [(("m", "a", "b", "a", "b", "c"), 2), (("m", "b", "a"), 3), (("m", "c", "a"), 1)],
            {"m": 6, "a": 6, "b": 5, "c": 3},
        ),
    ],
)
def test_tricky_shapes(pairs: Pairs, expected_totals: dict[str, int]) -> None:
    tree = Tree.from_stacks(pairs)
    graph = _graph(tree)
    table = FunctionTable.from_flamegraph(graph)
    _assert_table(table, tree)
    for name, total in expected_totals.items():
        assert table.total_values[name] == total


def test_truncated_other_node() -> None:
    tree = Tree.from_stacks(
        [
            (("main", "a", "x"), 50),
            (("main", "a", "y"), 3),
            (("main", "b", "other"), 2),
            (("main", "c", "z"), 1),
            (("main", "d"), 40),
        ]
    )
    graph = _graph(tree, max_nodes=3)
    table = FunctionTable.from_flamegraph(graph)
    _assert_table(table, graph.to_tree())
    # main -> {a, other(b + c + d)}, a -> {x, other(y)}: other counted once per stack.
    assert table.other_value == 46
    assert table.self_values[OTHER] == 46
    assert table.total_value == 96


@pytest.mark.parametrize("empty", ["left", "right"])
def test_diff_with_one_side_empty(empty: str) -> None:
    full = Tree.from_stacks([(("m", "a", "m"), 3), (("m", "b"), 2), (("x",), 1)])
    left, right = (Tree(), full) if empty == "left" else (full, Tree())
    diff = decode_diff(to_connect_json(encode_diff(left, right)))
    base, current = FunctionTable.from_diff(diff)
    got_left, got_right = diff.to_trees()
    assert (got_left, got_right) == (left, right)
    _assert_table(base, left)
    _assert_table(current, right)
    empty_table = base if empty == "left" else current
    assert len(empty_table) == 0 and empty_table.total_value == 0


def test_values_past_float_precision() -> None:
    """Offsets far above 2**53 (where floats lose precision) tabulate exactly."""
    big = 1 << 60
    tree = Tree.from_stacks([(("a", "b", "a"), big + 1), (("a",), big), (("b", "a"), 3)])
    graph = _graph(tree)
    assert graph.levels[0][1] > 1 << 53
    _assert_table(FunctionTable.from_flamegraph(graph), tree)


def test_one_name_under_two_indices() -> None:
    """A names list with a repeated string: frames are matched by name, not index."""
    graph = decode_flamegraph(
        {
            "names": ["total", "a", "b", "a"],
            "levels": [[0, 7, 0, 0], [0, 7, 0, 1], [0, 7, 2, 2], [2, 5, 5, 3]],
        }
    )
    table = FunctionTable.from_flamegraph(graph)
    assert table.total_values == {"a": 7, "b": 7}
    assert table.self_values == {"a": 5, "b": 2}
    _assert_table(table, graph.to_tree())


def test_zero_width_nodes_in_a_flame_graph() -> None:
    """A node with no width (at a child span start, between siblings, at the end) holds
    nothing, has no children, and does not get in the way of its neighbours."""
    names = ["total", "main", "a", "b", "z"]
    graph = decode_flamegraph(
        {
            "names": names,
            "levels": [
                [0, 6, 0, 0],
                [0, 6, 1, 1],
                [1, 0, 0, 4, 0, 2, 2, 2, 0, 0, 0, 4, 0, 3, 3, 3, 0, 0, 0, 4],
            ],
        }
    )
    assert graph.consistent
    tree = graph.to_tree()
    assert sorted(tree.stacks()) == [(("main",), 1), (("main", "a"), 2), (("main", "b"), 3)]
    table = FunctionTable.from_flamegraph(graph)
    assert "z" not in table
    _assert_table(table, tree)


# -- malformed levels that add up ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        # The widths of level 2 add up to the child spans above (10 + 4), but one node sits
        # in the self of its parent: found, and named, all the same.
        (
            [
                [0, 20, 0, 0],
                [0, 10, 0, 1, 0, 10, 6, 2],
                [0, 3, 3, 3, 2, 5, 5, 3, 2, 2, 2, 3, 2, 4, 4, 3],
            ],
            "level 2 node 2: span [12, 14) lies outside its parent's children span [16, 20) "
            "(level 1 node 1)",
        ),
        # A first child that starts inside its parent's self, made up for further right.
        (
            [[0, 10, 0, 0], [0, 10, 2, 1], [1, 4, 4, 2, 1, 4, 4, 3]],
            "level 2 node 0: span [1, 5) lies outside its parent's children span [2, 10) "
            "(level 1 node 0)",
        ),
    ],
)
def test_widths_adding_up_do_not_hide_a_misplaced_node(
    levels: list[list[int]], message: str
) -> None:
    with pytest.raises(DecodeError) as info:
        decode_flamegraph({"names": ["total", "a", "b", "c"], "levels": levels})
    assert message in str(info.value)


# -- random graphs --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(60))
def test_random_graphs(seed: int) -> None:
    rng = random.Random(seed)
    scale = 1 << 42 if seed % 10 == 9 else 1  # some past float precision
    tree = _random_tree(rng, rng.randrange(1, 400), rng.randrange(1, 12), scale)
    graph = _graph(tree)
    assert graph.to_tree() == tree
    _assert_table(FunctionTable.from_flamegraph(graph), tree)
    # Truncated renderings (with "other" nodes) tabulate like the tree they hold.
    truncated = _graph(tree, max_nodes=rng.randrange(1, 40))
    _assert_table(FunctionTable.from_flamegraph(truncated), truncated.to_tree())


@pytest.mark.parametrize("seed", range(40))
def test_random_diffs(seed: int) -> None:
    rng = random.Random(1000 + seed)
    n_names = rng.randrange(1, 10)
    left = _random_tree(rng, rng.randrange(1, 200), n_names)
    # The other side shares much of the shape, with renamed and missing frames.
    right = _random_tree(rng, rng.randrange(1, 200), n_names + 2)
    max_nodes = 0 if seed % 4 else rng.randrange(1, 60)
    diff = decode_diff(to_connect_json(encode_diff(left, right, max_nodes)))
    got_left, got_right = diff.to_trees()
    if not max_nodes:
        assert (got_left, got_right) == (left, right)
    base, current = FunctionTable.from_diff(diff)
    _assert_table(base, got_left)
    _assert_table(current, got_right)


def test_to_tree_leaves_the_garbage_collector_as_it_was() -> None:
    graph = _graph(Tree.from_stacks([(("a", "b"), 1)]))
    assert gc.isenabled()
    graph.to_tree()
    assert gc.isenabled()
    gc.disable()
    try:
        graph.to_tree()
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.slow
def test_million_node_graph() -> None:
    tree = _random_tree(random.Random(7), 1 << 20, 5000)
    graph = _graph(tree)
    assert graph.node_count == (1 << 20) + 1
    direct = FunctionTable.from_flamegraph(graph)
    via_tree = FunctionTable.from_tree(graph.to_tree())
    assert direct.self_values == via_tree.self_values
    assert direct.total_values == via_tree.total_values
    assert direct.total_value == via_tree.total_value == tree.total
