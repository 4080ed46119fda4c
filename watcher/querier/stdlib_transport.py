"""``StdlibTransport``: the standard library's ``http.client``, for one-shot commands to
``https://`` deployments (``http://`` ones get the lighter ``SocketTransport``).

A command line run makes one to a few requests and exits, so a connection pool buys
nothing, while importing httpx (with httpcore, h11 and their dependencies) takes several
times as long as ``http.client``. This transport keeps one keep-alive connection per
server for the life of the client, builds its TLS context (``https://`` only) with
:func:`~watcher.querier.transport.tls_context`, never follows redirects, applies the
deployment's timeout to connecting and to every read, and undoes ``gzip`` and ``deflate``
response encodings while the body streams, in bounded pieces, so the client's size limit
also stops a compression bomb.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from watcher.querier.transport import (
    Transport,
    TransportFailure,
    decoded_body,
    failure_reason,
    tls_context,
)

if TYPE_CHECKING:
    from watcher.querier.auth import DeploymentLike

__all__ = ["StdlibTransport"]

_READ = 64 * 1024
#: A kept connection the server closed in the meantime fails like this when reused.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class StdlibTransport(Transport):
    """``http.client`` connections to one deployment (see the module's description)."""

    def __init__(self, deployment: DeploymentLike) -> None:
        self._timeout = deployment.timeout
        self._verify = deployment.verify_tls
        self._ca_file = str(deployment.ca_file) if deployment.ca_file else None
        self._connections: dict[tuple[str, str, int | None], http.client.HTTPConnection] = {}

    def __repr__(self) -> str:
        return "StdlibTransport()"

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def _connection(self, scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
        key = (scheme, host, port)
        connection = self._connections.get(key)
        if connection is None:
            if scheme == "https":
                context = tls_context(self._verify, self._ca_file)
                connection = http.client.HTTPSConnection(
                    host, port, timeout=self._timeout, context=context
                )
            elif scheme == "http":
                connection = http.client.HTTPConnection(host, port, timeout=self._timeout)
            else:
                raise TransportFailure("other", f"unsupported URL scheme {scheme!r}")
            self._connections[key] = connection
        return connection

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> _StdlibResponse:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError as exc:
            raise TransportFailure("other", f"invalid URL: {exc}") from None
        host = parts.hostname or ""
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = self._connection(parts.scheme.lower(), host, port)
        for attempt in (1, 2):
            reused = connection.sock is not None
            if not reused:
                _connect(connection)
            try:
                connection.request("POST", target, body=body, headers=dict(headers))
                response = connection.getresponse()
            except _STALE as exc:
                connection.close()
                if reused and attempt == 1:
                    continue  # the server closed the kept connection: once more on a new one
                raise TransportFailure("broken", failure_reason(exc)) from exc
            except TimeoutError as exc:
                connection.close()
                raise TransportFailure("timeout", failure_reason(exc)) from exc
            except (http.client.HTTPException, OSError) as exc:
                connection.close()
                raise TransportFailure("broken", failure_reason(exc)) from exc
            return _StdlibResponse(connection, response)
        raise AssertionError("unreachable")  # pragma: no cover


def _connect(connection: http.client.HTTPConnection) -> None:
    """Open the connection (TCP and, for https, the TLS handshake)."""
    try:
        connection.connect()
    except TimeoutError as exc:
        connection.close()
        raise TransportFailure("connect", failure_reason(exc), timeout=True) from exc
    except (OSError, ssl.SSLError, socket.gaierror) as exc:
        connection.close()
        raise TransportFailure("connect", failure_reason(exc)) from exc


class _StdlibResponse:
    """A response of :class:`StdlibTransport`; leaving it unread closes its connection."""

    def __init__(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        self._connection = connection
        self._response = response
        self.status = response.status
        self.reason = response.reason or ""

    def header(self, name: str) -> str | None:
        return self._response.getheader(name)

    def chunks(self) -> Iterator[bytes]:
        return decoded_body(self._raw(), self.header("Content-Encoding"))

    def _raw(self) -> Iterator[bytes]:
        received = 0
        while True:
            try:
                data = self._response.read(_READ)
            except TimeoutError as exc:
                raise TransportFailure("timeout", failure_reason(exc)) from exc
            except (http.client.HTTPException, OSError) as exc:
                raise TransportFailure("broken", failure_reason(exc)) from exc
            if not data:
                break
            received += len(data)
            yield data
        expected = self._response.length  # what Content-Length promised is still owed
        if expected:
            raise TransportFailure(
                "broken",
                "peer closed connection without sending complete message body "
                f"(received {received} bytes, expected {received + expected})",
            )

    def __enter__(self) -> _StdlibResponse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or not self._response.isclosed() or self._response.will_close:
            # a body left unread (or a failure) leaves the connection in an unknown state
            self._response.close()
            self._connection.close()
