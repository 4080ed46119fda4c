"""pprof parsing (stack rules, strings, gzip, errors) and building."""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from watcher.errors import DecodeError
from watcher.pprof import (
    InvalidUTF8Error,
    PprofProfile,
    Stack,
    build_pprof,
    gunzip_if_needed,
    parse_pprof,
)
from watcher.proto import from_binary, messages

STRINGS = [
    "", "samples", "count", "cpu", "nanoseconds", "main", "handler", "inlined_helper", "leaf",
    "thread", "t1", "t2", "size", "bytes", "app.go",
]  # fmt: skip
S = {text: index for index, text in enumerate(STRINGS)}


def _hand_built_profile() -> bytes:
    """Four locations: plain, two inlined lines, leaf, and one without lines (address only)."""
    p = messages().google.Profile()
    p.string_table.extend(STRINGS)
    p.sample_type.add(type=S["samples"], unit=S["count"])
    p.sample_type.add(type=S["cpu"], unit=S["nanoseconds"])
    p.period_type.type, p.period_type.unit = S["cpu"], S["nanoseconds"]
    p.period = 10_000_000
    p.time_nanos = 1_700_000_000_123_456_789
    p.duration_nanos = 10_000_000_000
    for fid, name in [(1, "main"), (2, "handler"), (3, "inlined_helper"), (4, "leaf")]:
        p.function.add(id=fid, name=S[name], system_name=S[name], filename=S["app.go"])
    p.location.add(id=10).line.add(function_id=1, line=3)
    inlined = p.location.add(id=20)
    inlined.line.add(function_id=3, line=8)  # innermost callee first
    inlined.line.add(function_id=2, line=20)  # then the caller it was inlined into
    p.location.add(id=30).line.add(function_id=4, line=1)
    p.location.add(id=40, address=0xDEADBEEF)  # no line info
    s1 = p.sample.add(location_id=[30, 20, 10], value=[1, 10])
    s1.label.add(key=S["thread"], str=S["t1"])
    s2 = p.sample.add(location_id=[40, 10], value=[2, 20])
    s2.label.add(key=S["thread"], str=S["t1"])
    s2.label.add(key=S["size"], num=5, num_unit=S["bytes"])
    s3 = p.sample.add(location_id=[30, 20, 10], value=[3, 0])
    s3.label.add(key=S["thread"], str=S["t2"])
    p.sample.add(location_id=[10], value=[0, 5])
    data: bytes = p.SerializeToString()
    return data


DEEP: Stack = ("main", "handler", "inlined_helper", "leaf")


def test_stacks_are_root_first_with_inlined_lines_and_addresses() -> None:
    """Location ids and inlined lines are reversed; a line-less location is its hex address."""
    profile = parse_pprof(_hand_built_profile())
    assert profile.stacks(0) == {DEEP: 4, ("main", "deadbeef"): 2}
    assert profile.stacks(1) == {DEEP: 10, ("main", "deadbeef"): 20, ("main",): 5}


def test_profile_metadata_is_resolved_from_the_string_table() -> None:
    """Sample types, period, times and labels come back as strings and ints."""
    profile = parse_pprof(_hand_built_profile())
    assert profile.sample_types == [("samples", "count"), ("cpu", "nanoseconds")]
    assert profile.period_type == ("cpu", "nanoseconds")
    assert profile.period == 10_000_000
    assert profile.time_nanos == 1_700_000_000_123_456_789
    assert profile.duration_nanos == 10_000_000_000
    assert profile.sample_type_index("cpu") == 1
    second = profile.samples[1]
    assert second.labels == {"thread": "t1"}
    assert second.num_labels == {"size": (5, "bytes")}
    assert profile.functions[3].filename == "app.go"
    with pytest.raises(DecodeError, match="no sample type 'wall'"):
        profile.sample_type_index("wall")


def test_stack_labels_keep_only_labels_shared_by_every_sample_of_a_stack() -> None:
    """Two samples of one stack with different threads share no label; zero samples don't count."""
    profile = parse_pprof(_hand_built_profile())
    assert profile.stack_labels(0) == {("main", "deadbeef"): {"thread": "t1"}}
    assert profile.stack_labels(1) == {
        DEEP: {"thread": "t1"},
        ("main", "deadbeef"): {"thread": "t1"},
    }


def test_a_frame_namer_can_rename_frames() -> None:
    """The namer sees the function and line of each frame."""
    profile = parse_pprof(_hand_built_profile())
    renamed = profile.stacks(1, namer=lambda fn, line: f"{fn.filename}:{line.line} {fn.name}")
    assert renamed[("app.go:3 main",)] == 5
    assert (
        "app.go:3 main",
        "app.go:20 handler",
        "app.go:8 inlined_helper",
        "app.go:1 leaf",
    ) in renamed


def test_gzipped_and_plain_bytes_parse_alike() -> None:
    """The gzip magic switches on decompression; the stacks are the same."""
    raw = _hand_built_profile()
    assert parse_pprof(gzip.compress(raw)).stacks(1) == parse_pprof(raw).stacks(1)
    assert gunzip_if_needed(raw) is raw


def test_out_of_range_sample_type_index_is_an_error() -> None:
    """Asking for a sample type the profile lacks raises DecodeError."""
    with pytest.raises(DecodeError, match="out of range"):
        parse_pprof(_hand_built_profile()).stacks(2)


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\xff\xff\xff",  # truncated length-delimited field
        b"\x1f\x8b\x08\x00garbage",  # gzip magic, broken stream
        gzip.compress(b"\x0a\x05ab")[:-6],  # truncated gzip
    ],
)
def test_malformed_profiles_raise_decode_error(data: bytes) -> None:
    """Broken protobuf or gzip input is a DecodeError."""
    with pytest.raises(DecodeError):
        parse_pprof(data)


def test_invalid_utf8_is_a_distinguishable_decode_error() -> None:
    """A bad string-table entry raises InvalidUTF8Error (a DecodeError) with its index."""
    raw = _hand_built_profile().replace(b"inlined_helper", b"inlined\xff\xfehelpe")
    with pytest.raises(InvalidUTF8Error) as caught:
        parse_pprof(raw)
    assert isinstance(caught.value, DecodeError)
    assert caught.value.index == S["inlined_helper"]
    assert "invalid utf8 string hex: 696e6c696e6564fffe" in str(caught.value)


def test_string_index_out_of_range_is_an_error() -> None:
    """A function name pointing past the string table is refused."""
    p = messages().google.Profile(string_table=["", "cpu", "nanoseconds"])
    p.sample_type.add(type=1, unit=2)
    p.function.add(id=1, name=99)
    with pytest.raises(DecodeError, match="function name string index 99"):
        parse_pprof(p.SerializeToString())


def test_missing_location_is_an_error() -> None:
    """A sample naming an unknown location id cannot be turned into a stack."""
    p = messages().google.Profile(string_table=["", "cpu", "nanoseconds"])
    p.sample_type.add(type=1, unit=2)
    p.sample.add(location_id=[7], value=[1])
    with pytest.raises(DecodeError, match="location id 7"):
        parse_pprof(p.SerializeToString()).stacks(0)


def test_max_bytes_limits_the_decompressed_size() -> None:
    """A gzip bomb stops at the limit."""
    bomb = gzip.compress(b"\x00" * 100_000)
    with pytest.raises(DecodeError, match="exceeds the limit of 1000 bytes"):
        parse_pprof(bomb, max_bytes=1000)


# --- build_pprof --------------------------------------------------------------------------------

SMALL: dict[Stack, int] = {
    ("main", "a", "b"): 3,
    ("main", "a"): 1,
    ("main", "c"): 2,
    ("idle",): 0,
}


def _assert_valid_pprof(p: Any) -> None:
    """The invariants pprof's own validity check enforces, plus deduplication."""
    assert p.string_table[0] == ""
    assert len(set(p.string_table)) == len(p.string_table)
    function_ids = [f.id for f in p.function]
    location_ids = [loc.id for loc in p.location]
    mapping_ids = {m.id for m in p.mapping}
    assert 0 not in function_ids and len(set(function_ids)) == len(function_ids)
    assert 0 not in location_ids and len(set(location_ids)) == len(location_ids)
    assert len({f.name for f in p.function}) == len(p.function)
    for loc in p.location:
        assert loc.mapping_id == 0 or loc.mapping_id in mapping_ids
        assert all(line.function_id in function_ids for line in loc.line)
    for sample in p.sample:
        assert len(sample.value) == len(p.sample_type)
        assert all(lid in location_ids for lid in sample.location_id)
    for index in [f.name for f in p.function] + [t.type for t in p.sample_type]:
        assert 0 <= index < len(p.string_table)


def test_build_pprof_writes_the_stacks_back() -> None:
    """A built profile parses to exactly the non-zero stacks and the given metadata."""
    data = build_pprof(
        SMALL,
        sample_type="cpu",
        sample_unit="nanoseconds",
        period_type="cpu",
        period_unit="nanoseconds",
        period=10_000_000,
        time_nanos=1_700_000_000_000_000_000,
        duration_nanos=15_000_000_000,
    )
    assert not data.startswith(b"\x1f\x8b")
    profile = parse_pprof(data)
    assert profile.stacks(0) == {("main", "a", "b"): 3, ("main", "a"): 1, ("main", "c"): 2}
    assert profile.sample_types == [("cpu", "nanoseconds")]
    assert profile.period_type == ("cpu", "nanoseconds")
    assert (profile.period, profile.time_nanos, profile.duration_nanos) == (
        10_000_000,
        1_700_000_000_000_000_000,
        15_000_000_000,
    )


def test_build_pprof_deduplicates_functions_locations_and_strings() -> None:
    """Each function name appears once; the structure passes pprof's validity rules."""
    msg = from_binary(
        build_pprof(SMALL, sample_type="cpu", sample_unit="nanoseconds"), messages().google.Profile
    )
    _assert_valid_pprof(msg)
    assert sorted(msg.string_table[f.name] for f in msg.function) == ["a", "b", "c", "main"]
    assert len(msg.location) == 4
    assert len(msg.sample) == 3
    assert not msg.HasField("period_type")


class _TreeLike:
    def __init__(self, pairs: list[tuple[Stack, int]]) -> None:
        self._pairs = pairs

    def stacks(self) -> Iterable[tuple[Stack, int]]:
        return iter(self._pairs)


def test_build_pprof_accepts_pairs_and_tree_like_objects() -> None:
    """Iterables of pairs are summed per stack; objects with .stacks() work too."""
    pairs: list[tuple[Stack, int]] = [(("a", "b"), 2), (("a", "b"), 3), (("a",), 1)]
    from_pairs = parse_pprof(build_pprof(pairs, sample_type="samples", sample_unit="count"))
    from_tree = parse_pprof(
        build_pprof(_TreeLike(pairs), sample_type="samples", sample_unit="count")
    )
    assert from_pairs.stacks(0) == from_tree.stacks(0) == {("a", "b"): 5, ("a",): 1}


def test_build_pprof_sample_labels_round_trip() -> None:
    """Labels given per stack come back as sample labels."""
    data = build_pprof(
        {("main", "work"): 7},
        sample_type="cpu",
        sample_unit="nanoseconds",
        sample_labels={("main", "work"): {"span_id": "00f067aa0ba902b7"}},
    )
    profile = parse_pprof(data)
    assert profile.stack_labels(0) == {("main", "work"): {"span_id": "00f067aa0ba902b7"}}


def test_to_message_round_trips_the_bytes() -> None:
    """The parsed profile converts back to an equal google.v1.Profile message."""
    data = build_pprof(SMALL, sample_type="cpu", sample_unit="nanoseconds")
    message = parse_pprof(gzip.compress(data)).to_message()
    assert message == from_binary(data, messages().google.Profile)


# --- real profiles ------------------------------------------------------------------------------

REAL = [
    "pkg/og/convert/pprof/testdata/cpu.pb.gz",
    "pkg/og/convert/pprof/testdata/heap.pb.gz",
    "pkg/og/convert/pprof/testdata/cpu-js.pb.gz",
    "pkg/og/convert/pprof/testdata/pyspy-1.pb.gz",
    "pkg/pprof/testdata/profile_java",
    "pkg/pprof/testdata/profile_python",
    "pkg/pprof/testdata/profile_ruby",
    "pkg/pprof/testdata/profile_rust",
    "pkg/pprof/testdata/malformed/no_addr_no_line.pb.gz",
    "pkg/phlaredb/testdata/profile_python",
]


def _value_total(profile: PprofProfile, index: int) -> int:
    return sum(sample.values[index] for sample in profile.samples)


@pytest.mark.parametrize("name", REAL)
def test_real_profiles_keep_every_value(testdata: Path, name: str) -> None:
    """For each sample type, the stacks add up to the sum of the sample values."""
    profile = parse_pprof((testdata / name).read_bytes())
    assert profile.sample_types
    for index in range(len(profile.sample_types)):
        stacks = profile.stacks(index)
        assert sum(stacks.values()) == _value_total(profile, index)
        assert all(stack for stack in stacks)


def test_known_profile_facts(testdata: Path) -> None:
    """The Go CPU fixture matches its description; gzipped and plain copies agree."""
    cpu = parse_pprof((testdata / "pkg/og/convert/pprof/testdata/cpu.pb.gz").read_bytes())
    assert cpu.sample_types == [("samples", "count"), ("cpu", "nanoseconds")]
    assert cpu.period_type == ("cpu", "nanoseconds")
    assert cpu.period == 10_000_000
    assert len(cpu.samples) == 7
    zipped = parse_pprof((testdata / "pkg/phlaredb/testdata/profile").read_bytes())
    plain = parse_pprof((testdata / "pkg/phlaredb/testdata/profile_uncompressed").read_bytes())
    assert zipped.stacks(1) == plain.stacks(1)


def test_kernel_frames_without_lines_are_named_by_address(testdata: Path) -> None:
    """Locations with neither lines nor address give the frame name ``0``."""
    profile = parse_pprof(
        (testdata / "pkg/pprof/testdata/malformed/no_addr_no_line.pb.gz").read_bytes()
    )
    lineless = [loc for loc in profile.location_list if not loc.lines]
    assert lineless
    frames = {frame for stack in profile.stacks(0) for frame in stack}
    assert {format(loc.address, "x") for loc in lineless} <= frames


def test_invalid_utf8_fixture_is_refused(testdata: Path) -> None:
    """The upstream invalid-UTF-8 fixture raises InvalidUTF8Error."""
    with pytest.raises(InvalidUTF8Error):
        parse_pprof((testdata / "pkg/og/convert/pprof/testdata/invalid_utf8.pb.gz").read_bytes())
