"""The little protobuf the client needs, written by hand (no protobuf runtime at import).

- :func:`encode_select_merge_profile_request`: the ``SelectMergeProfileRequest`` body sent
  as ``application/proto``.
- :func:`profile_json_to_pprof`: a ``google.v1.Profile`` in Connect JSON (as
  ``SelectMergeStacktraces`` with ``PROFILE_FORMAT_PPROF`` returns it) to pprof wire bytes.
  Fields are written in field-number order, scalars packed and zero values omitted, which is
  what the protobuf runtimes produce, so the bytes equal a runtime's serialization.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from watcher.errors import DecodeError

__all__ = ["encode_select_merge_profile_request", "profile_json_to_pprof"]

_MASK64 = (1 << 64) - 1


def _varint(out: bytearray, value: int) -> None:
    value &= _MASK64
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _key(out: bytearray, number: int, wire_type: int) -> None:
    _varint(out, (number << 3) | wire_type)


def _put_bytes(out: bytearray, number: int, data: bytes) -> None:
    _key(out, number, 2)
    _varint(out, len(data))
    out += data


def _put_int(out: bytearray, number: int, value: int, *, always: bool = False) -> None:
    if value or always:
        _key(out, number, 0)
        _varint(out, value)


def encode_select_merge_profile_request(
    profile_type_id: str,
    label_selector: str,
    start_ms: int,
    end_ms: int,
    max_nodes: int | None = None,
    call_site: Sequence[str] = (),
) -> bytes:
    """``querier.v1.SelectMergeProfileRequest`` bytes (fields 1-6)."""
    out = bytearray()
    if profile_type_id:
        _put_bytes(out, 1, profile_type_id.encode())
    if label_selector:
        _put_bytes(out, 2, label_selector.encode())
    _put_int(out, 3, start_ms)
    _put_int(out, 4, end_ms)
    if max_nodes is not None:  # optional: presence is explicit
        _put_int(out, 5, max_nodes, always=True)
    if call_site:
        selector = bytearray()
        for name in call_site:
            location = bytearray()
            if name:
                _put_bytes(location, 1, name.encode())
            _put_bytes(selector, 1, bytes(location))
        _put_bytes(out, 6, bytes(selector))
    return bytes(out)


# --------------------------------------------------------------------------- pprof from JSON

# (field number, JSON name, proto name, kind[, sub-schema])
_Schema = tuple[tuple[Any, ...], ...]

_VALUE_TYPE: _Schema = ((1, "type", "type", "int"), (2, "unit", "unit", "int"))
_LABEL: _Schema = (
    (1, "key", "key", "int"),
    (2, "str", "str", "int"),
    (3, "num", "num", "int"),
    (4, "numUnit", "num_unit", "int"),
)
_SAMPLE: _Schema = (
    (1, "locationId", "location_id", "ints"),
    (2, "value", "value", "ints"),
    (3, "label", "label", "messages", _LABEL),
)
_MAPPING: _Schema = (
    (1, "id", "id", "int"),
    (2, "memoryStart", "memory_start", "int"),
    (3, "memoryLimit", "memory_limit", "int"),
    (4, "fileOffset", "file_offset", "int"),
    (5, "filename", "filename", "int"),
    (6, "buildId", "build_id", "int"),
    (7, "hasFunctions", "has_functions", "bool"),
    (8, "hasFilenames", "has_filenames", "bool"),
    (9, "hasLineNumbers", "has_line_numbers", "bool"),
    (10, "hasInlineFrames", "has_inline_frames", "bool"),
)
_LINE: _Schema = (
    (1, "functionId", "function_id", "int"),
    (2, "line", "line", "int"),
    (3, "column", "column", "int"),
)
_LOCATION: _Schema = (
    (1, "id", "id", "int"),
    (2, "mappingId", "mapping_id", "int"),
    (3, "address", "address", "int"),
    (4, "line", "line", "messages", _LINE),
    (5, "isFolded", "is_folded", "bool"),
)
_FUNCTION: _Schema = (
    (1, "id", "id", "int"),
    (2, "name", "name", "int"),
    (3, "systemName", "system_name", "int"),
    (4, "filename", "filename", "int"),
    (5, "startLine", "start_line", "int"),
)
_PROFILE: _Schema = (
    (1, "sampleType", "sample_type", "messages", _VALUE_TYPE),
    (2, "sample", "sample", "messages", _SAMPLE),
    (3, "mapping", "mapping", "messages", _MAPPING),
    (4, "location", "location", "messages", _LOCATION),
    (5, "function", "function", "messages", _FUNCTION),
    (6, "stringTable", "string_table", "strings"),
    (7, "dropFrames", "drop_frames", "int"),
    (8, "keepFrames", "keep_frames", "int"),
    (9, "timeNanos", "time_nanos", "int"),
    (10, "durationNanos", "duration_nanos", "int"),
    (11, "periodType", "period_type", "message", _VALUE_TYPE),
    (12, "period", "period", "int"),
    (13, "comment", "comment", "ints"),
    (14, "defaultSampleType", "default_sample_type", "int"),
)


def _as_int(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise DecodeError(f"pprof JSON {where}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise DecodeError(f"pprof JSON {where}: expected an integer, got {str(value)[:40]!r}")


def _as_list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise DecodeError(f"pprof JSON {where}: expected a list")
    return value


def _encode(msg: object, schema: _Schema, where: str) -> bytes:
    if not isinstance(msg, Mapping):
        raise DecodeError(f"pprof JSON {where}: expected an object")
    out = bytearray()
    for entry in schema:
        number, json_name, proto_name, kind = entry[:4]
        value = msg.get(json_name, msg.get(proto_name))
        if value is None:
            continue
        here = f"{where}.{json_name}"
        if kind == "int":
            _put_int(out, number, _as_int(value, here))
        elif kind == "bool":
            if not isinstance(value, bool):
                raise DecodeError(f"pprof JSON {here}: expected true or false")
            _put_int(out, number, int(value))
        elif kind == "ints":
            packed = bytearray()
            for index, item in enumerate(_as_list(value, here)):
                _varint(packed, _as_int(item, f"{here}[{index}]"))
            if packed:
                _put_bytes(out, number, bytes(packed))
        elif kind == "strings":
            for index, item in enumerate(_as_list(value, here)):
                if not isinstance(item, str):
                    raise DecodeError(f"pprof JSON {here}[{index}]: expected a string")
                _put_bytes(out, number, item.encode())
        elif kind == "message":
            _put_bytes(out, number, _encode(value, entry[4], here))
        else:  # messages
            for index, item in enumerate(_as_list(value, here)):
                _put_bytes(out, number, _encode(item, entry[4], f"{here}[{index}]"))
    return bytes(out)


def profile_json_to_pprof(msg: Mapping[str, Any]) -> bytes:
    """Serialize a Connect-JSON ``google.v1.Profile`` as uncompressed pprof bytes.

    Unknown keys are ignored, as protojson does with ``DiscardUnknown``.

    :raises DecodeError: naming the field when a value has the wrong shape.
    """
    return _encode(msg, _PROFILE, "profile")
