"""Malformed flame graphs, diffs and tree bytes raise DecodeError naming where."""

from __future__ import annotations

from typing import Any

import pytest

from watcher.errors import DecodeError
from watcher.flamegraph import (
    Tree,
    decode_diff,
    decode_flamegraph,
    decode_tree_bytes,
    encode_diff,
    encode_flamegraph,
    encode_tree_bytes,
)

WORKED = [(("main", "a", "b"), 3), (("main", "a"), 1), (("main", "c"), 2)]


def _graph(levels: list[list[Any]], names: list[Any] | None = None) -> dict[str, Any]:
    return {
        "names": names if names is not None else ["total", "main", "c", "a", "b"],
        "levels": [{"values": values} for values in levels],
        "total": "6",
        "maxSelf": "3",
    }


GOOD = [[0, 6, 0, 0], [0, 6, 0, 1], [0, 4, 1, 3, 0, 2, 2, 2], [1, 3, 3, 4]]


def test_good_graph_decodes() -> None:
    assert sorted(decode_flamegraph(_graph(GOOD)).stacks()) == sorted(WORKED)


@pytest.mark.parametrize(
    ("levels", "names", "message"),
    [
        # Wrong arity.
        ([[0, 6, 0, 0], [0, 6, 0]], None, "level 1: 3 values is not a multiple of 4"),
        # Negative values.
        ([[0, 6, 0, 0], [0, -6, 0, 1]], None, "level 1 node 0: value -6 is out of range"),
        ([[0, 6, 0, 0], [0, 6, 0, 1], [0, 4, 1, 3, -1, 2, 2, 2]], None, "level 2 node 1"),
        # self > total.
        ([[0, 6, 0, 0], [0, 6, 7, 1]], None, "level 1 node 0: self 7 > total 6"),
        # Name index out of range.
        ([[0, 6, 0, 0], [0, 6, 0, 9]], None, "level 1 node 0: name index 9 is out of range"),
        # A child wider than its parent.
        ([[0, 6, 0, 0], [0, 7, 0, 1]], None, "level 1 node 0: span [0, 7) lies outside"),
        # A child overlapping its parent's self.
        (
            [[0, 6, 0, 0], [0, 6, 0, 1], [0, 4, 1, 3, 0, 2, 2, 2], [0, 3, 3, 4]],
            None,
            "level 3 node 0: span [0, 3) lies outside its parent's children span [1, 4) "
            "(level 2 node 0)",
        ),
        # A child sticking out of the right edge of its parent.
        (
            [[0, 6, 0, 0], [0, 6, 0, 1], [0, 4, 1, 3, 0, 2, 2, 2], [1, 4, 3, 4]],
            None,
            "level 3 node 0: span [1, 5) lies outside its parent's children span [1, 4)",
        ),
        # A child with no parent at all.
        ([[0, 6, 0, 0], [], [0, 1, 1, 1]], None, "level 2 node 0: span [0, 1) has no parent"),
        # Non-integer strings, floats, booleans, nulls.
        ([[0, 6, 0, 0], ["0", "6x", "0", "1"]], None, "level 1 node 0: '6x' is not an integer"),
        ([[0, 6, 0, 0], [0, 6, 0, 1, 0, 1.5, 0, 1]], None, "level 1 node 1: 1.5 is not an"),
        ([[0, 6, 0, 0], [0, 6, True, 1]], None, "level 1 node 0: True is not an integer"),
        ([[0, 6, 0, 0], [0, 6, None, 1]], None, "level 1 node 0: None is not an integer"),
        # Out of int64 range.
        ([[0, str(1 << 63), 0, 0]], None, "level 0 node 0: offset 9223372036854775808 is out"),
        ([[0, 6, 0, 0], [0, 6, 0, 1, (1 << 63) - 6, 1, 0, 1]], None, "level 1 node 1: offset"),
        ([[0, 6, 0, 0], [0, 6, 0, 1 << 64]], None, "level 1 node 0: name index 1844674"),
        # Bad names.
        ([[0, 6, 0, 0]], ["total", 7], "names[1] is not a string"),
    ],
)
def test_malformed_flamegraph(
    levels: list[list[Any]], names: list[Any] | None, message: str
) -> None:
    with pytest.raises(DecodeError) as info:
        decode_flamegraph(_graph(levels, names))
    assert message in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        [],
        "flamegraph",
        {"names": "total"},
        {"levels": {"values": []}},
        {"levels": [["0", "1"], 5]},
        {"levels": [{"values": "0000"}]},
        {"total": "six"},
        {"maxSelf": -1},
        {"total": 1.0},
    ],
)
def test_malformed_message_shapes(body: Any) -> None:
    with pytest.raises(DecodeError):
        decode_flamegraph(body)


def test_missing_keys_default() -> None:
    graph = decode_flamegraph({"names": ["total"], "levels": [{}]})
    assert graph.levels == [[]]
    assert (graph.total, graph.max_self) == (0, 0)
    assert graph.to_tree() == Tree()


def test_int64_accepted_as_int_or_string() -> None:
    as_ints = decode_flamegraph(
        {"names": ["total", "main"], "levels": [[0, 5, 0, 0], [0, 5, 5, 1]]}
    )
    as_strs = decode_flamegraph(
        {"names": ["total", "main"], "levels": [{"values": ["0", "5", "0", "0"]}, ["0", 5, "5", 1]]}
    )
    assert as_ints.to_dict()["levels"] == as_strs.to_dict()["levels"]
    assert list(as_strs.stacks()) == [(("main",), 5)]


def test_inconsistent_totals_follow_the_stacks() -> None:
    """A parent wider than self + children decodes; the tree follows the selfs, like the
    server's stack-based merge."""
    graph = decode_flamegraph(
        {"names": ["total", "main", "a"], "levels": [[0, 9, 0, 0], [0, 9, 1, 1], [1, 3, 3, 2]]}
    )
    assert not graph.consistent
    tree = graph.to_tree()
    assert tree.total == 4
    assert sorted(tree.stacks()) == [(("main",), 1), (("main", "a"), 3)]
    with pytest.raises(DecodeError):
        graph.function_values()


def test_malformed_diff() -> None:
    good = encode_diff(Tree.from_stacks(WORKED), Tree.from_stacks(WORKED[:1]))
    decode_diff(good)
    with pytest.raises(DecodeError, match="level 1: 6 values is not a multiple of 7"):
        decode_diff({**good, "levels": [good["levels"][0], good["levels"][1][:6]]})
    bad = [list(level) for level in good["levels"]]
    bad[2][4] = 99  # right total of "a" wider than its parent
    with pytest.raises(DecodeError, match="right level 2 node 0"):
        decode_diff({**good, "levels": bad})
    bad = [list(level) for level in good["levels"]]
    bad[3][2] = 4  # left self of "b" above its total
    with pytest.raises(DecodeError, match="left level 3 node 0: self 4 > total 3"):
        decode_diff({**good, "levels": bad})


def test_encode_diff_rejects_negative_trees() -> None:
    tree = Tree.from_stacks(WORKED)
    tree.root.children["main"].children["c"].self = -1
    with pytest.raises(DecodeError, match="left tree has a negative value"):
        encode_diff(tree, Tree())


def test_decoded_graph_reencodes_after_validation() -> None:
    graph = decode_flamegraph(encode_flamegraph(Tree.from_stacks(WORKED)))
    assert graph.node_count == 5
    assert graph.consistent


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "tree bytes node 0: child count is cut short at byte 2"),
        (b"\x00\x00\x01\x04ma", "tree bytes node 1: name of 4 bytes is cut short"),
        (b"\x00\x00\x01\x01\xff\x00\x00", "tree bytes node 1: name at byte 4 is not UTF-8"),
        (b"\x00\x00\x05\x00\x00\x00", "node 0: 5 children cannot fit"),
        (b"\x00\x00\x01\x01a" + b"\xff" * 10 + b"\x01", "node 1: self overflows 64 bits"),
        (b"\x00\x00\x01\x01a" + b"\xff" * 9 + b"\x01\x00", "self 18446744073709551615 is out"),
        (b"\x00\x00\x02\x01a\x01\x00", "tree bytes node 2: name length is cut short at byte 7"),
    ],
)
def test_malformed_tree_bytes(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_tree_bytes(data)
    assert message in str(info.value)


def test_tree_bytes_merge_duplicate_siblings_and_ignore_trailing_bytes() -> None:
    # root -> a(self 1) twice under the virtual root: merged into one node with self 2.
    data = b"\x00\x00\x02\x01a\x01\x00\x01a\x01\x00"
    tree = decode_tree_bytes(data + b"\xff\xff")
    assert list(tree.stacks()) == [(("a",), 2)]
    assert tree.total == 2
    assert encode_tree_bytes(tree) == b"\x00\x00\x01\x01a\x02\x00"
