"""Every golden vector, served by the sandbox over HTTP.

The vectors come from Pyroscope's own ``NewFlameGraph``, ``Tree.MarshalTruncate`` and
``NewFlamegraphDiff`` run on synthetic stacks (``generated/flamegraph_golden_vectors.json``).

Vectors without ``max_nodes`` must come back exactly. Vectors *with* ``max_nodes`` were
rendered from the untruncated tree, while a server (and so the sandbox) first truncates the
merged tree with the tree-bytes rule at the validated ``max_nodes`` and only then renders
(querier spec §3.3, "Golden vectors and this pipeline"). For those, the expected answer is
computed through that pipeline: the golden ``PROFILE_FORMAT_TREE`` bytes (Pyroscope's own
truncation) are decoded here and rendered with ``max_nodes``; where the pipeline does not
change the result the answer must also equal the golden vector itself.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from watcher.flamegraph.encode import encode_diff, encode_flamegraph
from watcher.flamegraph.tree import Tree
from watcher.sandbox import Sandbox

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
Q = "/querier.v1.QuerierService/"
NOW = (int(time.time() * 1000) // 1000) * 1000
START = NOW - 3_600_000
VECTORS = "generated/flamegraph_golden_vectors.json"


#: How many vectors the file holds (spec §7); every one is a test below.
SINGLE_COUNT = 18
DIFF_COUNT = 11


@pytest.fixture(scope="module")
def vectors(testdata: Path) -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = json.loads((testdata / VECTORS).read_text())
    return data


def test_vector_counts(vectors: dict[str, list[dict[str, Any]]]) -> None:
    assert (len(vectors["single"]), len(vectors["diff"])) == (SINGLE_COUNT, DIFF_COUNT)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox, testdata: Path) -> Iterator[httpx.Client]:
    sandbox.reset()
    with httpx.Client(base_url=sandbox.url, timeout=30) as c:
        yield c


def _load(sandbox: Sandbox, samples: list[dict[str, Any]] | None, service: str) -> None:
    # One profile per sample, so the store's merge of equal stacks is exercised too.
    for i, sample in enumerate(samples or []):
        sandbox.store.add(
            {"service_name": service},
            CPU,
            START + 1 + i,
            {tuple(sample["stack"]): int(sample["value"])},
        )


def _tree(samples: list[dict[str, Any]] | None) -> Tree:
    return Tree.from_stacks((tuple(s["stack"]), int(s["value"])) for s in samples or [])


def _protojson(message: dict[str, Any]) -> dict[str, Any]:
    """Golden integers are plain numbers; the wire has int64 strings and omits zeros."""
    out: dict[str, Any] = {}
    for key, value in message.items():
        if key == "levels":
            out[key] = [
                {"values": [str(v) for v in level["values"]]} if level["values"] else {}
                for level in value
            ]
        elif key == "names":
            if value:
                out[key] = list(value)
        elif value:
            out[key] = str(value)
    return out


def _levels(fg: dict[str, Any]) -> dict[str, Any]:
    """An encoder dict (levels as lists of ints) in the golden vectors' shape."""
    return {
        **fg,
        "levels": [{"values": list(level)} for level in fg["levels"]],
    }


def _decode_tree_bytes(data: bytes) -> Tree:
    """PROFILE_FORMAT_TREE bytes → Tree (spec §3.4), written here independently."""
    pos = 0

    def uvarint() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    tree = Tree()
    if len(data) < 2:
        return tree
    todo: list[tuple[str, ...]] = [()]
    root = True
    while todo and pos < len(data):
        parent = todo.pop()
        size = uvarint()
        name = data[pos : pos + size].decode("utf-8")
        pos += size
        self_value = uvarint()
        children = uvarint()
        path = parent if root else (*parent, name)
        root = False
        if self_value:
            tree.add(path, self_value)
        todo.extend([path] * children)
    return tree


@pytest.mark.parametrize("index", range(SINGLE_COUNT))
def test_single_vector_flamegraph(
    sandbox: Sandbox, client: httpx.Client, vectors: dict[str, Any], index: int
) -> None:
    case = vectors["single"][index]
    _load(sandbox, case["samples"], "golden")
    max_nodes = int(case["max_nodes"])
    body: dict[str, Any] = {
        "profileTypeID": CPU,
        "labelSelector": '{service_name="golden"}',
        "start": START,
        "end": NOW,
    }
    if max_nodes:
        body["maxNodes"] = max_nodes
    response = client.post(Q + "SelectMergeStacktraces", json=body)
    assert response.status_code == 200, response.text
    got = response.json()["flamegraph"]
    golden = _protojson(case["flamegraph"])
    if not max_nodes:
        assert got == golden, case["name"]
        return
    # Server pipeline (§3.3): Pyroscope's own truncated tree bytes, rendered with max_nodes.
    truncated = _decode_tree_bytes(base64.b64decode(case["tree_bytes_base64"]))
    expected = _protojson(_levels(encode_flamegraph(truncated, max_nodes)))
    assert got == expected, case["name"]
    if truncated == _tree(case["samples"]):
        assert got == golden, case["name"]  # step 2 changed nothing


@pytest.mark.parametrize("index", range(SINGLE_COUNT))
def test_single_vector_tree_bytes(
    sandbox: Sandbox, client: httpx.Client, vectors: dict[str, Any], index: int
) -> None:
    case = vectors["single"][index]
    _load(sandbox, case["samples"], "golden")
    body: dict[str, Any] = {
        "profileTypeID": CPU,
        "labelSelector": '{service_name="golden"}',
        "start": START,
        "end": NOW,
        "format": "PROFILE_FORMAT_TREE",
    }
    if case["max_nodes"]:
        body["maxNodes"] = case["max_nodes"]
    got = client.post(Q + "SelectMergeStacktraces", json=body).json()
    if case["tree_bytes_base64"]:
        assert got == {"tree": case["tree_bytes_base64"]}
    else:
        assert got == {}


def test_pipeline_changes_exactly_six_truncated_vectors(
    sandbox: Sandbox, client: httpx.Client, vectors: dict[str, Any]
) -> None:
    """The spec counts six max_nodes-20 vectors where the server pipeline differs from
    rendering alone; the sandbox must differ on exactly those and match on the rest."""
    differ = []
    for case in vectors["single"]:
        if not case["max_nodes"]:
            continue
        sandbox.reset()
        _load(sandbox, case["samples"], "golden")
        got = client.post(
            Q + "SelectMergeStacktraces",
            json={
                "profileTypeID": CPU,
                "labelSelector": "{}",
                "start": START,
                "end": NOW,
                "maxNodes": case["max_nodes"],
            },
        ).json()["flamegraph"]
        if got != _protojson(case["flamegraph"]):
            differ.append(case["name"])
    assert len(differ) == 6, differ
    assert all(name.endswith("max_nodes_20") for name in differ)


@pytest.mark.parametrize("index", range(DIFF_COUNT))
def test_diff_vector(
    sandbox: Sandbox, client: httpx.Client, vectors: dict[str, Any], index: int
) -> None:
    case = vectors["diff"][index]
    _load(sandbox, case["left_samples"], "left")
    _load(sandbox, case["right_samples"], "right")
    max_nodes = int(case["max_nodes"])

    def side(service: str) -> dict[str, Any]:
        request: dict[str, Any] = {
            "profileTypeID": CPU,
            "labelSelector": f'{{service_name="{service}"}}',
            "start": START,
            "end": NOW,
        }
        if max_nodes:
            request["maxNodes"] = max_nodes
        return request

    response = client.post(Q + "Diff", json={"left": side("left"), "right": side("right")})
    assert response.status_code == 200, response.text
    got = response.json()["flamegraph"]
    golden = _protojson(case["flamegraph_diff"])
    if not max_nodes:
        assert got == golden, case["name"]
        return
    # Server pipeline (§2.10): both trees truncated at n with the tree-bytes rule, then the
    # diff truncated at the same n.
    left, right = _tree(case["left_samples"]), _tree(case["right_samples"])
    left_cut, right_cut = left.truncated(max_nodes), right.truncated(max_nodes)
    expected = _protojson(_levels(encode_diff(left_cut, right_cut, max_nodes)))
    assert got == expected, case["name"]
    if left_cut == left and right_cut == right:
        assert got == golden, case["name"]
