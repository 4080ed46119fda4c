"""Authentication on the wire: every auth mode's headers, and the access_command wrapper."""

from __future__ import annotations

import base64
import shlex
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.recording_server import RecordingServer

from watcher.config import Deployment
from watcher.errors import AccessCommandError, QuerierResponseError, ResponseTooLarge
from watcher.querier import QuerierClient
from watcher.querier._wire import profile_json_to_pprof
from watcher.querier.auth import AccessCommandTransport, DeploymentAuth, auth_headers
from watcher.times import TimeRange

from ._profile import PROFILE_JSON
from .conftest import Recorder

RNG = TimeRange(datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 11, tzinfo=UTC))
BODY = '{"start":"1714557600000","end":"1714561200000"}'
TOKEN = "glsa_t0ken-Value-123"
MakeClient = Callable[..., QuerierClient]

#: Headers every request has whatever the auth mode (names lower-cased).
BASE_HEADERS = {
    "host",
    "accept",
    "accept-encoding",
    "connection",
    "user-agent",
    "connect-protocol-version",
    "content-type",
    "content-length",
}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, {}),
        ({"token": TOKEN}, {"authorization": f"Bearer {TOKEN}"}),
        ({"username": "123456", "password": TOKEN}, {"authorization": _basic("123456", TOKEN)}),
        (
            {"username": "123456", "password": "pw", "token": TOKEN},
            {"authorization": _basic("123456", "pw")},
        ),
        ({"username": "only-user"}, {"authorization": _basic("only-user", "")}),
        (
            {"cf_access_client_id": "abc.access", "cf_access_client_secret": TOKEN},
            {"cf-access-client-id": "abc.access", "cf-access-client-secret": TOKEN},
        ),
        (
            {"cf_access_client_id": "abc.access", "cf_access_client_secret": "cfs", "token": TOKEN},
            {
                "authorization": f"Bearer {TOKEN}",
                "cf-access-client-id": "abc.access",
                "cf-access-client-secret": "cfs",
            },
        ),
        ({"tenant_id": "team-a|team-b"}, {"x-scope-orgid": "team-a|team-b"}),
        (
            {"token": TOKEN, "tenant_id": "t1"},
            {"authorization": f"Bearer {TOKEN}", "x-scope-orgid": "t1"},
        ),
    ],
)
def test_auth_modes_send_exactly_their_headers(
    server: RecordingServer,
    make_client: MakeClient,
    settings: dict[str, str],
    expected: dict[str, str],
) -> None:
    """Each mode adds exactly its headers; the body is the same whatever the mode."""
    make_client(**settings).profile_types(RNG)
    request = server.requests[0]
    extra = {k: v for k, v in request.headers.items() if k not in BASE_HEADERS}
    assert extra == expected
    assert request.body == BODY.encode()


def test_auth_objects_hide_secrets(make_client: MakeClient) -> None:
    """The client, its auth and its deployment never show a secret in a repr."""
    client = make_client(token=TOKEN)
    dep = client.deployment
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(DeploymentAuth(dep))
    assert TOKEN not in repr(dep)
    assert auth_headers(dep) == {"Authorization": f"Bearer {TOKEN}"}


# --------------------------------------------------------------------------- access_command


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def forwarder(tmp_path: Path) -> Path:
    """A wrapper that records its argv (NUL-separated), drops its own 5 args, then runs curl."""
    return _script(
        tmp_path / "wrapper",
        'record="$1"\nprintf \'%s\\0\' "$@" > "$record"\nshift 5\nexec curl "$@"\n',
    )


def _read_argv(path: Path) -> list[str]:
    return [arg.decode() for arg in path.read_bytes().split(b"\0")[:-1]]


def _access_client(
    command: str, recorder: Recorder, url: str = "http://127.0.0.1:1", **kw: object
) -> QuerierClient:
    deployment = Deployment(name="wrapped", url=url, access_command=command, **kw)  # type: ignore[arg-type]
    return QuerierClient(deployment, on_retry=recorder.on_retry, sleep=recorder.sleep)


def test_access_command_runs_argv_without_a_shell(
    server: RecordingServer, recorder: Recorder, forwarder: Path, tmp_path: Path
) -> None:
    """The command is split like a shell would, run with argv, and metacharacters stay literal."""
    record = tmp_path / "argv"
    pwned = tmp_path / "pwned"
    tricky = [f"a b; touch {pwned}", f"$(touch {pwned})", "`id`", f">{pwned}"]
    command = " ".join(shlex.quote(a) for a in [str(forwarder), str(record), *tricky])
    server.add(200, {"names": ["checkout"]})
    with _access_client(command, recorder, server.url, tenant_id="team-a") as client:
        assert client.label_values("service_name", RNG) == ["checkout"]
    body = '{"name":"service_name","start":"1714557600000","end":"1714561200000"}'
    url = f"{server.url}/querier.v1.QuerierService/LabelValues"
    assert _read_argv(record) == [
        str(record),
        *tricky,
        url,
        "-s",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-H",
        "X-Scope-OrgID: team-a",
        "-d",
        body,
    ]
    assert not pwned.exists()
    request = server.requests[0]
    assert (request.method, request.path) == ("POST", "/querier.v1.QuerierService/LabelValues")
    assert request.header("Content-Type") == "application/json"
    assert request.header("X-Scope-OrgID") == "team-a"
    assert request.body == body.encode()


def test_access_command_exact_argv_without_tenant(
    server: RecordingServer, recorder: Recorder, forwarder: Path, tmp_path: Path
) -> None:
    """Without a tenant the argv is exactly <command...> <url> -s -X POST -H ... -d <body>."""
    record = tmp_path / "argv"
    command = f"{forwarder} {record} one two three four"
    with _access_client(command, recorder, server.url) as client:
        client.get_profile_stats()
    assert _read_argv(record)[5:] == [
        f"{server.url}/querier.v1.QuerierService/GetProfileStats",
        "-s",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{}",
    ]


def test_access_command_never_gzips_and_speaks_json_for_pprof(
    server: RecordingServer, recorder: Recorder, forwarder: Path, tmp_path: Path
) -> None:
    """Large bodies go uncompressed; SelectMergeProfile goes as JSON and comes back as pprof."""
    command = f"{forwarder} {tmp_path / 'argv'} 1 2 3 4"
    matchers = [f'{{service_name="svc-{i}"}}' for i in range(100)]
    server.add(200, {})
    server.add(200, PROFILE_JSON)
    with _access_client(command, recorder, server.url) as client:
        client.label_names(RNG, matchers)
        pprof = client.select_merge_profile("cpu", None, RNG)
    assert server.requests[0].header("Content-Encoding") is None
    assert server.requests[0].json()["matchers"] == matchers
    assert server.requests[1].header("Content-Type") == "application/json"
    assert (
        server.requests[1].json()["profileTypeID"] == "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    )
    assert pprof == profile_json_to_pprof(PROFILE_JSON)


def test_access_command_failure_reports_redacted_stderr(tmp_path: Path, recorder: Recorder) -> None:
    """A non-zero exit carries stderr with tokens, URL credentials and queries removed."""
    script = _script(
        tmp_path / "fail",
        'echo "auth failed for key $2" >&2\n'
        'echo "GET https://bob:hunter2@edge.example.com/x?sig=abc123 -> 403" >&2\n'
        'echo "Authorization: Bearer eyJhbGciOi.payload.sig" >&2\n'
        "exit 3\n",
    )
    command = f"{script} --service-token-secret {TOKEN}"
    with pytest.raises(AccessCommandError) as info, _access_client(command, recorder) as client:
        client.label_names(RNG)
    message = str(info.value)
    assert message.startswith("access_command exited with status 3; stderr: auth failed for key ")
    assert "[REDACTED]" in message
    assert "https://edge.example.com/x -> 403" in message
    for secret in (TOKEN, "hunter2", "abc123", "eyJhbGciOi"):
        assert secret not in message
    assert recorder.sleeps == []


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("<html><body>Sign in</body></html>", "printed something that is not JSON: '<html>"),
        ("", "printed nothing on stdout"),
    ],
)
def test_access_command_unparseable_output(
    tmp_path: Path, recorder: Recorder, stdout: str, expected: str
) -> None:
    """Output that is not JSON is an AccessCommandError with the stderr attached."""
    script = _script(tmp_path / "w", f"printf '%s' '{stdout}'\necho 'curl: (22) 403' >&2\n")
    with pytest.raises(AccessCommandError) as info, _access_client(str(script), recorder) as client:
        client.label_names(RNG)
    assert expected in str(info.value)
    assert str(info.value).endswith("; stderr: curl: (22) 403")


def test_access_command_connect_errors_on_stdout(tmp_path: Path, recorder: Recorder) -> None:
    """A Connect error body on stdout becomes QuerierResponseError with the code's status."""
    script = _script(
        tmp_path / "w", """echo '{"code":"unauthenticated","message":"no org id"}'\n"""
    )
    with (
        pytest.raises(QuerierResponseError) as info,
        _access_client(str(script), recorder) as client,
    ):
        client.label_names(RNG)
    assert (info.value.code, info.value.status, info.value.message) == (
        "unauthenticated",
        401,
        "no org id",
    )


def test_access_command_unavailable_is_retried(tmp_path: Path, recorder: Recorder) -> None:
    """``unavailable`` maps to 503 and is retried like an HTTP 503."""
    count = tmp_path / "count"
    script = _script(
        tmp_path / "w",
        f"echo x >> {count}\n" """echo '{"code":"unavailable","message":"busy"}'\n""",
    )
    with (
        pytest.raises(QuerierResponseError) as info,
        _access_client(str(script), recorder) as client,
    ):
        client.label_names(RNG)
    assert info.value.status == 503
    assert len(count.read_text().split()) == 3
    assert len(recorder.sleeps) == 2


def test_access_command_missing_program(recorder: Recorder, tmp_path: Path) -> None:
    """A program that does not exist is named in the error."""
    missing = tmp_path / "no-such-wrapper"
    with (
        pytest.raises(AccessCommandError, match="no-such-wrapper' was not found"),
        _access_client(f"{missing} access curl", recorder) as client,
    ):
        client.label_names(RNG)


def test_access_command_timeout_kills_the_wrapper_and_its_children(
    tmp_path: Path, recorder: Recorder
) -> None:
    """Past the timeout the wrapper (and a child holding stdout) is killed."""
    script = _script(tmp_path / "w", "sleep 30\necho '{}'\n")
    with (
        pytest.raises(AccessCommandError, match=r"did not finish within 0.2s"),
        _access_client(str(script), recorder, timeout=0.2) as client,
    ):
        client.label_names(RNG)


def test_access_command_output_limit(tmp_path: Path, recorder: Recorder) -> None:
    """stdout beyond max_response_bytes is refused while reading."""
    script = _script(tmp_path / "w", "head -c 300000 /dev/zero | tr '\\0' 'a'\n")
    with (
        pytest.raises(ResponseTooLarge, match="more than 1000 bytes"),
        _access_client(str(script), recorder, max_response_bytes=1000) as client,
    ):
        client.label_names(RNG)


def test_access_command_transport_refuses_proto_and_huge_bodies() -> None:
    """The wrapper takes JSON as one argument: proto bodies and very large bodies are refused."""
    transport = AccessCommandTransport("true")
    with pytest.raises(AccessCommandError, match="only send JSON"):
        transport.argv("http://x/m", b"\x08\x01", {"Content-Type": "application/proto"})
    huge = b"{" + b" " * 200_000 + b"}"
    with pytest.raises(AccessCommandError, match="too large"):
        transport.argv("http://x/m", huge, {"Content-Type": "application/json"})
    assert "true" in repr(transport)


def test_wrapper_environment_is_inherited(
    tmp_path: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wrapper runs with the caller's environment (cloudflared needs its own settings)."""
    monkeypatch.setenv("WRAPPER_REPLY", '{"names":["from-env"]}')
    script = _script(tmp_path / "w", 'printf "%s" "$WRAPPER_REPLY"\n')
    with _access_client(str(script), recorder) as client:
        assert client.label_names(RNG) == ["from-env"]
