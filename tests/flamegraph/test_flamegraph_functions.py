"""Per-function tables: recursion counted once, the other bucket, rankings, comparisons."""

from __future__ import annotations

import pytest

from watcher.flamegraph import (
    DiffTable,
    FunctionStats,
    FunctionTable,
    Tree,
    decode_diff,
    decode_flamegraph,
    decode_tree_bytes,
    encode_diff,
    encode_flamegraph,
    encode_tree_bytes,
)

RECURSIVE = [
    (("main", "a", "b", "a"), 5),
    (("main", "a"), 2),
    (("main", "b", "a", "a", "a"), 3),
    (("main",), 1),
]


def _both(tree: Tree) -> list[FunctionTable]:
    """The table straight from the tree and through an encoded, decoded flame graph."""
    return [
        FunctionTable.from_tree(tree),
        FunctionTable.from_flamegraph(decode_flamegraph(encode_flamegraph(tree))),
    ]


@pytest.mark.parametrize("which", [0, 1])
def test_recursive_frame_counted_once(which: int) -> None:
    table = _both(Tree.from_stacks(RECURSIVE))[which]
    assert table.total_value == 11
    assert table.get("main") == FunctionStats("main", 1, 11)
    # a appears twice on the first path and three times on the third: each path once.
    assert table.get("a") == FunctionStats("a", 5 + 2 + 3, 5 + 2 + 3)
    assert table.get("b") == FunctionStats("b", 0, 5 + 3)
    assert table.share("a", "total") == pytest.approx(10 / 11)
    assert table.share("main", "self") == pytest.approx(1 / 11)
    assert table.share("missing") == 0.0
    assert table.value("b", "self") == 0
    assert "b" in table and "zzz" not in table
    assert table.get("zzz") is None


def test_tables_agree_on_deep_recursion() -> None:
    stack = tuple(["main"] + ["f", "g"] * 200 + ["leaf"])
    tree = Tree.from_stacks([(stack, 7), (stack[:50], 3), (("main", "g", "f"), 2)])
    direct, via_graph = _both(tree)
    assert direct.total_values == via_graph.total_values
    assert direct.self_values == via_graph.self_values
    assert direct.total_values["f"] == 12
    assert direct.total_values["g"] == 12


def test_other_bucket_and_truncated_share() -> None:
    stacks = [
        (("main", "a", "x"), 50),
        (("main", "a", "y"), 3),
        (("main", "b"), 2),
        (("main", "c", "z"), 1),
        (("main", "d"), 40),
    ]
    tree = Tree.from_stacks(stacks)
    untruncated = FunctionTable.from_tree(tree)
    assert untruncated.other_value == 0
    assert untruncated.truncated_share == 0.0

    # FlameGraph truncation: other = b + c + d under main, y under a.
    graph_table = FunctionTable.from_flamegraph(decode_flamegraph(encode_flamegraph(tree, 3)))
    assert graph_table.other_value == 43 + 3
    assert graph_table.truncated_share == pytest.approx(46 / 96)
    assert graph_table.total_value == 96
    assert [f.name for f in graph_table.top(10)] == ["x"]
    assert [f.name for f in graph_table.top(10, include_other=True)] == ["x", "other"]

    # Tree-bytes truncation keeps the same total and puts the rest in other.
    bytes_table = FunctionTable.from_tree(decode_tree_bytes(encode_tree_bytes(tree, 3)))
    assert bytes_table.total_value == 96
    assert bytes_table.other_value == 46


def test_nested_other_counted_once() -> None:
    # A tree-bytes "other" that is itself truncated keeps its children, also named other.
    tree = Tree.from_stacks([(("main", "other", "other"), 4), (("main", "other"), 1)])
    table = FunctionTable.from_tree(tree)
    assert table.other_value == 5
    assert table.truncated_share == pytest.approx(1.0)


def test_empty_table() -> None:
    table = FunctionTable.from_tree(Tree())
    assert len(table) == 0
    assert table.total_value == 0
    assert table.truncated_share == 0.0
    assert table.share("a", "total") == 0.0
    assert table.top(5) == []
    empty_graph = FunctionTable.from_flamegraph(decode_flamegraph({}))
    assert empty_graph.total_value == 0 and len(empty_graph) == 0


def test_top_orders_by_value_then_name() -> None:
    tree = Tree.from_stacks(
        [(("m", "b"), 5), (("m", "a"), 5), (("m", "c"), 7), (("m", "d"), 1), (("m", "e"), 0)]
    )
    table = FunctionTable.from_tree(tree)
    assert [f.name for f in table.top(3)] == ["c", "a", "b"]
    assert [f.name for f in table.top(2, by="total")] == ["m", "c"]
    assert table.top(0) == []
    assert [f.name for f in table.top(99)] == ["c", "a", "b", "d"]  # m has self 0
    assert [f.name for f in table] == ["a", "b", "c", "d", "m"]
    with pytest.raises(ValueError, match="kind must be"):
        table.top(1, by="bogus")  # type: ignore[arg-type]


def test_diff_table_rows() -> None:
    base = FunctionTable.from_tree(
        Tree.from_stacks([(("m", "a"), 50), (("m", "b"), 30), (("m", "gone"), 20)])
    )
    cur = FunctionTable.from_tree(
        Tree.from_stacks([(("m", "a"), 100), (("m", "b"), 60), (("m", "new"), 40)])
    )
    table = DiffTable(base, cur, "self")
    assert [r.name for r in table] == ["gone", "new", "a", "b"]
    gone, new, a = table.get("gone"), table.get("new"), table.get("a")
    assert gone is not None and new is not None and a is not None
    assert gone.vanished and not gone.is_new
    assert gone.absolute_change == pytest.approx(-0.2)
    assert gone.relative_change == pytest.approx(-1.0)
    assert new.is_new and new.relative_change is None
    assert new.current_share == pytest.approx(0.2)
    assert a.baseline_value == 50 and a.current_value == 100 and a.value_change == 50
    assert a.baseline_share == pytest.approx(0.5)
    assert a.current_share == pytest.approx(0.5)
    assert a.relative_change == pytest.approx(0.0)
    assert [r.name for r in table.top(1, direction="up")] == ["new"]
    assert [r.name for r in table.top(5, direction="down")] == ["gone"]
    assert table.get("m") is None  # self 0 on both sides
    by_total = DiffTable(base, cur, "total")
    m = by_total.get("m")
    assert m is not None and m.absolute_change == pytest.approx(0.0)


def test_diff_table_from_decoded_diff() -> None:
    left = Tree.from_stacks([(("m", "a"), 3), (("m", "b"), 1)])
    right = Tree.from_stacks([(("m", "a"), 1), (("m", "c"), 3)])
    base, cur = FunctionTable.from_diff(decode_diff(encode_diff(left, right)))
    assert base.self_values == {"m": 0, "a": 3, "b": 1}
    assert cur.self_values == {"m": 0, "a": 1, "c": 3}
    table = DiffTable(base, cur)
    c, b = table.get("c"), table.get("b")
    assert c is not None and c.is_new
    assert b is not None and b.vanished
