"""The hand-written protobuf of watcher.querier._wire equals the protobuf runtime's bytes."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

from watcher.errors import DecodeError
from watcher.querier._wire import encode_select_merge_profile_request, profile_json_to_pprof

from ._profile import PROFILE_JSON

F = descriptor_pb2.FieldDescriptorProto


def _message(
    name: str, fields: list[tuple[str, int, int, int, str]]
) -> descriptor_pb2.DescriptorProto:
    """fields: (name, number, type, label, type_name)."""
    msg = descriptor_pb2.DescriptorProto(name=name)
    for field_name, number, ftype, label, type_name in fields:
        field = msg.field.add(name=field_name, number=number, type=ftype, label=label)
        if type_name:
            field.type_name = type_name
    return msg


OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
I64, U64, BOOL, STR, MSG = F.TYPE_INT64, F.TYPE_UINT64, F.TYPE_BOOL, F.TYPE_STRING, F.TYPE_MESSAGE


def _classes() -> dict[str, Any]:
    """Message classes for pprof's Profile and the querier request, from the spec's field lists."""
    pprof = descriptor_pb2.FileDescriptorProto(name="t_profile.proto", package="t", syntax="proto3")
    pprof.message_type.extend(
        [
            _message(
                "Profile",
                [
                    ("sample_type", 1, MSG, REP, ".t.ValueType"),
                    ("sample", 2, MSG, REP, ".t.Sample"),
                    ("mapping", 3, MSG, REP, ".t.Mapping"),
                    ("location", 4, MSG, REP, ".t.Location"),
                    ("function", 5, MSG, REP, ".t.Function"),
                    ("string_table", 6, STR, REP, ""),
                    ("drop_frames", 7, I64, OPT, ""),
                    ("keep_frames", 8, I64, OPT, ""),
                    ("time_nanos", 9, I64, OPT, ""),
                    ("duration_nanos", 10, I64, OPT, ""),
                    ("period_type", 11, MSG, OPT, ".t.ValueType"),
                    ("period", 12, I64, OPT, ""),
                    ("comment", 13, I64, REP, ""),
                    ("default_sample_type", 14, I64, OPT, ""),
                ],
            ),
            _message("ValueType", [("type", 1, I64, OPT, ""), ("unit", 2, I64, OPT, "")]),
            _message(
                "Sample",
                [
                    ("location_id", 1, U64, REP, ""),
                    ("value", 2, I64, REP, ""),
                    ("label", 3, MSG, REP, ".t.Label"),
                ],
            ),
            _message(
                "Label",
                [
                    ("key", 1, I64, OPT, ""),
                    ("str", 2, I64, OPT, ""),
                    ("num", 3, I64, OPT, ""),
                    ("num_unit", 4, I64, OPT, ""),
                ],
            ),
            _message(
                "Mapping",
                [
                    ("id", 1, U64, OPT, ""),
                    ("memory_start", 2, U64, OPT, ""),
                    ("memory_limit", 3, U64, OPT, ""),
                    ("file_offset", 4, U64, OPT, ""),
                    ("filename", 5, I64, OPT, ""),
                    ("build_id", 6, I64, OPT, ""),
                    ("has_functions", 7, BOOL, OPT, ""),
                    ("has_filenames", 8, BOOL, OPT, ""),
                    ("has_line_numbers", 9, BOOL, OPT, ""),
                    ("has_inline_frames", 10, BOOL, OPT, ""),
                ],
            ),
            _message(
                "Location",
                [
                    ("id", 1, U64, OPT, ""),
                    ("mapping_id", 2, U64, OPT, ""),
                    ("address", 3, U64, OPT, ""),
                    ("line", 4, MSG, REP, ".t.Line"),
                    ("is_folded", 5, BOOL, OPT, ""),
                ],
            ),
            _message(
                "Line",
                [
                    ("function_id", 1, U64, OPT, ""),
                    ("line", 2, I64, OPT, ""),
                    ("column", 3, I64, OPT, ""),
                ],
            ),
            _message(
                "Function",
                [
                    ("id", 1, U64, OPT, ""),
                    ("name", 2, I64, OPT, ""),
                    ("system_name", 3, I64, OPT, ""),
                    ("filename", 4, I64, OPT, ""),
                    ("start_line", 5, I64, OPT, ""),
                ],
            ),
            _message("Location2", [("name", 1, STR, OPT, "")]),
            _message("StackTraceSelector", [("call_site", 1, MSG, REP, ".t.Location2")]),
            _message(
                "SelectMergeProfileRequest",
                [
                    ("profile_typeID", 1, STR, OPT, ""),
                    ("label_selector", 2, STR, OPT, ""),
                    ("start", 3, I64, OPT, ""),
                    ("end", 4, I64, OPT, ""),
                    ("max_nodes", 5, I64, OPT, ""),
                    ("stack_trace_selector", 6, MSG, OPT, ".t.StackTraceSelector"),
                ],
            ),
        ]
    )
    # proto3 ``optional`` (explicit presence) for max_nodes needs a synthetic oneof.
    request = pprof.message_type[-1]
    request.oneof_decl.add(name="_max_nodes")
    request.field[4].oneof_index = 0
    request.field[4].proto3_optional = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(pprof)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"t.{name}"))
        for name in ("Profile", "SelectMergeProfileRequest")
    }


CLASSES = _classes()


def test_profile_json_to_pprof_matches_the_protobuf_runtime() -> None:
    """Every field of the JSON profile serializes to the runtime's exact bytes."""
    expected = json_format.ParseDict(PROFILE_JSON, CLASSES["Profile"]()).SerializeToString()
    assert profile_json_to_pprof(PROFILE_JSON) == expected


def test_profile_round_trips_through_the_runtime() -> None:
    """The runtime reads our bytes back to the same message."""
    parsed = CLASSES["Profile"].FromString(profile_json_to_pprof(PROFILE_JSON))
    assert json_format.MessageToDict(parsed) == json_format.MessageToDict(
        json_format.ParseDict(PROFILE_JSON, CLASSES["Profile"]())
    )
    assert parsed.sample[1].label[1].num == -3


def test_profile_accepts_proto_names_and_ignores_unknown_keys() -> None:
    """snake_case keys work like camelCase; unknown keys are dropped."""
    snake = {"string_table": ["", "a"], "time_nanos": 5, "newField": {"x": 1}}
    assert profile_json_to_pprof(snake) == profile_json_to_pprof(
        {"stringTable": ["", "a"], "timeNanos": "5"}
    )
    assert profile_json_to_pprof({}) == b""


@pytest.mark.parametrize(
    ("msg", "where"),
    [
        ({"timeNanos": "soon"}, "profile.timeNanos"),
        ({"sample": [{"value": ["1", None]}]}, r"profile.sample\[0\].value\[1\]"),
        ({"sample": {}}, "profile.sample"),
        ({"mapping": [{"hasFunctions": "yes"}]}, r"profile.mapping\[0\].hasFunctions"),
        ({"stringTable": [1]}, r"profile.stringTable\[0\]"),
        ({"periodType": []}, "profile.periodType"),
    ],
)
def test_malformed_profile_json_names_the_field(msg: dict[str, Any], where: str) -> None:
    """A wrong shape is a DecodeError naming the path to the field."""
    with pytest.raises(DecodeError, match=where):
        profile_json_to_pprof(msg)


@pytest.mark.parametrize(
    ("max_nodes", "call_site"),
    [(None, ()), (0, ()), (16384, ("main", "net/http.(*conn).serve", "")), (None, ("é",))],
)
def test_select_merge_profile_request_matches_the_runtime(
    max_nodes: int | None, call_site: tuple[str, ...]
) -> None:
    """Request bytes equal the runtime's, including max_nodes=0 being present."""
    msg = CLASSES["SelectMergeProfileRequest"](
        profile_typeID="process_cpu:cpu:nanoseconds:cpu:nanoseconds",
        label_selector='{service_name="x"}',
        start=1714557600000,
        end=1714561200000,
    )
    if max_nodes is not None:
        msg.max_nodes = max_nodes
    for name in call_site:
        msg.stack_trace_selector.call_site.add(name=name)
    ours = encode_select_merge_profile_request(
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
        '{service_name="x"}',
        1714557600000,
        1714561200000,
        max_nodes,
        call_site,
    )
    assert ours == msg.SerializeToString()
