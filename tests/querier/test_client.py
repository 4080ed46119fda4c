"""QuerierClient over real HTTP on 127.0.0.1: request bodies, headers, decoding, errors, retries."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from support.recording_server import RecordingServer

from watcher import __version__
from watcher.errors import (
    DecodeError,
    QuerierError,
    QuerierResponseError,
    QuerierUnavailable,
    ResponseTooLarge,
)
from watcher.flamegraph import (
    Tree,
    encode_diff,
    encode_flamegraph,
    encode_tree_bytes,
    to_connect_json,
)
from watcher.querier import QuerierClient, RetryPolicy, StacktraceQuery
from watcher.querier._wire import encode_select_merge_profile_request, profile_json_to_pprof
from watcher.querier.client import parse_retry_after, status_code
from watcher.times import TimeRange

from ._profile import PROFILE_JSON
from .conftest import Recorder

RNG = TimeRange(datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 11, tzinfo=UTC))
START, END = "1714557600000", "1714561200000"
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
SERVICE = "/querier.v1.QuerierService/"
STACKS = [(("main", "a", "b"), 3), (("main", "a"), 1), (("main", "c"), 2)]

MakeClient = Callable[..., QuerierClient]


# --------------------------------------------------------------------------- headers and bodies


def test_every_request_carries_the_connect_headers(
    server: RecordingServer, make_client: MakeClient
) -> None:
    """POST, JSON, Connect-Protocol-Version, the utf8 capability, gzip accepted, our UA."""
    server.add(200, {"names": ["service_name"]})
    make_client().label_names(RNG)
    request = server.requests[0]
    assert request.method == "POST"
    assert request.path == SERVICE + "LabelNames"
    assert request.header("Content-Type") == "application/json"
    assert request.header("Connect-Protocol-Version") == "1"
    assert request.header("Accept") == "*/*;allow-utf8-labelnames=true"
    assert request.header("Accept-Encoding") == "gzip"
    assert request.header("User-Agent") == f"pyrowatch/{__version__}"
    assert request.header("Authorization") is None
    assert request.header("X-Scope-OrgID") is None
    assert request.header("Content-Encoding") is None


def test_base_url_path_is_kept(server: RecordingServer, make_client: MakeClient) -> None:
    """A base URL with a path (Grafana's data-source proxy) prefixes the method path."""
    make_client(url=server.url + "/api/datasources/proxy/uid/abc/").get_profile_stats()
    assert server.requests[0].path == "/api/datasources/proxy/uid/abc" + SERVICE + "GetProfileStats"


def test_profile_types(server: RecordingServer, make_client: MakeClient) -> None:
    """ProfileTypes sends the range as int64 strings and returns typed entries."""
    server.add(
        200,
        {
            "profileTypes": [
                {
                    "ID": CPU,
                    "name": "process_cpu",
                    "sampleType": "cpu",
                    "sampleUnit": "nanoseconds",
                    "periodType": "cpu",
                    "periodUnit": "nanoseconds",
                },
                {"ID": "wall:wall:microseconds:wall:microseconds"},
            ]
        },
    )
    client = make_client()
    types = client.profile_types(RNG)
    assert server.requests[0].body == f'{{"start":"{START}","end":"{END}"}}'.encode()
    assert [t.id for t in types] == [CPU, "wall:wall:microseconds:wall:microseconds"]
    assert (types[0].name, types[0].sample_unit) == ("process_cpu", "nanoseconds")
    assert (types[1].name, types[1].period_unit) == ("wall", "microseconds")
    client.profile_types()
    assert server.requests[1].body == b"{}"


def test_label_names_and_values(server: RecordingServer, make_client: MakeClient) -> None:
    """LabelNames/LabelValues send matchers then the range; both answer in ``names``."""
    server.add(200, {"names": ["__name__", "otel.scope.name", "service_name"]})
    server.add(200, {"names": ["api", "checkout"]})
    server.add(200, {})
    client = make_client()
    assert client.label_names(RNG, ['{service_name="checkout"}']) == [
        "__name__",
        "otel.scope.name",
        "service_name",
    ]
    assert client.label_values("service_name", RNG, '{namespace="prod"}') == ["api", "checkout"]
    assert client.label_names(RNG) == []
    assert [r.json() for r in server.requests] == [
        {"matchers": ['{service_name="checkout"}'], "start": START, "end": END},
        {"name": "service_name", "matchers": ['{namespace="prod"}'], "start": START, "end": END},
        {"start": START, "end": END},
    ]


def test_series(server: RecordingServer, make_client: MakeClient) -> None:
    """Series projects to label names and returns one dict per label set."""
    server.add(
        200,
        {
            "labelsSet": [
                {
                    "labels": [
                        {"name": "__profile_type__", "value": CPU},
                        {"name": "service_name", "value": "a"},
                    ]
                },
                {"labels": [{"name": "service_name", "value": "b"}]},
            ]
        },
    )
    result = make_client().series(RNG, ["{}"], ["service_name", "__profile_type__"])
    assert result == [{"__profile_type__": CPU, "service_name": "a"}, {"service_name": "b"}]
    assert server.requests[0].json() == {
        "matchers": ["{}"],
        "labelNames": ["service_name", "__profile_type__"],
        "start": START,
        "end": END,
    }


def test_select_merge_stacktraces_flamegraph(
    server: RecordingServer, make_client: MakeClient
) -> None:
    """The default format sends no ``format`` and decodes the flame graph."""
    tree = Tree.from_stacks(STACKS)
    server.add(200, {"flamegraph": to_connect_json(encode_flamegraph(tree))})
    graph = make_client().select_merge_stacktraces(
        "cpu", '{service_name="x"}', RNG, max_nodes=16384
    )
    assert server.requests[0].path == SERVICE + "SelectMergeStacktraces"
    assert (
        server.requests[0].body
        == (
            f'{{"profileTypeID":"{CPU}","labelSelector":"{{service_name=\\"x\\"}}",'
            f'"start":"{START}","end":"{END}","maxNodes":"16384"}}'
        ).encode()
    )
    assert graph.total == 6
    assert graph.to_tree() == tree


def test_select_merge_stacktraces_tree(server: RecordingServer, make_client: MakeClient) -> None:
    """TREE is requested by name; the base64 tree bytes are decoded to a Tree."""
    tree = Tree.from_stacks(STACKS)
    server.add(200, {"tree": base64.b64encode(encode_tree_bytes(tree)).decode()})
    server.add(200, {})
    client = make_client()
    assert client.select_merge_stacktraces(CPU, None, RNG, fmt="tree") == tree
    assert (
        client.select_merge_stacktraces(CPU, None, RNG, None, "tree", call_site=["main"]) == Tree()
    )
    assert server.requests[0].json() == {
        "profileTypeID": CPU,
        "labelSelector": "{}",
        "start": START,
        "end": END,
        "format": "PROFILE_FORMAT_TREE",
    }
    assert server.requests[1].json()["stackTraceSelector"] == {"callSite": [{"name": "main"}]}


def test_select_merge_stacktraces_pprof(server: RecordingServer, make_client: MakeClient) -> None:
    """PPROF is sent as the number 4; the JSON profile comes back as pprof bytes."""
    server.add(200, {"pprof": {"profile": PROFILE_JSON}})
    result = make_client().select_merge_stacktraces("cpu", "{}", RNG, fmt="pprof")
    assert server.requests[0].json()["format"] == 4
    assert b'"format":4' in server.requests[0].body
    assert result == profile_json_to_pprof(PROFILE_JSON)


def test_pprof_falls_back_to_select_merge_profile_on_old_servers(
    server: RecordingServer, make_client: MakeClient
) -> None:
    """A server that answers a flame graph to PPROF is asked SelectMergeProfile instead."""
    server.add(
        200, {"flamegraph": {"names": ["total"], "levels": [{"values": ["0", "0", "0", "0"]}]}}
    )
    server.add(200, b"\x0a\x04\x08\x01\x10\x02", headers={"Content-Type": "application/proto"})
    result = make_client().select_merge_stacktraces("cpu", None, RNG, 100, "pprof")
    assert result == b"\x0a\x04\x08\x01\x10\x02"
    assert [r.path for r in server.requests] == [
        SERVICE + "SelectMergeStacktraces",
        SERVICE + "SelectMergeProfile",
    ]


def test_select_merge_profile_sends_proto(server: RecordingServer, make_client: MakeClient) -> None:
    """SelectMergeProfile is application/proto both ways; the body is returned untouched."""
    pprof = profile_json_to_pprof(PROFILE_JSON)
    server.add(200, pprof, headers={"Content-Type": "application/proto"}, gzip=True)
    result = make_client().select_merge_profile(
        "cpu", '{a="b"}', RNG, max_nodes=0, call_site=["main"]
    )
    request = server.requests[0]
    assert request.header("Content-Type") == "application/proto"
    assert request.body == encode_select_merge_profile_request(
        CPU, '{a="b"}', int(START), int(END), 0, ["main"]
    )
    assert result == pprof


def test_select_series(server: RecordingServer, make_client: MakeClient) -> None:
    """SelectSeries sends step in seconds, groupBy, limit as a string; points are typed."""
    server.add(
        200,
        {
            "series": [
                {
                    "labels": [{"name": "service_name", "value": "a"}],
                    "points": [
                        {"value": 270000000, "timestamp": "1714558200000"},
                        {
                            "value": 1.5,
                            "timestamp": "1714558800000",
                            "exemplars": [
                                {"timestamp": "1714558799000", "profileId": "p", "value": "7"}
                            ],
                        },
                    ],
                },
                {"points": [{"timestamp": "1714558200000"}]},
            ]
        },
    )
    series = make_client().select_series(
        "cpu", "{}", RNG, timedelta(minutes=10), ["service_name"], 5, aggregation="sum"
    )
    assert server.requests[0].json() == {
        "profileTypeID": CPU,
        "labelSelector": "{}",
        "start": START,
        "end": END,
        "groupBy": ["service_name"],
        "step": 600.0,
        "aggregation": "TIME_SERIES_AGGREGATION_TYPE_SUM",
        "limit": "5",
    }
    assert series[0].labels == {"service_name": "a"}
    assert [(p.timestamp_ms, p.value) for p in series[0].points] == [
        (1714558200000, 270000000.0),
        (1714558800000, 1.5),
    ]
    assert series[0].points[1].exemplars[0].profile_id == "p"
    assert series[0].points[1].exemplars[0].value == 7
    assert series[0].points[0].timestamp == datetime(2024, 5, 1, 10, 10, tzinfo=UTC)
    assert series[1].labels == {} and series[1].points[0].value == 0.0


def test_select_series_default_step_is_the_whole_range(
    server: RecordingServer, make_client: MakeClient
) -> None:
    """Without a step, one bucket covers the range."""
    make_client().select_series("cpu", None, RNG)
    assert server.requests[0].json()["step"] == 3600.0
    with pytest.raises(QuerierError, match="at least 1ms"):
        make_client().select_series("cpu", None, RNG, 0.0001)


def test_diff(server: RecordingServer, make_client: MakeClient) -> None:
    """Diff sends both sides as SelectMergeStacktraces requests and decodes the diff."""
    left = Tree.from_stacks([(("main", "a"), 2)])
    right = Tree.from_stacks([(("main", "a"), 3), (("main", "b"), 1)])
    server.add(200, {"flamegraph": to_connect_json(encode_diff(left, right, 0))})
    earlier = RNG.shifted(timedelta(days=-1))
    diff = make_client().diff(
        StacktraceQuery("cpu", '{service_name="x"}', earlier, max_nodes=100),
        StacktraceQuery(CPU, '{service_name="x"}', RNG),
    )
    assert server.requests[0].json() == {
        "left": {
            "profileTypeID": CPU,
            "labelSelector": '{service_name="x"}',
            "start": str(int(START) - 86400000),
            "end": str(int(END) - 86400000),
            "maxNodes": "100",
        },
        "right": {
            "profileTypeID": CPU,
            "labelSelector": '{service_name="x"}',
            "start": START,
            "end": END,
        },
    }
    assert diff.to_trees() == (left, right)


def test_get_profile_stats(server: RecordingServer, make_client: MakeClient) -> None:
    """GetProfileStats sends ``{}``; int64 sentinels mean no data."""
    server.add(
        200,
        {
            "dataIngested": True,
            "oldestProfileTime": "1714557600000",
            "newestProfileTime": "1714561200000",
        },
    )
    server.add(
        200,
        {"oldestProfileTime": "9223372036854775807", "newestProfileTime": "-9223372036854775808"},
    )
    client = make_client()
    stats = client.get_profile_stats()
    assert server.requests[0].body == b"{}"
    assert stats.data_ingested is True
    assert stats.oldest_profile_time == datetime(2024, 5, 1, 10, tzinfo=UTC)
    empty = client.get_profile_stats()
    assert (empty.data_ingested, empty.oldest_profile_ms, empty.newest_profile_ms) == (
        False,
        None,
        None,
    )


def test_raw_call(server: RecordingServer, make_client: MakeClient) -> None:
    """call() posts any method's JSON and returns the parsed answer."""
    server.add(200, {"queryScopes": []})
    client = make_client()
    assert client.call("AnalyzeQuery", {"query": "{}", "start": START}) == {"queryScopes": []}
    assert server.requests[0].path == SERVICE + "AnalyzeQuery"
    assert server.requests[0].body == b'{"query":"{}","start":"1714557600000"}'
    client.call("types.v1.OtherService/Thing")
    assert server.requests[1].path == "/types.v1.OtherService/Thing"
    assert server.requests[1].body == b"{}"
    client.call("LabelNames", '{ "start": 1714557600000 ,"end":"1"}')
    assert server.requests[2].body == b'{ "start": 1714557600000 ,"end":"1"}'
    client.call("LabelNames", b"{}")
    assert server.requests[3].body == b"{}"
    with pytest.raises(QuerierError, match="invalid method name"):
        client.call("../etc/passwd")


# --------------------------------------------------------------------------- gzip


def test_large_requests_are_gzipped(server: RecordingServer, make_client: MakeClient) -> None:
    """Bodies over the threshold go out gzipped with Content-Encoding: gzip."""
    matchers = [f'{{service_name="svc-{i}"}}' for i in range(100)]
    client = make_client(gzip_threshold=256)
    client.label_names(RNG, matchers)
    request = server.requests[0]
    assert request.header("Content-Encoding") == "gzip"
    assert request.raw_body[:2] == b"\x1f\x8b"
    assert len(request.raw_body) < len(request.body)
    assert request.json() == {"matchers": matchers, "start": START, "end": END}
    client.label_names(RNG)
    assert server.requests[1].header("Content-Encoding") is None


def test_gzipped_and_chunked_responses_are_decoded(
    server: RecordingServer, make_client: MakeClient
) -> None:
    """A gzip, chunked answer decodes like a plain one."""
    names = [f"label_{i}" for i in range(2000)]
    server.add(200, {"names": names}, gzip=True, chunked=True)
    assert make_client().label_names(RNG) == names


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (
            400,
            {"code": "invalid_argument", "message": "missing time range in the query"},
            "invalid_argument",
            "missing time range in the query",
        ),
        (401, {"code": "unauthenticated", "message": "no org id"}, "unauthenticated", "no org id"),
        (404, b"404 page not found\n", "not_found", "404 page not found"),
        (403, b"<html><body>Forbidden</body></html>", "permission_denied", "HTML page"),
        (500, b"", "unknown", "Internal Server Error"),
        (
            501,
            {"code": "unimplemented", "message": "dot format is only supported"},
            "unimplemented",
            "dot format",
        ),
        (418, b"teapot", "unknown", "teapot"),
    ],
)
def test_error_mapping(
    server: RecordingServer,
    make_client: MakeClient,
    status: int,
    body: object,
    code: str,
    message: str,
) -> None:
    """Connect error bodies give their code; other bodies get one from the HTTP status."""
    server.add(status, body)
    with pytest.raises(QuerierResponseError) as info:
        make_client().label_names(RNG)
    err = info.value
    assert (err.code, err.status, err.method) == (code, status, "LabelNames")
    assert message in err.message
    assert str(err).startswith(f"LabelNames: server answered {status} {code}: ")


def test_redirects_are_not_followed(server: RecordingServer, make_client: MakeClient) -> None:
    """A redirect (a login page) is an error naming where it led, without its query."""
    server.add(302, b"", headers={"Location": "https://login.example.com/auth?token=abc123"})
    with pytest.raises(QuerierResponseError) as info:
        make_client().label_names(RNG)
    assert "redirected to https://login.example.com/auth;" in info.value.message
    assert "abc123" not in str(info.value)
    assert len(server.requests) == 1


def test_error_messages_never_echo_secrets(
    server: RecordingServer, make_client: MakeClient
) -> None:
    """A server echoing the token in its error body has it redacted."""
    server.add(401, b"bad token tok-s3cr3t-123")
    with pytest.raises(QuerierResponseError) as info:
        make_client(token="tok-s3cr3t-123").label_names(RNG)
    assert "tok-s3cr3t-123" not in str(info.value)
    assert "[REDACTED]" in info.value.message


def test_non_json_success_is_a_decode_error(
    server: RecordingServer, make_client: MakeClient
) -> None:
    """A 200 that is not JSON (an HTML portal) is a DecodeError quoting the start."""
    server.add(200, b"<html>login</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(
        DecodeError, match=r"LabelNames: the response is not JSON: '<html>login</html>'"
    ):
        make_client().label_names(RNG)


def test_wrong_shapes_are_decode_errors(server: RecordingServer, make_client: MakeClient) -> None:
    """Valid JSON of the wrong shape is a DecodeError, never a TypeError."""
    server.add(200, [1, 2])
    server.add(200, {"names": "x"})
    server.add(200, {"tree": "!!!"})
    client = make_client()
    with pytest.raises(DecodeError, match="expected a JSON object"):
        client.label_names(RNG)
    with pytest.raises(DecodeError, match="names is not a list"):
        client.label_names(RNG)
    with pytest.raises(DecodeError, match="not valid base64"):
        client.select_merge_stacktraces("cpu", None, RNG, fmt="tree")


def test_oversize_response_is_refused(server: RecordingServer, make_client: MakeClient) -> None:
    """Beyond max_response_bytes the body is refused, with or without Content-Length."""
    big = {"names": ["x" * 100] * 100}
    server.add(200, big)
    server.add(200, big, chunked=True)
    client = make_client(max_response_bytes=4096)
    for _ in range(2):
        with pytest.raises(
            ResponseTooLarge, match=r"LabelNames: the response is larger than 4096 bytes"
        ):
            client.label_names(RNG)


def test_gzip_bomb_is_refused_after_decompression(
    server: RecordingServer, make_client: MakeClient
) -> None:
    """The limit counts decompressed bytes: a small gzip of a huge body is refused."""
    body = b'{"names":["' + b"a" * 2_000_000 + b'"]}'
    server.add(200, body, headers={"Content-Type": "application/json"}, gzip=True, chunked=True)
    with pytest.raises(ResponseTooLarge):
        make_client(max_response_bytes=100_000).label_names(RNG)


# --------------------------------------------------------------------------- retries


def test_retry_after_is_honoured(
    server: RecordingServer, make_client: MakeClient, recorder: Recorder
) -> None:
    """503 with Retry-After waits that long (via the injected sleep), then succeeds."""
    server.add(503, {"code": "unavailable", "message": "busy"}, headers={"Retry-After": "7"})
    server.add(200, {"names": ["a"]})
    assert make_client().label_names(RNG) == ["a"]
    assert recorder.sleeps == [7.0]
    event = recorder.events[0]
    assert (event.method, event.attempt, event.attempts, event.delay, event.status) == (
        "LabelNames",
        1,
        3,
        7.0,
        503,
    )
    assert str(event) == "LabelNames: 503 unavailable; attempt 2 of 3 in 7.0s"
    assert server.requests[0].body == server.requests[1].body


def test_retry_after_is_capped(
    server: RecordingServer, make_client: MakeClient, recorder: Recorder
) -> None:
    """A huge Retry-After is capped at max_retry_after."""
    server.add(429, {"code": "resource_exhausted"}, headers={"Retry-After": "86400"})
    server.add(200, {})
    make_client(retry=RetryPolicy(max_retry_after=30, jitter=0)).label_names(RNG)
    assert recorder.sleeps == [30.0]


def test_backoff_is_exponential_and_bounded(
    server: RecordingServer, make_client: MakeClient, recorder: Recorder
) -> None:
    """Without Retry-After the waits double; after the last attempt the error is raised."""
    for status in (502, 504, 503, 503):
        server.add(status, b"bad gateway")
    client = make_client(retry=RetryPolicy(attempts=4, backoff=1.0, max_backoff=3.0, jitter=0))
    with pytest.raises(QuerierResponseError) as info:
        client.label_names(RNG)
    assert recorder.sleeps == [1.0, 2.0, 3.0]
    assert (info.value.status, info.value.code) == (503, "unavailable")
    assert len(server.requests) == 4


def test_jitter_stays_within_bounds() -> None:
    """Jitter takes at most ``jitter`` of the backoff off, never adds."""
    policy = RetryPolicy(backoff=2.0, jitter=0.5)
    assert policy.delay(2, rand=lambda: 0.0) == 4.0
    assert policy.delay(2, rand=lambda: 1.0) == 2.0
    assert policy.delay(1, retry_after=3.0, rand=lambda: 1.0) == 3.0


def test_other_errors_are_not_retried(
    server: RecordingServer, make_client: MakeClient, recorder: Recorder
) -> None:
    """400 and 500 are final at once."""
    server.add(500, {"code": "internal", "message": "boom"})
    with pytest.raises(QuerierResponseError):
        make_client().label_names(RNG)
    assert recorder.sleeps == [] and len(server.requests) == 1


def test_parse_retry_after() -> None:
    """Delta-seconds and HTTP dates; junk is ignored."""
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert status_code(503) == "unavailable" and status_code(418) == "unknown"


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_unavailable_after_retries(
    make_client: MakeClient, recorder: Recorder, closed_port: int
) -> None:
    """Refused connections are retried, then QuerierUnavailable names the URL."""
    client = make_client(url=f"http://127.0.0.1:{closed_port}", token="tok")
    with pytest.raises(QuerierUnavailable) as info:
        client.label_names(RNG)
    message = str(info.value)
    assert message.startswith(
        f"LabelNames: cannot connect to http://127.0.0.1:{closed_port}{SERVICE}LabelNames"
    )
    assert "(after 3 attempts)" in message
    assert info.value.timeout is False
    assert len(recorder.sleeps) == 2
    assert [e.attempt for e in recorder.events] == [1, 2]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A socket that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_read_timeout_is_unavailable_and_not_retried(
    make_client: MakeClient, recorder: Recorder, silent_server: str
) -> None:
    """A server that never answers gives QuerierUnavailable(timeout=True) after one try."""
    with pytest.raises(QuerierUnavailable) as info:
        make_client(url=silent_server, timeout=0.05).label_names(RNG)
    assert info.value.timeout is True
    assert "no answer from" in str(info.value)
    assert recorder.sleeps == []


def test_context_manager_closes(server: RecordingServer) -> None:
    """The client is a context manager; a plain URL is accepted as the deployment."""
    with QuerierClient(server.url) as client:
        client.get_profile_stats()
        assert "QuerierClient('default'" in repr(client)
    assert len(server.requests) == 1


def test_unknown_format_is_refused(make_client: MakeClient) -> None:
    """Only flamegraph, tree and pprof are formats."""
    with pytest.raises(QuerierError, match="unknown format 'dot'"):
        make_client().select_merge_stacktraces("cpu", None, RNG, fmt="dot")  # type: ignore[call-overload]


def test_request_bodies_are_compact_json(server: RecordingServer, make_client: MakeClient) -> None:
    """Bodies are compact UTF-8 JSON, non-ASCII kept as is."""
    make_client().label_values("service_name", RNG, ['{team="é"}'])
    assert '"{team=\\"é\\"}"' in server.requests[0].body.decode()
    assert json.loads(server.requests[0].body)["matchers"] == ['{team="é"}']


def test_tls_failures_are_not_retried(
    server: RecordingServer, make_client: MakeClient, recorder: Recorder
) -> None:
    """TLS against a plain-HTTP port fails at once, with a hint about the scheme and CA."""
    client = make_client(url=server.url.replace("http://", "https://"))
    with pytest.raises(QuerierUnavailable, match="TLS handshake with https://127.0.0.1") as info:
        client.label_names(RNG)
    assert "ca_file/verify_tls" in str(info.value)
    assert recorder.sleeps == []
