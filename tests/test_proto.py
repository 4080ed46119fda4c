"""Protobuf messages built from the project's own descriptors: numbers, JSON names, encodings."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from watcher.errors import DecodeError, WatcherError
from watcher.proto import (
    QUERIER_METHODS,
    from_binary,
    from_json,
    message_for,
    messages,
    to_binary,
    to_json,
    to_json_dict,
)


def _field(full_name: str, field_name: str) -> Any:
    return messages().get(full_name).DESCRIPTOR.fields_by_name[field_name]


@pytest.mark.parametrize(
    ("message", "field", "number", "json_name"),
    [
        ("querier.v1.SelectMergeStacktracesRequest", "profile_typeID", 1, "profileTypeID"),
        ("querier.v1.SelectMergeStacktracesRequest", "label_selector", 2, "labelSelector"),
        ("querier.v1.SelectMergeStacktracesRequest", "max_nodes", 5, "maxNodes"),
        (
            "querier.v1.SelectMergeStacktracesRequest",
            "stack_trace_selector",
            7,
            "stackTraceSelector",
        ),
        ("querier.v1.SelectMergeStacktracesRequest", "span_selector", 11, "spanSelector"),
        ("querier.v1.SelectMergeStacktracesResponse", "tree", 2, "tree"),
        ("querier.v1.SelectMergeStacktracesResponse", "pprof", 5, "pprof"),
        ("querier.v1.FlameGraph", "max_self", 4, "maxSelf"),
        ("querier.v1.FlameGraphDiff", "leftTicks", 5, "leftTicks"),
        ("querier.v1.FlameGraphDiff", "rightTicks", 6, "rightTicks"),
        ("querier.v1.SeriesResponse", "labels_set", 2, "labelsSet"),
        ("querier.v1.SelectSeriesRequest", "exemplar_type", 10, "exemplarType"),
        ("querier.v1.SelectMergeProfileRequest", "trace_id_selector", 8, "traceIdSelector"),
        ("querier.v1.SelectMergeSpanProfileRequest", "span_selector", 3, "spanSelector"),
        ("querier.v1.AnalyzeQueryRequest", "start", 2, "start"),
        ("querier.v1.QueryImpact", "total_bytes_in_time_range", 2, "totalBytesInTimeRange"),
        ("types.v1.ProfileType", "ID", 1, "ID"),
        ("types.v1.ProfileType", "sample_type", 4, "sampleType"),
        ("types.v1.HeatmapSlot", "y_min", 2, "yMin"),
        ("types.v1.GetProfileStatsResponse", "oldest_profile_time", 2, "oldestProfileTime"),
        ("types.v1.Exemplar", "trace_id", 6, "traceId"),
        ("push.v1.RawSample", "raw_profile", 1, "rawProfile"),
        ("push.v1.RawSample", "ID", 2, "ID"),
        ("push.v1.RawProfileSeries", "annotations", 3, "annotations"),
        ("google.v1.Profile", "string_table", 6, "stringTable"),
        ("google.v1.Profile", "default_sample_type", 14, "defaultSampleType"),
        ("google.v1.Sample", "location_id", 1, "locationId"),
        ("google.v1.Mapping", "has_inline_frames", 10, "hasInlineFrames"),
        ("google.v1.Location", "is_folded", 5, "isFolded"),
    ],
)
def test_field_numbers_and_json_names_follow_the_spec(
    message: str, field: str, number: int, json_name: str
) -> None:
    """Every listed field has the spec's number and protojson name."""
    descriptor = _field(message, field)
    assert descriptor.number == number
    assert descriptor.json_name == json_name


def test_pprof_profile_fields_are_numbered_like_profile_proto() -> None:
    """google.v1.Profile has fields 1..14 in pprof order."""
    names = [
        f.name for f in sorted(messages().google.Profile.DESCRIPTOR.fields, key=lambda f: f.number)
    ]
    assert names == [
        "sample_type", "sample", "mapping", "location", "function", "string_table",
        "drop_frames", "keep_frames", "time_nanos", "duration_nanos", "period_type", "period",
        "comment", "default_sample_type",
    ]  # fmt: skip


def test_messages_is_built_once_and_shared_across_threads() -> None:
    """Concurrent first calls all get the same cached set of classes."""
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(messages())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(m is messages() for m in seen)


def test_importing_the_package_does_not_import_protobuf() -> None:
    """The descriptors are built lazily so CLI start-up stays light."""
    code = "import sys, watcher.proto; print('google.protobuf' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_short_names_resolve_unless_ambiguous() -> None:
    """``messages().PushRequest`` works; ``Location`` must be asked of its package."""
    m = messages()
    assert m.PushRequest is m.push.PushRequest is m.get("push.v1.PushRequest")
    assert m.types.Location is not m.google.Location
    with pytest.raises(AttributeError, match="more than one package"):
        _ = m.Location
    with pytest.raises(AttributeError):
        _ = m.querier.NoSuchMessage
    with pytest.raises(WatcherError):
        m.get("querier.v1.NoSuchMessage")


def test_enum_values_follow_the_spec() -> None:
    """Enum numbers match the spec, e.g. PROFILE_FORMAT_PPROF = 4."""
    m = messages()
    assert m.enum_values("querier.v1.ProfileFormat") == {
        "PROFILE_FORMAT_UNSPECIFIED": 0,
        "PROFILE_FORMAT_FLAMEGRAPH": 1,
        "PROFILE_FORMAT_TREE": 2,
        "PROFILE_FORMAT_DOT": 3,
        "PROFILE_FORMAT_PPROF": 4,
    }
    assert m.enum_values("types.v1.ExemplarType")["EXEMPLAR_TYPE_INDIVIDUAL"] == 2
    assert m.enum_values("querier.v1.AsyncQueryStatus")["ASYNC_QUERY_STATUS_FAILURE"] == 3
    with pytest.raises(WatcherError):
        m.enum_values("querier.v1.Nope")


@pytest.mark.parametrize("method", sorted(QUERIER_METHODS))
def test_message_for_resolves_every_querier_method(method: str) -> None:
    """Each querier method maps to the request and response classes the spec names."""
    request_name, response_name = QUERIER_METHODS[method]
    assert message_for(method, True).DESCRIPTOR.full_name == request_name
    assert message_for(method, False).DESCRIPTOR.full_name == response_name
    path = f"/querier.v1.QuerierService/{method}"
    assert message_for(path, True) is message_for(method, True)


def test_message_for_knows_push_and_rejects_unknown_methods() -> None:
    """Push resolves by name or path; unknown names fail with the list of methods."""
    m = messages()
    assert message_for("/push.v1.PusherService/Push", True) is m.push.PushRequest
    assert message_for("Push", False) is m.push.PushResponse
    assert message_for("SelectMergeProfile", False) is m.google.Profile
    with pytest.raises(WatcherError, match="SelectMergeStacktraces"):
        message_for("SelectEverything", True)
    with pytest.raises(WatcherError):
        message_for("/other.v1.Service/Push", True)


def test_json_writes_int64_as_strings_and_omits_zero_values() -> None:
    """protojson output: int64 strings, enum names, no zero fields, doubles as numbers."""
    m = messages()
    fg = m.querier.FlameGraph(names=["total", "a"], total=11100000000, max_self=0)
    fg.levels.add(values=[0, 11100000000, 0, 0])
    assert to_json_dict(fg) == {
        "names": ["total", "a"],
        "levels": [{"values": ["0", "11100000000", "0", "0"]}],
        "total": "11100000000",
    }
    assert to_json_dict(m.types.LabelNamesResponse()) == {}
    request = m.querier.SelectMergeStacktracesRequest(
        profile_typeID="process_cpu:cpu:nanoseconds:cpu:nanoseconds",
        label_selector="{}",
        start=1,
        end=2,
        format=m.enum_values("querier.v1.ProfileFormat")["PROFILE_FORMAT_TREE"],
    )
    assert to_json_dict(request) == {
        "profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
        "labelSelector": "{}",
        "start": "1",
        "end": "2",
        "format": "PROFILE_FORMAT_TREE",
    }
    point = m.types.Point(value=2.5, timestamp=1779729327372)
    assert to_json_dict(point) == {"value": 2.5, "timestamp": "1779729327372"}
    pgo = m.types.GoPGO(keep_locations=5, aggregate_callees=True)
    assert to_json_dict(pgo) == {"keepLocations": 5, "aggregateCallees": True}
    assert json.loads(to_json(fg)) == to_json_dict(fg)


def test_optional_fields_keep_presence() -> None:
    """``maxNodes`` set to 0 is written (it has presence); unset it is not."""
    cls = messages().querier.SelectMergeStacktracesRequest
    assert "maxNodes" not in to_json_dict(cls())
    explicit = cls(max_nodes=0)
    assert explicit.HasField("max_nodes")
    assert to_json_dict(explicit) == {"maxNodes": "0"}
    parsed = from_json(b'{"maxNodes": 0}', cls)
    assert parsed.HasField("max_nodes")
    assert not from_json(b"{}", cls).HasField("max_nodes")


def test_json_reads_proto_names_numbers_and_ignores_unknown_fields() -> None:
    """Input accepts both name forms, int64 numbers or strings, enum numbers, unknown keys."""
    cls = messages().querier.SelectMergeStacktracesRequest
    by_json_name = from_json(
        b'{"profileTypeID":"a:b:c:d:e","maxNodes":"16","format":"PROFILE_FORMAT_PPROF",'
        b'"future":{"x":1}}',
        cls,
    )
    by_proto_name = from_json(
        {"profile_typeID": "a:b:c:d:e", "max_nodes": 16, "format": 4, "start": 7}, cls
    )
    assert by_json_name.profile_typeID == by_proto_name.profile_typeID == "a:b:c:d:e"
    assert by_json_name.max_nodes == by_proto_name.max_nodes == 16
    assert by_json_name.format == by_proto_name.format == 4
    assert by_proto_name.start == 7


def test_json_bytes_accept_standard_and_url_safe_base64() -> None:
    """``tree`` bytes decode from padded standard and unpadded URL-safe base64."""
    cls = messages().querier.SelectMergeStacktracesResponse
    payload = bytes([0xFB, 0xFF, 0x01, 0x02])
    standard = base64.b64encode(payload).decode()
    url_safe = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    assert from_json({"tree": standard}, cls).tree == payload
    assert from_json({"tree": url_safe}, cls).tree == payload
    assert to_json_dict(cls(tree=payload)) == {"tree": standard}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "zero-length payload"),
        (b"[1, 2]", "expected an object"),
        (b"{not json", "invalid JSON"),
        (b'{"start": "soon"}', "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
    ],
)
def test_bad_json_raises_decode_error(data: bytes, match: str) -> None:
    """Malformed JSON requests surface as DecodeError, never a protobuf exception."""
    with pytest.raises(DecodeError, match=match):
        from_json(data, messages().querier.ProfileTypesRequest)


def test_binary_round_trip_of_a_full_push_request() -> None:
    """A PushRequest survives encode/decode with every field intact."""
    m = messages()
    request = m.push.PushRequest()
    series = request.series.add()
    series.labels.add(name="__name__", value="process_cpu")
    series.labels.add(name="service_name", value="checkout")
    series.samples.add(raw_profile=b"\x1f\x8b\x00binary", ID="4a6c7f2e-0000-4000-8000-000000000001")
    series.annotations.add(key="throttled", value="yes")
    decoded = from_binary(to_binary(request), m.push.PushRequest)
    assert decoded == request
    assert to_json_dict(decoded)["series"][0]["samples"][0]["ID"].startswith("4a6c")


def test_binary_round_trip_of_responses() -> None:
    """Flame graph, diff and pprof responses round-trip through the wire format."""
    m = messages()
    response = m.querier.SelectMergeStacktracesResponse()
    response.flamegraph.names.extend(["total", "main"])
    response.flamegraph.levels.add(values=[0, 5, 0, 0])
    response.flamegraph.total = 5
    profile = response.pprof.profile
    profile.string_table.extend(["", "cpu", "nanoseconds"])
    profile.sample_type.add(type=1, unit=2)
    profile.time_nanos = 1_700_000_000_000_000_000
    assert from_binary(to_binary(response), type(response)) == response

    diff = m.querier.DiffResponse()
    diff.flamegraph.names.append("total")
    diff.flamegraph.leftTicks = 6
    diff.flamegraph.rightTicks = 7
    diff.flamegraph.levels.add(values=[0, 6, 0, 0, 7, 0, 0])
    decoded = from_binary(to_binary(diff), m.querier.DiffResponse)
    assert decoded == diff
    assert to_json_dict(decoded)["flamegraph"]["leftTicks"] == "6"


def test_malformed_binary_raises_decode_error() -> None:
    """Truncated protobuf bytes are a DecodeError naming the message."""
    with pytest.raises(DecodeError, match="push.v1.PushRequest"):
        from_binary(b"\x0a\xff\xff", messages().push.PushRequest)


def test_proto3_strings_must_be_utf8() -> None:
    """A string field with invalid UTF-8 does not decode (the pprof parser reads bytes)."""
    m = messages()
    encoded = to_binary(m.types.LabelPair(name="n\u00e9"))
    with pytest.raises(DecodeError):
        from_binary(encoded.replace("\u00e9".encode(), b"\xff\xfe"), m.types.LabelPair)


def test_real_flamegraph_fixture_round_trips(testdata: Path) -> None:
    """The UI's recorded SelectMergeStacktraces response decodes and re-encodes identically."""
    raw = json.loads((testdata / "ui/e2e/fixtures/flamegraph.json").read_bytes())
    msg = from_json(raw, message_for("SelectMergeStacktraces", False))
    assert len(msg.flamegraph.names) == 1071
    assert msg.flamegraph.total == 11_100_000_000
    assert to_json_dict(msg) == raw


@pytest.mark.parametrize(
    ("fixture", "method"),
    [("series.json", "Series"), ("selectseries.json", "SelectSeries")],
)
def test_real_response_fixtures_round_trip(testdata: Path, fixture: str, method: str) -> None:
    """Recorded Series and SelectSeries responses parse and re-encode to the same JSON."""
    raw = json.loads((testdata / "ui/e2e/fixtures" / fixture).read_bytes())
    assert to_json_dict(from_json(raw, message_for(method, False))) == raw


def test_hand_written_empty_list_fixture_encodes_as_empty_object(testdata: Path) -> None:
    """``{"names": []}`` reads fine; protojson writes the empty result as ``{}``."""
    raw = (testdata / "ui/e2e/fixtures/labelnames.json").read_bytes()
    assert to_json_dict(from_json(raw, message_for("LabelNames", False))) == {}
