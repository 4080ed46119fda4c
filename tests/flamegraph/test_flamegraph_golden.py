"""The codec against the upstream golden vectors and the real UI fixture (shared test data)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from watcher.flamegraph import (
    FunctionTable,
    Tree,
    decode_diff,
    decode_flamegraph,
    decode_tree_bytes,
    encode_diff,
    encode_flamegraph,
    encode_tree_bytes,
    to_connect_json,
)

pytestmark = pytest.mark.shared

VECTORS = "generated/flamegraph_golden_vectors.json"
FIXTURE = "ui/e2e/fixtures/flamegraph.json"


@pytest.fixture(scope="module")
def vectors(testdata: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((testdata / VECTORS).read_text())
    return data


def _tree(samples: list[dict[str, Any]] | None) -> Tree:
    return Tree.from_stacks((s["stack"], s["value"]) for s in samples or [])


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    """A vector's message in the encoders' shape (levels as plain lists)."""
    return {**message, "levels": [level["values"] for level in message["levels"]]}


def _case(vectors: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    case: dict[str, Any] = next(c for c in vectors[kind] if c["name"] == name)
    return case


SINGLE = [
    "worked_example",
    "multi_root",
    "truncation_none",
    "truncation_max_nodes_5",
    "truncation_max_nodes_3",
    "empty",
    *(f"random_{i}_{suffix}" for i in range(6) for suffix in ("full", "max_nodes_20")),
]
DIFF = [
    "worked_example_diff",
    "truncation_diff_max_nodes_4",
    "left_empty",
    *(f"random_diff_{i}_{suffix}" for i in range(4) for suffix in ("full", "max_nodes_15")),
]


def test_every_vector_is_covered(vectors: dict[str, Any]) -> None:
    assert sorted(c["name"] for c in vectors["single"]) == sorted(SINGLE)
    assert sorted(c["name"] for c in vectors["diff"]) == sorted(DIFF)


@pytest.mark.parametrize("name", SINGLE)
def test_encode_flamegraph_matches_vector(vectors: dict[str, Any], name: str) -> None:
    case = _case(vectors, "single", name)
    encoded = encode_flamegraph(_tree(case["samples"]), case["max_nodes"])
    assert encoded == _plain(case["flamegraph"])


@pytest.mark.parametrize("name", SINGLE)
def test_encode_tree_bytes_matches_vector(vectors: dict[str, Any], name: str) -> None:
    case = _case(vectors, "single", name)
    expected = base64.b64decode(case["tree_bytes_base64"])
    assert encode_tree_bytes(_tree(case["samples"]), case["max_nodes"]) == expected
    if "tree_bytes_hex" in case:
        assert expected.hex() == case["tree_bytes_hex"]


@pytest.mark.parametrize("name", SINGLE)
def test_decode_flamegraph_vector(vectors: dict[str, Any], name: str) -> None:
    case = _case(vectors, "single", name)
    graph = decode_flamegraph(case["flamegraph"])
    assert graph.to_dict() == _plain(case["flamegraph"])
    tree = _tree(case["samples"])
    decoded = graph.to_tree()
    assert decoded.total == tree.total == graph.total
    if case["max_nodes"] == 0:
        assert decoded == tree
    # Rendering the decoded tree again gives the same message.
    assert encode_flamegraph(decoded) == _plain(case["flamegraph"])


@pytest.mark.parametrize("name", SINGLE)
def test_decode_connect_json_vector(vectors: dict[str, Any], name: str) -> None:
    """The same vectors with int64 as strings and zero values omitted, as the server sends."""
    case = _case(vectors, "single", name)
    wire = {"flamegraph": to_connect_json(_plain(case["flamegraph"]))}
    assert to_connect_json(case["flamegraph"]) == wire["flamegraph"]
    assert decode_flamegraph(wire).to_dict() == _plain(case["flamegraph"])


@pytest.mark.parametrize("name", SINGLE)
def test_decode_tree_bytes_vector(vectors: dict[str, Any], name: str) -> None:
    case = _case(vectors, "single", name)
    decoded = decode_tree_bytes(base64.b64decode(case["tree_bytes_base64"]))
    assert decoded == _tree(case["samples"]).truncated(case["max_nodes"])
    assert encode_tree_bytes(decoded) == base64.b64decode(case["tree_bytes_base64"])


@pytest.mark.parametrize("name", DIFF)
def test_encode_diff_matches_vector(vectors: dict[str, Any], name: str) -> None:
    case = _case(vectors, "diff", name)
    left, right = _tree(case["left_samples"]), _tree(case["right_samples"])
    assert encode_diff(left, right, case["max_nodes"]) == _plain(case["flamegraph_diff"])


@pytest.mark.parametrize("name", DIFF)
def test_decode_diff_vector(vectors: dict[str, Any], name: str) -> None:
    case = _case(vectors, "diff", name)
    message = case["flamegraph_diff"]
    diff = decode_diff({"flamegraph": to_connect_json(_plain(message))})
    assert diff.to_dict() == _plain(message)
    left, right = diff.to_trees()
    assert (left.total, right.total) == (message["leftTicks"], message["rightTicks"])
    if case["max_nodes"] == 0:
        assert left == _tree(case["left_samples"])
        assert right == _tree(case["right_samples"])
        assert encode_diff(left, right) == _plain(message)
    base, current = FunctionTable.from_diff(diff)
    assert base.self_values == FunctionTable.from_tree(left).self_values
    assert current.total_values == FunctionTable.from_tree(right).total_values


def test_max_nodes_vectors_are_rendering_alone(vectors: dict[str, Any]) -> None:
    """Spec §3.3: vectors with max_nodes come from rendering the untruncated tree; the
    server pipeline (tree-bytes truncation first) differs in the six max_nodes=20 cases."""
    differ = []
    for case in vectors["single"]:
        n = case["max_nodes"]
        if not n:
            continue
        tree = _tree(case["samples"])
        assert encode_flamegraph(tree, n) == _plain(case["flamegraph"])
        pipeline = encode_flamegraph(decode_tree_bytes(encode_tree_bytes(tree, n)), n)
        assert pipeline == encode_flamegraph(tree.truncated(n), n)
        assert pipeline["total"] == case["flamegraph"]["total"]
        if pipeline != _plain(case["flamegraph"]):
            differ.append(case["name"])
    assert sorted(differ) == [f"random_{i}_max_nodes_20" for i in range(6)]


@pytest.fixture(scope="module")
def fixture_message(testdata: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((testdata / FIXTURE).read_text())
    return data


def test_ui_fixture_round_trips(fixture_message: dict[str, Any]) -> None:
    graph = decode_flamegraph(fixture_message)
    assert len(graph.names) == 1071
    assert len(graph.levels) == 65
    assert graph.total == 11_100_000_000
    tree = graph.to_tree()
    assert tree.total == graph.total
    again = encode_flamegraph(Tree.from_stacks(tree.stacks()), max_nodes=0)
    body = fixture_message["flamegraph"]
    assert again["names"] == body["names"]
    assert again["levels"] == [[int(v) for v in level["values"]] for level in body["levels"]]
    assert again["total"] == int(body["total"])
    assert again["maxSelf"] == int(body["maxSelf"])
    assert to_connect_json(again) == body


def test_ui_fixture_truncation_counts(fixture_message: dict[str, Any]) -> None:
    """Spec §3.3 reports the node counts max_nodes gives on this fixture (root included)."""
    tree = decode_flamegraph(fixture_message).to_tree()
    for max_nodes, nodes, others in ((16, 26, 7), (100, 131, None), (1024, 2110, None)):
        rendered = encode_flamegraph(tree, max_nodes)
        assert sum(len(level) for level in rendered["levels"]) // 4 == nodes
        if others is not None:
            other = rendered["names"].index("other")
            count = sum(level[3::4].count(other) for level in rendered["levels"])
            assert count == others


def test_ui_fixture_function_table(fixture_message: dict[str, Any]) -> None:
    graph = decode_flamegraph(fixture_message)
    direct = FunctionTable.from_flamegraph(graph)
    via_tree = FunctionTable.from_tree(graph.to_tree())
    assert direct.self_values == via_tree.self_values
    assert direct.total_values == via_tree.total_values
    assert direct.total_value == via_tree.total_value == 11_100_000_000
    assert sum(direct.self_values.values()) == direct.total_value
    # A function's self sums over all its nodes, so it is at least the largest node self.
    top = direct.top(1, by="self")[0]
    assert top.self >= graph.max_self
