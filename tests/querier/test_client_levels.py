"""The client reads flame graph and diff answers straight from their bytes (levels as ints):
the same graphs, and the same errors, as parsing them the usual way."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.recording_server import RecordingServer

from watcher.config import Deployment
from watcher.errors import DecodeError, QuerierResponseError, ResponseTooLarge
from watcher.flamegraph import (
    Tree,
    decode_diff,
    decode_flamegraph,
    encode_diff,
    encode_flamegraph,
    loads_flamegraph,
    to_connect_json,
)
from watcher.querier import QuerierClient, StacktraceQuery
from watcher.sandbox import Sandbox
from watcher.times import TimeRange

from .conftest import Recorder

RNG = TimeRange(datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 11, tzinfo=UTC))
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
LEFT = Tree.from_stacks([(("main", "a", "b"), 3), (("main", "a"), 1), (("main", "c"), 2)])
RIGHT = Tree.from_stacks([(("main", "a", "b"), 1), (("main", "c"), 4), (("main", "d"), 2)])

MakeClient = Callable[..., QuerierClient]


def _protojson(message: dict[str, object]) -> bytes:
    """A response as the server writes it: compact, int64 as strings."""
    return json.dumps({"flamegraph": to_connect_json(message)}, separators=(",", ":")).encode()


GRAPH = _protojson(encode_flamegraph(LEFT))
DIFF = _protojson(encode_diff(LEFT, RIGHT))


def test_protojson_graphs_and_diffs(server: RecordingServer, make_client: MakeClient) -> None:
    """The server's own bytes take the fast reading, and decode to the trees sent."""
    assert loads_flamegraph(GRAPH) is not None
    assert loads_flamegraph(DIFF) is not None
    server.add(200, GRAPH, headers={"Content-Type": "application/json"})
    server.add(200, DIFF, headers={"Content-Type": "application/json"})
    client = make_client()
    assert client.select_merge_stacktraces(CPU, None, RNG).to_tree() == LEFT
    diff = client.diff(StacktraceQuery(CPU, None, RNG), StacktraceQuery(CPU, None, RNG))
    assert diff.to_trees() == (LEFT, RIGHT)


def test_gzipped_chunked_and_spaced_answers(
    server: RecordingServer, make_client: MakeClient
) -> None:
    """Compression, chunking and Go's optional spaces change nothing."""
    spaced = GRAPH.replace(b",", b", ")
    pretty = json.dumps(json.loads(GRAPH), indent=2).encode()  # read the usual way
    assert loads_flamegraph(spaced) is not None
    assert loads_flamegraph(pretty) is None
    server.add(200, GRAPH, gzip=True, chunked=True)
    server.add(200, spaced)
    server.add(200, pretty)
    client = make_client()
    for _ in range(3):
        assert client.select_merge_stacktraces(CPU, None, RNG).to_tree() == LEFT


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (GRAPH[:-40], DecodeError, "SelectMergeStacktraces: the response is not JSON: "),
        (b"[" + GRAPH + b"]", DecodeError, "expected a JSON object, got list"),
        (
            b'{"flamegraph":[' + GRAPH + b"]}",
            DecodeError,
            "flamegraph: expected a JSON object, got list",
        ),
        (
            GRAPH.replace(b'"values":["0","6","0","1"]', b'"values":["0","6","7","1"]'),
            DecodeError,
            "flame graph level 1 node 0: self 7 > total 6",
        ),
        (GRAPH.replace(b'"6"', b'"-6"'), DecodeError, "value -6 is out of range"),
    ],
)
def test_malformed_answers_give_the_usual_errors(
    server: RecordingServer, make_client: MakeClient, body: bytes, error: type, message: str
) -> None:
    server.add(200, body)
    with pytest.raises(error, match=message.replace("[", r"\[")):
        make_client().select_merge_stacktraces(CPU, None, RNG)


def test_connect_errors_and_the_size_limit_still_apply(
    server: RecordingServer, make_client: MakeClient
) -> None:
    server.add(400, {"code": "invalid_argument", "message": "bad selector"})
    server.add(200, DIFF)
    with pytest.raises(QuerierResponseError, match="bad selector"):
        make_client().select_merge_stacktraces(CPU, None, RNG)
    with pytest.raises(ResponseTooLarge, match="larger than 100 bytes"):
        make_client(max_response_bytes=100).diff(
            StacktraceQuery(CPU, None, RNG), StacktraceQuery(CPU, None, RNG)
        )


def test_access_command_answers(tmp_path: Path, recorder: Recorder) -> None:
    """An ``access_command`` wrapper's stdout is read the same way."""
    (tmp_path / "answer.json").write_bytes(GRAPH)
    script = tmp_path / "wrapper"
    script.write_text(f"#!/bin/sh\ncat '{tmp_path / 'answer.json'}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    deployment = Deployment(name="wrapped", url="http://127.0.0.1:1", access_command=str(script))
    with QuerierClient(deployment, sleep=recorder.sleep) as client:
        assert client.select_merge_stacktraces(CPU, None, RNG).to_tree() == LEFT


# -- against the sandbox --------------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        stacks = dict(LEFT.stacks())
        sb.store.add({"service_name": "checkout"}, CPU, sb.now_ms() - 60_000, stacks)
        sb.store.add({"service_name": "cart"}, CPU, sb.now_ms() - 60_000, dict(RIGHT.stacks()))
        yield sb


def test_sandbox_answers_match_the_usual_reading(sandbox: Sandbox) -> None:
    """The sandbox's answers decode to what the plain JSON parse decodes to."""
    end = datetime.fromtimestamp(sandbox.now_ms() / 1000, UTC)
    rng = TimeRange(end - timedelta(hours=1), end)
    left = StacktraceQuery(CPU, '{service_name="checkout"}', rng)
    right = StacktraceQuery(CPU, '{service_name="cart"}', rng)
    with QuerierClient(sandbox.url, http="stdlib") as client:
        graph = client.select_merge_stacktraces(CPU, left.selector, rng)
        diff = client.diff(left, right)
        body = client._merge_body(CPU, left.selector, rng, None, ())
        usual = decode_flamegraph(client.call("SelectMergeStacktraces", body)["flamegraph"])
        sides = {"left": body, "right": client._merge_body(CPU, right.selector, rng, None, ())}
        usual_diff = decode_diff(client.call("Diff", sides)["flamegraph"])
    assert graph.to_dict() == usual.to_dict()
    assert graph.to_tree() == LEFT
    assert diff.to_dict() == usual_diff.to_dict()
    assert diff.to_trees() == (LEFT, RIGHT)
