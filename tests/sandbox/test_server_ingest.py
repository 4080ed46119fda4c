"""Real pprof files pushed to the sandbox over HTTP, via Push and the legacy /ingest.

The expected profile type IDs (with the source sample-type index, ``@N``) and the refusal
codes are the ones the test-data MANIFEST lists from Pyroscope's own ingest integration
test (querier spec §6.4). As upstream checks: every expected type is queryable,
SelectMergeProfile returns exactly one sample type, and its stacks equal the source's stacks
of that sample type.

The fixture files carry their own (old) timestamps, so this sandbox runs without the
lookback clamp and the 1-day range limit.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from watcher.pprof import parse_pprof
from watcher.sandbox import Sandbox
from watcher.sandbox.query import QueryLimits

Q = "/querier.v1.QuerierService/"
PUSH = "/push.v1.PusherService/Push"
T = "pkg/og/convert/pprof/testdata/"
GO_CPU = [
    "process_cpu:samples:count:cpu:nanoseconds",
    "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
]
GO_HEAP = [
    "memory:alloc_objects:count:space:bytes",
    "memory:alloc_space:bytes:space:bytes",
    "memory:inuse_objects:count:space:bytes",
    "memory:inuse_space:bytes:space:bytes",
]

# (file, expected IDs in source sample-type order, sample_type_config file, spyName)
ACCEPTED: list[tuple[str, list[str], str | None, str | None]] = [
    ("pkg/pprof/testdata/heap_delta", GO_HEAP, None, None),
    (
        "pkg/pprof/testdata/profile_java",
        ["process_cpu:cpu:nanoseconds:cpu:nanoseconds"],
        None,
        None,
    ),
    (T + "cpu-exemplars.pb.gz", GO_CPU, None, None),
    (T + "cpu.pb.gz", GO_CPU, None, None),
    (
        T + "cpu-js.pb.gz",
        ["wall:sample:count:wall:microseconds", "wall:wall:microseconds:wall:microseconds"],
        None,
        None,
    ),
    (T + "heap.pb.gz", GO_HEAP, None, None),
    (
        T + "heap-js.pprof",
        ["memory:objects:count:space:bytes", "memory:space:bytes:space:bytes"],
        None,
        None,
    ),
    (
        T + "nodejs-heap.pb.gz",
        [
            "memory:inuse_objects:count:inuse_space:bytes",
            "memory:inuse_space:bytes:inuse_space:bytes",
        ],
        None,
        None,
    ),
    (
        T + "nodejs-wall.pb.gz",
        ["wall:samples:count:wall:microseconds", "wall:wall:microseconds:wall:microseconds"],
        None,
        None,
    ),
    (T + "req_2.pprof", ["goroutines:goroutine:count:goroutine:count"], T + "req_2.st.json", None),
    (
        T + "req_3.pprof",
        ["block:contentions:count:contentions:count", "block:delay:nanoseconds:contentions:count"],
        T + "req_3.st.json",
        None,
    ),
    (
        T + "req_4.pprof",
        ["mutex:contentions:count:contentions:count", "mutex:delay:nanoseconds:contentions:count"],
        T + "req_4.st.json",
        None,
    ),
    (
        T + "req_5.pprof",
        ["memory:alloc_objects:count:space:bytes", "memory:alloc_space:bytes:space:bytes"],
        T + "req_5.st.json",
        None,
    ),
    (T + "pyspy-1.pb.gz", ["process_cpu:samples:count::milliseconds"], None, "pyspy"),
]
DOTNET = T + "dotnet-pprof-3.pb.gz"
INVALID_UTF8 = T + "invalid_utf8.pb.gz"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(limits=QueryLimits(max_query_length_ms=0, max_query_lookback_ms=None)) as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox, testdata: Path) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=60) as c:
        yield c


def push_body(labels: dict[str, str], raw: bytes) -> bytes:
    from watcher.proto import messages

    request = messages().push.PushRequest()
    series = request.series.add()
    for name, value in labels.items():
        series.labels.add(name=name, value=value)
    series.samples.add(raw_profile=raw, ID=str(uuid.uuid4()))
    return gzip.compress(request.SerializeToString())


def push(client: httpx.Client, labels: dict[str, str], raw: bytes) -> httpx.Response:
    """A Push as pyroscope-rs sends it: gzipped application/proto."""
    return client.post(
        PUSH,
        content=push_body(labels, raw),
        headers={"Content-Type": "application/proto", "Content-Encoding": "gzip"},
    )


def ingest(
    client: httpx.Client, name: str, raw: bytes, st: bytes | None, spy: str | None, **extra: bytes
) -> httpx.Response:
    params = {"name": name, "format": "pprof", "from": "1", "until": "2"}
    if spy:
        params["spyName"] = spy
    if st is None and not extra:
        return client.post("/ingest", params=params, content=raw)
    files: dict[str, Any] = {"profile": ("profile.pprof", raw)}
    if st is not None:
        files["sample_type_config"] = ("sample_type_config.json", st)
    for field, data in extra.items():
        files[field] = (field, data)
    return client.post("/ingest", params=params, files=files)


def types_of(client: httpx.Client, service: str) -> set[str]:
    response = client.post(
        Q + "Series",
        json={
            "matchers": [f'{{service_name="{service}"}}'],
            "labelNames": ["__profile_type__"],
            "start": 1,
            "end": int(time.time() * 1000) + 86_400_000,
        },
    )
    assert response.status_code == 200, response.text
    return {s["labels"][0]["value"] for s in response.json().get("labelsSet", [])}


def merged_profile(client: httpx.Client, service: str, profile_type: str) -> Any:
    from watcher.proto import messages

    request = messages().querier.SelectMergeProfileRequest(
        profile_typeID=profile_type,
        label_selector=f'{{service_name="{service}"}}',
        start=1,
        end=int(time.time() * 1000) + 86_400_000,
    )
    response = client.post(
        Q + "SelectMergeProfile",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/proto"},
    )
    assert response.status_code == 200, response.text
    return parse_pprof(response.content)


def _nonzero(stacks: dict[tuple[str, ...], int]) -> dict[tuple[str, ...], int]:
    return {k: v for k, v in stacks.items() if v}


@pytest.mark.parametrize(
    ("path", "expected", "st", "spy"), ACCEPTED, ids=[c[0].rsplit("/", 1)[1] for c in ACCEPTED]
)
def test_push_real_pprof(
    client: httpx.Client,
    testdata: Path,
    path: str,
    expected: list[str],
    st: str | None,
    spy: str | None,
) -> None:
    raw = (testdata / path).read_bytes()
    service = "push-" + path.rsplit("/", 1)[1]
    name = expected[0].split(":")[0]
    response = push(client, {"__name__": name, "service_name": service}, raw)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/proto"
    assert types_of(client, service) >= set(expected)
    source = parse_pprof(raw)
    for index, profile_type in enumerate(expected):
        merged = merged_profile(client, service, profile_type)
        assert len(merged.sample_types) == 1
        assert merged.sample_types[0] == tuple(profile_type.split(":")[1:3])
        assert _nonzero(merged.stacks(0)) == _nonzero(source.stacks(index))


@pytest.mark.parametrize(
    ("path", "expected", "st", "spy"), ACCEPTED, ids=[c[0].rsplit("/", 1)[1] for c in ACCEPTED]
)
def test_ingest_real_pprof(
    client: httpx.Client,
    testdata: Path,
    path: str,
    expected: list[str],
    st: str | None,
    spy: str | None,
) -> None:
    raw = (testdata / path).read_bytes()
    service = "ingest-" + path.rsplit("/", 1)[1].replace(".", "-")
    config = (testdata / st).read_bytes() if st else None
    response = ingest(client, service + "{env=test}", raw, config, spy)
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert types_of(client, service) >= set(expected)
    source = parse_pprof(raw)
    for index, profile_type in enumerate(expected):
        merged = merged_profile(client, service, profile_type)
        assert len(merged.sample_types) == 1
        if spy is None:  # scripting spies get their function names rewritten
            assert _nonzero(merged.stacks(0)) == _nonzero(source.stacks(index))


def test_dotnet_ingest_accepted_push_refused(client: httpx.Client, testdata: Path) -> None:
    raw = (testdata / DOTNET).read_bytes()
    config = (testdata / (DOTNET.removesuffix(".pb.gz") + ".st.json")).read_bytes()
    response = ingest(client, "dotnet-app", raw, config, "dotnetspy")
    assert response.status_code == 200, response.text
    assert "process_cpu:cpu:nanoseconds::nanoseconds" in types_of(client, "dotnet-app")
    refused = push(client, {"__name__": "process_cpu", "service_name": "dotnet-push"}, raw)
    assert refused.status_code == 400
    assert refused.json() == {"code": "invalid_argument", "message": "function id is 0"}


def test_invalid_utf8_is_refused(client: httpx.Client, testdata: Path) -> None:
    raw = (testdata / INVALID_UTF8).read_bytes()
    response = ingest(client, "bad-utf8", raw, None, None)
    assert response.status_code == 422
    assert response.json()["code"] == "unknown"
    refused = push(client, {"__name__": "process_cpu", "service_name": "bad-utf8"}, raw)
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_argument"
    assert types_of(client, "bad-utf8") == set()


def test_prev_profile_is_refused(client: httpx.Client, testdata: Path) -> None:
    raw = (testdata / T / "cpu.pb.gz").read_bytes()
    response = ingest(client, "old-client", raw, None, None, prev_profile=raw)
    assert response.status_code == 422
    assert response.json()["code"] == "unknown"


def test_push_json_and_errors(client: httpx.Client, testdata: Path) -> None:
    import base64

    raw = (testdata / T / "cpu.pb.gz").read_bytes()
    body = {
        "series": [
            {
                "labels": [
                    {"name": "__name__", "value": "process_cpu"},
                    {"name": "service_name", "value": "json-push"},
                ],
                "samples": [
                    {"rawProfile": base64.b64encode(raw).decode(), "ID": str(uuid.uuid4())}
                ],
            }
        ]
    }
    response = client.post(PUSH, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    assert types_of(client, "json-push") == set(GO_CPU)
    assert client.get(PUSH).status_code == 405
    empty = client.post(PUSH, content=b"", headers={"Content-Type": "application/json"})
    assert empty.status_code == 400
    assert "zero-length payload is not a valid JSON object" in empty.json()["message"]
    nameless = push(client, {"service_name": "nameless"}, raw)
    assert nameless.status_code == 400
    assert nameless.json()["code"] == "invalid_argument"


def test_folded_ingest_and_query(client: httpx.Client) -> None:
    now_s = int(time.time())
    response = client.post(
        "/pyroscope/ingest",
        params={
            "name": "folded-app.cpu{region=eu}",
            "from": str(now_s - 10),
            "until": str(now_s),
            "sampleRate": "100",
        },
        content=b"main;work 3\nmain;io 1\n",
    )
    assert response.status_code == 200, response.text
    got = client.post(
        Q + "SelectMergeStacktraces",
        json={
            "profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
            "labelSelector": '{service_name="folded-app", region="eu"}',
            "start": (now_s - 3600) * 1000,
            "end": (now_s + 60) * 1000,
        },
    ).json()
    # Folded CPU samples at 100 Hz are 10 ms each.
    assert got["flamegraph"]["total"] == str(4 * 10_000_000)
    assert json.dumps(got).count("work") == 1
