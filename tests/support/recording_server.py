"""A tiny real HTTP server for client tests: it records requests and plays scripted answers.

::

    with RecordingServer() as server:
        server.add(200, {"names": ["a"]})
        server.add(503, {"code": "unavailable"}, headers={"Retry-After": "2"})
        ...                                  # point a client at server.url
        server.requests[0].json()            # what the client sent, gzip already undone

Answers are used in order; when none are left, ``default`` is served. The server runs
``ThreadingHTTPServer`` on 127.0.0.1 with HTTP/1.1 keep-alive, in a daemon thread.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["RecordedRequest", "RecordingServer", "ScriptedResponse"]


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    body: bytes

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class ScriptedResponse:
    """One answer. ``body`` may be bytes, text or a JSON-able object (sent as JSON)."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    gzip: bool = False
    chunked: bool = False

    def payload(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, bytes):
            data = self.body
        elif isinstance(self.body, str):
            data = self.body.encode()
        else:
            data = json.dumps(self.body).encode()
            headers.setdefault("Content-Type", "application/json")
        if self.gzip:
            data = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
        return data, headers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = raw
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            body = gzip.decompress(raw)
        owner = self.server.owner
        owner._record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                raw_body=raw,
                body=body,
            )
        )
        answer = owner._next()
        data, headers = answer.payload()
        self.send_response(answer.status)
        for name, value in headers.items():
            self.send_header(name, value)
        if answer.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(data), 4096):
                piece = data[start : start + 4096]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    do_POST = _serve
    do_GET = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: RecordingServer


class RecordingServer:
    """Records requests, answers from a script. Use as a context manager."""

    def __init__(self, default: ScriptedResponse | None = None) -> None:
        self.default = default or ScriptedResponse(200, {})
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptedResponse] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(
        self,
        status: int = 200,
        body: Any = b"",
        *,
        headers: dict[str, str] | None = None,
        gzip: bool = False,
        chunked: bool = False,
    ) -> None:
        """Queue one answer."""
        with self._lock:
            self._script.append(ScriptedResponse(status, body, headers or {}, gzip, chunked))

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next(self) -> ScriptedResponse:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RecordingServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
