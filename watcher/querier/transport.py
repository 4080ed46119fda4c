"""How the client moves bytes: one interface, four implementations, chosen in one place.

:class:`~watcher.querier.client.QuerierClient` owns everything a request means: the
headers and credentials, gzip of large request bodies, retries and their waits, the
response size limit and the mapping of failures to :mod:`watcher.errors`. A
:class:`Transport` only sends one ``POST`` and streams back the status, the headers and
the body (decompressed), and reports a failure as a :class:`TransportFailure` of one of a
few kinds. So both socket transports behave the same by construction.

========================  =======================  ==============================================
transport                 module                   used by
========================  =======================  ==============================================
``HttpxTransport``        ``httpx_transport``      the daemon and anything long-running: pooled
                                                   keep-alive connections (``http="httpx"``)
``SocketTransport``       ``socket_transport``     one-shot commands to ``http://``
                                                   (``http="socket"``): HTTP/1.1 on a plain
                                                   socket; imports neither ``http.client`` nor
                                                   ``ssl`` nor ``email``
``StdlibTransport``       ``stdlib_transport``     one-shot commands to ``https://`` (what
                                                   ``http="socket"`` falls back to, or
                                                   ``http="stdlib"``): ``http.client``
``AccessCommandTransport`` ``auth``                 any client of a deployment with
                                                   ``access_command``: a wrapper program
========================  =======================  ==============================================

:func:`open_transport` is the one place that picks. A proxy set in the environment
(``HTTPS_PROXY`` and friends) is honoured by httpx only, so with one set neither
standard-library transport is used. Both undo ``gzip``/``deflate`` with
:func:`decoded_body`, in bounded pieces.
"""

from __future__ import annotations

import functools
import os
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import ssl

    import httpx

    from watcher.querier.auth import DeploymentLike

__all__ = [
    "MAX_CONNECTIONS",
    "BufferedResponse",
    "FailureKind",
    "HttpKind",
    "Response",
    "Transport",
    "TransportFailure",
    "body_decoders",
    "decode_pieces",
    "decoded_body",
    "failure_reason",
    "flush_decoders",
    "no_tls_context",
    "open_transport",
    "reason_phrase",
    "tls_context",
]

#: Connections a pooled client keeps, open and idle alike. The daemon runs up to
#: ``[watcher] concurrency`` queries at once through one client; with fewer idle connections
#: kept than that (httpx keeps 20), most requests beyond the 20th open a new connection (and
#: a TLS handshake) and leave one in TIME_WAIT.
MAX_CONNECTIONS = 100

#: Which socket transport a client uses (an ``access_command`` deployment uses its wrapper):
#: ``httpx`` pooled (long-running processes); ``socket`` one-shot, plain sockets for
#: ``http://`` and ``http.client`` for ``https://``; ``stdlib`` one-shot, ``http.client`` always.
HttpKind = Literal["httpx", "socket", "stdlib"]

#: What went wrong, as far as the client cares:
#:
#: - ``connect``: no connection (refused, DNS, connect timeout, TLS handshake);
#: - ``broken``: the connection failed mid-exchange (reset, closed early, protocol error);
#: - ``timeout``: no answer (or no more of it) within the timeout;
#: - ``decoding``: the body's ``Content-Encoding`` could not be undone;
#: - ``other``: anything else the transport could not do.
FailureKind = Literal["connect", "broken", "timeout", "decoding", "other"]


class TransportFailure(Exception):
    """A request failed below HTTP. Never leaves the client, which turns it into a
    :class:`~watcher.errors.QuerierUnavailable` or :class:`~watcher.errors.DecodeError`."""

    def __init__(self, kind: FailureKind, reason: str, *, timeout: bool = False) -> None:
        super().__init__(reason)
        self.kind: FailureKind = kind
        self.reason = reason
        #: For ``connect``: the connection attempt timed out.
        self.timeout = timeout


class Response(Protocol):
    """An answer being received: status and headers now, the body as it streams."""

    @property
    def status(self) -> int: ...

    @property
    def reason(self) -> str: ...

    def header(self, name: str) -> str | None:
        """A header's value (case-insensitive), or ``None``."""

    def chunks(self) -> Iterator[bytes]:
        """The body, decompressed, in pieces; raises :class:`TransportFailure`."""


class _ResponseContext(Protocol):
    def __enter__(self) -> Response: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> object: ...


class Transport(ABC):
    """Sends one request; see the module's description for what it must and must not do."""

    #: True when only JSON can be sent, uncompressed (the ``access_command`` wrapper).
    json_only: bool = False

    @abstractmethod
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> _ResponseContext:
        """``POST body`` to ``url`` with exactly ``headers`` (plus ``Host`` and
        ``Content-Length``); a context manager giving the :class:`Response`.

        Redirects are never followed. Raises :class:`TransportFailure`, or an error of
        :mod:`watcher.errors` the transport words itself (the wrapper's).
        """

    def close(self) -> None:  # noqa: B027 - most transports hold nothing to close
        """Release connections."""


class BufferedResponse:
    """A complete answer held in memory (the wrapper's); its own context manager."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self._headers = {k.lower(): v for k, v in headers.items()}
        self._body = body

    @property
    def reason(self) -> str:
        return reason_phrase(self.status)

    def header(self, name: str) -> str | None:
        return self._headers.get(name.lower())

    def chunks(self) -> Iterator[bytes]:
        yield self._body

    def __enter__(self) -> BufferedResponse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def reason_phrase(status: int) -> str:
    """The standard reason phrase of an HTTP status (empty if there is none)."""
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# --------------------------------------------------------------------------- content coding

#: Largest piece of decompressed body produced at once.
PIECE = 1024 * 1024


def failure_reason(exc: BaseException) -> str:
    """An exception as the reason of a :class:`TransportFailure` (its class name when it
    carries no message)."""
    return str(exc).strip() or type(exc).__name__


def decoded_body(raw: Iterable[bytes], encoding: str | None) -> Iterator[bytes]:
    """The pieces of a body read as ``raw``, with its ``Content-Encoding`` undone in bounded
    pieces; a corrupt compressed body raises :class:`TransportFailure` ``"decoding"``."""
    decoders = body_decoders(encoding)
    try:
        for data in raw:
            yield from decode_pieces(decoders, data)
        yield from flush_decoders(decoders)
    except zlib.error as exc:
        raise TransportFailure("decoding", failure_reason(exc)) from exc


def body_decoders(encoding: str | None) -> list[zlib._Decompress]:
    """Decompressors undoing ``Content-Encoding`` (applied last first); others pass as is."""
    decoders: list[zlib._Decompress] = []
    for value in reversed([v.strip().lower() for v in (encoding or "").split(",")]):
        if value in ("gzip", "x-gzip"):
            decoders.append(zlib.decompressobj(16 + zlib.MAX_WBITS))
        elif value == "deflate":
            decoders.append(zlib.decompressobj())
    return decoders


def decode_pieces(decoders: list[zlib._Decompress], data: bytes) -> Iterator[bytes]:
    """``data`` through ``decoders``, in pieces of at most :data:`PIECE` bytes, so that the
    client's size limit stops a compression bomb early. Raises ``zlib.error``."""
    if not decoders:
        yield data
        return
    first, rest = decoders[0], decoders[1:]
    piece = first.decompress(data, PIECE)
    while True:
        if piece:
            yield from decode_pieces(rest, piece)
        if not first.unconsumed_tail:
            return
        piece = first.decompress(first.unconsumed_tail, PIECE)


def flush_decoders(decoders: list[zlib._Decompress]) -> Iterator[bytes]:
    """What the decompressors still hold once the body has ended."""
    for index, decoder in enumerate(decoders):
        tail = decoder.flush()
        if tail:
            yield from decode_pieces(decoders[index + 1 :], tail)


# --------------------------------------------------------------------------- TLS


@functools.lru_cache(maxsize=8)
def tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """The TLS context of an ``https://`` deployment, one per setting and process (loading a
    CA bundle takes tens of milliseconds).

    ``ca_file`` wins; otherwise ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` from the environment,
    otherwise the certifi bundle (what httpx trusts by default, so both transports trust the
    same authorities). ``verify`` False checks nothing.
    """
    import ssl

    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_file is not None:
        return ssl.create_default_context(cafile=ca_file)
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


@functools.lru_cache(maxsize=1)
def no_tls_context() -> ssl.SSLContext:
    """The context of a client whose base URL is ``http://``: no CA bundle is loaded.

    Such a client never starts TLS with its server (redirects are not followed), so loading
    the CA bundle would be wasted. Should TLS happen all the same, it fails: the context
    requires a verified certificate and trusts none.
    """
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


# --------------------------------------------------------------------------- the choice

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def _proxy_configured(env: Mapping[str, str]) -> bool:
    return any(key.lower() in _PROXY_VARIABLES and value for key, value in env.items())


def open_transport(
    deployment: DeploymentLike,
    http: HttpKind = "httpx",
    inner: httpx.BaseTransport | Transport | None = None,
) -> Transport:
    """The transport of a client of ``deployment``.

    - a :class:`Transport` given as ``inner`` is used as it is;
    - an ``httpx`` transport given as ``inner`` (tests) goes under :class:`HttpxTransport`;
    - a deployment with ``access_command`` runs its wrapper;
    - else ``http`` picks the socket transport: ``httpx`` (pooled, for long-running
      processes); for one-shot commands ``socket`` (plain sockets for an ``http://`` URL,
      ``http.client`` for ``https://``) or ``stdlib`` (``http.client``). The one-shot
      transports are used only with no proxy set in the environment (httpx honours
      ``HTTPS_PROXY`` and friends, the standard library's do not).
    """
    if isinstance(inner, Transport):
        return inner
    secrets = deployment.secret_values()
    if inner is None and deployment.access_command is not None:
        from watcher.querier.auth import AccessCommandTransport

        return AccessCommandTransport(
            deployment.access_command,
            timeout=deployment.timeout,
            max_response_bytes=deployment.max_response_bytes,
            secrets=secrets,
        )
    one_shot = http in ("socket", "stdlib")
    if inner is None and one_shot and not _proxy_configured(os.environ):
        if http == "socket" and deployment.url.lstrip().lower().startswith("http://"):
            from watcher.querier.socket_transport import SocketTransport

            return SocketTransport(deployment)
        from watcher.querier.stdlib_transport import StdlibTransport

        return StdlibTransport(deployment)
    from watcher.querier.httpx_transport import HttpxTransport

    return HttpxTransport(deployment, inner)
