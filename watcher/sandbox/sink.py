"""A webhook sink: a real HTTP server that records every POST and fails on demand.

Used by the alert tests, the demo and the reliability tests as the receiving end of Slack,
webhook and Alertmanager channels::

    with WebhookSink() as sink:
        url = sink.url                       # http://127.0.0.1:<port>
        sink.fail(500)                       # next POSTs get a 500
        sink.rate_limit(retry_after=7)       # 429 with Retry-After: 7
        sink.fail(403, body="invalid_token") # a Slack-like refusal
        sink.hang()                          # hold requests until release() or stop()
        sink.release()                       # answer held requests (200) and go back to ok
        sink.down()                          # stop listening: connections are refused
        sink.up()                            # listen again on the same port
        sink.ok()                            # 200 "ok"
        sink.wait_for(3, timeout=5)          # block until 3 POSTs were received

Every POST is recorded when it arrives (before any failure is answered) with its path,
headers, body, arrival time and the status the sink chose (``None`` while held). Requests
under ``/_sink/`` are the control API, for tests whose sink runs in another process:

- ``POST /_sink/mode`` with ``{"mode": "ok"}``, ``{"mode": "status", "status": 500, "body":
  "..."}``, ``{"mode": "rate_limit", "retry_after": 7}``, ``{"mode": "hang"}``,
  ``{"mode": "release"}`` or ``{"mode": "down", "seconds": 2}`` (down, then up again after
  that long: a process that took the sink down cannot bring it back through it);
- ``GET /_sink/received``: the recorded requests as JSON;
- ``POST /_sink/reset``: forget recorded requests and go back to ``ok``.

Run standalone with ``python -m watcher.sandbox.sink [--port N]``: it writes its URL on
one line to standard output and serves until interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

CONTROL_PREFIX = "/_sink/"


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One POST as the sink received it.

    ``headers`` have lower-case names. ``json`` is the decoded body, or ``None`` when the body
    is not JSON. ``mode`` is the sink's mode on arrival and ``answered`` the status it chose
    (``None`` when the request was held by ``hang``).
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    json: Any
    received_at: datetime
    mode: str
    answered: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as served by ``GET /_sink/received``."""
        return {
            "method": self.method,
            "path": self.path,
            "headers": dict(self.headers),
            "json": self.json,
            "body": self.body.decode("utf-8", "replace") if self.json is None else None,
            "received_at": self.received_at.isoformat(),
            "mode": self.mode,
            "answered": self.answered,
        }


@dataclass(frozen=True, slots=True)
class _Mode:
    name: str = "ok"
    status: int = 200
    body: str = "ok"
    headers: Mapping[str, str] = field(default_factory=dict)


_MODES = ("ok", "status", "rate_limit", "hang", "release", "down")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sink: WebhookSink) -> None:
        self.sink = sink
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up mid-answer is expected here; stay quiet.
        return


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "pyrowatch-sink"
    protocol_version = "HTTP/1.0"  # one request per connection: "down" really is down

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _answer(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if not any(k.lower() == "content-type" for k in headers or {}):
                self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            pass  # the client gave up (timed out) before we answered

    def do_GET(self) -> None:
        if self.path.split("?")[0] == CONTROL_PREFIX + "received":
            data = [r.to_dict() for r in self.server.sink.received]
            body = json.dumps(data).encode()
            self._answer(200, body, {"Content-Type": "application/json"})
            return
        self._answer(405, b"POST only", {"Allow": "POST"})

    def do_POST(self) -> None:
        body = self._read_body()
        sink = self.server.sink
        if self.path.startswith(CONTROL_PREFIX):
            self._control(body)
            return
        mode, release = sink._arrive(self, body)
        if mode.name == "hang":
            release.wait()
            mode = sink._mode_now()
            if mode.name == "hang" or not sink._serving:
                return  # stopped or taken down while held: drop the connection
        self._answer(mode.status, mode.body.encode(), mode.headers)

    def _control(self, raw: bytes) -> None:
        sink = self.server.sink
        action = self.path.split("?")[0][len(CONTROL_PREFIX) :]
        try:
            request = json.loads(raw or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the body must be a JSON object")
            if action == "reset":
                sink.clear()
                sink.ok()
            elif action == "mode":
                sink._apply_control(request)
            else:
                self._answer(404, f"unknown control path {self.path}".encode())
                return
        except (ValueError, TypeError) as exc:
            self._answer(400, str(exc).encode())
            return
        self._answer(200, b"ok")


class WebhookSink:
    """A recording HTTP server on ``host`` (default ``127.0.0.1``) and a free or given port.

    Thread-safe: modes can be switched and ``received`` read while requests are served.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._received: list[ReceivedRequest] = []
        self._mode = _Mode()
        self._release = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []
        self._serving = False
        self._listening = threading.Condition()
        self._is_listening = False

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> str:
        """Start listening (on the same port as before after a ``stop``); returns the URL."""
        with self._lock:
            if self._server is not None:
                return self.url
            server = _Server((self._host, self._port), self)
            self._port = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"webhook-sink-{self._port}",
                daemon=True,
            )
            self._server, self._thread, self._serving = server, thread, True
        thread.start()
        self._set_listening(True)
        return self.url

    def stop(self) -> None:
        """Stop listening, drop held requests and cancel pending control timers."""
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        self._close()

    def _close(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server, self._thread, self._serving = None, None, False
        self._release_held()  # held handlers see the sink is not serving and hang up
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()
        self._set_listening(False)

    def _set_listening(self, value: bool) -> None:
        with self._listening:
            self._is_listening = value
            self._listening.notify_all()

    def wait_until_up(self, timeout: float = 5.0) -> None:
        """Block until the sink listens (after ``start``/``up``, or a control-API ``down``).

        :raises TimeoutError: it did not within ``timeout`` seconds.
        """
        self._wait_listening(True, timeout)

    def wait_until_down(self, timeout: float = 5.0) -> None:
        """Block until the sink has stopped listening (connections are refused).

        :raises TimeoutError: it did not within ``timeout`` seconds.
        """
        self._wait_listening(False, timeout)

    def _wait_listening(self, value: bool, timeout: float) -> None:
        with self._listening:
            if not self._listening.wait_for(lambda: self._is_listening is value, timeout):
                state = "listening" if value else "down"
                raise TimeoutError(f"the sink was not {state} within {timeout:g}s")

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
        """``http://host:port``; stays the same across ``down``/``up``."""
        if not self._port:
            raise RuntimeError("the sink has not been started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def port(self) -> int:
        """The port the sink listens on (0 before the first start)."""
        return self._port

    # -- modes ------------------------------------------------------------------------

    def _set_mode(self, mode: _Mode) -> None:
        with self._lock:
            self._mode = mode

    def _release_held(self) -> None:
        # Wake the handlers holding the current event; later arrivals wait on a new one.
        with self._lock:
            release, self._release = self._release, threading.Event()
        release.set()

    def ok(self) -> None:
        """Answer 200 ``ok`` (Slack's success body)."""
        self._set_mode(_Mode())

    def fail(self, status: int, body: str = "", headers: Mapping[str, str] | None = None) -> None:
        """Answer every POST with ``status`` and ``body`` (``invalid_token`` for Slack)."""
        if not 100 <= status <= 599:
            raise ValueError(f"status {status}: must be an HTTP status between 100 and 599")
        self._set_mode(_Mode("status", status, body, dict(headers or {})))

    def rate_limit(self, retry_after: float | str = 1, body: str = "rate_limited") -> None:
        """Answer 429 with ``Retry-After: retry_after``."""
        value = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
        self._set_mode(_Mode("rate_limit", 429, body, {"Retry-After": value}))

    def hang(self) -> None:
        """Hold every POST, unanswered, until :meth:`release`, :meth:`down` or :meth:`stop`."""
        self._set_mode(_Mode("hang", 0, ""))

    def release(self) -> None:
        """Answer held POSTs with 200 and go back to ``ok``."""
        self._set_mode(_Mode())
        self._release_held()

    def down(self) -> None:
        """Stop listening: new connections are refused. The port is kept for :meth:`up`."""
        self._close()

    def up(self) -> str:
        """Listen again on the same port after :meth:`down`; returns the (same) URL."""
        return self.start()

    def _mode_now(self) -> _Mode:
        with self._lock:
            return self._mode

    def _apply_control(self, request: Mapping[str, Any]) -> None:
        name = request.get("mode")
        if name == "ok":
            self.ok()
        elif name == "status":
            self.fail(int(request["status"]), str(request.get("body", "")))
        elif name == "rate_limit":
            self.rate_limit(request.get("retry_after", 1), str(request.get("body", "rate_limited")))
        elif name == "hang":
            self.hang()
        elif name == "release":
            self.release()
        elif name == "down":
            seconds = float(request["seconds"])
            if not 0 < seconds <= 600:
                raise ValueError("down needs 0 < seconds <= 600")
            self._down_for(seconds)
        else:
            raise ValueError(f"mode {name!r}: use one of {', '.join(_MODES)}")

    def _down_for(self, seconds: float) -> None:
        # Answer the control request first: go down on another thread.
        timer = threading.Timer(seconds, self.up)
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)

        def go_down() -> None:
            self.down()
            timer.start()

        threading.Thread(target=go_down, daemon=True).start()

    # -- recording --------------------------------------------------------------------

    def _arrive(self, handler: _Handler, body: bytes) -> tuple[_Mode, threading.Event]:
        with self._lock:
            mode, release = self._mode, self._release
        try:
            decoded: Any = json.loads(body) if body else None
        except ValueError:
            decoded = None
        record = ReceivedRequest(
            method=handler.command,
            path=handler.path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            json=decoded,
            received_at=datetime.now(UTC),
            mode=mode.name,
            answered=None if mode.name == "hang" else mode.status,
        )
        with self._cond:
            self._received.append(record)
            self._cond.notify_all()
        return mode, release

    @property
    def received(self) -> list[ReceivedRequest]:
        """A copy of every POST received so far, in arrival order."""
        with self._cond:
            return list(self._received)

    def clear(self) -> None:
        """Forget the requests received so far."""
        with self._cond:
            self._received.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Block until at least ``count`` POSTs were received; returns them all.

        :raises TimeoutError: fewer arrived within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._received) >= count, timeout):
                raise TimeoutError(
                    f"the sink received {len(self._received)} of {count} requests "
                    f"within {timeout:g}s"
                )
            return list(self._received)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a sink until SIGINT/SIGTERM; prints its URL on the first line of stdout."""
    parser = argparse.ArgumentParser(prog="python -m watcher.sandbox.sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with WebhookSink(args.host, args.port) as sink:
        sys.stdout.write(sink.url + "\n")
        sys.stdout.flush()
        done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
