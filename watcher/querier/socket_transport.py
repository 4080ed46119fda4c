"""``SocketTransport``: HTTP/1.1 on a plain socket, for one-shot commands to ``http://``.

A command makes one to a few requests and exits. ``http.client`` imports ``ssl`` and
``email`` whether or not it speaks TLS, which costs a command more than the rest of its
HTTP; this transport needs only ``socket`` and ``zlib``. It speaks just what the Querier
API needs of HTTP/1.1:

- one ``POST`` with ``Content-Length``, on one keep-alive connection per client (a kept
  connection the server closed in the meantime is replaced once, as ``http.client`` does);
- a response framed by ``Content-Length``, by ``Transfer-Encoding: chunked`` or by the
  server closing the connection; ``1xx`` interim answers are skipped;
- ``gzip`` and ``deflate`` undone while the body streams, in bounded pieces, so the
  client's size limit also stops a compression bomb;
- the deployment's timeout on connecting and on every read; redirects never followed.

Failures are :class:`~watcher.querier.transport.TransportFailure` of the same kinds as the
other transports. ``https://`` deployments use ``StdlibTransport``
(:func:`~watcher.querier.transport.open_transport` decides).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from watcher.querier.transport import (
    Transport,
    TransportFailure,
    decoded_body,
    failure_reason,
)

if TYPE_CHECKING:
    from watcher.querier.auth import DeploymentLike

__all__ = ["SocketTransport"]

_READ = 64 * 1024
#: Longest status or header line, and most header lines, accepted (as ``http.client``).
_MAX_LINE = 65536
_MAX_HEADERS = 100


class _Closed(Exception):
    """The server closed the connection before the answer was complete."""


class _Connection:
    """A connected socket and the bytes read from it but not yet used."""

    def __init__(self, sock: socket.socket, key: tuple[str, int]) -> None:
        self.sock = sock
        self.key = key
        self._buffer = bytearray()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:  # pragma: no cover - closing never matters here
            pass

    def _fill(self) -> bool:
        """Read more from the socket; False at the end of the stream."""
        try:
            data = self.sock.recv(_READ)
        except TimeoutError as exc:
            raise TransportFailure("timeout", failure_reason(exc)) from exc
        except OSError as exc:
            raise TransportFailure("broken", failure_reason(exc)) from exc
        if not data:
            return False
        self._buffer += data
        return True

    def line(self) -> bytes:
        """One line, CRLF or LF ended, without its end; raises :class:`_Closed` at EOF."""
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line.removesuffix(b"\r")
            if len(self._buffer) > _MAX_LINE:
                raise TransportFailure("broken", "got a line longer than 65536 bytes")
            start = len(self._buffer)
            if not self._fill():
                raise _Closed

    def some(self, limit: int) -> bytes:
        """Up to ``limit`` bytes (at least one); empty only at the end of the stream."""
        if not self._buffer and not self._fill():
            return b""
        data = bytes(self._buffer[:limit])
        del self._buffer[:limit]
        return data

    @property
    def buffered(self) -> int:
        return len(self._buffer)


class SocketTransport(Transport):
    """HTTP/1.1 to one ``http://`` deployment over a plain socket (see the module)."""

    def __init__(self, deployment: DeploymentLike) -> None:
        self._timeout = deployment.timeout
        self._connection: _Connection | None = None

    def __repr__(self) -> str:
        return "SocketTransport()"

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _release(self, connection: _Connection, reusable: bool) -> None:
        """A response is done with ``connection``: keep it for the next request, or close it."""
        if reusable and self._connection is None:
            self._connection = connection
        else:
            connection.close()

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> _SocketResponse:
        parts = urlsplit(url)
        if parts.scheme.lower() != "http":
            raise TransportFailure("other", f"unsupported URL scheme {parts.scheme!r}")
        try:
            port = parts.port or 80
        except ValueError as exc:
            raise TransportFailure("other", f"invalid URL: {exc}") from None
        host = parts.hostname or ""
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = _request_bytes(target, parts.netloc.rpartition("@")[2], body, headers)
        for attempt in (1, 2):
            connection = self._connection
            self._connection = None
            if connection is not None and connection.key != (host, port):
                connection.close()
                connection = None
            reused = connection is not None
            if connection is None:
                connection = _connect(host, port, self._timeout)
            try:
                try:
                    connection.sock.sendall(request)
                except TimeoutError as exc:
                    raise TransportFailure("timeout", failure_reason(exc)) from exc
                except OSError as exc:
                    raise TransportFailure("broken", failure_reason(exc)) from exc
                status, reason, version, fields = _read_head(connection)
            except _Closed:
                connection.close()
                if reused and attempt == 1:
                    continue  # the server closed the kept connection: once more on a new one
                raise TransportFailure(
                    "broken", "Remote end closed connection without response"
                ) from None
            except TransportFailure as failure:
                connection.close()
                if reused and attempt == 1 and failure.kind == "broken":
                    continue
                raise
            return _SocketResponse(self, connection, status, reason, version, fields)
        raise AssertionError("unreachable")  # pragma: no cover


def _request_bytes(target: str, host: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The request line, ``Host``, the given headers, ``Content-Length`` and the body."""
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if name.lower() in ("host", "content-length"):
            continue
        if any(c in name or c in value for c in "\r\n\0") or not name:
            raise TransportFailure("other", f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise TransportFailure("other", "a header holds a character HTTP cannot carry") from None
    return head + body


def _connect(host: str, port: int, timeout: float) -> _Connection:
    """A TCP connection to the first address of ``host`` that answers."""
    # an ASCII name given as bytes is not run through the (slow to import) IDNA codec
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    try:
        addresses = socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TransportFailure("connect", failure_reason(exc)) from exc
    last: OSError | None = None
    for family, kind, proto, _, address in addresses:
        sock: socket.socket | None = None
        try:
            # inside the try: a family this host cannot use (IPv6 off) moves to the next
            sock = socket.socket(family, kind, proto)
            sock.settimeout(timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect(address)
        except OSError as exc:
            if sock is not None:
                sock.close()
            last = exc
            continue
        return _Connection(sock, (host, port))
    if last is None:  # pragma: no cover - getaddrinfo answers at least one address or fails
        raise TransportFailure("connect", f"no address for {host}")
    timed_out = isinstance(last, TimeoutError)
    raise TransportFailure("connect", failure_reason(last), timeout=timed_out) from last


def _read_head(connection: _Connection) -> tuple[int, str, str, dict[str, str]]:
    """Status, reason, version and headers (lower-case names; repeats joined by ``, ``) of
    the final answer, skipping interim ``1xx`` ones."""
    while True:
        line = connection.line()
        try:
            version, _, rest = line.decode("latin-1").partition(" ")
            code, _, reason = rest.partition(" ")
            status = int(code) if len(code) == 3 and code.isdigit() else -1
        except ValueError:  # pragma: no cover - latin-1 decodes every byte
            status = -1
        if not version.startswith("HTTP/1.") or status < 100:
            raise TransportFailure("broken", f"not an HTTP/1 status line: {line[:80]!r}")
        fields: dict[str, str] = {}
        name = ""
        count = 0
        while True:
            raw = connection.line()
            if not raw:
                break
            count += 1
            if count > _MAX_HEADERS:
                raise TransportFailure("broken", "got more than 100 headers")
            text = raw.decode("latin-1")
            if text[:1] in (" ", "\t") and name:  # an obsolete folded continuation
                fields[name] += " " + text.strip()
                continue
            name, colon, value = text.partition(":")
            name = name.strip().lower()
            if not colon or not name:
                raise TransportFailure("broken", f"malformed header line: {raw[:80]!r}")
            value = value.strip()
            fields[name] = f"{fields[name]}, {value}" if name in fields else value
        if 100 <= status < 200 and status != 101:
            continue  # an interim answer (100 Continue, 103 Early Hints)
        return status, reason.strip(), version, fields


class _SocketResponse:
    """A response of :class:`SocketTransport`; leaving it unread closes its connection."""

    def __init__(
        self,
        transport: SocketTransport,
        connection: _Connection,
        status: int,
        reason: str,
        version: str,
        fields: dict[str, str],
    ) -> None:
        self._transport = transport
        self._connection: _Connection | None = connection
        self.status = status
        self.reason = reason
        self._fields = fields
        self._done = False
        tokens = {t.strip().lower() for t in fields.get("connection", "").split(",")}
        self._keep_alive = "close" not in tokens and (
            version != "HTTP/1.0" or "keep-alive" in tokens
        )

    def header(self, name: str) -> str | None:
        return self._fields.get(name.lower())

    def _length(self) -> int | None:
        """The ``Content-Length`` (None when absent); a bad one breaks the exchange."""
        raw = self._fields.get("content-length")
        if raw is None:
            return None
        values = {v.strip() for v in raw.split(",")}
        value = values.pop() if len(values) == 1 else ""
        if not value.isdigit():
            raise TransportFailure("broken", f"invalid Content-Length {raw!r}")
        return int(value)

    def _raw(self, connection: _Connection) -> Iterator[bytes]:
        """The body as sent (still content-coded), framed as the headers say."""
        if self.status in (204, 304):
            return
        codings = [t.strip().lower() for t in self._fields.get("transfer-encoding", "").split(",")]
        if codings[-1] == "chunked":
            if len(codings) > 1:
                raise TransportFailure("broken", f"unsupported Transfer-Encoding {codings!r}")
            yield from _chunked(connection)
            return
        if codings != [""]:
            raise TransportFailure("broken", f"unsupported Transfer-Encoding {codings!r}")
        length = self._length()
        if length is None:  # the body ends when the server closes the connection
            self._keep_alive = False
            while data := connection.some(_READ):
                yield data
            return
        received = 0
        while received < length:
            data = connection.some(min(_READ, length - received))
            if not data:
                raise TransportFailure(
                    "broken",
                    "peer closed connection without sending complete message body "
                    f"(received {received} bytes, expected {length})",
                )
            received += len(data)
            yield data

    def chunks(self) -> Iterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        yield from decoded_body(self._raw(connection), self.header("Content-Encoding"))
        self._done = True

    def __enter__(self) -> _SocketResponse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        # a body left unread (or a failure) leaves the connection in an unknown state
        reusable = exc_type is None and self._done and self._keep_alive
        self._transport._release(connection, reusable and connection.buffered == 0)


def _chunked(connection: _Connection) -> Iterator[bytes]:
    """The data of a ``chunked`` body; trailers are read and dropped."""
    try:
        while True:
            line = connection.line()
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                raise TransportFailure("broken", f"invalid chunk size {line[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                while connection.line():
                    pass  # trailer fields, up to the empty line
                return
            while size:
                data = connection.some(min(_READ, size))
                if not data:
                    raise _Closed
                size -= len(data)
                yield data
            if connection.line():
                raise TransportFailure("broken", "a chunk is longer than its size")
    except _Closed:
        raise TransportFailure(
            "broken", "peer closed connection without sending complete message body"
        ) from None
