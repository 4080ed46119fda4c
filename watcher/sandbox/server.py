"""The Pyroscope-compatible sandbox HTTP server.

``Sandbox`` serves the ``querier.v1.QuerierService`` methods, ``push.v1.PusherService/Push``,
the legacy ``/ingest`` and ``/ready`` over HTTP/1.1 (keep-alive), speaking Connect unary with
the JSON and binary codecs exactly as a Pyroscope server does (querier API spec §1):

- POST only (``405`` with ``Allow: POST``); unknown methods ``404``; an unsupported
  ``Content-Type`` ``415`` with ``Accept-Post``;
- ``Content-Encoding: gzip`` request bodies; gzip responses when the client accepts gzip;
- errors as ``{"code","message"}`` JSON with the Connect HTTP status, never compressed;
- protojson bodies (int64 as strings, zero values left out).

Test switches (:mod:`watcher.sandbox.faults`): injected faults per method, optional required
credentials, optional multitenancy (``X-Scope-OrgID`` required). The control API under
``/_sandbox/`` (see :mod:`watcher.sandbox.control`) lets a test in another process load data,
set faults and read the request log.

Example::

    with Sandbox() as sandbox:
        sandbox.store.add({"service_name": "api"}, CPU, now_ms, {("main", "work"): 10})
        httpx.post(sandbox.url + "/querier.v1.QuerierService/SelectMergeStacktraces", ...)
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import socket
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from watcher.sandbox.faults import AuthConfig, AuthResult, Fault, FaultPlan
from watcher.sandbox.query import (
    CallContext,
    Querier,
    QueryLimits,
    RawProto,
    RpcError,
    dumps_protojson,
    for_parse_dict,
)
from watcher.sandbox.store import ProfileStore

__all__ = ["ACCEPT_POST", "RequestLogEntry", "Sandbox"]

log = logging.getLogger(__name__)

QUERIER_PREFIX = "/querier.v1.QuerierService/"
PUSH_PATH = "/push.v1.PusherService/Push"
INGEST_PATHS = ("/ingest", "/pyroscope/ingest")
CONTROL_PREFIX = "/_sandbox/"

#: connect-go's ``Accept-Post`` for a handler with the proto, json and json+charset codecs.
ACCEPT_POST = ", ".join(
    sorted(
        [
            "application/grpc",
            "application/grpc+json",
            "application/grpc+json; charset=utf-8",
            "application/grpc+proto",
            "application/grpc-web",
            "application/grpc-web+json",
            "application/grpc-web+json; charset=utf-8",
            "application/grpc-web+proto",
            "application/json",
            "application/json; charset=utf-8",
            "application/proto",
        ]
    )
)
_JSON_TYPES = ("application/json", "application/json; charset=utf-8")
_PROTO_TYPES = ("application/proto",)
_GRPC_TYPES = tuple(t for t in ACCEPT_POST.split(", ") if "grpc" in t)
#: Header names whose values are secrets: the request log keeps only their names.
SECRET_HEADERS = frozenset(
    {"authorization", "cf-access-client-secret", "cookie", "proxy-authorization"}
)
_TENANT_RE = re.compile(r"[A-Za-z0-9!\-_.*'()]+")


@dataclass(slots=True)
class RequestLogEntry:
    """One request as the sandbox saw it; no secret is ever recorded.

    ``header_names`` are lower-case; ``auth`` is ``none`` (nothing required), ``ok``,
    ``missing`` or ``invalid``; ``auth_scheme`` is the ``Authorization`` scheme only
    (``Bearer``/``Basic``), ``cf_access`` whether both Cloudflare Access headers came.
    """

    time: float
    method: str
    path: str
    rpc: str
    header_names: list[str]
    content_type: str
    content_encoding: str
    accept_encoding: str
    user_agent: str
    tenant: str | None
    auth: AuthResult
    auth_scheme: str | None
    cf_access: bool
    status: int | None = None
    fault: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "rpc": self.rpc,
            "header_names": self.header_names,
            "content_type": self.content_type,
            "content_encoding": self.content_encoding,
            "accept_encoding": self.accept_encoding,
            "user_agent": self.user_agent,
            "tenant": self.tenant,
            "auth": self.auth,
            "auth_scheme": self.auth_scheme,
            "cf_access": self.cf_access,
            "status": self.status,
            "fault": self.fault,
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer (and injected resets) are expected; stay quiet.
        log.debug("connection error from %s", client_address, exc_info=True)


class _Abort(Exception):
    """Stop handling the current request; the connection is already dealt with."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "pyroscope-sandbox"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are dropped after this many seconds
    # Headers and body are separate writes: without TCP_NODELAY, Nagle plus the client's
    # delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True

    _reset = False

    # -- plumbing ---------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)
            if self._reset:
                # SO_LINGER 0 turns close() into a TCP RST.
                try:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
                except OSError:
                    pass

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    # -- request reading --------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # -- responses --------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        fault: Fault | None = None,
    ) -> None:
        entry = getattr(self, "_entry", None)
        if entry is not None:
            entry.status = status
            # Logged before the answer leaves, so a client that reads the log right after
            # its response always finds its own request there.
            self._log_once()
        headers = dict(headers or {})
        if fault is not None and fault.malformed and status < 300:
            body = _malformed(headers)
            headers.pop("Content-Encoding", None)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault is not None and fault.truncate and status < 300 and len(body) > 0:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault is not None and fault.slow_body > 0 and len(body) > 0:
            pieces = min(len(body), 20)
            size = -(-len(body) // pieces)
            pause = fault.slow_body / pieces
            stopping = self.server.sandbox._stopping
            for i in range(0, len(body), size):
                if i and stopping.wait(pause):
                    break  # the sandbox is stopping
                self.wfile.write(body[i : i + size])
                self.wfile.flush()
            return
        self.wfile.write(body)

    def _send_error(self, err: RpcError, extra: Mapping[str, str] | None = None) -> None:
        headers = {"Content-Type": "application/json"}
        headers.update(extra or {})
        self._send(err.status, err.body(), headers)

    def _not_found(self) -> None:
        self._send(
            404,
            b"404 page not found\n",
            {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
        )

    # -- dispatch ---------------------------------------------------------------------

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        path = urlsplit(self.path).path
        rpc = _rpc_name(path)
        self._entry = sandbox._log_request(self, path, rpc)
        self._logged = False
        try:
            if path.startswith(CONTROL_PREFIX):
                from watcher.sandbox.control import handle_control

                body = self._read_body()
                status, payload = handle_control(sandbox, self.command, self.path, body)
                self._send(
                    status,
                    json.dumps(payload).encode("utf-8"),
                    {"Content-Type": "application/json"},
                )
                return
            if self._entry.auth in ("missing", "invalid"):
                self._read_body()
                message = (
                    "missing credentials"
                    if self._entry.auth == "missing"
                    else "invalid credentials"
                )
                extra = {}
                challenge = sandbox.auth.challenge()
                if challenge:
                    extra["WWW-Authenticate"] = challenge
                self._send_error(RpcError("unauthenticated", message), extra)
                return
            fault = sandbox.faults.take(rpc) if rpc else None
            if fault is not None:
                self._entry.fault = fault.to_dict()
                if fault.latency > 0:
                    sandbox._stopping.wait(fault.latency)
                if fault.reset:
                    self._reset = True
                    self.close_connection = True
                    raise _Abort
                if fault.status is not None:
                    self._read_body()
                    extra = {}
                    if fault.retry_after is not None:
                        extra["Retry-After"] = _retry_after(fault.retry_after)
                    err = RpcError(fault.error_code, fault.error_message, status=fault.status)
                    self._send_error(err, extra)
                    return
            if path.startswith(QUERIER_PREFIX):
                method = path[len(QUERIER_PREFIX) :]
                if method not in Querier.METHODS:
                    self._read_body()
                    self._not_found()
                    return
                self._connect(method, fault)
            elif path == PUSH_PATH:
                self._connect("Push", fault)
            elif path in INGEST_PATHS:
                self._ingest(fault)
            elif path == "/ready":
                self._read_body()
                if self.command not in ("GET", "HEAD"):
                    self._send(405, b"", {"Allow": "GET"})
                else:
                    self._send(200, b"ready\n", {"Content-Type": "text/plain"}, fault=fault)
            else:
                self._read_body()
                self._not_found()
        except _Abort:
            return
        finally:
            self._log_once()

    def _log_once(self) -> None:
        if not getattr(self, "_logged", False):
            self._logged = True
            self.server.sandbox._finish_request(self._entry)

    # -- Connect ----------------------------------------------------------------------

    def _connect(self, method: str, fault: Fault | None) -> None:
        sandbox = self.server.sandbox
        if self.command != "POST":
            self._read_body()
            self._send(405, b"", {"Allow": "POST"})
            return
        content_type = _canonical_content_type(self.headers.get("Content-Type", ""))
        if content_type in _JSON_TYPES:
            codec = "json"
        elif content_type in _PROTO_TYPES:
            codec = "proto"
        elif content_type in _GRPC_TYPES:
            self._read_body()
            self._send_error(
                RpcError("unimplemented", "the sandbox speaks Connect only, not gRPC or gRPC-Web")
            )
            return
        else:
            self._read_body()
            self._send(415, b"", {"Accept-Post": ACCEPT_POST})
            return
        raw = self._read_body()
        response_type = "application/json" if codec == "json" else "application/proto"
        base_headers = {"Accept-Encoding": "gzip"}
        try:
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            if encoding not in ("", "identity", "gzip"):
                raise RpcError(
                    "unimplemented",
                    f'unknown compression "{encoding}": supported encodings are gzip',
                )
            version = self.headers.get("Connect-Protocol-Version")
            if version is not None and version != "1":
                raise RpcError(
                    "invalid_argument", f'connect-protocol-version must be "1": got "{version}"'
                )
            timeout = self.headers.get("Connect-Timeout-Ms")
            if timeout is not None:
                if len(timeout) > 10:
                    raise RpcError("invalid_argument", f'parse timeout: "{timeout}" has >10 digits')
                if not timeout.isdigit():
                    raise RpcError(
                        "invalid_argument",
                        f'parse timeout: strconv.ParseInt: parsing "{timeout}": invalid syntax',
                    )
            body = raw
            if encoding == "gzip" and raw:
                try:
                    body = gzip.decompress(raw)
                except (OSError, EOFError, zlib.error) as exc:
                    raise RpcError("invalid_argument", f"decompress: {exc}") from None
            if codec == "json" and not body:
                raise RpcError(
                    "invalid_argument",
                    "unmarshal message: zero-length payload is not a valid JSON object",
                )
            if method == "Push":
                self._call_context()
                result: dict[str, Any] | RawProto = self._push(body, response_type)
            else:
                request = _decode_request(method, body, codec)
                ctx = self._call_context()  # the tenant interceptor runs after unmarshal
                result = sandbox.querier.call(method, request, ctx)
        except RpcError as err:
            self._send_error(err, base_headers)
            return
        if codec == "json":
            payload = dumps_protojson(result.json() if isinstance(result, RawProto) else result)
        elif isinstance(result, RawProto):
            payload = result.data
        else:
            payload = _encode_proto(method, result)
        headers = {"Content-Type": response_type, **base_headers}
        if encoding == "gzip" or _accepts_gzip(self.headers.get("Accept-Encoding", "")):
            payload = gzip.compress(payload, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        self._send(200, payload, headers, fault=fault)

    def _call_context(self) -> CallContext:
        sandbox = self.server.sandbox
        tenants: tuple[str, ...] = ("anonymous",)
        if sandbox.tenants:
            header = self.headers.get("X-Scope-OrgID") or ""
            ids = sorted({t for t in header.split("|") if t})
            if not ids:
                raise RpcError("unauthenticated", "no org id")
            for tenant in ids:
                if not _TENANT_RE.fullmatch(tenant) or tenant in (".", ".."):
                    raise RpcError(
                        "unauthenticated", f"tenant ID '{tenant}' contains unsupported character"
                    )
            tenants = tuple(ids)
        accept = self.headers.get_all("Accept") or []
        utf8 = any("allow-utf8-labelnames=true" in value.replace(" ", "") for value in accept)
        return CallContext(
            tenants=tenants,
            allow_utf8_labelnames=utf8,
            now_ms=sandbox.now_ms(),
        )

    def _push(self, body: bytes, content_type: str) -> dict[str, Any]:
        from watcher.sandbox.ingest import IngestError, records_from_push

        sandbox = self.server.sandbox
        try:
            records = records_from_push(body, content_type, None, now_ms=sandbox.now_ms())
        except IngestError as exc:
            raise RpcError(exc.code, exc.message) from None
        sandbox.ingest_records(records)
        return {}

    # -- legacy /ingest ---------------------------------------------------------------

    def _ingest(self, fault: Fault | None) -> None:
        from watcher.sandbox.ingest import IngestError, records_from_ingest

        sandbox = self.server.sandbox
        raw = self._read_body()
        if self.command != "POST":
            self._send(405, b"", {"Allow": "POST"})
            return
        try:
            if sandbox.tenants:
                self._call_context()
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            if encoding == "gzip" and raw:
                try:
                    raw = gzip.decompress(raw)
                except (OSError, EOFError, zlib.error) as exc:
                    raise RpcError("invalid_argument", f"decompress: {exc}") from None
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            try:
                records = records_from_ingest(
                    params,
                    raw,
                    self.headers.get("Content-Type", ""),
                    now_ms=sandbox.now_ms(),
                )
            except IngestError as exc:
                self._send(
                    exc.status,
                    json.dumps({"code": exc.code, "message": exc.message}).encode("utf-8"),
                    {"Content-Type": "application/json"},
                )
                return
        except RpcError as err:
            self._send_error(err)
            return
        sandbox.ingest_records(records)
        self._send(200, b"", {}, fault=fault)


# ------------------------------------------------------------------ helpers


def _rpc_name(path: str) -> str:
    if path.startswith(QUERIER_PREFIX):
        return path[len(QUERIER_PREFIX) :]
    if path == PUSH_PATH:
        return "Push"
    if path in INGEST_PATHS:
        return "ingest"
    if path == "/ready":
        return "ready"
    return ""


def _canonical_content_type(value: str) -> str:
    """connect-go's ``canonicalizeContentType``: lower-case, ``type; charset=utf-8``."""
    value = value.strip()
    if not value:
        return ""
    base, _, params = value.partition(";")
    base = base.strip().lower()
    parts = [p.strip() for p in params.split(";") if p.strip()]
    formatted = []
    for part in parts:
        key, _, val = part.partition("=")
        key = key.strip().lower()
        val = val.strip().strip('"')
        if key == "charset":
            val = val.lower()
        formatted.append(f"{key}={val}")
    return "; ".join([base, *sorted(formatted)])


def _accepts_gzip(accept: str) -> bool:
    return "gzip" in re.split(r"[,\s]+", accept.strip())


def _retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _malformed(headers: Mapping[str, str]) -> bytes:
    if headers.get("Content-Type") == "application/proto":
        return b"\xff\xff\xff\xff\x0f"  # a truncated varint tag: not protobuf
    return b'{"flamegraph":{"names":["total",'


def _decode_request(method: str, body: bytes, codec: str) -> Any:
    from watcher.errors import DecodeError
    from watcher.proto import from_binary, from_json, message_for

    cls = message_for(method, True)
    try:
        if codec == "json":
            return from_json(body, cls)
        return from_binary(body, cls)
    except DecodeError as exc:
        name = cls.DESCRIPTOR.full_name
        go_type = "*" + name.split(".")[0] + name.split(".")[1] + "." + name.split(".")[-1]
        detail = str(exc)
        if codec == "json":
            raise RpcError(
                "invalid_argument", f"unmarshal message: unmarshal into {go_type}: {detail}"
            ) from None
        raise RpcError("invalid_argument", f"unmarshal message: {detail}") from None


def _encode_proto(method: str, result: Mapping[str, Any]) -> bytes:
    from watcher.proto import from_json, message_for, to_binary

    cls = message_for(method, False)
    return to_binary(from_json(for_parse_dict(dict(result)), cls))


# ------------------------------------------------------------------ the public class


class Sandbox:
    """A Pyroscope-compatible server over a :class:`ProfileStore`, on a background thread.

    ``auth`` makes credentials mandatory; ``faults`` injects failures; ``tenants`` turns
    multitenancy on (``X-Scope-OrgID`` required, else 401 ``no org id``). ``limits`` changes
    the server limits (max query length, lookback, max nodes); ``clock`` returns the time in
    seconds (defaults to :func:`time.time`).
    """

    def __init__(
        self,
        store: ProfileStore | None = None,
        *,
        auth: AuthConfig | None = None,
        faults: FaultPlan | None = None,
        tenants: bool = False,
        limits: QueryLimits | None = None,
        clock: Callable[[], float] | None = None,
        request_log_size: int = 1000,
    ) -> None:
        self.store = store if store is not None else ProfileStore()
        self.auth = auth or AuthConfig()
        self.faults = faults if faults is not None else FaultPlan()
        self.tenants = tenants
        self.querier = Querier(self.store, limits)
        self._clock = clock or time.time
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests: deque[RequestLogEntry] = deque(maxlen=request_log_size)
        self._url: str | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen and serve on a daemon thread; returns the base URL."""
        with self._lock:
            if self._server is not None:
                assert self._url is not None
                return self._url
            self._stopping.clear()
            server = _Server((host, port), self)
            bound_host, bound_port = server.server_address[:2]
            shown = str(bound_host)
            url_host = f"[{shown}]" if ":" in shown else shown
            self._url = f"http://{url_host}:{bound_port}"
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"pyroscope-sandbox-{bound_port}",
                daemon=True,
            )
            self._server, self._thread = server, thread
        thread.start()
        return self._url

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            open_connections = list(server.connections)
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join()

    def serve_forever(self) -> None:
        """Block until :meth:`stop` or :meth:`interrupt` is called from another thread or a
        signal handler (or Ctrl-C)."""
        self._stopping.wait()

    def interrupt(self) -> None:
        """Make :meth:`serve_forever` return, as Ctrl-C does (safe in a signal handler);
        the caller then calls :meth:`stop`."""
        self._stopping.set()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:PORT``); only after :meth:`start`."""
        if self._url is None:
            raise RuntimeError("the sandbox has not been started")
        return self._url

    @property
    def running(self) -> bool:
        with self._lock:
            return self._server is not None

    # -- data -------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def ingest_records(self, records: Any) -> int:
        """Store records (``ProfileRecord``\\ s) as an ingest would."""
        return self.store.add_records(records)

    def reset(self, *, store: bool = True, faults: bool = True, requests: bool = True) -> None:
        """Forget data, faults and/or the request log."""
        if store:
            self.store.reset()
        if faults:
            self.faults.clear()
        if requests:
            with self._lock:
                self._requests.clear()

    # -- request log ------------------------------------------------------------------

    def requests(self) -> list[RequestLogEntry]:
        """The recent requests, oldest first (control-API calls included)."""
        with self._lock:
            return list(self._requests)

    def _log_request(self, handler: _Handler, path: str, rpc: str) -> RequestLogEntry:
        headers = handler.headers
        authorization = headers.get("Authorization") or ""
        scheme = authorization.strip().partition(" ")[0] or None
        auth: AuthResult = (
            "none" if path.startswith(CONTROL_PREFIX) else self.auth.check(dict(headers.items()))
        )
        entry = RequestLogEntry(
            time=self._clock(),
            method=handler.command,
            path=path,
            rpc=rpc,
            header_names=sorted({name.lower() for name in headers.keys()}),
            content_type=headers.get("Content-Type", ""),
            content_encoding=headers.get("Content-Encoding", ""),
            accept_encoding=headers.get("Accept-Encoding", ""),
            user_agent=headers.get("User-Agent", ""),
            tenant=headers.get("X-Scope-OrgID"),
            auth=auth,
            auth_scheme=scheme,
            cf_access=bool(
                headers.get("CF-Access-Client-Id") and headers.get("CF-Access-Client-Secret")
            ),
        )
        return entry

    def _finish_request(self, entry: RequestLogEntry) -> None:
        with self._lock:
            self._requests.append(entry)
