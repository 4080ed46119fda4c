"""Health, readiness, metrics and the read-only JSON API of the daemon.

Routes:

=====================  ==========================================================
``GET /healthz``       200 while the process serves requests (liveness)
``GET /readyz``        200 when the database is reachable and at head and the
                       scheduler runs; 503 with the reasons otherwise
``GET /metrics``       Prometheus exposition
``GET /api/regressions``  ``?open=1&limit=N``
``GET /api/snapshots``    ``?service=S&type=T&limit=N``
``GET /api/runs``         ``?limit=N``
=====================  ==========================================================

Once the app is stopping, ``/readyz`` and ``/api/*`` answer 503 without reading the
database and ``/metrics`` keeps the last database gauges; ``/healthz`` never reads it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit


class StatusSource(Protocol):
    """What the HTTP endpoints read from the running app."""

    def readiness(self) -> tuple[bool, list[str]]: ...

    def render_metrics(self) -> tuple[bytes, str]: ...

    def api(self, resource: str, query: dict[str, list[str]]) -> Any: ...


API_RESOURCES = ("regressions", "snapshots", "runs")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Access logs are noise for probes; errors surface through metrics."""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, indent=None, sort_keys=True, default=str).encode()
        self._send(status, body + b"\n", "application/json")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        source = self.server.source
        try:
            if path == "/healthz":
                self._json(200, {"status": "ok"})
            elif path == "/readyz":
                ok, reasons = source.readiness()
                self._json(200 if ok else 503, {"ready": ok, "reasons": reasons})
            elif path == "/metrics":
                body, ctype = source.render_metrics()
                self._send(200, body, ctype)
            elif path.startswith("/api/") and path[5:] in API_RESOURCES:
                query = parse_qs(parts.query)
                try:
                    answer = source.api(path[5:], query)
                except ValueError as exc:  # a bad query parameter
                    self._json(400, {"error": str(exc)[:300]})
                    return
                self._json(200, answer)
            else:
                self._json(404, {"error": f"no route {path}; try /healthz, /readyz, /metrics"})
        except Exception as exc:  # a probe must get an answer, never a dropped socket
            self._json(503, {"error": type(exc).__name__, "detail": str(exc)[:300]})


class _Server(ThreadingHTTPServer):
    #: Requests are handled on daemon threads that closing does not wait for: a request
    #: that reads the database is counted by the app (see ``App.stop``), the others
    #: touch nothing that closing takes away.
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], source: StatusSource) -> None:
        self.source = source
        super().__init__(addr, _Handler)


class StatusServer:
    """Serves the endpoints in a background thread."""

    def __init__(self, source: StatusSource, host: str = "127.0.0.1", port: int = 9465) -> None:
        self._server = _Server((host, port), source)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="pyrowatch-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> str:
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop accepting and close the listening socket (requests in progress go on).

        ``shutdown`` returns once ``serve_forever`` has left its loop (within its poll
        interval); it would wait forever for a server that was never started.
        """
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9465`` for IPv6) into a tuple."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {text!r} must be host:port, e.g. 127.0.0.1:9465")
    return host.strip("[]") or "0.0.0.0", int(port)
