"""The socket transports against the sandbox: faults, auth modes, limits, TLS and the choice.

Every test here runs with ``httpx`` (the daemon's transport), ``socket`` (the command
line's, plain sockets for ``http://``) and ``stdlib`` (``http.client``, the command line's for
``https://``), through the ``http`` fixture: retries, errors and limits live above the
transport, so all must give the same results. HTTP framings the sandbox never sends
(chunked, close-delimited, interim answers, broken framing) come from a raw socket server.
"""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import ssl
import subprocess
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from watcher.config import Deployment
from watcher.errors import DecodeError, QuerierResponseError, QuerierUnavailable, ResponseTooLarge
from watcher.flamegraph import FlameGraph
from watcher.querier import QuerierClient, RetryPolicy
from watcher.querier.auth import AccessCommandTransport
from watcher.querier.httpx_transport import HttpxTransport
from watcher.querier.socket_transport import SocketTransport
from watcher.querier.stdlib_transport import StdlibTransport
from watcher.querier.transport import HttpKind, open_transport
from watcher.sandbox import Sandbox
from watcher.sandbox.faults import AuthConfig, Fault
from watcher.times import TimeRange

from .conftest import Recorder

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
SMS = "SelectMergeStacktraces"
TOKEN = "glsa_sandbox-T0ken"
STACKS = {("main", "handle", "parse"): 30, ("main", "handle", "render"): 20}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A sandbox holding one CPU profile of ``checkout``, a minute old."""
    with Sandbox() as box:
        box.store.add({"service_name": "checkout"}, CPU, box.now_ms() - 60_000, STACKS)
        yield box


def _window(box: Sandbox) -> TimeRange:
    end = datetime.fromtimestamp(box.now_ms() / 1000, UTC)
    return TimeRange(end - timedelta(hours=1), end)


def _client(url: str, http: HttpKind, recorder: Recorder, **kw: Any) -> QuerierClient:
    gzip_threshold = kw.pop("gzip_threshold", 1024)
    return QuerierClient(
        Deployment(name="box", url=url, **kw),
        http=http,
        retry=RetryPolicy(jitter=0.0),
        on_retry=recorder.on_retry,
        sleep=recorder.sleep,
        gzip_threshold=gzip_threshold,
    )


def _flamegraph(client: QuerierClient, box: Sandbox) -> FlameGraph:
    return client.select_merge_stacktraces(CPU, '{service_name="checkout"}', _window(box))


def _total(graph: FlameGraph) -> int:
    return graph.to_tree().total


# --------------------------------------------------------------------------- the happy path


def test_flamegraph_with_gzip_both_ways(sandbox: Sandbox, http: HttpKind, recorder: Recorder):
    """A gzipped request is read by the server and its gzipped answer decoded."""
    with _client(sandbox.url, http, recorder, gzip_threshold=0) as client:
        assert _total(_flamegraph(client, sandbox)) == 50
    entry = sandbox.requests()[-1]
    assert entry.content_encoding == "gzip"
    assert entry.accept_encoding == "gzip"
    assert recorder.sleeps == []


def test_one_client_makes_several_calls(sandbox: Sandbox, http: HttpKind, recorder: Recorder):
    """Calls after the first reuse the connection, or open another: both work."""
    with _client(sandbox.url, http, recorder) as client:
        for _ in range(3):
            assert _total(_flamegraph(client, sandbox)) == 50
        assert client.label_values("service_name", _window(sandbox)) == ["checkout"]


# --------------------------------------------------------------------------- faults


def test_429_waits_for_retry_after(sandbox: Sandbox, http: HttpKind, recorder: Recorder):
    sandbox.faults.set(SMS, Fault(status=429, retry_after=2, count=1))
    with _client(sandbox.url, http, recorder) as client:
        assert _total(_flamegraph(client, sandbox)) == 50
    assert recorder.sleeps == [2.0]
    assert [(e.status, e.attempt) for e in recorder.events] == [(429, 1)]


def test_5xx_is_retried_with_backoff(sandbox: Sandbox, http: HttpKind, recorder: Recorder):
    sandbox.faults.set(SMS, Fault(status=503, count=2))
    with _client(sandbox.url, http, recorder) as client:
        assert _total(_flamegraph(client, sandbox)) == 50
    assert recorder.sleeps == [0.5, 1.0]


def test_500_is_not_retried(sandbox: Sandbox, http: HttpKind, recorder: Recorder):
    sandbox.faults.set(SMS, Fault(status=500))
    with pytest.raises(QuerierResponseError) as info, _client(sandbox.url, http, recorder) as c:
        _flamegraph(c, sandbox)
    assert (info.value.status, info.value.code) == (500, "internal")
    assert "internal error (injected)" in str(info.value)
    assert recorder.sleeps == []


def test_reset_connection_is_retried(sandbox: Sandbox, http: HttpKind, recorder: Recorder):
    sandbox.faults.set(SMS, Fault(reset=True, count=1))
    with _client(sandbox.url, http, recorder) as client:
        assert _total(_flamegraph(client, sandbox)) == 50
    assert len(recorder.sleeps) == 1


def test_truncated_body_is_retried_then_reported(
    sandbox: Sandbox, http: HttpKind, recorder: Recorder
):
    """A body cut short is a failed connection: tried again, then reported on one line."""
    sandbox.faults.set(SMS, Fault(truncate=True, count=1))
    with _client(sandbox.url, http, recorder) as client:
        assert _total(_flamegraph(client, sandbox)) == 50
    assert len(recorder.sleeps) == 1
    sandbox.faults.set(SMS, Fault(truncate=True))
    with pytest.raises(QuerierUnavailable) as info, _client(sandbox.url, http, recorder) as c:
        _flamegraph(c, sandbox)
    message = str(info.value)
    assert message.startswith(f"{SMS}: connection to {sandbox.url}/")
    assert message.endswith("(after 3 attempts)")
    assert "\n" not in message


def test_garbled_body_is_a_decode_error(sandbox: Sandbox, http: HttpKind, recorder: Recorder):
    sandbox.faults.set(SMS, Fault(malformed=True))
    with pytest.raises(DecodeError, match="not JSON"), _client(sandbox.url, http, recorder) as c:
        _flamegraph(c, sandbox)
    assert recorder.sleeps == []


def test_slow_body_within_the_timeout_arrives(sandbox: Sandbox, http: HttpKind, recorder: Recorder):
    sandbox.faults.set(SMS, Fault(slow_body=0.3))
    with _client(sandbox.url, http, recorder, timeout=30) as client:
        assert _total(_flamegraph(client, sandbox)) == 50


def test_no_answer_within_the_timeout_is_not_retried(
    sandbox: Sandbox, http: HttpKind, recorder: Recorder
):
    sandbox.faults.set(SMS, Fault(latency=2.0))
    with (
        pytest.raises(QuerierUnavailable) as info,
        _client(sandbox.url, http, recorder, timeout=0.2) as client,
    ):
        _flamegraph(client, sandbox)
    assert info.value.timeout is True
    assert "within 0.2s (the deployment's timeout)" in str(info.value)
    assert recorder.sleeps == []


def test_response_size_limit(sandbox: Sandbox, http: HttpKind, recorder: Recorder):
    with (
        pytest.raises(ResponseTooLarge, match="larger than 100 bytes"),
        _client(sandbox.url, http, recorder, max_response_bytes=100) as client,
    ):
        _flamegraph(client, sandbox)


# --------------------------------------------------------------------------- auth modes


AUTH_MODES = {
    "bearer": (AuthConfig(bearer_token=TOKEN), {"token": TOKEN}),
    "basic": (AuthConfig(basic=("12345", TOKEN)), {"username": "12345", "password": TOKEN}),
    "cf-access": (
        AuthConfig(cf_access=("abc.access", TOKEN)),
        {"cf_access_client_id": "abc.access", "cf_access_client_secret": TOKEN},
    ),
}


@pytest.mark.parametrize("mode", sorted(AUTH_MODES))
def test_auth_modes(mode: str, http: HttpKind, recorder: Recorder):
    """Each mode's credentials are accepted; wrong ones are a one-line error without them."""
    required, settings = AUTH_MODES[mode]
    with Sandbox(auth=required) as box:
        box.store.add({"service_name": "checkout"}, CPU, box.now_ms() - 60_000, STACKS)
        with _client(box.url, http, recorder, **settings) as client:
            assert _total(_flamegraph(client, box)) == 50
        assert box.requests()[-1].auth == "ok"
        wrong = {k: (v.replace("T0ken", "wrong") if v == TOKEN else v) for k, v in settings.items()}
        with (
            pytest.raises(QuerierResponseError) as info,
            _client(box.url, http, recorder, **wrong) as client,
        ):
            _flamegraph(client, box)
    assert info.value.code == "unauthenticated"
    assert "glsa_sandbox-wrong" not in str(info.value)
    assert "\n" not in str(info.value)


def test_access_command_is_used_whatever_the_socket_transport(
    sandbox: Sandbox, http: HttpKind, recorder: Recorder, tmp_path: Path
):
    """A deployment with access_command always goes through its wrapper (here, curl)."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    wrapper = tmp_path / "wrapper"
    wrapper.write_text('#!/bin/sh\nexec curl "$@"\n')
    wrapper.chmod(0o755)
    dep = Deployment(name="box", url=sandbox.url, access_command=str(wrapper))
    with QuerierClient(dep, http=http, sleep=recorder.sleep) as client:
        assert isinstance(client._transport, AccessCommandTransport)
        assert _total(_flamegraph(client, sandbox)) == 50
    assert sandbox.requests()[-1].user_agent.startswith("curl/")


# --------------------------------------------------------------------------- the choice


def test_the_transport_is_chosen_in_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """socket (http://) or http.client (https://) for one-shot use, httpx otherwise, and
    httpx when a proxy is set."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    dep = Deployment(name="box", url="http://127.0.0.1:1")
    secure = Deployment(name="box", url="https://127.0.0.1:1")
    assert isinstance(open_transport(dep, "socket"), SocketTransport)
    assert isinstance(open_transport(secure, "socket"), StdlibTransport)
    assert isinstance(open_transport(dep, "stdlib"), StdlibTransport)
    assert isinstance(open_transport(dep, "httpx"), HttpxTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert isinstance(open_transport(dep, "socket"), HttpxTransport)
    assert isinstance(open_transport(dep, "stdlib"), HttpxTransport)


# --------------------------------------------------------------------------- TLS


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A refused handshake is expected here; keep the output quiet."""


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = json.dumps({"names": ["over-tls"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate; its URL and the cert."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate for the TLS tests")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _TLSServer(("127.0.0.1", 0), _Answer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


RNG = TimeRange(datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 11, tzinfo=UTC))


def test_tls_with_the_deployment_ca_file(
    tls_server: tuple[str, Path], http: HttpKind, recorder: Recorder
):
    url, cert = tls_server
    with _client(url, http, recorder, ca_file=cert) as client:
        assert client.label_names(RNG) == ["over-tls"]


def test_tls_unknown_authority_is_refused_at_once(
    tls_server: tuple[str, Path], http: HttpKind, recorder: Recorder
):
    url, _cert = tls_server
    with pytest.raises(QuerierUnavailable) as info, _client(url, http, recorder) as client:
        client.label_names(RNG)
    message = str(info.value)
    assert "TLS handshake with https://127.0.0.1" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert recorder.sleeps == []


def test_tls_without_verification(tls_server: tuple[str, Path], http: HttpKind, recorder: Recorder):
    url, _cert = tls_server
    with _client(url, http, recorder, verify_tls=False) as client:
        assert client.label_names(RNG) == ["over-tls"]


# --------------------------------------------------------------------------- raw framing


class RawServer:
    """A socket server on 127.0.0.1 that answers each request with scripted raw bytes.

    ``answers`` are used in order, one per request; an answer ending the connection
    (``close=True``) closes the socket after it is sent. Requests are read by their
    ``Content-Length``; what each carried is kept in ``requests``.
    """

    def __init__(self) -> None:
        self.answers: list[tuple[bytes, bool]] = []
        self.requests: list[bytes] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def add(self, raw: bytes, *, close: bool = False) -> None:
        with self._lock:
            self.answers.append((raw, close))

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                with self._lock:
                    self.requests.append(head + b"\r\n\r\n" + buffer[:length])
                    raw, close = self.answers.pop(0) if self.answers else (_ok(b"{}"), False)
                buffer = buffer[length:]
                conn.sendall(raw)
                if close:
                    return

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join()


def _ok(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 200 OK\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _chunks(body: bytes, size: int = 7) -> bytes:
    parts = [
        f"{len(body[i : i + size]):x}\r\n".encode() + body[i : i + size] + b"\r\n"
        for i in range(0, len(body), size)
    ]
    return b"".join(parts)


NAMES = {"names": [f"label_{i}" for i in range(300)]}
NAMES_JSON = json.dumps(NAMES).encode()


@pytest.fixture
def raw() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.stop()


def _raw_client(raw: RawServer, http: HttpKind, recorder: Recorder, **kw: Any) -> QuerierClient:
    return _client(raw.url, http, recorder, **kw)


FRAMINGS = {
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + _chunks(NAMES_JSON)
    + b"0\r\n\r\n",
    "chunked with extensions and trailers": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
    + _chunks(NAMES_JSON, 1000).replace(b"\r\n", b";ext=1\r\n", 1)
    + b"0\r\nX-Trailer: yes\r\n\r\n",
    "chunked and gzipped": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n" + _chunks(gzip.compress(NAMES_JSON), 100) + b"0\r\n\r\n",
    "deflate": _ok(zlib.compress(NAMES_JSON), "Content-Encoding: deflate"),
    "interim 100 Continue first": b"HTTP/1.1 100 Continue\r\n\r\n" + _ok(NAMES_JSON),
    "bare LF line ends": _ok(NAMES_JSON).replace(b"\r\n", b"\n"),
    "folded header": _ok(NAMES_JSON, "X-Folded: a", " b"),
}


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
def test_response_framings(framing: str, raw: RawServer, http: HttpKind, recorder: Recorder):
    """Every framing an HTTP/1.1 server may choose gives the same answer, and the
    connection is kept for the next request."""
    raw.add(FRAMINGS[framing])
    raw.add(_ok(NAMES_JSON))
    with _raw_client(raw, http, recorder) as client:
        assert client.label_names(RNG) == NAMES["names"]
        assert client.label_names(RNG) == NAMES["names"]
    assert raw.connections == 1
    assert recorder.sleeps == []


def test_body_ended_by_closing_the_connection(raw: RawServer, http: HttpKind, recorder: Recorder):
    """No Content-Length and no chunking: the body is what comes until the server closes;
    the next request opens a new connection."""
    raw.add(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + NAMES_JSON, close=True)
    raw.add(b"HTTP/1.0 200 OK\r\n\r\n" + NAMES_JSON, close=True)
    with _raw_client(raw, http, recorder) as client:
        assert client.label_names(RNG) == NAMES["names"]
        assert client.label_names(RNG) == NAMES["names"]
    assert raw.connections == 2


def test_a_kept_connection_closed_by_the_server_is_replaced(
    raw: RawServer, http: HttpKind, recorder: Recorder
):
    """The server closes an idle keep-alive connection: the next request goes on a new one
    (the one-shot transports without a retry wait)."""
    raw.add(_ok(NAMES_JSON), close=True)  # closes without saying so
    with _raw_client(raw, http, recorder) as client:
        assert client.label_names(RNG) == NAMES["names"]
        assert client.label_names(RNG) == []  # the default answer, {}
    assert raw.connections == 2
    if http != "httpx":  # httpx may notice only on sending, and leave it to the retry
        assert recorder.sleeps == []


BROKEN = {
    "chunked body cut short": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + _chunks(NAMES_JSON)[:50],
    "bad chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "not HTTP": b"SSH-2.0-OpenSSH_9.6\r\n",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_framing_is_a_failed_connection(
    case: str, raw: RawServer, http: HttpKind, recorder: Recorder
):
    """A body that cannot be framed is a connection failure, retried, then one line."""
    for _ in range(3):
        raw.add(BROKEN[case], close=True)
    with pytest.raises(QuerierUnavailable) as info, _raw_client(raw, http, recorder) as client:
        client.label_names(RNG)
    message = str(info.value)
    assert message.startswith(f"LabelNames: connection to {raw.url}/")
    assert message.endswith("(after 3 attempts)")
    assert "\n" not in message
    assert len(recorder.sleeps) == 2


def test_corrupt_gzip_is_a_decode_error(raw: RawServer, http: HttpKind, recorder: Recorder):
    raw.add(_ok(b"\x1f\x8b\x08\x00 not gzip at all", "Content-Encoding: gzip"))
    with pytest.raises(DecodeError, match="could not be decompressed"):
        with _raw_client(raw, http, recorder) as client:
            client.label_names(RNG)
    assert recorder.sleeps == []


def test_gzip_bomb_in_chunks_is_stopped_by_the_size_limit(
    raw: RawServer, http: HttpKind, recorder: Recorder
):
    """64 MiB of zeros in a 64 KiB gzip, chunked: refused at the limit after decompression."""
    bomb = gzip.compress(b"0" * (64 << 20), 9)
    raw.add(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        + _chunks(bomb, 4096)
        + b"0\r\n\r\n"
    )
    with pytest.raises(ResponseTooLarge, match="larger than 100000 bytes"):
        with _raw_client(raw, http, recorder, max_response_bytes=100_000) as client:
            client.label_names(RNG)


def test_the_socket_transport_sends_a_plain_http11_post(raw: RawServer, recorder: Recorder):
    """Request line, Host with the port, the client's headers and Content-Length."""
    with _raw_client(raw, "socket", recorder, token=TOKEN) as client:
        client.label_names(RNG)
    head, _, body = raw.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /querier.v1.QuerierService/LabelNames HTTP/1.1"
    fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert fields["host"] == raw.url.removeprefix("http://")
    assert fields["content-length"] == str(len(body))
    assert fields["authorization"] == f"Bearer {TOKEN}"
    assert fields["connect-protocol-version"] == "1"
    assert json.loads(body) == {"start": str(RNG.start_ms), "end": str(RNG.end_ms)}


def test_the_socket_transport_refuses_https(monkeypatch: pytest.MonkeyPatch) -> None:
    """It is never chosen for https://; asked all the same, it says so instead of sending
    plain text."""
    from watcher.querier.transport import TransportFailure

    transport = SocketTransport(Deployment(name="box", url="https://127.0.0.1:1"))
    with pytest.raises(TransportFailure, match="unsupported URL scheme 'https'"):
        transport.post("https://127.0.0.1:1/x", b"", {})
