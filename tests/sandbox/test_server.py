"""The sandbox over real HTTP: transport rules, Connect errors, protojson, every method."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from watcher.sandbox import ProfileStore, Sandbox
from watcher.sandbox.query import QueryLimits

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
ALLOC = "memory:alloc_space:bytes:space:bytes"
Q = "/querier.v1.QuerierService/"
HOUR = 3_600_000
NOW = (int(time.time() * 1000) // 1000) * 1000
START = NOW - HOUR
EMPTY_FLAMEGRAPH = {
    "flamegraph": {"names": ["total"], "levels": [{"values": ["0", "0", "0", "0"]}]}
}


def _seed(store: ProfileStore) -> None:
    store.add(
        {"service_name": "checkout", "env": "prod", "otel.scope.name": "sdk"},
        CPU,
        NOW - 10 * 60_000,
        {("main", "a", "b"): 3, ("main", "a"): 1, ("main", "c"): 2},
    )
    store.add({"service_name": "cart", "env": "dev"}, CPU, NOW - 5 * 60_000, {("main", "d"): 4})
    store.add({"service_name": "checkout", "env": "prod"}, ALLOC, NOW - 60_000, {("alloc",): 9})


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def shared_client(shared_sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_sandbox.url, timeout=30) as c:
        yield c


@pytest.fixture
def sandbox(shared_sandbox: Sandbox) -> Sandbox:
    """The module's server, emptied and seeded afresh for each test."""
    shared_sandbox.reset()
    shared_sandbox.querier.limits = QueryLimits()
    _seed(shared_sandbox.store)
    return shared_sandbox


@pytest.fixture
def client(sandbox: Sandbox, shared_client: httpx.Client) -> httpx.Client:
    return shared_client


def call(client: httpx.Client, method: str, body: Any, **kwargs: Any) -> httpx.Response:
    return client.post(Q + method, json=body, **kwargs)


def ok(client: httpx.Client, method: str, body: Any, **kwargs: Any) -> Any:
    response = call(client, method, body, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def merge(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"profileTypeID": CPU, "labelSelector": "{}", "start": START, "end": NOW}
    body.update(fields)
    return body


def assert_error(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert "content-encoding" not in response.headers  # Connect errors are never compressed
    assert response.json() == {"code": code, "message": message}


# ----------------------------------------------------------------------------- transport


def test_get_is_405_with_allow_post(client: httpx.Client) -> None:
    response = client.get(Q + "ProfileTypes")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.content == b""


def test_unknown_method_is_404(client: httpx.Client) -> None:
    response = call(client, "NoSuchMethod", {})
    assert response.status_code == 404
    assert response.text == "404 page not found\n"
    assert client.post("/nowhere", json={}).status_code == 404


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/connect+json", "application/x-protobuf", ""]
)
def test_wrong_content_type_is_415_with_accept_post(
    client: httpx.Client, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(Q + "ProfileTypes", content=b"{}", headers=headers)
    assert response.status_code == 415
    accept = response.headers["accept-post"].split(", ")
    assert "application/json" in accept and "application/proto" in accept
    assert accept == sorted(accept)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_variants_are_accepted(client: httpx.Client, content_type: str) -> None:
    response = client.post(
        Q + "GetProfileStats", content=b"{}", headers={"Content-Type": content_type}
    )
    assert response.status_code == 200


def test_empty_json_body_is_invalid_argument(client: httpx.Client) -> None:
    response = client.post(
        Q + "LabelNames", content=b"", headers={"Content-Type": "application/json"}
    )
    # connect-go prefixes codec errors with "unmarshal message: ".
    assert_error(
        response,
        400,
        "invalid_argument",
        "unmarshal message: zero-length payload is not a valid JSON object",
    )


def test_malformed_json_body_is_invalid_argument(client: httpx.Client) -> None:
    response = client.post(
        Q + "LabelNames", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_argument"
    assert response.json()["message"].startswith(
        "unmarshal message: unmarshal into *typesv1.LabelNamesRequest: "
    )


def test_empty_proto_body_is_a_valid_empty_message(client: httpx.Client) -> None:
    response = client.post(
        Q + "GetProfileStats", content=b"", headers={"Content-Type": "application/proto"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/proto"


def test_unknown_request_encoding_is_501(client: httpx.Client) -> None:
    response = client.post(
        Q + "GetProfileStats",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Encoding": "br"},
    )
    assert_error(
        response, 501, "unimplemented", 'unknown compression "br": supported encodings are gzip'
    )


def test_connect_protocol_version_must_be_1(client: httpx.Client) -> None:
    assert call(client, "GetProfileStats", {}, headers={"Connect-Protocol-Version": "1"}).is_success
    response = call(client, "GetProfileStats", {}, headers={"Connect-Protocol-Version": "2"})
    assert_error(response, 400, "invalid_argument", 'connect-protocol-version must be "1": got "2"')


def test_gzip_request_body_and_gzip_response(sandbox: Sandbox) -> None:
    body = gzip.compress(json.dumps(merge()).encode())
    conn = http.client.HTTPConnection("127.0.0.1", int(sandbox.url.rsplit(":", 1)[1]), timeout=30)
    try:
        conn.request(
            "POST",
            Q + "SelectMergeStacktraces",
            body=body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        response = conn.getresponse()
        raw = response.read()
        # A gzipped request gets a gzipped answer even without Accept-Encoding.
        assert response.status == 200
        assert response.getheader("Content-Encoding") == "gzip"
        assert json.loads(gzip.decompress(raw))["flamegraph"]["total"] == "10"
        # Same connection (keep-alive): no Accept-Encoding, plain request → plain answer.
        conn.request(
            "POST",
            Q + "GetProfileStats",
            body=b"{}",
            headers={"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        raw = response.read()
        assert response.status == 200
        assert response.getheader("Content-Encoding") is None
        assert json.loads(raw)["dataIngested"] is True
    finally:
        conn.close()


def test_accept_encoding_gzip_compresses(client: httpx.Client) -> None:
    response = call(client, "GetProfileStats", {}, headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    plain = call(client, "GetProfileStats", {}, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert response.json() == plain.json()


def test_keep_alive_serves_many_requests_on_one_connection(sandbox: Sandbox) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", int(sandbox.url.rsplit(":", 1)[1]), timeout=30)
    try:
        conn.connect()
        sock = conn.sock
        for _ in range(5):
            conn.request(
                "POST",
                Q + "GetProfileStats",
                body=b"{}",
                headers={"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Connection") != "close"
        assert conn.sock is sock
    finally:
        conn.close()


def test_ready(client: httpx.Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.text == "ready\n"


# ----------------------------------------------------------------------------- errors


RANGE_METHODS = {
    "SelectMergeStacktraces": merge(),
    "SelectMergeProfile": merge(),
    "SelectSeries": merge(step=60),
    "LabelNames": {"start": START, "end": NOW},
    "LabelValues": {"name": "service_name", "start": START, "end": NOW},
    "Series": {"start": START, "end": NOW},
}


@pytest.mark.parametrize("method", sorted(RANGE_METHODS))
def test_missing_time_range(client: httpx.Client, method: str) -> None:
    for missing in ("start", "end"):
        body = {k: v for k, v in RANGE_METHODS[method].items() if k != missing}
        assert_error(
            call(client, method, body), 400, "invalid_argument", "missing time range in the query"
        )
    body = {**RANGE_METHODS[method], "start": 0}
    assert_error(
        call(client, method, body), 400, "invalid_argument", "missing time range in the query"
    )


@pytest.mark.parametrize("method", sorted(RANGE_METHODS))
def test_start_after_end(client: httpx.Client, method: str) -> None:
    body = {**RANGE_METHODS[method], "start": NOW, "end": NOW - 1}
    assert_error(
        call(client, method, body), 400, "invalid_argument", "query start time is after end time"
    )


@pytest.mark.parametrize(
    ("length_ms", "shown"),
    [(25 * HOUR, "25h0m0s"), (24 * HOUR + 1, "24h0m0.001s"), (48 * HOUR + 90_500, "48h1m30.5s")],
)
def test_range_over_one_day(client: httpx.Client, length_ms: int, shown: str) -> None:
    body = merge(start=NOW - length_ms, end=NOW)
    assert_error(
        call(client, "SelectMergeStacktraces", body),
        400,
        "invalid_argument",
        f"the query time range exceeds the limit (max_query_length, actual: {shown}, limit: 1d)",
    )
    assert call(client, "SelectMergeStacktraces", merge(start=NOW - 24 * HOUR, end=NOW)).is_success


def test_range_wholly_before_lookback_is_an_empty_success(client: httpx.Client) -> None:
    old_end = NOW - 8 * 24 * HOUR
    body = merge(start=old_end - HOUR, end=old_end)
    assert ok(client, "SelectMergeStacktraces", body) == EMPTY_FLAMEGRAPH
    assert ok(client, "SelectMergeStacktraces", {**body, "format": "PROFILE_FORMAT_TREE"}) == {}
    assert ok(client, "LabelNames", {"start": old_end - HOUR, "end": old_end}) == {}
    assert ok(client, "SelectSeries", {**body, "step": 60}) == {}


def test_start_before_lookback_is_raised_to_it(sandbox: Sandbox) -> None:
    # With the clamp, a 2-day range that starts before the lookback passes the 1d check
    # when what is left of it is short enough.
    sandbox.querier.limits = QueryLimits(max_query_lookback_ms=HOUR)
    with httpx.Client(base_url=sandbox.url) as client:
        got = ok(client, "SelectMergeStacktraces", merge(start=NOW - 48 * HOUR, end=NOW))
    assert got["flamegraph"]["total"] == "10"


@pytest.mark.parametrize(
    ("profile_type", "parts"),
    [("cpu", 1), ("a:b:c:d", 4), ("a:b:c:d:e:f:g", 7), ("", 1)],
)
def test_bad_profile_type(client: httpx.Client, profile_type: str, parts: int) -> None:
    message = (
        "profile-type selection must be of the form "
        "<name>:<sample-type>:<sample-unit>:<period-type>:<period-unit>(:delta), "
        f'got({parts}): "{profile_type}"'
    )
    for method in ("SelectMergeStacktraces", "SelectMergeProfile", "SelectSeries"):
        body = merge(profileTypeID=profile_type, step=60)
        assert_error(call(client, method, body), 400, "invalid_argument", message)


def test_six_part_profile_type_is_accepted(client: httpx.Client) -> None:
    got = ok(client, "SelectMergeStacktraces", merge(profileTypeID=CPU + ":delta"))
    assert got["flamegraph"]["total"] == "10"


@pytest.mark.parametrize(
    ("selector", "detail"),
    [
        ("", '1:1: parse error: unexpected end of input, expected a metric name or "{"'),
        ("{a=}", '1:4: parse error: unexpected "}" in label matching, expected string'),
        (
            "{a",
            "1:3: parse error: unexpected end of input inside braces, "
            "expected label matching operator",
        ),
    ],
)
def test_bad_selector(client: httpx.Client, selector: str, detail: str) -> None:
    quoted = json.dumps(selector)
    assert_error(
        call(client, "SelectMergeStacktraces", merge(labelSelector=selector)),
        400,
        "invalid_argument",
        f"parsing label selector {quoted}: {detail}",
    )
    assert_error(
        call(client, "LabelNames", {"matchers": [selector], "start": START, "end": NOW}),
        400,
        "invalid_argument",
        f"parsing label selector: failed to parse label selector {quoted}: {detail}",
    )
    assert_error(
        call(client, "Series", {"matchers": [selector], "start": START, "end": NOW}),
        400,
        "invalid_argument",
        f"failed to parse label selector {quoted}: {detail}",
    )


def test_max_nodes_limits(client: httpx.Client) -> None:
    assert_error(
        call(client, "SelectMergeStacktraces", merge(maxNodes="1048577")),
        400,
        "invalid_argument",
        "max flamegraph nodes limit 1048577 is greater than allowed 1048576",
    )
    assert_error(
        call(client, "SelectMergeStacktraces", merge(maxNodes=-1)),
        400,
        "invalid_argument",
        "max flamegraph nodes limit must be set (max allowed 1048576)",
    )
    assert (
        ok(client, "SelectMergeStacktraces", merge(maxNodes=1048576))["flamegraph"]["total"] == "10"
    )


def test_label_values_requires_name(client: httpx.Client) -> None:
    assert_error(
        call(client, "LabelValues", {"start": START, "end": NOW}),
        400,
        "invalid_argument",
        "name is required",
    )


@pytest.mark.parametrize("step", [0, 0.0009, -5])
def test_select_series_step_minimum(client: httpx.Client, step: float) -> None:
    body = merge(step=step)
    if step == 0:
        del body["step"]
    assert_error(call(client, "SelectSeries", body), 400, "invalid_argument", "step must be >= 1ms")


def test_span_and_trace_selectors_cannot_be_combined(client: httpx.Client) -> None:
    body = merge(spanSelector=["0123456789abcdef"], traceIdSelector=["0" * 32])
    assert_error(
        call(client, "SelectMergeStacktraces", body),
        400,
        "invalid_argument",
        "span_selector and trace_id_selector cannot be combined",
    )


def test_diff_errors_are_rewrapped(client: httpx.Client) -> None:
    good = merge()
    assert_error(
        call(client, "Diff", {"left": {**good, "start": 0}, "right": good}),
        400,
        "invalid_argument",
        "invalid_argument: missing time range in the query",
    )
    assert_error(
        call(client, "Diff", {"left": good}),
        400,
        "invalid_argument",
        "profile-type selection must be of the form "
        "<name>:<sample-type>:<sample-unit>:<period-type>:<period-unit>(:delta), "
        'got(1): ""',
    )
    # n = max(left, right): one negative side next to an absent one gives 0 → the default.
    assert call(client, "Diff", {"left": {**good, "maxNodes": -3}, "right": good}).is_success
    assert_error(
        call(client, "Diff", {"left": {**good, "maxNodes": -3}, "right": {**good, "maxNodes": -1}}),
        400,
        "invalid_argument",
        "max flamegraph nodes limit must be set (max allowed 1048576)",
    )


def test_tenancy_requires_org_id() -> None:
    store = ProfileStore()
    _seed(store)
    with Sandbox(store, tenants=True) as sb, httpx.Client(base_url=sb.url) as client:
        assert_error(
            call(client, "LabelNames", {"start": START, "end": NOW}),
            401,
            "unauthenticated",
            "no org id",
        )
        assert_error(
            call(client, "LabelNames", {"start": START, "end": NOW}, headers={"X-Scope-OrgID": ""}),
            401,
            "unauthenticated",
            "no org id",
        )
        got = ok(
            client, "LabelNames", {"start": START, "end": NOW}, headers={"X-Scope-OrgID": "t1"}
        )
        assert "service_name" in got["names"]
        assert ok(client, "GetProfileStats", {}, headers={"X-Scope-OrgID": "t1"})["dataIngested"]
        assert_error(
            call(client, "GetProfileStats", {}, headers={"X-Scope-OrgID": "b|a|b"}),
            400,
            "invalid_argument",
            "expected 1 tenant, got 2",
        )
        push = client.post(
            "/push.v1.PusherService/Push",
            content=b"",
            headers={"Content-Type": "application/proto"},
        )
        assert_error(push, 401, "unauthenticated", "no org id")
    # Without multitenancy the header is ignored.
    with Sandbox(store) as sb, httpx.Client(base_url=sb.url) as client:
        assert ok(client, "GetProfileStats", {}, headers={"X-Scope-OrgID": "a|b"})["dataIngested"]


# ----------------------------------------------------------------------------- flame graphs


def test_flamegraph_protojson(client: httpx.Client) -> None:
    got = ok(client, "SelectMergeStacktraces", merge(labelSelector='{service_name="checkout"}'))
    assert got == {
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


def test_empty_flamegraph_shape(client: httpx.Client) -> None:
    got = ok(client, "SelectMergeStacktraces", merge(labelSelector='{service_name="nobody"}'))
    assert got == EMPTY_FLAMEGRAPH
    assert (
        ok(client, "SelectMergeStacktraces", merge(profileTypeID="wall:wall:ns:wall:ns"))
        == EMPTY_FLAMEGRAPH
    )
    tree = ok(
        client, "SelectMergeStacktraces", merge(labelSelector='{service_name="nobody"}', format=2)
    )
    assert tree == {}


def test_selector_is_anded_with_profile_type(client: httpx.Client) -> None:
    # env=prod also matches the ALLOC series; only CPU data may come back.
    got = ok(client, "SelectMergeStacktraces", merge(labelSelector='{env="prod"}'))
    assert got["flamegraph"]["total"] == "6"
    alloc = ok(
        client, "SelectMergeStacktraces", merge(profileTypeID=ALLOC, labelSelector='{env="prod"}')
    )
    assert alloc["flamegraph"]["names"] == ["total", "alloc"]


@pytest.mark.parametrize(
    ("selector", "total"),
    [
        ("{}", "10"),
        ('{service_name="cart"}', "4"),
        ('{service_name!="cart"}', "6"),
        ('{service_name=~"c.*t"}', "10"),
        ('{service_name=~"check"}', None),  # anchored: no partial match
        ('{service_name!~"check.*"}', "4"),
        ('{env="prod",service_name="cart"}', None),
        ('{missing=""}', "10"),
        ('{"otel.scope.name"="sdk"}', "6"),
        ('process_cpu{env="dev"}', "4"),
        ('memory{env="dev"}', None),
    ],
)
def test_selector_semantics(client: httpx.Client, selector: str, total: str | None) -> None:
    got = ok(client, "SelectMergeStacktraces", merge(labelSelector=selector))
    if total is None:
        assert got == EMPTY_FLAMEGRAPH
    else:
        assert got["flamegraph"]["total"] == total


def test_time_range_selects_by_timestamp(client: httpx.Client) -> None:
    checkout_ts = NOW - 10 * 60_000
    cart_ts = NOW - 5 * 60_000

    def total(start: int, end: int) -> str | None:
        got = ok(client, "SelectMergeStacktraces", merge(start=start, end=end))
        value: str | None = got["flamegraph"].get("total")
        return value

    assert total(checkout_ts, cart_ts) == "10"  # both ends inclusive
    assert total(checkout_ts + 1, cart_ts) == "4"
    assert total(checkout_ts, cart_ts - 1) == "6"
    assert total(cart_ts + 1, NOW) is None


def test_call_site_selector(client: httpx.Client) -> None:
    body = merge(stackTraceSelector={"callSite": [{"name": "main"}, {"name": "a"}]})
    got = ok(client, "SelectMergeStacktraces", body)
    assert got["flamegraph"]["names"] == ["total", "main", "a", "b"]
    assert got["flamegraph"]["total"] == "4"


def test_max_nodes_pipeline_truncates_then_renders(client: httpx.Client) -> None:
    # Nodes: main(10) a(4) b(3) c(2) d(4) → 5 nodes; maxNodes=2 gives minVal 4: a and d
    # stay, b folds into a's "other" and c into main's "other" (tree-bytes rule); the
    # flame graph is then rendered with maxNodes=2 again, folding both "other" nodes.
    got = ok(client, "SelectMergeStacktraces", merge(maxNodes=2))["flamegraph"]
    assert got["names"] == ["total", "main", "other", "d", "a"]
    assert got["levels"][2] == {
        "values": ["0", "4", "1", "4", "0", "4", "4", "3", "0", "2", "2", "2"]
    }
    tree = ok(client, "SelectMergeStacktraces", merge(maxNodes=2, format="PROFILE_FORMAT_TREE"))
    assert _decode_tree(base64.b64decode(tree["tree"])) == {
        ("main", "a"): 1,
        ("main", "a", "other"): 3,
        ("main", "d"): 4,
        ("main", "other"): 2,
    }


def _decode_tree(data: bytes) -> dict[tuple[str, ...], int]:
    """Self value per path of PROFILE_FORMAT_TREE bytes (spec §3.4), written independently."""
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

    out: dict[tuple[str, ...], int] = {}
    stack: list[tuple[str, ...]] = [()]
    first = True
    while stack and pos < len(data):
        parent = stack.pop()
        size = uvarint()
        name = data[pos : pos + size].decode()
        pos += size
        self_value = uvarint()
        children = uvarint()
        path = parent if first else (*parent, name)
        first = False
        if self_value:
            out[path] = out.get(path, 0) + self_value
        stack.extend([path] * children)
    return out


def test_tree_format(client: httpx.Client) -> None:
    got = ok(client, "SelectMergeStacktraces", merge(format="PROFILE_FORMAT_TREE"))
    assert _decode_tree(base64.b64decode(got["tree"])) == {
        ("main", "a", "b"): 3,
        ("main", "a"): 1,
        ("main", "c"): 2,
        ("main", "d"): 4,
    }
    by_number = ok(client, "SelectMergeStacktraces", merge(format=2))
    assert by_number == got


def test_pprof_format_and_select_merge_profile(client: httpx.Client) -> None:
    from watcher.pprof import parse_pprof

    got = ok(client, "SelectMergeStacktraces", merge(format="PROFILE_FORMAT_PPROF"))
    profile_json = got["pprof"]["profile"]
    assert profile_json["timeNanos"] == str(START * 1_000_000)
    response = client.post(
        Q + "SelectMergeProfile",
        json=merge(),
        headers={"Accept": "application/proto"},
    )
    assert response.status_code == 200
    raw = call(client, "SelectMergeProfile", merge()).json()
    assert raw["timeNanos"] == profile_json["timeNanos"]
    proto = client.post(
        Q + "SelectMergeProfile",
        content=_proto_request("SelectMergeProfile", merge()),
        headers={"Content-Type": "application/proto"},
    )
    assert proto.headers["content-type"] == "application/proto"
    profile = parse_pprof(proto.content)
    assert profile.sample_types == [("cpu", "nanoseconds")]
    assert profile.stacks(0) == {
        ("main", "a", "b"): 3,
        ("main", "a"): 1,
        ("main", "c"): 2,
        ("main", "d"): 4,
    }
    empty = ok(
        client, "SelectMergeStacktraces", merge(format=4, labelSelector='{service_name="x"}')
    )
    assert empty == {"pprof": {"profile": {}}}
    assert ok(client, "SelectMergeProfile", merge(labelSelector='{service_name="x"}')) == {}


def test_pprof_is_not_truncated_by_default(client: httpx.Client) -> None:
    from watcher.pprof import parse_pprof

    full = client.post(
        Q + "SelectMergeProfile",
        content=_proto_request("SelectMergeProfile", merge()),
        headers={"Content-Type": "application/proto"},
    )
    truncated = client.post(
        Q + "SelectMergeProfile",
        content=_proto_request("SelectMergeProfile", merge(maxNodes=2)),
        headers={"Content-Type": "application/proto"},
    )
    assert len(parse_pprof(full.content).stacks(0)) == 4
    assert parse_pprof(truncated.content).stacks(0) == {
        ("main", "a"): 1,
        ("main", "a", "other"): 3,
        ("main", "d"): 4,
        ("main", "other"): 2,
    }


def test_diff(client: httpx.Client) -> None:
    left = merge(labelSelector='{service_name="checkout"}')
    right = merge(labelSelector='{service_name="cart"}')
    got = ok(client, "Diff", {"left": left, "right": right})["flamegraph"]
    assert got["names"] == ["total", "main", "d", "c", "a", "b"]
    assert got["levels"][2] == {
        "values": ["0", "4", "1", "0", "0", "0", "4"]
        + ["0", "2", "2", "0", "0", "0", "3"]
        + ["0", "0", "0", "0", "4", "4", "2"]
    }
    assert (got["total"], got["maxSelf"], got["leftTicks"], got["rightTicks"]) == (
        "10",
        "4",
        "6",
        "4",
    )
    # n = max(left, right) is used for both trees and the diff.
    small = ok(client, "Diff", {"left": {**left, "maxNodes": 1}, "right": {**right, "maxNodes": 2}})
    assert "other" in small["flamegraph"]["names"]
    empty_left = ok(
        client, "Diff", {"left": merge(labelSelector='{service_name="x"}'), "right": right}
    )
    assert "leftTicks" not in empty_left["flamegraph"]


# ----------------------------------------------------------------------------- metadata


def test_profile_types_sorted_and_default_last_hour(sandbox: Sandbox, client: httpx.Client) -> None:
    got = ok(client, "ProfileTypes", {"start": START, "end": NOW})
    assert [t["ID"] for t in got["profileTypes"]] == [ALLOC, CPU]
    assert got["profileTypes"][1] == {
        "ID": CPU,
        "name": "process_cpu",
        "sampleType": "cpu",
        "sampleUnit": "nanoseconds",
        "periodType": "cpu",
        "periodUnit": "nanoseconds",
    }
    assert ok(client, "ProfileTypes", {}) == got  # 0/0 → the last hour
    sandbox.store.add(
        {"service_name": "old"},
        "wall:wall:nanoseconds:wall:nanoseconds",
        NOW - 3 * HOUR,
        {("x",): 1},
    )
    assert ok(client, "ProfileTypes", {}) == got
    assert ok(client, "ProfileTypes", {"start": NOW - 4 * HOUR, "end": NOW - 2 * HOUR}) == {
        "profileTypes": [
            {
                "ID": "wall:wall:nanoseconds:wall:nanoseconds",
                "name": "wall",
                "sampleType": "wall",
                "sampleUnit": "nanoseconds",
                "periodType": "wall",
                "periodUnit": "nanoseconds",
            }
        ]
    }
    assert_error(
        call(client, "ProfileTypes", {"start": START}),
        400,
        "invalid_argument",
        "missing time range in the query",
    )


def test_label_names_sorted_and_utf8_capability(client: httpx.Client) -> None:
    body = {"start": START, "end": NOW}
    names = ok(client, "LabelNames", body)["names"]
    assert names == sorted(names)
    assert "otel.scope.name" not in names
    assert {"__name__", "__profile_type__", "__service_name__", "service_name", "env"} <= set(names)
    utf8 = ok(client, "LabelNames", body, headers={"Accept": "*/*;allow-utf8-labelnames=true"})[
        "names"
    ]
    assert "otel.scope.name" in utf8 and utf8 == sorted(utf8)
    cart = ok(client, "LabelNames", {**body, "matchers": ['{service_name="cart"}']})["names"]
    assert "otel.scope.name" not in cart
    assert ok(client, "LabelNames", {**body, "matchers": ['{service_name="none"}']}) == {}


def test_label_values(client: httpx.Client) -> None:
    body = {"name": "service_name", "start": START, "end": NOW}
    assert ok(client, "LabelValues", body) == {"names": ["cart", "checkout"]}
    assert ok(client, "LabelValues", {**body, "matchers": ['{env="dev"}']}) == {"names": ["cart"]}
    assert ok(client, "LabelValues", {**body, "name": "nope"}) == {}
    # Matchers of several strings are AND-ed (v2 read path).
    both = {**body, "matchers": ['{env="prod"}', '{__name__="memory"}']}
    assert ok(client, "LabelValues", both) == {"names": ["checkout"]}


def test_series(client: httpx.Client) -> None:
    body = {"start": START, "end": NOW, "labelNames": ["service_name", "__profile_type__"]}
    got = ok(client, "Series", body)
    assert got == {
        "labelsSet": [
            {
                "labels": [
                    {"name": "__profile_type__", "value": ALLOC},
                    {"name": "service_name", "value": "checkout"},
                ]
            },
            {
                "labels": [
                    {"name": "__profile_type__", "value": CPU},
                    {"name": "service_name", "value": "cart"},
                ]
            },
            {
                "labels": [
                    {"name": "__profile_type__", "value": CPU},
                    {"name": "service_name", "value": "checkout"},
                ]
            },
        ]
    }
    full = ok(client, "Series", {"start": START, "end": NOW, "matchers": ['{service_name="cart"}']})
    (labels,) = full["labelsSet"]
    names = [pair["name"] for pair in labels["labels"]]
    assert names == sorted(names)
    assert {"__name__", "__type__", "__unit__", "__period_type__", "__period_unit__", "env"} <= set(
        names
    )
    assert ok(client, "Series", {"start": START, "end": NOW, "labelNames": ["nope"]}) == {}


def test_get_profile_stats() -> None:
    with Sandbox() as sb, httpx.Client(base_url=sb.url) as client:
        assert ok(client, "GetProfileStats", {}) == {}
        sb.store.add({}, CPU, 1_700_000_000_000, {("a",): 1})
        sb.store.add({}, CPU, 1_700_000_500_000, {("a",): 1})
        assert ok(client, "GetProfileStats", {}) == {
            "dataIngested": True,
            "oldestProfileTime": "1700000000000",
            "newestProfileTime": "1700000500000",
        }


# ----------------------------------------------------------------------------- SelectSeries


@pytest.fixture
def series_client() -> Iterator[httpx.Client]:
    store = ProfileStore()
    step = 60_000
    start = NOW - 10 * step
    # (timestamp, service, value): bucket at t sums (t - step, t].
    for ts, service, value in [
        (start - step, "a", 1000),  # exactly start - step: outside every bucket
        (start - step + 1, "a", 1),  # first point (t = start)
        (start, "a", 2),  # first point
        (start + 1, "a", 4),  # second point
        (start + 3 * step, "b", 8),  # point at start + 3 step
        (start + 3 * step, "a", 16),
        (start + 10 * step, "b", 32),  # = end: last point
        (start + 10 * step + 1, "b", 64),  # after end: dropped
    ]:
        store.add({"service_name": service, "pod": f"{service}-1"}, CPU, ts, {("f",): value})
    with Sandbox(store) as sb, httpx.Client(base_url=sb.url) as client:
        yield client


def test_select_series_bucketing(series_client: httpx.Client) -> None:
    step = 60_000
    start = NOW - 10 * step
    body = merge(start=start, end=NOW, step=60)
    got = ok(series_client, "SelectSeries", body)
    assert got == {
        "series": [
            {
                "points": [
                    {"value": 3, "timestamp": str(start)},
                    {"value": 4, "timestamp": str(start + step)},
                    {"value": 24, "timestamp": str(start + 3 * step)},
                    {"value": 32, "timestamp": str(NOW)},
                ]
            }
        ]
    }


def test_select_series_group_by_order_and_limit(series_client: httpx.Client) -> None:
    step = 60_000
    start = NOW - 10 * step
    body = merge(start=start, end=NOW, step=60, groupBy=["service_name"])
    got = ok(series_client, "SelectSeries", body)["series"]
    # Sorted by summed value, descending: b = 40, a = 23.
    assert [s["labels"] for s in got] == [
        [{"name": "service_name", "value": "b"}],
        [{"name": "service_name", "value": "a"}],
    ]
    assert got[0]["points"] == [
        {"value": 8, "timestamp": str(start + 3 * step)},
        {"value": 32, "timestamp": str(NOW)},
    ]
    limited = ok(series_client, "SelectSeries", {**body, "limit": 1})["series"]
    assert limited == got[:1]
    missing = ok(series_client, "SelectSeries", {**body, "groupBy": ["nope"]})["series"]
    assert len(missing) == 1 and "labels" not in missing[0]
    two = ok(series_client, "SelectSeries", {**body, "groupBy": ["service_name", "pod"]})["series"]
    assert two[0]["labels"] == [
        {"name": "pod", "value": "b-1"},
        {"name": "service_name", "value": "b"},
    ]


def test_select_series_fractional_and_whole_range_steps(series_client: httpx.Client) -> None:
    step = 60_000
    start = NOW - 10 * step
    # One step the size of the range: the first point covers (start - 600 s, start], which
    # now holds the profile at start - 60 s too.
    whole = ok(series_client, "SelectSeries", merge(start=start, end=NOW, step=600))["series"]
    assert whole == [
        {"points": [{"value": 1003, "timestamp": str(start)}, {"value": 60, "timestamp": str(NOW)}]}
    ]
    fine = ok(series_client, "SelectSeries", merge(start=start, end=start + 1, step=0.001))[
        "series"
    ]
    assert fine == [
        {
            "points": [
                {"value": 2, "timestamp": str(start)},
                {"value": 4, "timestamp": str(start + 1)},
            ]
        }
    ]


# ----------------------------------------------------------------------------- application/proto


def _proto_request(method: str, body: dict[str, Any]) -> bytes:
    from watcher.proto import from_json, message_for, to_binary

    return bytes(to_binary(from_json(body, message_for(method, True))))


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("ProfileTypes", {"start": START, "end": NOW}),
        ("LabelNames", {"start": START, "end": NOW}),
        ("LabelValues", {"name": "service_name", "start": START, "end": NOW}),
        ("Series", {"start": START, "end": NOW}),
        ("SelectMergeStacktraces", merge()),
        ("SelectMergeStacktraces", merge(format=2)),
        ("SelectMergeStacktraces", merge(format=4)),
        ("SelectSeries", merge(step=60, groupBy=["service_name"])),
        ("Diff", {"left": merge(), "right": merge(labelSelector='{env="dev"}')}),
        ("GetProfileStats", {}),
    ],
)
def test_application_proto_matches_json(
    client: httpx.Client, method: str, body: dict[str, Any]
) -> None:
    from watcher.proto import from_binary, message_for, to_json_dict

    response = client.post(
        Q + method,
        content=_proto_request(method, body),
        headers={"Content-Type": "application/proto", "Accept-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/proto"
    decoded = to_json_dict(from_binary(response.content, message_for(method, False)))
    assert decoded == ok(client, method, body)


def test_application_proto_errors_are_json(client: httpx.Client) -> None:
    response = client.post(
        Q + "LabelValues",
        content=_proto_request("LabelValues", {"start": START, "end": NOW}),
        headers={"Content-Type": "application/proto"},
    )
    assert_error(response, 400, "invalid_argument", "name is required")
    garbage = client.post(
        Q + "LabelValues", content=b"\xff\xff", headers={"Content-Type": "application/proto"}
    )
    assert garbage.status_code == 400
    assert garbage.json()["code"] == "invalid_argument"


def test_request_accepts_proto_names_strings_and_enum_numbers(client: httpx.Client) -> None:
    body = {
        "profile_typeID": CPU,
        "label_selector": "{}",
        "start": str(START),
        "end": str(NOW),
        "max_nodes": "0",
        "format": 1,
        "unknownField": True,
    }
    assert ok(client, "SelectMergeStacktraces", body)["flamegraph"]["total"] == "10"


# ----------------------------------------------------------------------------- foreground


@contextmanager
def _sandbox_process(*args: str, ignore_sigint: bool = False) -> Iterator[Any]:
    """``python -m watcher.sandbox --port 0 ARGS`` with its output on a pipe; killed and
    closed on the way out if still running."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher.sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        if ignore_sigint
        else None,
    )
    try:
        assert proc.stdout is not None
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_serve_in_the_foreground_with_data(testdata: Any, tmp_path: Any) -> None:
    """``python -m watcher.sandbox`` (what ``pyrowatch sandbox`` runs): load files, print the
    URL, serve until Ctrl-C."""
    folded = tmp_path / "checkout.folded"
    folded.write_text("main;handle;work 7\nmain;idle 3\n")
    pprof = testdata / "pkg/og/convert/pprof/testdata/cpu.pb.gz"
    with _sandbox_process("--data", str(pprof), str(folded)) as proc:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "listening on" in line:
                break
        url = lines[-1].split("listening on ", 1)[1].split()[0]
        assert lines[0].endswith("cpu.pb.gz: 2 profiles\n")
        now = int(time.time() * 1000)
        with httpx.Client(base_url=url, timeout=30) as client:
            values = ok(
                client, "LabelValues", {"name": "service_name", "start": now - HOUR, "end": now}
            )
            assert values == {"names": ["checkout", "cpu"]}
            got = ok(
                client,
                "SelectMergeStacktraces",
                {**merge(start=now - HOUR, end=now), "labelSelector": '{service_name="checkout"}'},
            )
            assert "work" in got["flamegraph"]["names"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serving_stops_cleanly_on_a_signal_even_with_sigint_ignored(signum: int) -> None:
    """A shell starts a background command with SIGINT ignored, and ``docker stop`` sends
    SIGTERM: either way the sandbox stops serving and exits 0."""
    with _sandbox_process(ignore_sigint=True) as proc:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == 0
