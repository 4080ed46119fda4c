"""``QuerierClient``: the Pyroscope ``querier.v1.QuerierService`` over Connect JSON.

Every RPC is a unary ``POST {url}/querier.v1.QuerierService/{Method}``. Requests are JSON
with int64 values as strings (``SelectMergeProfile`` is sent as ``application/proto`` and
answers raw pprof bytes). Each request carries ``Connect-Protocol-Version: 1``, the
``Accept: */*;allow-utf8-labelnames=true`` capability, ``Accept-Encoding: gzip`` and the
deployment's credentials; bodies above ``gzip_threshold`` bytes are gzipped.

The bytes travel through a :class:`~watcher.querier.transport.Transport`: pooled httpx
connections by default (``http="httpx"``, for the daemon), ``http.client`` for one-shot
commands (``http="stdlib"``, which import much faster), or the deployment's
``access_command`` wrapper. Everything below happens here, above the transport, so it is
the same whichever carries the bytes.

Errors (all from :mod:`watcher.errors`):

- a Connect error, or any non-2xx answer: :class:`QuerierResponseError` with ``code``,
  ``message``, ``status``, ``method`` and ``retry_after``; a body that is not Connect JSON
  gets its code from the HTTP status;
- refused, reset, DNS, TLS or timeout: :class:`QuerierUnavailable`, naming the URL without
  credentials or query string;
- a body beyond ``max_response_bytes`` (counted while streaming, after gzip):
  :class:`ResponseTooLarge`;
- a body that is not what the method returns: :class:`DecodeError`.

Retries: 429, 502, 503, 504 and connection failures (refused, reset, connect timeout) are
tried again up to :attr:`RetryPolicy.attempts` times in all, waiting a jittered exponential
backoff or the server's ``Retry-After`` (capped). ``on_retry`` hears about each wait. Read
timeouts are not retried: a query that took too long once would take too long again.
"""

from __future__ import annotations

import binascii
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

from watcher import __version__
from watcher.errors import (
    DecodeError,
    QuerierError,
    QuerierResponseError,
    QuerierUnavailable,
    ResponseTooLarge,
)
from watcher.profiletypes import resolve_profile_type
from watcher.querier.auth import DeploymentAuth, DeploymentLike, tenant_headers
from watcher.querier.transport import (
    MAX_CONNECTIONS,
    HttpKind,
    Response,
    Transport,
    TransportFailure,
    open_transport,
)
from watcher.redact import redact, redact_url
from watcher.times import TimeRange

if TYPE_CHECKING:
    import httpx

    from watcher.flamegraph import FlameGraph, FlameGraphDiff, Tree
    from watcher.querier.models import (
        ProfileStats,
        ProfileType,
        RetryEvent,
        Series,
        StacktraceQuery,
    )

# The result types (watcher.querier.models) are imported by the methods that build them: a
# flame graph query, the common case of the command line, needs none of them.

__all__ = [
    "ACCEPT",
    "MAX_CONNECTIONS",
    "SERVICE",
    "Format",
    "QuerierClient",
    "RetryPolicy",
    "parse_retry_after",
    "status_code",
]

SERVICE = "querier.v1.QuerierService"
#: The Accept value: any type, plus the UTF-8 label names capability (spec §1.6).
ACCEPT = "*/*;allow-utf8-labelnames=true"
Format = Literal["flamegraph", "tree", "pprof"]

#: HTTP status -> Connect code for error bodies that are not Connect JSON (spec §1.5, reversed).
_STATUS_CODES: dict[int, str] = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    408: "deadline_exceeded",
    409: "aborted",
    413: "resource_exhausted",
    429: "resource_exhausted",
    499: "canceled",
    500: "unknown",
    501: "unimplemented",
    502: "unavailable",
    503: "unavailable",
    504: "deadline_exceeded",
}
_PPROF_FORMAT = 4  # PROFILE_FORMAT_PPROF, sent as a number: old servers keep unknown numbers
_METHOD = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_.]*/)?[A-Za-z_][A-Za-z0-9_]*")
_ERROR_BODY_LIMIT = 64 * 1024


def status_code(status: int) -> str:
    """The Connect code for an HTTP status when the body does not say (``unknown`` if none)."""
    return _STATUS_CODES.get(status, "unknown")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


class RetryPolicy(NamedTuple):
    """How failed requests are retried.

    ==================  =========  ============================================================
    field               default    meaning
    ==================  =========  ============================================================
    attempts            3          tries in all (1 disables retries)
    backoff             0.5        seconds before the second try; doubles each time
    max_backoff         8.0        cap of the exponential backoff
    jitter              0.5        up to this fraction of the backoff is randomly taken off
    max_retry_after     60.0       cap of a server's ``Retry-After``
    statuses            429 502..  HTTP statuses worth another try
    ==================  =========  ============================================================
    """

    attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 60.0
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rand: Callable[[], float] | None = None,
    ) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); ``rand``
        gives the jitter's random fraction (``random.random`` by default)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.backoff * (2.0 ** max(attempt - 1, 0)), self.max_backoff)
        if rand is None:
            import random  # only once a request is retried

            rand = random.random
        return base * (1.0 - self.jitter * rand())


class _Retryable(Exception):
    """An attempt failed in a way another attempt may fix; ``error`` is what to raise."""

    def __init__(
        self,
        error: QuerierError,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def _dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _excerpt(data: bytes, size: int = 200) -> str:
    text = " ".join(data[: size * 2].decode("utf-8", "replace").split())
    return text if len(text) <= size else text[: size - 3] + "..."


def _range(rng: TimeRange) -> dict[str, str]:
    return {"start": str(rng.start_ms), "end": str(rng.end_ms)}


def _strings(values: Sequence[str] | str) -> list[str]:
    return [values] if isinstance(values, str) else list(values)


class QuerierClient:
    """A client of one deployment's Querier API. Use it as a context manager, or ``close()``.

    :param deployment: a :class:`~watcher.config.Deployment` (or any
        :class:`~watcher.querier.auth.DeploymentLike`), or a base URL.
    :param transport: a :class:`~watcher.querier.transport.Transport`, or an ``httpx``
        transport to send through (tests); by default the one ``http`` names, or the
        :class:`~watcher.querier.auth.AccessCommandTransport` when ``access_command`` is set
        (see :func:`~watcher.querier.transport.open_transport`).
    :param http: ``httpx`` (pooled connections: the daemon, anything long-running) or
        ``stdlib`` (``http.client``: one-shot commands, which it starts much faster).
    :param retry: the :class:`RetryPolicy`.
    :param on_retry: called with a :class:`~watcher.querier.models.RetryEvent` before each wait.
    :param sleep: how to wait (injected by tests).
    :param gzip_threshold: gzip request bodies larger than this many bytes; ``None`` never.
    """

    def __init__(
        self,
        deployment: DeploymentLike | str,
        *,
        transport: Transport | httpx.BaseTransport | None = None,
        http: HttpKind = "httpx",
        retry: RetryPolicy | None = None,
        on_retry: Callable[[RetryEvent], object] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        gzip_threshold: int | None = 1024,
    ) -> None:
        if isinstance(deployment, str):
            from watcher.config import Deployment

            deployment = Deployment(name="default", url=deployment)
        self.deployment: DeploymentLike = deployment
        self.retry = retry or RetryPolicy()
        self._on_retry = on_retry
        self._sleep = sleep
        self._base = deployment.url.rstrip("/")
        self._limit = deployment.max_response_bytes
        self._secrets = deployment.secret_values()
        self._transport = open_transport(deployment, http, transport)
        #: The wrapper speaks JSON only and sends bodies as arguments: no proto, no gzip.
        self._json_only = self._transport.json_only
        self._gzip_threshold = None if self._json_only else gzip_threshold
        self._headers = {
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip",
            "Connect-Protocol-Version": "1",
            "User-Agent": f"pyrowatch/{__version__}",
            **tenant_headers(deployment),
        }
        #: Credentials are added to each request as it is sent, never kept in headers.
        self._auth = DeploymentAuth(deployment)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the connections."""
        self._transport.close()

    def __enter__(self) -> QuerierClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"QuerierClient({self.deployment.name!r}, {redact_url(self._base)!r})"

    # ------------------------------------------------------------------ transport

    def url(self, method: str) -> str:
        """The endpoint of ``method`` (``LabelNames`` or ``pkg.Service/Method``)."""
        if not _METHOD.fullmatch(method):
            raise QuerierError(
                f"invalid method name {method!r}: expected e.g. LabelNames or {SERVICE}/LabelNames"
            )
        path = method if "/" in method else f"{SERVICE}/{method}"
        return f"{self._base}/{path}"

    def _exchange(self, method: str, body: bytes, content_type: str) -> bytes:
        """POST ``body`` with retries; the (decompressed) response body of a 2xx answer."""
        url = self.url(method)
        name = method.rsplit("/", 1)[-1]
        headers = {**self._headers, "Content-Type": content_type}
        if self._gzip_threshold is not None and len(body) > self._gzip_threshold:
            import gzip

            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        attempts = max(self.retry.attempts, 1)
        for attempt in range(1, attempts + 1):
            try:
                return self._send_once(name, url, body, headers)
            except _Retryable as failure:
                if attempt >= attempts:
                    if isinstance(failure.error, QuerierUnavailable) and attempts > 1:
                        failure.error.args = (f"{failure.error} (after {attempts} attempts)",)
                    raise failure.error from failure.__cause__
                delay = self.retry.delay(attempt, failure.retry_after)
                if self._on_retry is not None:
                    from watcher.querier.models import RetryEvent

                    self._on_retry(
                        RetryEvent(
                            method=name,
                            attempt=attempt,
                            attempts=attempts,
                            delay=delay,
                            reason=failure.reason,
                            status=failure.status,
                        )
                    )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> bytes:
        try:
            sent = {**headers, **self._auth.headers()}
            with self._transport.post(url, body, sent) as response:
                if 200 <= response.status < 300:
                    return self._read(method, response, self._limit)
                content = self._read(method, response, min(self._limit, _ERROR_BODY_LIMIT), True)
                error = self._error(method, response, content)
        except TransportFailure as exc:
            raise self._failure(method, redact_url(url), exc) from exc
        if error.status in self.retry.statuses:
            raise _Retryable(
                error,
                f"{error.status} {error.code}",
                status=error.status,
                retry_after=error.retry_after,
            )
        raise error

    def _failure(self, method: str, shown: str, exc: TransportFailure) -> Exception:
        """The error (or :class:`_Retryable`) of a failure below HTTP."""
        reason = _reason(exc.reason)
        if exc.kind == "connect":
            if "CERTIFICATE_VERIFY_FAILED" in reason or "WRONG_VERSION_NUMBER" in reason:
                return QuerierUnavailable(  # a TLS problem: another attempt cannot help
                    f"{method}: TLS handshake with {shown} failed: {reason}; check the URL's "
                    "scheme, or the deployment's ca_file/verify_tls",
                    url=shown,
                )
            err = QuerierUnavailable(
                f"{method}: cannot connect to {shown}: {reason}", url=shown, timeout=exc.timeout
            )
            return _Retryable(err, reason)
        if exc.kind == "broken":
            err = QuerierUnavailable(f"{method}: connection to {shown} failed: {reason}", url=shown)
            return _Retryable(err, reason)
        if exc.kind == "timeout":
            # not retried: a query that took too long once would take too long again
            return QuerierUnavailable(
                f"{method}: no answer from {shown} within {self.deployment.timeout:g}s "
                "(the deployment's timeout)",
                url=shown,
                timeout=True,
            )
        if exc.kind == "decoding":
            return DecodeError(f"{method}: the response body could not be decompressed")
        return QuerierUnavailable(
            f"{method}: request to {shown} failed: {redact(reason, self._secrets)}", url=shown
        )

    def _read(self, method: str, response: Response, limit: int, truncate: bool = False) -> bytes:
        """The decoded body, counted while it streams; over ``limit`` it is refused."""
        length = response.header("Content-Length")
        encoded = (response.header("Content-Encoding") or "identity").lower() != "identity"
        if not truncate and length and length.isdigit() and not encoded and int(length) > limit:
            raise self._too_large(method, limit)
        buffer = bytearray()
        for chunk in response.chunks():
            buffer += chunk
            if len(buffer) > limit:
                if truncate:
                    return bytes(buffer[:limit])
                raise self._too_large(method, limit)
        return bytes(buffer)

    def _too_large(self, method: str, limit: int) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"{method}: the response is larger than {limit} bytes (max_response_bytes of "
            f"deployment {self.deployment.name!r}); narrow the query (shorter range, a "
            "selector, max_nodes) or raise the limit"
        )

    def _error(self, method: str, response: Response, content: bytes) -> QuerierResponseError:
        status = response.status
        retry_after = parse_retry_after(response.header("Retry-After"))
        code: str | None = None
        message = ""
        try:
            data = json.loads(content) if content.strip() else None
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("code"), str):
            code = data["code"]
            message = str(data.get("message") or "")
        if code is None:
            code = status_code(status)
            content_type = response.header("Content-Type") or ""
            if 300 <= status < 400:
                location = redact_url(response.header("Location") or "?")
                message = (
                    f"redirected to {location}; check the URL and the credentials "
                    "(a login page or a proxy in the way?)"
                )
            elif "html" in content_type or content.lstrip()[:1] == b"<":
                message = (
                    f"HTTP {status} {response.reason} with an HTML page "
                    "(a proxy or a login page in the way?)"
                )
            else:
                message = _excerpt(content) or response.reason
        return QuerierResponseError(
            code=code,
            message=redact(message, self._secrets),
            status=status,
            method=method,
            retry_after=retry_after,
        )

    # ------------------------------------------------------------------ raw calls

    def call(
        self, method: str, body: Mapping[str, Any] | str | bytes | None = None
    ) -> dict[str, Any]:
        """Call ``method`` with a JSON body; the parsed JSON answer.

        A mapping is serialised (``None`` sends ``{}``); ``str``/``bytes`` are sent verbatim,
        for raw queries typed by a user.
        """
        return self._call(method, body)

    def _call(
        self,
        method: str,
        body: Mapping[str, Any] | str | bytes | None,
        *,
        flame_graph: bool = False,
    ) -> dict[str, Any]:
        """:meth:`call`; with ``flame_graph``, an answer holding a flame graph or diff has
        the int64 strings of its levels read straight from the bytes, as ints."""
        if isinstance(body, str):
            payload = body.encode()
        elif isinstance(body, bytes):
            payload = body
        else:
            payload = _dumps(body or {})
        content = self._exchange(method, payload, "application/json")
        name = method.rsplit("/", 1)[-1]
        parsed = None
        if flame_graph:
            from watcher.flamegraph.decode import loads_flamegraph

            parsed = loads_flamegraph(content)  # None unless plainly protojson's shape
        try:
            if parsed is None:
                parsed = json.loads(content) if content.strip() else {}
        except ValueError:
            raise DecodeError(
                f"{name}: the response is not JSON: {redact(_excerpt(content), self._secrets)!r}"
            ) from None
        if not isinstance(parsed, dict):
            raise DecodeError(f"{name}: expected a JSON object, got {type(parsed).__name__}")
        return parsed

    # ------------------------------------------------------------------ RPCs

    def profile_types(self, rng: TimeRange | None = None) -> list[ProfileType]:
        """``ProfileTypes``: the profile types seen in ``rng`` (the server's last hour if None)."""
        from watcher.querier.models import ProfileType

        response = self.call("ProfileTypes", _range(rng) if rng is not None else {})
        items = _list_of(response, "profileTypes", "ProfileTypes")
        return [ProfileType.from_json(_object(item, "ProfileTypes")) for item in items]

    def label_names(self, rng: TimeRange, matchers: Sequence[str] | str = ()) -> list[str]:
        """``LabelNames``: label names of the series matching ``matchers`` in ``rng``."""
        body: dict[str, Any] = {}
        if matchers:
            body["matchers"] = _strings(matchers)
        body.update(_range(rng))
        return _string_list(self.call("LabelNames", body), "names", "LabelNames")

    def label_values(
        self, name: str, rng: TimeRange, matchers: Sequence[str] | str = ()
    ) -> list[str]:
        """``LabelValues``: the values of label ``name`` (the response field is ``names``)."""
        body: dict[str, Any] = {"name": name}
        if matchers:
            body["matchers"] = _strings(matchers)
        body.update(_range(rng))
        return _string_list(self.call("LabelValues", body), "names", "LabelValues")

    def series(
        self,
        rng: TimeRange,
        matchers: Sequence[str] | str = (),
        label_names: Sequence[str] = (),
    ) -> list[dict[str, str]]:
        """``Series``: label sets of matching series, projected to ``label_names`` if given."""
        from watcher.querier.models import labels_from_json

        body: dict[str, Any] = {}
        if matchers:
            body["matchers"] = _strings(matchers)
        if label_names:
            body["labelNames"] = list(label_names)
        body.update(_range(rng))
        response = self.call("Series", body)
        return [
            labels_from_json(_object(item, "Series").get("labels"), "Series.labelsSet")
            for item in _list_of(response, "labelsSet", "Series")
        ]

    @staticmethod
    def _merge_body(
        profile_type: str,
        selector: str | None,
        rng: TimeRange,
        max_nodes: int | None,
        call_site: Sequence[str],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "profileTypeID": resolve_profile_type(profile_type),
            "labelSelector": selector or "{}",
            **_range(rng),
        }
        if max_nodes is not None:
            body["maxNodes"] = str(max_nodes)
        if call_site:
            body["stackTraceSelector"] = {"callSite": [{"name": n} for n in call_site]}
        return body

    @overload
    def select_merge_stacktraces(
        self,
        profile_type: str,
        selector: str | None,
        rng: TimeRange,
        max_nodes: int | None = ...,
        fmt: Literal["flamegraph"] = ...,
        *,
        call_site: Sequence[str] = ...,
    ) -> FlameGraph: ...

    @overload
    def select_merge_stacktraces(
        self,
        profile_type: str,
        selector: str | None,
        rng: TimeRange,
        max_nodes: int | None = ...,
        *,
        fmt: Literal["tree"],
        call_site: Sequence[str] = ...,
    ) -> Tree: ...

    @overload
    def select_merge_stacktraces(
        self,
        profile_type: str,
        selector: str | None,
        rng: TimeRange,
        max_nodes: int | None = ...,
        *,
        fmt: Literal["pprof"],
        call_site: Sequence[str] = ...,
    ) -> bytes: ...

    @overload
    def select_merge_stacktraces(
        self,
        profile_type: str,
        selector: str | None,
        rng: TimeRange,
        max_nodes: int | None,
        fmt: Literal["tree"],
        *,
        call_site: Sequence[str] = ...,
    ) -> Tree: ...

    @overload
    def select_merge_stacktraces(
        self,
        profile_type: str,
        selector: str | None,
        rng: TimeRange,
        max_nodes: int | None,
        fmt: Literal["pprof"],
        *,
        call_site: Sequence[str] = ...,
    ) -> bytes: ...

    def select_merge_stacktraces(
        self,
        profile_type: str,
        selector: str | None,
        rng: TimeRange,
        max_nodes: int | None = None,
        fmt: Format = "flamegraph",
        *,
        call_site: Sequence[str] = (),
    ) -> FlameGraph | Tree | bytes:
        """``SelectMergeStacktraces``: the merged profile of matching series in ``rng``.

        ``fmt`` picks the result: ``flamegraph`` a decoded
        :class:`~watcher.flamegraph.FlameGraph`; ``tree`` a
        :class:`~watcher.flamegraph.Tree` from the tree bytes; ``pprof`` the profile as pprof
        bytes (servers before 2.2.0 ignore that format and answer a flame graph, in which
        case :meth:`select_merge_profile` is used instead). ``profile_type`` may be an alias;
        ``selector`` ``None`` means ``{}``.
        """
        body = self._merge_body(profile_type, selector, rng, max_nodes, call_site)
        if fmt == "tree":
            body["format"] = "PROFILE_FORMAT_TREE"
        elif fmt == "pprof":
            body["format"] = _PPROF_FORMAT
        elif fmt != "flamegraph":
            raise QuerierError(f"unknown format {fmt!r}: expected flamegraph, tree or pprof")
        response = self._call("SelectMergeStacktraces", body, flame_graph=fmt == "flamegraph")

        if fmt == "flamegraph":
            from watcher.flamegraph import decode_flamegraph

            return decode_flamegraph(_object(response.get("flamegraph"), "flamegraph"))
        if fmt == "tree":
            from watcher.flamegraph import decode_tree_bytes

            return decode_tree_bytes(_b64(response.get("tree"), "SelectMergeStacktraces.tree"))
        if "pprof" in response:
            from watcher.querier._wire import profile_json_to_pprof

            pprof = _object(response["pprof"], "SelectMergeStacktraces.pprof")
            return profile_json_to_pprof(_object(pprof.get("profile"), "pprof.profile"))
        if "flamegraph" in response:  # an older server: it does not know the PPROF format
            return self.select_merge_profile(
                profile_type, selector, rng, max_nodes, call_site=call_site
            )
        return b""

    def select_merge_profile(
        self,
        profile_type: str,
        selector: str | None,
        rng: TimeRange,
        max_nodes: int | None = None,
        *,
        call_site: Sequence[str] = (),
    ) -> bytes:
        """``SelectMergeProfile``: the merged profile as uncompressed pprof bytes.

        Sent as ``application/proto``, so the server answers the raw protobuf. Through an
        ``access_command`` wrapper (JSON only) the JSON profile is converted to the same bytes.
        """
        if self._json_only:
            from watcher.querier._wire import profile_json_to_pprof

            body = self._merge_body(profile_type, selector, rng, max_nodes, call_site)
            return profile_json_to_pprof(self.call("SelectMergeProfile", body))
        from watcher.querier._wire import encode_select_merge_profile_request

        request = encode_select_merge_profile_request(
            resolve_profile_type(profile_type),
            selector or "{}",
            rng.start_ms,
            rng.end_ms,
            max_nodes,
            call_site,
        )
        return self._exchange("SelectMergeProfile", request, "application/proto")

    def select_series(
        self,
        profile_type: str,
        selector: str | None,
        rng: TimeRange,
        step: float | timedelta | None = None,
        group_by: Sequence[str] = (),
        limit: int | None = None,
        *,
        aggregation: Literal["sum", "average"] | None = None,
        call_site: Sequence[str] = (),
    ) -> list[Series]:
        """``SelectSeries``: totals per ``step`` (seconds; default the whole range).

        Points are sparse (empty buckets are omitted); each sums ``(t - step, t]``.
        """
        from watcher.querier.models import Series

        seconds = step.total_seconds() if isinstance(step, timedelta) else step
        if seconds is None:
            seconds = max(rng.seconds, 0.001)
        if seconds < 0.001:
            raise QuerierError(f"step must be at least 1ms, got {seconds:g}s")
        body: dict[str, Any] = {
            "profileTypeID": resolve_profile_type(profile_type),
            "labelSelector": selector or "{}",
            **_range(rng),
        }
        if group_by:
            body["groupBy"] = list(group_by)
        body["step"] = seconds
        if aggregation is not None:
            body["aggregation"] = f"TIME_SERIES_AGGREGATION_TYPE_{aggregation.upper()}"
        if call_site:
            body["stackTraceSelector"] = {"callSite": [{"name": n} for n in call_site]}
        if limit is not None:
            body["limit"] = str(limit)
        response = self.call("SelectSeries", body)
        return [
            Series.from_json(_object(item, "SelectSeries"))
            for item in _list_of(response, "series", "SelectSeries")
        ]

    def diff(self, left: StacktraceQuery, right: StacktraceQuery) -> FlameGraphDiff:
        """``Diff``: the two merged profiles aligned as a :class:`FlameGraphDiff`."""
        from watcher.flamegraph import decode_diff

        body = {
            side: self._merge_body(q.profile_type, q.selector, q.range, q.max_nodes, q.call_site)
            for side, q in (("left", left), ("right", right))
        }
        response = self._call("Diff", body, flame_graph=True)
        return decode_diff(_object(response.get("flamegraph"), "Diff.flamegraph"))

    def get_profile_stats(self) -> ProfileStats:
        """``GetProfileStats``: whether data was ingested, and its oldest and newest times."""
        from watcher.querier.models import ProfileStats

        return ProfileStats.from_json(self.call("GetProfileStats", {}))


# --------------------------------------------------------------------------- helpers


def _reason(text: str) -> str:
    """A failure's reason without the ``[Errno N]`` prefix."""
    text = text.strip()
    match = re.search(r"\[Errno -?\d+\]\s*(.+)", text)
    if match:
        text = match.group(1)
    return text or "unknown error"


def _object(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DecodeError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def _list_of(response: Mapping[str, Any], key: str, method: str) -> list[Any]:
    value = response.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError(f"{method}: {key} is not a list")
    return value


def _string_list(response: Mapping[str, Any], key: str, method: str) -> list[str]:
    values = _list_of(response, key, method)
    if not all(isinstance(v, str) for v in values):
        raise DecodeError(f"{method}: {key} holds something other than strings")
    return values


def _b64(value: object, what: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise DecodeError(f"{what}: expected base64 text, got {type(value).__name__}")
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    import base64  # only the answers that carry bytes (tree format) need it

    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError(f"{what}: not valid base64") from None
