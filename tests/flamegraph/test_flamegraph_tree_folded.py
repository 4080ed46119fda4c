"""The tree model, tree-bytes truncation details and the folded text format."""

from __future__ import annotations

import pytest

from watcher.errors import DecodeError
from watcher.flamegraph import (
    OTHER,
    Node,
    Tree,
    decode_tree_bytes,
    encode_flamegraph,
    encode_tree_bytes,
    parse_folded,
    to_folded,
)


def test_add_ignores_non_positive_values_and_empty_stacks() -> None:
    tree = Tree()
    tree.add(("a", "b"), 0)
    tree.add(("a", "b"), -5)
    tree.add((), 3)
    assert tree.node_count() == 0
    assert tree.total == 0
    tree.add(["a", "b"], 2)
    tree.add(("a", "b"), 1)
    tree.add(("a",), 4)
    assert tree.total == 7
    a = tree.root.children["a"]
    assert (a.self, a.total, a.children["b"].self, a.children["b"].total) == (4, 7, 3, 3)


def test_stacks_are_name_sorted_preorder() -> None:
    tree = Tree.from_stacks([(("m", "z"), 1), (("m", "a", "q"), 2), (("b",), 3), (("m",), 4)])
    assert list(tree.stacks()) == [
        (("b",), 3),
        (("m",), 4),
        (("m", "a", "q"), 2),
        (("m", "z"), 1),
    ]


def test_node_and_tree_equality_and_copy() -> None:
    tree = Tree.from_stacks([(("m", "a"), 2)])
    copy = tree.copy()
    assert copy == tree
    copy.add(("m", "a"), 1)
    assert copy != tree
    assert tree.root.children["m"].children["a"].total == 2
    node = Node("x", self=1, total=3)
    assert (node.name, node.self, node.total, node.children) == ("x", 1, 3, {})
    assert "Node('x'" in repr(node)


def test_truncated_keeps_existing_other_and_adds_to_it() -> None:
    tree = Tree.from_stacks(
        [
            (("m", "big"), 100),
            (("m", OTHER, "deep"), 1),
            (("m", "small1"), 2),
            (("m", "small2"), 3),
        ]
    )
    # Totals: m 106, big 100, small2 3, small1 2, other 1, deep 1 -> minVal for 2 is 100.
    truncated = tree.truncated(2)
    m = truncated.root.children["m"]
    assert sorted(m.children) == ["big", OTHER]
    other = m.children[OTHER]
    # The existing other is kept although small, gets small1 + small2, and keeps its child
    # folded into a nested other.
    assert (other.self, other.total) == (5, 6)
    assert list(other.children) == [OTHER]
    assert truncated.total == tree.total
    # The original is untouched.
    assert sorted(tree.root.children["m"].children) == ["big", OTHER, "small1", "small2"]
    # Tree bytes write the other in name order among the kept children.
    assert decode_tree_bytes(encode_tree_bytes(tree, 2)) == truncated


def test_flamegraph_folds_a_real_other_child_even_without_truncation() -> None:
    tree = Tree.from_stacks([(("m", OTHER, "x"), 2), (("m", "a"), 1)])
    encoded = encode_flamegraph(tree)
    assert encoded["names"] == ["total", "m", OTHER, "a"]
    # other comes right-most with self = total = 2 and no children.
    assert encoded["levels"][2] == [0, 1, 1, 3, 0, 2, 2, 2]
    assert len(encoded["levels"]) == 3


def test_names_total_and_empty_string() -> None:
    tree = Tree.from_stacks([(("total",), 1), (("",), 2)])
    encoded = encode_flamegraph(tree)
    # A real "total" shares index 0 with the root; an empty name gets its own entry.
    assert encoded["names"] == ["total", ""]
    assert encoded["levels"][1] == [0, 2, 2, 1, 0, 1, 1, 0]


def test_folded_round_trip() -> None:
    tree = Tree.from_stacks(
        [(("main", "a", "b"), 3), (("main", "a"), 1), (("main", "c"), 2), (("gc",), 7)]
    )
    text = to_folded(tree)
    assert text == "gc 7\nmain;a 1\nmain;a;b 3\nmain;c 2\n"
    assert parse_folded(text) == tree
    assert to_folded(Tree()) == ""


def test_parse_folded_tolerates_blank_lines_crlf_and_repeats() -> None:
    tree = parse_folded("\n  \nmain;work 5\r\nmain;work 2\n\nmain 0\nfn with space;x 1\n")
    assert list(tree.stacks()) == [(("fn with space", "x"), 1), (("main", "work"), 7)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("main;a\n", "folded line 1: no count"),
        ("ok 1\nmain;a x\n", "folded line 2: count 'x' is not an integer"),
        ("main;a -3\n", "count '-3' is not an integer"),
        ("main;a 1.5\n", "count '1.5' is not an integer"),
        ("main;a ９\n", "count '９' is not an integer"),
        ("main;a 99999999999999999999\n", "is out of range"),
        ("  7\n", "folded line 1: no count"),
    ],
)
def test_parse_folded_rejects_bad_lines(text: str, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_folded(text)
    assert message in str(info.value)
