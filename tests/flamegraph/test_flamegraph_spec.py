"""The worked examples of the querier spec §3, written out by hand."""

from __future__ import annotations

import base64

from watcher.flamegraph import (
    Tree,
    decode_diff,
    decode_flamegraph,
    decode_tree_bytes,
    encode_diff,
    encode_flamegraph,
    encode_tree_bytes,
    to_connect_json,
)

WORKED = [(("main", "a", "b"), 3), (("main", "a"), 1), (("main", "c"), 2)]
MULTI_ROOT = [(("main", "work"), 5), (("gc",), 2), (("main", "io"), 1), (("runtime", "sched"), 1)]
TRUNCATION = [
    (("main", "a", "x"), 50),
    (("main", "a", "y"), 3),
    (("main", "b"), 2),
    (("main", "c", "z"), 1),
    (("main", "d"), 40),
]
DIFF_RIGHT = [(("main", "a", "b"), 1), (("main", "c"), 4), (("main", "d"), 2)]


def test_worked_example_tree() -> None:
    tree = Tree.from_stacks(WORKED)
    main = tree.root.children["main"]
    assert (main.total, main.self) == (6, 0)
    a, c = main.children["a"], main.children["c"]
    assert (a.total, a.self, c.total, c.self) == (4, 1, 2, 2)
    assert (a.children["b"].total, a.children["b"].self) == (3, 3)
    assert tree.node_count() == 4


def test_worked_example_flamegraph() -> None:
    encoded = encode_flamegraph(Tree.from_stacks(WORKED))
    assert encoded == {
        "names": ["total", "main", "c", "a", "b"],
        "levels": [[0, 6, 0, 0], [0, 6, 0, 1], [0, 4, 1, 3, 0, 2, 2, 2], [1, 3, 3, 4]],
        "total": 6,
        "maxSelf": 3,
    }


def test_worked_example_connect_json() -> None:
    wire = {
        "flamegraph": {
            "names": ["total", "main", "c", "a", "b"],
            "levels": [
                {"values": ["0", "6", "0", "0"]},
                {"values": ["0", "6", "0", "1"]},
                {"values": ["0", "4", "1", "3", "0", "2", "2", "2"]},
                {"values": ["1", "3", "3", "4"]},
            ],
            "total": "6",
            "maxSelf": "3",
        }
    }
    assert to_connect_json(encode_flamegraph(Tree.from_stacks(WORKED))) == wire["flamegraph"]
    graph = decode_flamegraph(wire)
    assert (graph.total, graph.max_self) == (6, 3)
    assert sorted(graph.stacks()) == sorted(WORKED)


def test_multi_root_example() -> None:
    encoded = encode_flamegraph(Tree.from_stacks(MULTI_ROOT))
    assert encoded["names"] == ["total", "runtime", "sched", "main", "work", "io", "gc"]
    assert encoded["levels"][1] == [0, 2, 2, 6, 0, 6, 0, 3, 0, 1, 0, 1]
    assert encoded["levels"][2] == [2, 1, 1, 5, 0, 5, 5, 4, 0, 1, 1, 2]
    assert (encoded["total"], encoded["maxSelf"]) == (9, 5)


def test_truncation_example_max_nodes_3() -> None:
    tree = Tree.from_stacks(TRUNCATION)
    assert tree.node_count() == 8
    assert tree.min_value(3) == 50
    encoded = encode_flamegraph(tree, 3)
    assert encoded["names"] == ["total", "main", "other", "a", "x"]
    assert encoded["levels"][2] == [0, 53, 0, 3, 0, 43, 43, 2]
    assert encoded["levels"][3] == [0, 50, 50, 4, 0, 3, 3, 2]
    expected = base64.b64decode("AAABBG1haW4AAgVvdGhlcisAAWEAAgF4MgAFb3RoZXIDAA==")
    assert encode_tree_bytes(tree, 3) == expected


def test_truncation_example_max_nodes_5() -> None:
    tree = Tree.from_stacks(TRUNCATION)
    assert tree.min_value(5) == 3
    main = tree.truncated(5).root.children["main"]
    assert sorted(main.children) == ["a", "d", "other"]
    assert main.children["other"].self == main.children["other"].total == 3


def test_no_truncation_when_small_or_unset() -> None:
    tree = Tree.from_stacks(TRUNCATION)
    assert tree.min_value(0) == 0
    assert tree.min_value(-1) == 0
    assert tree.min_value(8) == 0
    assert tree.min_value(7) == 1


def test_tree_bytes_example() -> None:
    data = encode_tree_bytes(Tree.from_stacks(WORKED))
    assert data.hex() == "000001046d61696e0002016302000161010101620300"
    assert base64.b64encode(data) == b"AAABBG1haW4AAgFjAgABYQEBAWIDAA=="
    assert decode_tree_bytes(data) == Tree.from_stacks(WORKED)


def test_empty_tree_bytes() -> None:
    assert encode_tree_bytes(Tree()) == b""
    assert decode_tree_bytes(b"") == Tree()
    assert decode_tree_bytes(b"\x00") == Tree()


def test_diff_worked_example() -> None:
    encoded = encode_diff(Tree.from_stacks(WORKED), Tree.from_stacks(DIFF_RIGHT))
    assert encoded == {
        "names": ["total", "main", "d", "c", "a", "b"],
        "levels": [
            [0, 6, 0, 0, 7, 0, 0],
            [0, 6, 0, 0, 7, 0, 1],
            [0, 4, 1, 0, 1, 0, 4, 0, 2, 2, 0, 4, 4, 3, 0, 0, 0, 0, 2, 2, 2],
            [1, 3, 3, 0, 1, 1, 5],
        ],
        "total": 13,
        "maxSelf": 4,
        "leftTicks": 6,
        "rightTicks": 7,
    }
    left, right = decode_diff(encoded).to_trees()
    assert left == Tree.from_stacks(WORKED)
    assert right == Tree.from_stacks(DIFF_RIGHT)


def test_diff_left_empty() -> None:
    encoded = encode_diff(Tree(), Tree.from_stacks(WORKED))
    assert encoded["leftTicks"] == 0
    assert all(level[i] == 0 for level in encoded["levels"] for i in range(len(level)) if i % 7 < 3)
    assert "leftTicks" not in to_connect_json(encoded)
    left, right = decode_diff(to_connect_json(encoded)).to_trees()
    assert left == Tree()
    assert right == Tree.from_stacks(WORKED)


def test_diff_truncated_example() -> None:
    encoded = encode_diff(Tree.from_stacks(TRUNCATION), Tree.from_stacks(DIFF_RIGHT), 4)
    assert encoded["names"] == ["total", "main", "other", "a", "x"]
    assert encoded["levels"][2] == [0, 53, 0, 0, 1, 0, 3, 0, 43, 43, 0, 6, 6, 2]
    assert encoded["levels"][3] == [0, 50, 50, 0, 0, 0, 4, 0, 3, 3, 0, 1, 1, 2]
    assert (encoded["total"], encoded["maxSelf"]) == (103, 50)


def test_empty_flamegraph_omits_zero_fields() -> None:
    encoded = encode_flamegraph(Tree())
    assert encoded == {"names": ["total"], "levels": [[0, 0, 0, 0]], "total": 0, "maxSelf": 0}
    wire = to_connect_json(encoded)
    assert wire == {"names": ["total"], "levels": [{"values": ["0", "0", "0", "0"]}]}
    graph = decode_flamegraph(wire)
    assert (graph.total, graph.max_self) == (0, 0)
    assert graph.to_tree() == Tree()
    assert decode_flamegraph({}).to_tree() == Tree()
    assert decode_flamegraph({"flamegraph": {}}).names == []
