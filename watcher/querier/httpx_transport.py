"""``HttpxTransport``: pooled httpx connections, for the daemon and other long-running users.

The pool keeps :data:`~watcher.querier.transport.MAX_CONNECTIONS` connections, open and
idle alike; idle ones close after 5 s. Redirects are not followed; the deployment's timeout
applies to connecting, writing and every read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx

from watcher.querier.transport import (
    MAX_CONNECTIONS,
    Transport,
    TransportFailure,
    failure_reason,
    no_tls_context,
    tls_context,
)

if TYPE_CHECKING:
    from watcher.querier.auth import DeploymentLike

__all__ = ["HttpxTransport"]


@contextmanager
def _failures() -> Iterator[None]:
    """httpx's exceptions as :class:`TransportFailure`; anything else passes unchanged."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise TransportFailure(
            "connect", failure_reason(exc), timeout=isinstance(exc, httpx.ConnectTimeout)
        ) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise TransportFailure("broken", failure_reason(exc)) from exc
    except httpx.TimeoutException as exc:
        raise TransportFailure("timeout", failure_reason(exc)) from exc
    except httpx.DecodingError as exc:
        raise TransportFailure("decoding", failure_reason(exc)) from exc
    except httpx.TransportError as exc:
        raise TransportFailure("other", failure_reason(exc)) from exc


class _HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.reason = response.reason_phrase

    def header(self, name: str) -> str | None:
        value: str | None = self._response.headers.get(name)
        return value

    def chunks(self) -> Iterator[bytes]:
        with _failures():
            yield from self._response.iter_bytes()


class HttpxTransport(Transport):
    """An ``httpx.Client`` to one deployment (see the module's description).

    :param inner: an ``httpx`` transport to send through (tests); by default sockets.
    """

    def __init__(self, deployment: DeploymentLike, inner: httpx.BaseTransport | None = None):
        if deployment.url.lower().startswith("http://"):
            verify = no_tls_context()
        else:
            ca_file = str(deployment.ca_file) if deployment.ca_file else None
            verify = tls_context(deployment.verify_tls, ca_file)
        self._http = httpx.Client(
            transport=inner,
            verify=verify,
            timeout=httpx.Timeout(deployment.timeout),
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
            ),
        )

    def __repr__(self) -> str:
        return "HttpxTransport()"

    @contextmanager
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Iterator[_HttpxResponse]:
        with _failures(), self._http.stream("POST", url, content=body, headers=headers) as response:
            yield _HttpxResponse(response)

    def close(self) -> None:
        self._http.close()
