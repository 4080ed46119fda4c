"""Protobuf file descriptors for the Pyroscope wire messages, written from the API spec.

Each message is described by a compact table (field name, number, type, label) and turned into
``descriptor_pb2.FileDescriptorProto`` objects here. Nothing in this module builds classes;
:mod:`watcher.proto` feeds these descriptors to a private descriptor pool on first use.

Field numbers, types and JSON names follow the spec tables: google.v1 is wire-compatible with
pprof's ``profile.proto``; types.v1, push.v1 and querier.v1 follow the Pyroscope API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import descriptor_pb2

_F = descriptor_pb2.FieldDescriptorProto

# Scalar type names used in the tables below.
_SCALARS: dict[str, descriptor_pb2.FieldDescriptorProto.Type.ValueType] = {
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
    "bool": _F.TYPE_BOOL,
    "double": _F.TYPE_DOUBLE,
    "int32": _F.TYPE_INT32,
    "uint32": _F.TYPE_UINT32,
    "int64": _F.TYPE_INT64,
    "uint64": _F.TYPE_UINT64,
}

GOOGLE_FILE = "google/v1/profile.proto"
TYPES_FILE = "types/v1/types.proto"
PUSH_FILE = "push/v1/push.proto"
QUERIER_FILE = "querier/v1/querier.proto"
#: A private file holding a pprof variant whose string table is ``bytes`` (same wire format),
#: so a profile with invalid UTF-8 strings can still be read and the bad string reported.
RAW_FILE = "pyrowatch/wire/v1/raw_profile.proto"
RAW_PROFILE = "pyrowatch.wire.v1.RawProfile"


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a message table.

    ``kind`` is a scalar name (``"int64"``), a fully qualified message name prefixed with
    ``.`` (``".types.v1.LabelPair"``), or an enum name prefixed with ``enum:``.
    """

    name: str
    number: int
    kind: str
    repeated: bool = False
    optional: bool = False  # proto3 ``optional``: explicit presence


def _f(name: str, number: int, kind: str, *, rep: bool = False, opt: bool = False) -> Field:
    return Field(name, number, kind, rep, opt)


def json_name(name: str) -> str:
    """The proto3 JSON name protoc derives: drop ``_`` and upper-case the next letter."""
    out: list[str] = []
    upper = False
    for ch in name:
        if ch == "_":
            upper = True
            continue
        out.append(ch.upper() if upper else ch)
        upper = False
    return "".join(out)


def _message(name: str, fields: Sequence[Field]) -> descriptor_pb2.DescriptorProto:
    msg = descriptor_pb2.DescriptorProto(name=name)
    synthetic: list[str] = []
    for spec in fields:
        field = msg.field.add(
            name=spec.name,
            number=spec.number,
            json_name=json_name(spec.name),
            label=_F.LABEL_REPEATED if spec.repeated else _F.LABEL_OPTIONAL,
        )
        if spec.kind in _SCALARS:
            field.type = _SCALARS[spec.kind]
        elif spec.kind.startswith("enum:"):
            field.type = _F.TYPE_ENUM
            field.type_name = spec.kind[len("enum:") :]
        elif spec.kind.startswith("."):
            field.type = _F.TYPE_MESSAGE
            field.type_name = spec.kind
        else:  # pragma: no cover - a typo in the tables below
            raise ValueError(f"unknown field kind {spec.kind!r} in {name}.{spec.name}")
        if spec.optional:
            # proto3 optional = a synthetic one-field oneof, declared after any real oneof.
            field.proto3_optional = True
            field.oneof_index = len(synthetic)
            synthetic.append(f"_{spec.name}")
    for oneof in synthetic:
        msg.oneof_decl.add(name=oneof)
    return msg


def _enum(name: str, values: Sequence[str]) -> descriptor_pb2.EnumDescriptorProto:
    enum = descriptor_pb2.EnumDescriptorProto(name=name)
    for number, value in enumerate(values):
        enum.value.add(name=value, number=number)
    return enum


def _file(
    name: str,
    package: str,
    messages: dict[str, Sequence[Field]],
    *,
    enums: dict[str, Sequence[str]] | None = None,
    deps: Sequence[str] = (),
) -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    fdp.dependency.extend(deps)
    for enum_name, values in (enums or {}).items():
        fdp.enum_type.append(_enum(enum_name, values))
    for msg_name, fields in messages.items():
        fdp.message_type.append(_message(msg_name, fields))
    return fdp


# --- google.v1: pprof profile.proto ------------------------------------------------------------

_G = ".google.v1."

_PROFILE_FIELDS: list[Field] = [
    _f("sample_type", 1, _G + "ValueType", rep=True),
    _f("sample", 2, _G + "Sample", rep=True),
    _f("mapping", 3, _G + "Mapping", rep=True),
    _f("location", 4, _G + "Location", rep=True),
    _f("function", 5, _G + "Function", rep=True),
    _f("string_table", 6, "string", rep=True),
    _f("drop_frames", 7, "int64"),
    _f("keep_frames", 8, "int64"),
    _f("time_nanos", 9, "int64"),
    _f("duration_nanos", 10, "int64"),
    _f("period_type", 11, _G + "ValueType"),
    _f("period", 12, "int64"),
    _f("comment", 13, "int64", rep=True),
    _f("default_sample_type", 14, "int64"),
]

_GOOGLE: dict[str, Sequence[Field]] = {
    "Profile": _PROFILE_FIELDS,
    "ValueType": [_f("type", 1, "int64"), _f("unit", 2, "int64")],
    "Sample": [
        _f("location_id", 1, "uint64", rep=True),
        _f("value", 2, "int64", rep=True),
        _f("label", 3, _G + "Label", rep=True),
    ],
    "Label": [
        _f("key", 1, "int64"),
        _f("str", 2, "int64"),
        _f("num", 3, "int64"),
        _f("num_unit", 4, "int64"),
    ],
    "Mapping": [
        _f("id", 1, "uint64"),
        _f("memory_start", 2, "uint64"),
        _f("memory_limit", 3, "uint64"),
        _f("file_offset", 4, "uint64"),
        _f("filename", 5, "int64"),
        _f("build_id", 6, "int64"),
        _f("has_functions", 7, "bool"),
        _f("has_filenames", 8, "bool"),
        _f("has_line_numbers", 9, "bool"),
        _f("has_inline_frames", 10, "bool"),
    ],
    "Location": [
        _f("id", 1, "uint64"),
        _f("mapping_id", 2, "uint64"),
        _f("address", 3, "uint64"),
        _f("line", 4, _G + "Line", rep=True),
        _f("is_folded", 5, "bool"),
    ],
    "Line": [_f("function_id", 1, "uint64"), _f("line", 2, "int64")],
    "Function": [
        _f("id", 1, "uint64"),
        _f("name", 2, "int64"),
        _f("system_name", 3, "int64"),
        _f("filename", 4, "int64"),
        _f("start_line", 5, "int64"),
    ],
}

# --- types.v1 -----------------------------------------------------------------------------------

_T = ".types.v1."

_TYPES: dict[str, Sequence[Field]] = {
    "LabelPair": [_f("name", 1, "string"), _f("value", 2, "string")],
    "Labels": [_f("labels", 1, _T + "LabelPair", rep=True)],
    "ProfileType": [
        _f("ID", 1, "string"),
        _f("name", 2, "string"),
        _f("sample_type", 4, "string"),
        _f("sample_unit", 5, "string"),
        _f("period_type", 6, "string"),
        _f("period_unit", 7, "string"),
    ],
    "Series": [
        _f("labels", 1, _T + "LabelPair", rep=True),
        _f("points", 2, _T + "Point", rep=True),
    ],
    "Point": [
        _f("value", 1, "double"),
        _f("timestamp", 2, "int64"),
        _f("annotations", 3, _T + "ProfileAnnotation", rep=True),
        _f("exemplars", 4, _T + "Exemplar", rep=True),
    ],
    "ProfileAnnotation": [_f("key", 1, "string"), _f("value", 2, "string")],
    "Exemplar": [
        _f("timestamp", 1, "int64"),
        _f("profile_id", 2, "string"),
        _f("span_id", 3, "string"),
        _f("value", 4, "int64"),
        _f("labels", 5, _T + "LabelPair", rep=True),
        _f("trace_id", 6, "string"),
    ],
    "LabelNamesRequest": [
        _f("matchers", 1, "string", rep=True),
        _f("start", 2, "int64"),
        _f("end", 3, "int64"),
    ],
    "LabelNamesResponse": [_f("names", 1, "string", rep=True)],
    "LabelValuesRequest": [
        _f("name", 1, "string"),
        _f("matchers", 2, "string", rep=True),
        _f("start", 3, "int64"),
        _f("end", 4, "int64"),
    ],
    "LabelValuesResponse": [_f("names", 1, "string", rep=True)],
    "GetProfileStatsRequest": [],
    "GetProfileStatsResponse": [
        _f("data_ingested", 1, "bool"),
        _f("oldest_profile_time", 2, "int64"),
        _f("newest_profile_time", 3, "int64"),
    ],
    "StackTraceSelector": [
        _f("call_site", 1, _T + "Location", rep=True),
        _f("go_pgo", 2, _T + "GoPGO"),
    ],
    "Location": [_f("name", 1, "string")],
    "GoPGO": [_f("keep_locations", 1, "uint32"), _f("aggregate_callees", 2, "bool")],
    "HeatmapSeries": [
        _f("labels", 1, _T + "LabelPair", rep=True),
        _f("slots", 2, _T + "HeatmapSlot", rep=True),
    ],
    "HeatmapSlot": [
        _f("timestamp", 1, "int64"),
        _f("y_min", 2, "double", rep=True),
        _f("counts", 3, "int32", rep=True),
        _f("exemplars", 4, _T + "Exemplar", rep=True),
    ],
}

_TYPES_ENUMS: dict[str, Sequence[str]] = {
    "TimeSeriesAggregationType": [
        "TIME_SERIES_AGGREGATION_TYPE_SUM",
        "TIME_SERIES_AGGREGATION_TYPE_AVERAGE",
    ],
    "ExemplarType": [
        "EXEMPLAR_TYPE_UNSPECIFIED",
        "EXEMPLAR_TYPE_NONE",
        "EXEMPLAR_TYPE_INDIVIDUAL",
        "EXEMPLAR_TYPE_SPAN",
    ],
}

# --- push.v1 ------------------------------------------------------------------------------------

_P = ".push.v1."

_PUSH: dict[str, Sequence[Field]] = {
    "PushRequest": [_f("series", 1, _P + "RawProfileSeries", rep=True)],
    "PushResponse": [],
    "RawProfileSeries": [
        _f("labels", 1, _T + "LabelPair", rep=True),
        _f("samples", 2, _P + "RawSample", rep=True),
        _f("annotations", 3, _T + "ProfileAnnotation", rep=True),
    ],
    "RawSample": [_f("raw_profile", 1, "bytes"), _f("ID", 2, "string")],
}

# --- querier.v1 ---------------------------------------------------------------------------------

_Q = ".querier.v1."

_QUERIER: dict[str, Sequence[Field]] = {
    "ProfileTypesRequest": [_f("start", 1, "int64"), _f("end", 2, "int64")],
    "ProfileTypesResponse": [_f("profile_types", 1, _T + "ProfileType", rep=True)],
    "SeriesRequest": [
        _f("matchers", 1, "string", rep=True),
        _f("label_names", 2, "string", rep=True),
        _f("start", 3, "int64"),
        _f("end", 4, "int64"),
    ],
    "SeriesResponse": [_f("labels_set", 2, _T + "Labels", rep=True)],
    "SelectMergeStacktracesRequest": [
        _f("profile_typeID", 1, "string"),
        _f("label_selector", 2, "string"),
        _f("start", 3, "int64"),
        _f("end", 4, "int64"),
        _f("max_nodes", 5, "int64", opt=True),
        _f("format", 6, "enum:" + _Q + "ProfileFormat"),
        _f("stack_trace_selector", 7, _T + "StackTraceSelector", opt=True),
        _f("profile_id_selector", 8, "string", rep=True),
        _f("async", 9, _Q + "AsyncQueryRequest", opt=True),
        _f("trace_id_selector", 10, "string", rep=True),
        _f("span_selector", 11, "string", rep=True),
    ],
    "SelectMergeStacktracesResponse": [
        _f("flamegraph", 1, _Q + "FlameGraph"),
        _f("tree", 2, "bytes"),
        _f("dot", 3, "string"),
        _f("async", 4, _Q + "AsyncQueryResponse", opt=True),
        _f("pprof", 5, _Q + "PprofProfile"),
    ],
    "AsyncQueryRequest": [
        _f("request_id", 1, "string"),
        _f("type", 2, "enum:" + _Q + "AsyncQueryType"),
    ],
    "AsyncQueryResponse": [
        _f("request_id", 1, "string"),
        _f("status", 2, "enum:" + _Q + "AsyncQueryStatus"),
        _f("error_message", 3, "string"),
    ],
    "PprofProfile": [_f("profile", 1, _G + "Profile")],
    "FlameGraph": [
        _f("names", 1, "string", rep=True),
        _f("levels", 2, _Q + "Level", rep=True),
        _f("total", 3, "int64"),
        _f("max_self", 4, "int64"),
    ],
    "FlameGraphDiff": [
        _f("names", 1, "string", rep=True),
        _f("levels", 2, _Q + "Level", rep=True),
        _f("total", 3, "int64"),
        _f("max_self", 4, "int64"),
        _f("leftTicks", 5, "int64"),
        _f("rightTicks", 6, "int64"),
    ],
    "Level": [_f("values", 1, "int64", rep=True)],
    "SelectMergeSpanProfileRequest": [
        _f("profile_typeID", 1, "string"),
        _f("label_selector", 2, "string"),
        _f("span_selector", 3, "string", rep=True),
        _f("start", 4, "int64"),
        _f("end", 5, "int64"),
        _f("max_nodes", 6, "int64", opt=True),
        _f("format", 7, "enum:" + _Q + "ProfileFormat"),
    ],
    "SelectMergeSpanProfileResponse": [
        _f("flamegraph", 1, _Q + "FlameGraph"),
        _f("tree", 2, "bytes"),
    ],
    "SelectMergeProfileRequest": [
        _f("profile_typeID", 1, "string"),
        _f("label_selector", 2, "string"),
        _f("start", 3, "int64"),
        _f("end", 4, "int64"),
        _f("max_nodes", 5, "int64", opt=True),
        _f("stack_trace_selector", 6, _T + "StackTraceSelector", opt=True),
        _f("profile_id_selector", 7, "string", rep=True),
        _f("trace_id_selector", 8, "string", rep=True),
    ],
    "SelectSeriesRequest": [
        _f("profile_typeID", 1, "string"),
        _f("label_selector", 2, "string"),
        _f("start", 3, "int64"),
        _f("end", 4, "int64"),
        _f("group_by", 5, "string", rep=True),
        _f("step", 6, "double"),
        _f("aggregation", 7, "enum:" + _T + "TimeSeriesAggregationType", opt=True),
        _f("stack_trace_selector", 8, _T + "StackTraceSelector", opt=True),
        _f("limit", 9, "int64", opt=True),
        _f("exemplar_type", 10, "enum:" + _T + "ExemplarType"),
    ],
    "SelectSeriesResponse": [_f("series", 1, _T + "Series", rep=True)],
    "SelectHeatmapRequest": [
        _f("profile_typeID", 1, "string"),
        _f("label_selector", 2, "string"),
        _f("start", 3, "int64"),
        _f("end", 4, "int64"),
        _f("step", 5, "double"),
        _f("group_by", 6, "string", rep=True),
        _f("query_type", 7, "enum:" + _Q + "HeatmapQueryType"),
        _f("exemplar_type", 8, "enum:" + _T + "ExemplarType"),
        _f("limit", 9, "int64", opt=True),
    ],
    "SelectHeatmapResponse": [_f("series", 1, _T + "HeatmapSeries", rep=True)],
    "DiffRequest": [
        _f("left", 1, _Q + "SelectMergeStacktracesRequest"),
        _f("right", 2, _Q + "SelectMergeStacktracesRequest"),
    ],
    "DiffResponse": [_f("flamegraph", 1, _Q + "FlameGraphDiff")],
    "AnalyzeQueryRequest": [
        _f("start", 2, "int64"),
        _f("end", 3, "int64"),
        _f("query", 4, "string"),
    ],
    "AnalyzeQueryResponse": [
        _f("query_scopes", 1, _Q + "QueryScope", rep=True),
        _f("query_impact", 2, _Q + "QueryImpact"),
    ],
    "QueryScope": [
        _f("component_type", 1, "string"),
        _f("component_count", 2, "uint64"),
        _f("block_count", 3, "uint64"),
        _f("series_count", 4, "uint64"),
        _f("profile_count", 5, "uint64"),
        _f("sample_count", 6, "uint64"),
        _f("index_bytes", 7, "uint64"),
        _f("profile_bytes", 8, "uint64"),
        _f("symbol_bytes", 9, "uint64"),
    ],
    "QueryImpact": [
        _f("total_bytes_in_time_range", 2, "uint64"),
        _f("total_queried_series", 3, "uint64"),
        _f("deduplication_needed", 4, "bool"),
    ],
}

_QUERIER_ENUMS: dict[str, Sequence[str]] = {
    "ProfileFormat": [
        "PROFILE_FORMAT_UNSPECIFIED",
        "PROFILE_FORMAT_FLAMEGRAPH",
        "PROFILE_FORMAT_TREE",
        "PROFILE_FORMAT_DOT",
        "PROFILE_FORMAT_PPROF",
    ],
    "AsyncQueryType": ["ASYNC_QUERY_TYPE_DISABLED", "ASYNC_QUERY_TYPE_FORCE"],
    "AsyncQueryStatus": [
        "ASYNC_QUERY_STATUS_UNKNOWN",
        "ASYNC_QUERY_STATUS_IN_PROGRESS",
        "ASYNC_QUERY_STATUS_SUCCESS",
        "ASYNC_QUERY_STATUS_FAILURE",
    ],
    "HeatmapQueryType": [
        "HEATMAP_QUERY_TYPE_UNSPECIFIED",
        "HEATMAP_QUERY_TYPE_INDIVIDUAL",
        "HEATMAP_QUERY_TYPE_SPAN",
    ],
}

# --- the private raw variant of google.v1.Profile -------------------------------------------------

_RAW: dict[str, Sequence[Field]] = {
    "RawProfile": [
        Field(f.name, f.number, "bytes", f.repeated) if f.name == "string_table" else f
        for f in _PROFILE_FIELDS
    ],
}


def file_descriptors() -> list[descriptor_pb2.FileDescriptorProto]:
    """All files, dependencies first, ready for ``DescriptorPool.Add``."""
    return [
        _file(GOOGLE_FILE, "google.v1", _GOOGLE),
        _file(TYPES_FILE, "types.v1", _TYPES, enums=_TYPES_ENUMS),
        _file(PUSH_FILE, "push.v1", _PUSH, deps=[TYPES_FILE]),
        _file(
            QUERIER_FILE,
            "querier.v1",
            _QUERIER,
            enums=_QUERIER_ENUMS,
            deps=[GOOGLE_FILE, TYPES_FILE],
        ),
        _file(RAW_FILE, "pyrowatch.wire.v1", _RAW, deps=[GOOGLE_FILE]),
    ]


#: Every public package and its message names (the raw variant is left out).
PACKAGES: dict[str, tuple[str, ...]] = {
    "google.v1": tuple(_GOOGLE),
    "types.v1": tuple(_TYPES),
    "push.v1": tuple(_PUSH),
    "querier.v1": tuple(_QUERIER),
}

#: Every public enum, by full name.
ENUMS: tuple[str, ...] = tuple(
    [f"types.v1.{name}" for name in _TYPES_ENUMS]
    + [f"querier.v1.{name}" for name in _QUERIER_ENUMS]
)
