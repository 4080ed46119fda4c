"""Ingest parsing: Push and legacy /ingest into ProfileRecords, checked against the oracle."""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from watcher.errors import WatcherError
from watcher.pprof import PprofFunction, PprofLine, build_pprof, parse_pprof
from watcher.proto import messages, to_binary, to_json
from watcher.sandbox.ingest import (
    IngestError,
    parse_app_name,
    parse_time_param,
    records_from_ingest,
    records_from_push,
)
from watcher.sandbox.records import ProfileRecord, Stack

NOW_MS = 1_800_000_000_000
PPROF = "pkg/og/convert/pprof/testdata/"
BOUNDARY = "pyrowatch-test-boundary"


def multipart(fields: Sequence[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body the way the Go SDK builds it, and its Content-Type."""
    body = b""
    for name, data in fields:
        body += (
            (
                f"--{BOUNDARY}\r\n"
                f'Content-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    body += f"--{BOUNDARY}--\r\n".encode()
    return body, f"multipart/form-data; boundary={BOUNDARY}"


def push_body(
    raw_profiles: Sequence[bytes], labels: Mapping[str, str], *, compress: bool = True
) -> bytes:
    """A PushRequest with one series holding the given raw profiles."""
    request = messages().push.PushRequest()
    series = request.series.add()
    for name, value in labels.items():
        series.labels.add(name=name, value=value)
    for i, raw in enumerate(raw_profiles):
        series.samples.add(raw_profile=raw, ID=f"00000000-0000-4000-8000-{i:012d}")
    data = to_binary(request)
    return gzip.compress(data) if compress else data


def by_type(records: Sequence[ProfileRecord]) -> dict[str, ProfileRecord]:
    result = {r.profile_type: r for r in records}
    assert len(result) == len(records), "one record per profile type expected"
    return result


# --- the upstream ingest oracle (spec §6.4) ------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One row of the oracle: fixture, optional sample-type config and spy, expected IDs."""

    fixture: str
    expected: dict[str, int]  # profile type ID -> source sample-type index
    config: str | None = None
    spy: str = ""
    push_error: str | None = None  # message of the expected Push 400


GO_HEAP = {
    "memory:alloc_objects:count:space:bytes": 0,
    "memory:alloc_space:bytes:space:bytes": 1,
    "memory:inuse_objects:count:space:bytes": 2,
    "memory:inuse_space:bytes:space:bytes": 3,
}
GO_CPU = {
    "process_cpu:samples:count:cpu:nanoseconds": 0,
    "process_cpu:cpu:nanoseconds:cpu:nanoseconds": 1,
}

CASES = [
    Case("pkg/pprof/testdata/heap_delta", GO_HEAP),
    Case("pkg/pprof/testdata/profile_java", {"process_cpu:cpu:nanoseconds:cpu:nanoseconds": 0}),
    Case(PPROF + "cpu-exemplars.pb.gz", GO_CPU),
    Case(PPROF + "cpu.pb.gz", GO_CPU),
    Case(
        PPROF + "cpu-js.pb.gz",
        {"wall:sample:count:wall:microseconds": 0, "wall:wall:microseconds:wall:microseconds": 1},
    ),
    Case(PPROF + "heap.pb.gz", GO_HEAP),
    Case(
        PPROF + "heap-js.pprof",
        {"memory:objects:count:space:bytes": 0, "memory:space:bytes:space:bytes": 1},
    ),
    Case(
        PPROF + "nodejs-heap.pb.gz",
        {
            "memory:inuse_objects:count:inuse_space:bytes": 0,
            "memory:inuse_space:bytes:inuse_space:bytes": 1,
        },
    ),
    Case(
        PPROF + "nodejs-wall.pb.gz",
        {"wall:samples:count:wall:microseconds": 0, "wall:wall:microseconds:wall:microseconds": 1},
    ),
    Case(
        PPROF + "req_2.pprof",
        {"goroutines:goroutine:count:goroutine:count": 0},
        config=PPROF + "req_2.st.json",
    ),
    Case(
        PPROF + "req_3.pprof",
        {
            "block:contentions:count:contentions:count": 0,
            "block:delay:nanoseconds:contentions:count": 1,
        },
        config=PPROF + "req_3.st.json",
    ),
    Case(
        PPROF + "req_4.pprof",
        {
            "mutex:contentions:count:contentions:count": 0,
            "mutex:delay:nanoseconds:contentions:count": 1,
        },
        config=PPROF + "req_4.st.json",
    ),
    # The oracle queries the two alloc types; the profile also carries the two inuse types
    # (all zero here), which become (empty) series as well.
    Case(PPROF + "req_5.pprof", GO_HEAP, config=PPROF + "req_5.st.json"),
    Case(PPROF + "pyspy-1.pb.gz", {"process_cpu:samples:count::milliseconds": 0}, spy="pyspy"),
    # The oracle queries the cpu type; every sample type of the .NET profile is ingested,
    # with "-" in sample type names turned into "_".
    Case(
        PPROF + "dotnet-pprof-3.pb.gz",
        {
            "process_cpu:cpu:nanoseconds::nanoseconds": 0,
            "process_cpu:exception:count::nanoseconds": 1,
            "process_cpu:alloc_samples:count::nanoseconds": 2,
            "process_cpu:alloc_size:bytes::nanoseconds": 3,
            "process_cpu:lock_count:count::nanoseconds": 4,
            "process_cpu:lock_time:nanoseconds::nanoseconds": 5,
        },
        config=PPROF + "dotnet-pprof-3.st.json",
        spy="dotnetspy",
        push_error="function id is 0",
    ),
]


def _ingest_params(case: Case) -> dict[str, str]:
    params = {"name": "oracle-app{env=test}", "from": "1700000000", "until": "1700000010"}
    if case.spy:
        params["spyName"] = case.spy
    return params


def _expected_stacks(testdata: Path, case: Case, index: int, *, ingest: bool) -> dict[Stack, int]:
    """The source profile's stacks, after the fixes the server applies on /ingest."""
    profile = parse_pprof((testdata / case.fixture).read_bytes())
    if ingest and case.spy == "pyspy":
        return profile.stacks(index, namer=lambda fn, _line: f"{fn.filename} {fn.name}")
    if ingest and case.spy == "dotnetspy":
        # Broken .NET profiles: function i belongs to location i.
        by_location = {
            loc.id: profile.function_list[i].name for i, loc in enumerate(profile.location_list)
        }
        stacks: dict[Stack, int] = {}
        for sample in profile.samples:
            if sample.values[index]:
                stack = tuple(by_location[lid] for lid in reversed(sample.location_ids))
                stacks[stack] = stacks.get(stack, 0) + sample.values[index]
        return stacks
    return profile.stacks(index)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.fixture.rsplit("/", 1)[-1])
def test_ingest_multipart_gives_the_oracle_profile_types(testdata: Path, case: Case) -> None:
    """/ingest with a multipart upload yields exactly the expected IDs and source stacks."""
    fields = [("profile", (testdata / case.fixture).read_bytes())]
    if case.config:
        fields.append(("sample_type_config", (testdata / case.config).read_bytes()))
    body, content_type = multipart(fields)
    records = by_type(records_from_ingest(_ingest_params(case), body, content_type, now_ms=NOW_MS))
    assert set(records) == set(case.expected)
    for profile_type, index in case.expected.items():
        expected = _expected_stacks(testdata, case, index, ingest=True)
        assert records[profile_type].stacks == expected, profile_type
        assert records[profile_type].labels["service_name"] == "oracle-app"
        assert records[profile_type].labels["env"] == "test"
        assert records[profile_type].labels["pyroscope_spy"] == (case.spy or "unknown")


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.config is None],
    ids=lambda c: c.fixture.rsplit("/", 1)[-1],
)
def test_ingest_raw_pprof_body_gives_the_same_types(testdata: Path, case: Case) -> None:
    """format=pprof with the (gzipped or plain) pprof as the whole body works the same."""
    params = {**_ingest_params(case), "format": "pprof"}
    body = (testdata / case.fixture).read_bytes()
    records = by_type(records_from_ingest(params, body, "binary/octet-stream", now_ms=NOW_MS))
    assert set(records) == set(case.expected)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.fixture.rsplit("/", 1)[-1])
def test_push_gives_the_oracle_profile_types(testdata: Path, case: Case) -> None:
    """Push with __name__ = the first ID part yields the IDs, or the listed 400."""
    name = next(iter(case.expected)).split(":", 1)[0]
    body = push_body([(testdata / case.fixture).read_bytes()], {"__name__": name})
    if case.push_error:
        with pytest.raises(IngestError) as caught:
            records_from_push(body, "application/proto", "gzip", now_ms=NOW_MS)
        assert (caught.value.status, caught.value.code) == (400, "invalid_argument")
        assert case.push_error in caught.value.message
        return
    records = by_type(records_from_push(body, "application/proto", "gzip", now_ms=NOW_MS))
    assert set(records) == set(case.expected)
    for profile_type, index in case.expected.items():
        assert records[profile_type].stacks == _expected_stacks(testdata, case, index, ingest=False)
        assert records[profile_type].labels["service_name"] == "unknown_service"


def test_invalid_utf8_is_422_on_ingest_and_400_on_push(testdata: Path) -> None:
    """The invalid-UTF-8 fixture is refused with the statuses the oracle lists."""
    raw = (testdata / PPROF / "invalid_utf8.pb.gz").read_bytes()
    body, content_type = multipart([("profile", raw)])
    with pytest.raises(IngestError) as ingest:
        records_from_ingest({"name": "app"}, body, content_type, now_ms=NOW_MS)
    assert ingest.value.status == 422
    assert "invalid utf8" in ingest.value.message
    with pytest.raises(IngestError) as push:
        records_from_push(
            push_body([raw], {"__name__": "process_cpu"}), "application/proto", "gzip"
        )
    assert (push.value.status, push.value.code) == (400, "invalid_argument")


def test_prev_profile_is_refused_as_an_old_client(testdata: Path) -> None:
    """A multipart upload carrying prev_profile gets 422 "unsupported client version"."""
    raw = (testdata / PPROF / "cpu.pb.gz").read_bytes()
    body, content_type = multipart([("profile", raw), ("prev_profile", raw)])
    with pytest.raises(IngestError) as caught:
        records_from_ingest({"name": "app"}, body, content_type, now_ms=NOW_MS)
    assert caught.value.status == 422
    assert caught.value.message.startswith("unsupported client version")


def test_pyspy_frames_are_renamed_with_their_file(testdata: Path) -> None:
    """Scripting spies get "<file> <function>" frames on /ingest; Push keeps plain names."""
    raw = (testdata / PPROF / "pyspy-1.pb.gz").read_bytes()
    body, content_type = multipart([("profile", raw)])
    params = {"name": "py.app", "spyName": "pyspy"}
    (record,) = records_from_ingest(params, body, content_type, now_ms=NOW_MS)
    assert ("main.py <module>", "main.py slow_function", "main.py work") in record.stacks
    (pushed,) = records_from_push(
        push_body([raw], {"__name__": "process_cpu"}), "application/proto", "gzip"
    )
    assert ("<module>", "slow_function", "work") in pushed.stacks


def test_pprof_time_in_1970_falls_back_to_from_or_now(testdata: Path) -> None:
    """py-spy wrote microseconds into time_nanos: /ingest uses `from`, Push uses now."""
    raw = (testdata / PPROF / "pyspy-1.pb.gz").read_bytes()
    body, content_type = multipart([("profile", raw)])
    params = {"name": "py.app", "spyName": "pyspy", "from": "1700000000", "until": "1700000010"}
    (record,) = records_from_ingest(params, body, content_type, now_ms=NOW_MS)
    assert record.timestamp_ms == 1_700_000_000_000
    assert record.duration_ms == 10
    pushed = records_from_push(
        push_body([raw], {"__name__": "x"}), "application/proto", "gzip", now_ms=5
    )
    assert pushed[0].timestamp_ms == 5


def test_record_timestamps_come_from_time_nanos(testdata: Path) -> None:
    """A plausible time_nanos wins over `from`; duration comes from duration_nanos."""
    raw = (testdata / PPROF / "cpu.pb.gz").read_bytes()
    body, content_type = multipart([("profile", raw)])
    records = records_from_ingest({"name": "go", "from": "1700000000"}, body, content_type)
    assert {r.timestamp_ms for r in records} == {1_619_321_948_265}
    assert {r.duration_ms for r in records} == {1_100}


def test_sample_labels_can_become_series_labels(testdata: Path) -> None:
    """split_sample_labels promotes pprof labels (not profile_id) to series labels."""
    raw = (testdata / PPROF / "cpu-exemplars.pb.gz").read_bytes()
    body = push_body([raw], {"__name__": "process_cpu", "service_name": "go"})
    whole = by_type(records_from_push(body, "application/proto", "gzip", now_ms=NOW_MS))
    split = records_from_push(
        body, "application/proto", "gzip", now_ms=NOW_MS, split_sample_labels=True
    )
    cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    parts = [r for r in split if r.profile_type == cpu]
    assert len(parts) > 1
    assert all("profile_id" not in r.labels for r in parts)
    assert {r.labels.get("function") for r in parts} >= {"fast", "slow"}
    assert sum(sum(r.stacks.values()) for r in parts) == sum(whole[cpu].stacks.values())
    for part in parts:  # every stack's own labels agree with its series labels
        for labels in part.sample_labels.values():
            assert labels.get("function", part.labels.get("function")) == part.labels.get(
                "function"
            )


# --- Push details -------------------------------------------------------------------------------

CPU_STACKS: dict[Stack, int] = {("main", "work"): 30_000_000, ("main", "idle"): 10_000_000}


def _cpu_pprof(time_nanos: int = 1_750_000_000_000_000_000) -> bytes:
    return build_pprof(
        CPU_STACKS,
        sample_type="cpu",
        sample_unit="nanoseconds",
        period_type="cpu",
        period_unit="nanoseconds",
        period=10_000_000,
        time_nanos=time_nanos,
        duration_nanos=10_000_000_000,
    )


def test_push_shaped_like_pyroscope_rs() -> None:
    """A gzipped application/proto PushRequest with a plain pprof inside, SDK labels kept."""
    labels = {
        "__name__": "process_cpu",
        "region": "eu",
        "service_name": "checkout",
        "otel.scope.name": "com.grafana.pyroscope/python",
        "otel.scope.version": "1.4.0",
        "process.runtime.name": "cpython",
    }
    (record,) = records_from_push(push_body([_cpu_pprof()], labels), "application/proto", "gzip")
    assert record.profile_type == "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    assert record.labels == labels
    assert record.stacks == CPU_STACKS
    assert record.timestamp_ms == 1_750_000_000_000
    assert record.duration_ms == 10_000


def test_push_accepts_connect_json_and_gzipped_samples() -> None:
    """application/json bodies work; a gzipped raw profile is sniffed and unpacked."""
    request = messages().push.PushRequest()
    series = request.series.add()
    series.labels.add(name="__name__", value="process_cpu")
    series.samples.add(raw_profile=gzip.compress(_cpu_pprof()))
    (record,) = records_from_push(to_json(request), "application/json; charset=utf-8", None)
    assert record.stacks == CPU_STACKS
    assert record.labels == {"__name__": "process_cpu", "service_name": "unknown_service"}


def test_push_drops_ingest_hints_and_derived_labels() -> None:
    """__delta__ and store-derived labels never reach the series labels."""
    labels = {"__name__": "process_cpu", "__delta__": "false", "__type__": "x", "a": "b"}
    (record,) = records_from_push(push_body([_cpu_pprof()], labels), "application/proto", "gzip")
    assert record.labels == {"__name__": "process_cpu", "a": "b", "service_name": "unknown_service"}


def test_push_without_name_is_an_invalid_metric_name() -> None:
    """__name__ is required on push."""
    with pytest.raises(IngestError) as caught:
        records_from_push(
            push_body([_cpu_pprof()], {"service_name": "x"}), "application/proto", "gzip"
        )
    assert caught.value.status == 400
    assert "invalid metric name" in caught.value.message
    assert isinstance(caught.value, WatcherError)


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "status", "code", "match"),
    [
        (b"", "application/proto", None, 400, "invalid_argument", "no profiles received"),
        (b"\x0a\xff", "application/proto", None, 400, "invalid_argument", "malformed"),
        (b"", "application/json", None, 400, "invalid_argument", "zero-length"),
        (b"{}", "text/plain", None, 415, "unknown", "unsupported content type"),
        (b"{}", "application/json", "br", 501, "unimplemented", 'unknown compression "br"'),
        (b"\x1f\x8bnot gzip", "application/proto", "gzip", 400, "invalid_argument", "gzip"),
        (b"\x0a\x00", "application/proto", "gzip", 400, "invalid_argument", "not gzip"),
    ],
)
def test_push_request_errors(
    body: bytes, content_type: str, encoding: str | None, status: int, code: str, match: str
) -> None:
    """Transport-level problems map to the Connect status and code."""
    with pytest.raises(IngestError, match=match) as caught:
        records_from_push(body, content_type, encoding)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_push_duplicate_labels_are_refused() -> None:
    """A series naming one label twice is invalid."""
    request = messages().push.PushRequest()
    series = request.series.add()
    series.labels.add(name="__name__", value="process_cpu")
    series.labels.add(name="pod", value="a")
    series.labels.add(name="pod", value="b")
    series.samples.add(raw_profile=_cpu_pprof())
    with pytest.raises(IngestError, match="duplicate label name: 'pod'"):
        records_from_push(to_binary(request), "application/proto")


def test_push_refuses_dashes_in_sample_types_and_empty_profiles() -> None:
    """Push validates like the server: no '-' in sample types, at least one sample type."""
    dashed = build_pprof({("a",): 1}, sample_type="alloc-size", sample_unit="bytes")
    with pytest.raises(IngestError, match="sample type contains -"):
        records_from_push(push_body([dashed], {"__name__": "memory"}), "application/proto", "gzip")
    with pytest.raises(IngestError, match="empty profile"):
        records_from_push(push_body([b""], {"__name__": "memory"}), "application/proto", "gzip")


def test_push_of_a_profile_without_values_stores_nothing() -> None:
    """All-zero samples leave nothing to store."""
    empty = build_pprof({("a",): 0}, sample_type="cpu", sample_unit="nanoseconds")
    assert (
        records_from_push(push_body([empty], {"__name__": "x"}), "application/proto", "gzip") == []
    )


def test_push_with_several_samples_gives_a_record_each() -> None:
    """Each RawSample of a series is its own profile."""
    body = push_body([_cpu_pprof(), _cpu_pprof(1_760_000_000_000_000_000)], {"__name__": "p"})
    records = records_from_push(body, "application/proto", "gzip")
    assert [r.timestamp_ms for r in records] == [1_750_000_000_000, 1_760_000_000_000]


# --- /ingest pprof details ----------------------------------------------------------------------


def test_ingest_pprof_labels_and_service_name() -> None:
    """The app name (suffix included) is the service name unless the labels carry one."""
    body, content_type = multipart([("profile", _cpu_pprof())])
    (record,) = records_from_ingest(
        {"name": "shop.cpu{region=eu,__secret__=x,__session_id__=s1}", "spyName": "gospy"},
        body,
        content_type,
        now_ms=NOW_MS,
    )
    assert record.labels == {
        "__name__": "process_cpu",
        "__session_id__": "s1",
        "pyroscope_spy": "gospy",
        "region": "eu",
        "service_name": "shop.cpu",
    }
    (named,) = records_from_ingest(
        {"name": "shop{service_name=real}"}, body, content_type, now_ms=NOW_MS
    )
    assert named.labels["service_name"] == "real"
    assert "app_name" not in named.labels


def test_ingest_pprof_guesses_name_from_display_names() -> None:
    """A sample_type_config display name drives the __name__ guess."""
    raw = build_pprof({("a",): 1}, sample_type="contentions", sample_unit="count")
    body, content_type = multipart(
        [
            ("profile", raw),
            ("sample_type_config", b'{"contentions":{"display-name":"block_count"}}'),
        ]
    )
    (record,) = records_from_ingest({"name": "app"}, body, content_type, now_ms=NOW_MS)
    assert record.profile_type == "block:contentions:count::"
    body, content_type = multipart([("profile", raw)])  # default config: mutex_count
    (record,) = records_from_ingest({"name": "app"}, body, content_type, now_ms=NOW_MS)
    assert record.profile_type == "mutex:contentions:count::"


def test_dotnet_fix_needs_the_spy_or_its_config() -> None:
    """Without dotnetspy (or the .NET config) function id 0 is refused with 422."""
    p = messages().google.Profile(string_table=["", "cpu", "nanoseconds", "Main"])
    p.sample_type.add(type=1, unit=2)
    p.function.add(id=0, name=3)
    p.location.add(id=5).line.add(function_id=5)
    p.sample.add(location_id=[5], value=[7])
    body, content_type = multipart([("profile", p.SerializeToString())])
    with pytest.raises(IngestError, match="function id is 0") as caught:
        records_from_ingest({"name": "app"}, body, content_type, now_ms=NOW_MS)
    assert caught.value.status == 422
    (record,) = records_from_ingest(
        {"name": "app", "spyName": "dotnetspy"}, body, content_type, now_ms=NOW_MS
    )
    assert record.stacks == {("Main",): 7}


_CONFIG_PART = b'--x\r\nContent-Disposition: form-data; name="sample_type_config"\r\n\r\n'
_PROFILE_PART = b'--x\r\nContent-Disposition: form-data; name="profile"\r\n\r\n'


@pytest.mark.parametrize(
    ("body", "content_type", "match"),
    [
        (_PROFILE_PART + b"abc", "multipart/form-data; boundary=x", "unexpected end"),
        (b"whatever", "multipart/form-data", "no boundary"),
        (_CONFIG_PART + b"{oops\r\n--x--\r\n", "multipart/form-data; boundary=x", "config"),
    ],
)
def test_broken_multipart_uploads_are_422(body: bytes, content_type: str, match: str) -> None:
    """A multipart body that cannot be read is an ingest failure."""
    with pytest.raises(IngestError, match=match) as caught:
        records_from_ingest({"name": "app"}, body, content_type, now_ms=NOW_MS)
    assert caught.value.status == 422


def test_profile_naming_a_missing_location_is_400_on_push_and_422_on_ingest() -> None:
    """A sample pointing at no location cannot be stored; the status follows the API."""
    p = messages().google.Profile(string_table=["", "cpu", "nanoseconds"])
    p.sample_type.add(type=1, unit=2)
    p.sample.add(location_id=[9], value=[1])
    raw = p.SerializeToString()
    with pytest.raises(IngestError, match="location id 9") as pushed:
        records_from_push(
            push_body([raw], {"__name__": "process_cpu"}), "application/proto", "gzip"
        )
    assert pushed.value.status == 400
    body, content_type = multipart([("profile", raw)])
    with pytest.raises(IngestError, match="location id 9") as ingested:
        records_from_ingest({"name": "app"}, body, content_type, now_ms=NOW_MS)
    assert ingested.value.status == 422


def test_multipart_without_profile_ingests_nothing() -> None:
    """An upload with no profile field is accepted and empty."""
    body, content_type = multipart([("other", b"x")])
    assert records_from_ingest({"name": "app"}, body, content_type, now_ms=NOW_MS) == []


def test_unsupported_formats_are_refused() -> None:
    """Formats this server does not parse get 422 rather than a wrong guess."""
    with pytest.raises(IngestError, match="jfr") as caught:
        records_from_ingest({"name": "app", "format": "jfr"}, b"x", "", now_ms=NOW_MS)
    assert caught.value.status == 422


def test_frame_namer_of_scripting_spies_keeps_absolute_pyspy_paths() -> None:
    """py-spy frames from absolute paths are not renamed; rbspy frames always are."""
    p = messages().google.Profile(
        string_table=["", "samples", "count", "run", "/usr/lib/x.py", "app.rb"]
    )
    p.sample_type.add(type=1, unit=2)
    p.function.add(id=1, name=3, filename=4)
    p.function.add(id=2, name=3, filename=5)
    p.location.add(id=1).line.add(function_id=1)
    p.location.add(id=2).line.add(function_id=2)
    p.sample.add(location_id=[2, 1], value=[1])
    body, content_type = multipart([("profile", p.SerializeToString())])
    (py,) = records_from_ingest({"name": "a", "spyName": "pyspy"}, body, content_type)
    assert set(py.stacks) == {("run", "app.rb run")}
    (rb,) = records_from_ingest({"name": "a", "spyName": "rbspy"}, body, content_type)
    assert set(rb.stacks) == {("/usr/lib/x.py run", "app.rb run")}
    assert PprofFunction(1, "f") != PprofFunction(2, "f") and PprofLine(1) == PprofLine(1)


# --- /ingest folded and lines -------------------------------------------------------------------

FOLDED = b"main;work 3\nmain;idle 1\nmain;work 2\nno-count-line\n\n"


def test_folded_cpu_is_scaled_to_nanoseconds_by_the_sample_rate() -> None:
    """app.cpu with sampleRate=100: each sample is 10 ms of cpu."""
    (record,) = records_from_ingest(
        {
            "name": "shop.cpu{env=prod}",
            "sampleRate": "100",
            "from": "1700000000",
            "until": "1700000010",
        },
        FOLDED,
        "text/plain",
        now_ms=NOW_MS,
    )
    assert record.profile_type == "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    assert record.stacks == {("main", "work"): 50_000_000, ("main", "idle"): 10_000_000}
    assert record.labels == {
        "__name__": "process_cpu",
        "env": "prod",
        "pyroscope_spy": "unknown",
        "service_name": "shop",
    }
    assert (record.timestamp_ms, record.duration_ms) == (1_700_000_000_000, 10_000)


@pytest.mark.parametrize(
    ("name", "params", "profile_type", "work"),
    [
        ("shop", {}, "process_cpu:cpu:nanoseconds:cpu:nanoseconds", 50_000_000),
        ("shop.cpu", {"sampleRate": "0"}, "process_cpu:samples:count::", 5),
        (
            "shop.cpu",
            {"sampleRate": "-3"},
            "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
            50_000_000,
        ),
        (
            "shop.cpu",
            {"sampleRate": "1000"},
            "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
            5_000_000,
        ),
        ("shop.wall", {}, "wall:wall:nanoseconds:cpu:nanoseconds", 50_000_000),
        ("shop.itimer", {}, "process_cpu:cpu:nanoseconds:cpu:nanoseconds", 50_000_000),
        ("shop.alloc_space", {}, "memory:alloc_space:bytes::", 5),
        ("shop.inuse_objects", {}, "memory:inuse_objects:count::", 5),
        ("shop.goroutines", {}, "goroutine:goroutines:count::", 5),
        ("shop.mutex_count", {}, "mutex:contentions:count::", 5),
        ("shop.mutex_duration", {}, "mutex:delay:nanoseconds::", 5),
        ("shop.block_duration", {}, "block:delay:nanoseconds::", 5),
        ("shop.lock_count", {}, "block:contentions:count::", 5),
        ("shop.alloc_in_new_tlab_bytes", {}, "memory:alloc_in_new_tlab_bytes:bytes::", 5),
        ("shop.live", {}, "memory:live:count::", 5),
        ("shop.exceptions", {}, "exceptions:samples:count::", 5),
    ],
)
def test_folded_kinds_map_to_profile_types(
    name: str, params: dict[str, str], profile_type: str, work: int
) -> None:
    """The app-name suffix picks the profile type; cpu and wall are scaled by the rate."""
    (record,) = records_from_ingest({"name": name, **params}, FOLDED, "", now_ms=NOW_MS)
    assert record.profile_type == profile_type
    assert record.stacks[("main", "work")] == work
    assert record.labels["service_name"] == "shop"


def test_folded_unknown_kind_is_a_bad_request() -> None:
    """An unknown suffix is a 400 naming it."""
    with pytest.raises(IngestError, match="unknown profile type: service") as caught:
        records_from_ingest({"name": "my.service"}, FOLDED, "", now_ms=NOW_MS)
    assert (caught.value.status, caught.value.code) == (400, "invalid_argument")


def test_lines_format_counts_each_line_once() -> None:
    """format=lines: one stack per line, value 1 (scaled for cpu)."""
    (record,) = records_from_ingest(
        {"name": "app.cpu", "format": "lines", "sampleRate": "0"},
        b"a;b\na;b\na;c\n\n",
        "",
        now_ms=NOW_MS,
    )
    assert record.stacks == {("a", "b"): 2, ("a", "c"): 1}


def test_folded_service_name_label_keeps_the_app_as_app_name() -> None:
    """With service_name among the labels, the app name becomes app_name."""
    (record,) = records_from_ingest(
        {"name": "shop.cpu{service_name=checkout}"}, FOLDED, "", now_ms=NOW_MS
    )
    assert record.labels["service_name"] == "checkout"
    assert record.labels["app_name"] == "shop"
    assert record.timestamp_ms == NOW_MS


def test_folded_body_errors_and_empty_bodies() -> None:
    """A bad count is 422; an empty body or a profile_id upload stores nothing."""
    with pytest.raises(IngestError, match="invalid count") as caught:
        records_from_ingest({"name": "app"}, b"a;b x\n", "", now_ms=NOW_MS)
    assert caught.value.status == 422
    assert records_from_ingest({"name": "app"}, b"", "", now_ms=NOW_MS) == []
    assert records_from_ingest({"name": "app{profile_id=1}"}, FOLDED, "", now_ms=NOW_MS) == []


@pytest.mark.parametrize("name", ["", "{a=b}", "bad app", "app{bad-key=1}", "app{=1}"])
def test_bad_names_are_bad_requests(name: str) -> None:
    """An unparsable name parameter is a 400."""
    with pytest.raises(IngestError, match="name:") as caught:
        records_from_ingest({"name": name}, FOLDED, "", now_ms=NOW_MS)
    assert caught.value.status == 400


def test_parse_app_name() -> None:
    """App name and labels are trimmed; keys without '=' and text after '}' are dropped."""
    assert parse_app_name(" my-svc/a.cpu { env = prod , flag, k.x=1 }tail") == (
        "my-svc/a.cpu",
        {"env": "prod", "k.x": "1"},
    )
    assert parse_app_name("app") == ("app", {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", 1_700_000_000_000),
        ("1700000000123", 1_700_000_000_123),
        ("1700000000123456", 1_700_000_000_123),
        ("1700000000123456789", 1_700_000_000_123),
        ("20231114", 1_699_920_000_000),
        ("now", NOW_MS),
        ("now-1h", NOW_MS - 3_600_000),
        ("now-1h30m", NOW_MS - 5_400_000),
        ("now+5m", NOW_MS + 300_000),
    ],
)
def test_parse_time_param(text: str, expected: int) -> None:
    """Unix s/ms/µs/ns by digit count, YYYYMMDD, and now with offsets."""
    assert parse_time_param(text, now_ms=NOW_MS) == expected


@pytest.mark.parametrize("text", ["yesterday", "now-1x", "now*2", "now-"])
def test_unparsable_times_are_bad_requests(text: str) -> None:
    """Unknown time forms fail as a 400 naming the parameter."""
    with pytest.raises(ValueError):
        parse_time_param(text, now_ms=NOW_MS)
    with pytest.raises(IngestError, match="from:") as caught:
        records_from_ingest({"name": "app", "from": text}, FOLDED, "", now_ms=NOW_MS)
    assert caught.value.status == 400
