"""Fault injection, required credentials and the control API, observed by httpx clients."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from watcher.sandbox import AuthConfig, Fault, FaultPlan, Sandbox

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
Q = "/querier.v1.QuerierService/"
NOW = (int(time.time() * 1000) // 1000) * 1000
MERGE = {"profileTypeID": CPU, "labelSelector": "{}", "start": NOW - 3_600_000, "end": NOW}


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
    """The module's server with no faults and one seeded profile, for each test."""
    shared_sandbox.reset()
    shared_sandbox.store.add(
        {"service_name": "api"},
        CPU,
        NOW - 60_000,
        {("main", f"handler{i}", "work"): i + 1 for i in range(200)},
    )
    return shared_sandbox


@pytest.fixture
def client(sandbox: Sandbox, shared_client: httpx.Client) -> httpx.Client:
    return shared_client


def merge(client: httpx.Client, **kwargs: Any) -> httpx.Response:
    return client.post(Q + "SelectMergeStacktraces", json=MERGE, **kwargs)


# ----------------------------------------------------------------------------- plan object


def test_plan_rules_counts_and_precedence() -> None:
    plan = FaultPlan()
    assert plan.take("Diff") is None
    plan.set("*", Fault(status=500))
    plan.set("Diff", Fault(status=503, count=2))
    assert plan.take("Diff") == Fault(status=503, count=2)
    assert plan.take("Diff") == Fault(status=503, count=1)
    assert plan.take("Diff") == Fault(status=500)  # the counted rule is used up
    assert plan.take("LabelNames") == Fault(status=500)
    assert plan.hits() == {"Diff": 2, "*": 2}
    plan.set("*", None)
    assert plan.take("LabelNames") is None
    assert not plan


def test_plan_from_dict_validates() -> None:
    plan = FaultPlan.from_dict({"Push": {"status": 429, "retry_after": 2}, "*": {"latency": 0.5}})
    assert plan.to_dict() == {"Push": {"status": 429, "retry_after": 2}, "*": {"latency": 0.5}}
    with pytest.raises(ValueError, match="unknown fault keys"):
        FaultPlan.from_dict({"Push": {"stauts": 500}})
    with pytest.raises(ValueError, match="status"):
        Fault(status=200)
    with pytest.raises(ValueError, match="count"):
        Fault(status=500, count=0)


# ----------------------------------------------------------------------------- each kind


def test_latency(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.set("SelectMergeStacktraces", Fault(latency=5, count=1))
    # The client gives up long before the injected delay ends.
    with pytest.raises(httpx.ReadTimeout):
        merge(client, timeout=httpx.Timeout(30, read=0.3))
    # Only that one request was delayed; the next answers normally.
    assert merge(client).status_code == 200


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "resource_exhausted"),
        (500, "internal"),
        (502, "unavailable"),
        (503, "unavailable"),
        (504, "deadline_exceeded"),
    ],
)
def test_error_status_with_connect_body(
    sandbox: Sandbox, client: httpx.Client, status: int, code: str
) -> None:
    retry = 2 if status == 429 else None
    sandbox.faults.set("SelectMergeStacktraces", Fault(status=status, retry_after=retry))
    response = merge(client)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == code
    assert response.json()["message"]
    if status == 429:
        assert response.headers["retry-after"] == "2"
    else:
        assert "retry-after" not in response.headers
    # Other methods are untouched.
    assert client.post(Q + "GetProfileStats", json={}).status_code == 200


def test_custom_code_and_message(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.set("*", Fault(status=503, code="unavailable", message="down for maintenance"))
    response = client.post(Q + "LabelNames", json={"start": 1, "end": 2})
    assert (response.status_code, response.json()) == (
        503,
        {"code": "unavailable", "message": "down for maintenance"},
    )


def test_connection_reset_by_peer(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.set("SelectMergeStacktraces", Fault(reset=True, count=2))
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        merge(client)
    # A raw socket sees the RST itself.
    host, port = sandbox.url.removeprefix("http://").split(":")
    body = json.dumps(MERGE).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST " + Q.encode() + b"SelectMergeStacktraces HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        with pytest.raises(ConnectionResetError):
            data = sock.recv(65536)
            # Some kernels report the RST on the second read.
            assert data == b""
            sock.recv(65536)
    assert merge(client).status_code == 200


def test_truncated_body(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.set("SelectMergeStacktraces", Fault(truncate=True, count=1))
    with pytest.raises(httpx.RemoteProtocolError):
        merge(client, headers={"Accept-Encoding": "identity"})
    assert merge(client).status_code == 200


def test_truncated_body_headers_promise_more(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.set("SelectMergeStacktraces", Fault(truncate=True, count=1))
    with client.stream("POST", Q + "SelectMergeStacktraces", json=MERGE) as response:
        promised = int(response.headers["content-length"])
        received = bytearray()
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                received += chunk
    assert 0 < len(received) < promised


def test_malformed_body(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.set("SelectMergeStacktraces", Fault(malformed=True))
    response = merge(client)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_malformed_proto_body(sandbox: Sandbox, client: httpx.Client) -> None:
    from watcher.errors import DecodeError
    from watcher.proto import from_binary, message_for

    sandbox.faults.set("GetProfileStats", Fault(malformed=True))
    response = client.post(
        Q + "GetProfileStats", content=b"", headers={"Content-Type": "application/proto"}
    )
    assert response.status_code == 200
    with pytest.raises(DecodeError):
        from_binary(response.content, message_for("GetProfileStats", False))


def test_slow_body_arrives_in_pieces(sandbox: Sandbox, client: httpx.Client) -> None:
    expected = merge(client).json()
    sandbox.faults.set("SelectMergeStacktraces", Fault(slow_body=1.0))
    chunks: list[bytes] = []
    with client.stream(
        "POST", Q + "SelectMergeStacktraces", json=MERGE, headers={"Accept-Encoding": "identity"}
    ) as response:
        for chunk in response.iter_raw():
            chunks.append(chunk)
    assert json.loads(b"".join(chunks)) == expected
    assert len(chunks) > 1


def test_count_limited_then_healthy(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.set("*", Fault(status=503, count=3))
    statuses = [client.post(Q + "GetProfileStats", json={}).status_code for _ in range(5)]
    assert statuses == [503, 503, 503, 200, 200]


def test_faults_apply_to_push_ingest_and_ready(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.set("Push", Fault(status=429, retry_after=1))
    sandbox.faults.set("ingest", Fault(status=502))
    sandbox.faults.set("ready", Fault(status=503))
    assert client.post("/push.v1.PusherService/Push", json={}).status_code == 429
    assert client.post("/ingest", params={"name": "x"}, content=b"a 1").status_code == 502
    assert client.get("/ready").status_code == 503
    assert client.post(Q + "GetProfileStats", json={}).status_code == 200


# ----------------------------------------------------------------------------- auth


def test_bearer_auth() -> None:
    with (
        Sandbox(auth=AuthConfig(bearer_token="s3cret-token")) as sb,
        httpx.Client(base_url=sb.url) as client,
    ):
        missing = client.post(Q + "GetProfileStats", json={})
        assert missing.status_code == 401
        assert missing.json() == {"code": "unauthenticated", "message": "missing credentials"}
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = client.post(
            Q + "GetProfileStats", json={}, headers={"Authorization": "Bearer nope"}
        )
        assert (wrong.status_code, wrong.json()["message"]) == (401, "invalid credentials")
        good = client.post(
            Q + "GetProfileStats", json={}, headers={"Authorization": "Bearer s3cret-token"}
        )
        assert good.status_code == 200
        log = sb.requests()
        assert [e.auth for e in log] == ["missing", "invalid", "ok"]
        assert log[-1].auth_scheme == "Bearer"
        assert "authorization" in log[-1].header_names


def test_basic_auth() -> None:
    with (
        Sandbox(auth=AuthConfig(basic=("12345", "glc_pw"))) as sb,
        httpx.Client(base_url=sb.url) as client,
    ):
        assert (
            client.post(Q + "GetProfileStats", json={}, auth=("12345", "glc_pw")).status_code == 200
        )
        bad = client.post(Q + "GetProfileStats", json={}, auth=("12345", "wrong"))
        assert bad.status_code == 401
        assert bad.headers["www-authenticate"].startswith("Basic")
        garbage = client.post(
            Q + "GetProfileStats", json={}, headers={"Authorization": "Basic !!!"}
        )
        assert garbage.status_code == 401


def test_cf_access_needs_both_headers() -> None:
    auth = AuthConfig(cf_access=("client.access", "cf-secret"))
    with Sandbox(auth=auth) as sb, httpx.Client(base_url=sb.url) as client:
        both = {"CF-Access-Client-Id": "client.access", "CF-Access-Client-Secret": "cf-secret"}
        assert client.post(Q + "GetProfileStats", json={}, headers=both).status_code == 200
        only_id = {"CF-Access-Client-Id": "client.access"}
        assert client.post(Q + "GetProfileStats", json={}, headers=only_id).status_code == 401
        wrong = {**both, "CF-Access-Client-Secret": "nope"}
        assert client.post(Q + "GetProfileStats", json={}, headers=wrong).status_code == 401
        assert [e.cf_access for e in sb.requests()] == [True, False, True]


def test_any_configured_credential_is_enough() -> None:
    auth = AuthConfig(bearer_token="tok", basic=("u", "p"))
    with Sandbox(auth=auth) as sb, httpx.Client(base_url=sb.url) as client:
        assert client.post(Q + "GetProfileStats", json={}, auth=("u", "p")).status_code == 200
        bearer = {"Authorization": "Bearer tok"}
        assert client.post(Q + "GetProfileStats", json={}, headers=bearer).status_code == 200
        assert client.post(Q + "GetProfileStats", json={}).status_code == 401


def test_request_log_never_holds_secrets() -> None:
    auth = AuthConfig(
        bearer_token="tok-SECRET-1",
        basic=("user", "pw-SECRET-2"),
        cf_access=("cf-id", "cf-SECRET-3"),
    )
    with Sandbox(auth=auth) as sb, httpx.Client(base_url=sb.url) as client:
        client.post(
            Q + "GetProfileStats", json={}, headers={"Authorization": "Bearer tok-SECRET-1"}
        )
        client.post(Q + "GetProfileStats", json={}, auth=("user", "pw-SECRET-2"))
        client.post(
            Q + "GetProfileStats",
            json={},
            headers={"CF-Access-Client-Id": "cf-id", "CF-Access-Client-Secret": "cf-SECRET-3"},
        )
        client.post(
            Q + "GetProfileStats", json={}, headers={"Authorization": "Bearer wrong-SECRET-4"}
        )
        dumped = client.get("/_sandbox/requests").text
    assert "SECRET" not in dumped
    assert base64.b64encode(b"user:pw-SECRET-2").decode() not in dumped
    entries = json.loads(dumped)["requests"]
    assert [e["auth"] for e in entries] == ["ok", "ok", "ok", "invalid"]


def test_control_api_needs_no_credentials() -> None:
    with Sandbox(auth=AuthConfig(bearer_token="t")) as sb, httpx.Client(base_url=sb.url) as client:
        assert client.post("/_sandbox/reset", json={}).status_code == 200


# ----------------------------------------------------------------------------- control API


def test_control_faults_switch_at_run_time(client: httpx.Client) -> None:
    plan = {"SelectMergeStacktraces": {"status": 503, "count": 1}, "LabelNames": {"status": 500}}
    assert client.post("/_sandbox/faults", json=plan).json() == {"faults": plan}
    assert merge(client).status_code == 503
    assert merge(client).status_code == 200
    shown = client.get("/_sandbox/faults").json()
    assert shown == {
        "faults": {"LabelNames": {"status": 500}},
        "hits": {"SelectMergeStacktraces": 1},
    }
    assert client.post("/_sandbox/faults", json={}).json() == {"faults": {}}
    assert client.post(Q + "LabelNames", json={"start": 1, "end": 2}).status_code == 200
    bad = client.post("/_sandbox/faults", json={"x": {"nope": 1}})
    assert bad.status_code == 400


def test_control_stacks_reset_stats_and_requests(client: httpx.Client) -> None:
    record = {
        "labels": {"service_name": "ctl"},
        "profile_type": CPU,
        "timestamp_ms": NOW - 1000,
        "stacks": "main;work 7\nmain;io 3\n",
    }
    assert client.post("/_sandbox/stacks", json={"records": [record]}).json() == {"profiles": 1}
    got = client.post(
        Q + "SelectMergeStacktraces", json={**MERGE, "labelSelector": '{service_name="ctl"}'}
    ).json()
    assert got["flamegraph"]["total"] == "10"
    stats = client.get("/_sandbox/stats").json()
    assert stats["profiles"] == 2
    log = client.get("/_sandbox/requests").json()["requests"]
    assert [e["path"] for e in log][-3:] == [
        "/_sandbox/stacks",
        Q + "SelectMergeStacktraces",
        "/_sandbox/stats",
    ]
    assert log[-2]["rpc"] == "SelectMergeStacktraces" and log[-2]["status"] == 200
    assert client.post("/_sandbox/reset", json={}).status_code == 200
    assert client.get("/_sandbox/stats").json()["profiles"] == 0
    bad = client.post("/_sandbox/stacks", json={"records": [{"labels": {}}]})
    assert bad.status_code == 400
    assert client.get("/_sandbox/nope").status_code == 404


def test_control_load_fleet(client: httpx.Client) -> None:
    start = "2030-01-01T00:00:00+00:00"
    spec = {"start": start, "end": "2030-01-01T01:00:00+00:00", "services": ["a", "b"], "step": 600}
    got = client.post("/_sandbox/load", json=spec)
    assert got.status_code == 200, got.text
    assert got.json() == {"profiles": 12}
    values = client.post(
        Q + "LabelValues",
        json={"name": "service_name", "start": 1_893_456_000_000, "end": 1_893_459_600_000},
    ).json()
    assert values == {"names": ["a", "b"]}
    assert client.post("/_sandbox/load", json={"start": "nonsense"}).status_code == 400


def test_control_from_another_process(sandbox: Sandbox) -> None:
    """A test running the CLI as a subprocess drives the sandbox over HTTP only."""
    code = (
        "import httpx, sys\n"
        "url = sys.argv[1]\n"
        "httpx.post(url + '/_sandbox/faults', json={'GetProfileStats': {'status': 504}})\n"
        "r = httpx.post(url + '/querier.v1.QuerierService/GetProfileStats', json={})\n"
        "print(r.status_code, r.json()['code'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, sandbox.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.split() == ["504", "deadline_exceeded"]
    assert sandbox.faults.to_dict() == {"GetProfileStats": {"status": 504}}
