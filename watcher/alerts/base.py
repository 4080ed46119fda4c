"""The alert channel interface: what a notification is, how it is rendered and delivered.

A notifier turns one :class:`AlertGroup` (every finding of one service, profile type and
run) into a wire payload with the pure :meth:`Notifier.payload`, and delivers a group or an
already rendered payload with :meth:`Notifier.send`.

``send`` returns a :class:`DeliveryResult` on a 2xx answer and otherwise raises
:class:`DeliveryError` (a :class:`~watcher.errors.NotifierError`), classified once here:

=====================================================  ==========================================
what happened                                           error
=====================================================  ==========================================
2xx                                                     none: ``DeliveryResult``
429                                                     retryable, ``retry_after`` from the header
5xx, 408, 425, timeouts, refused or reset connections   retryable (``retry_after`` when sent)
other 4xx (400, 401, 403, 404, 410, 413, 422 ...), 3xx  permanent: retrying cannot help
a channel-specific refusal in the body (Slack codes)    as the channel decides
=====================================================  ==========================================

A channel's URL is a secret (Slack webhook URLs carry their token in the path). No message,
``repr`` or exception raised here contains it: a channel is named by its configured name and
its host only, response bodies are quoted with the URL and secret header values redacted,
and httpx exceptions (whose text or request can hold the URL) are never chained.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, Protocol, TypeAlias, runtime_checkable
from urllib.parse import urlsplit

import httpx

from watcher import __version__
from watcher.errors import ConfigError, NotifierError
from watcher.findings import Finding
from watcher.redact import redact

from . import _format

AlertStatus = Literal["firing", "resolved"]
Payload: TypeAlias = dict[str, Any] | list[Any]

#: Alert name every regression carries, for routing in Alertmanager.
ALERTNAME = "ProfileRegression"

#: How much of a refusing response body is quoted in an error.
BODY_EXCERPT_CHARS = 200


@runtime_checkable
class SecretLike(Protocol):
    """Anything that hides a string until asked, such as pydantic's ``SecretStr``."""

    def get_secret_value(self) -> str: ...


class ChannelConfig(Protocol):
    """What a notifier needs from a configured alert channel (``[[watcher.alert]]``).

    Optional attributes read when present: ``headers`` (mapping of header name to a string
    or a secret), ``timeout`` (seconds or ``timedelta``), ``max_alerts`` (int, webhook only).
    """

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def url(self) -> SecretLike | str: ...

    @property
    def repeat_interval(self) -> timedelta: ...

    @property
    def send_resolved(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class AlertLinks:
    """Where a reader goes next; every URL is credential-free (see :mod:`.links`).

    ``drilldown`` is the Grafana Profiles Drilldown diff, ``diff`` the Pyroscope UI diff,
    ``flamegraph`` the current window's flame graph (in Drilldown when Grafana is set up).
    """

    diff: str | None = None
    flamegraph: str | None = None
    runbook: str | None = None
    silence: str | None = None
    drilldown: str | None = None

    @property
    def primary(self) -> str | None:
        """The link an alert leads with (``generatorURL``): the first diff, else the flame
        graph."""
        return self.drilldown or self.diff or self.flamegraph


@dataclass(frozen=True, slots=True)
class AlertGroup:
    """One notification: the findings of one (service, profile type) in one run.

    ``status`` is ``firing`` while the regressions are open and ``resolved`` once they are
    back within bounds; ``resolved_at`` is when that was established. ``cycle`` is the
    watch's schedule period: Alertmanager alerts expire three cycles after each send.
    ``labels`` are added to every alert (``namespace``, ``cluster`` ...). ``external_url``
    is where the watcher itself can be reached, if it has a public URL. ``starts`` maps a
    finding's fingerprint to when its regression was first opened (``startsAt``); without
    an entry the finding's estimated change time, then its window start, is used.
    """

    service: str
    profile_type: str
    deployment: str
    run_id: str | int
    window_start: datetime
    window_end: datetime
    findings: Sequence[Finding]
    status: AlertStatus = "firing"
    links: AlertLinks = field(default_factory=AlertLinks)
    resolved_at: datetime | None = None
    cycle: timedelta = timedelta(minutes=15)
    watch: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""
    starts: Mapping[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in ("firing", "resolved"):
            raise ValueError(f"status {self.status!r}: must be 'firing' or 'resolved'")
        if not self.findings:
            raise ValueError("an alert group needs at least one finding")
        for name in ("window_start", "window_end", "resolved_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} {value.isoformat()}: times must be timezone-aware")
        if self.cycle <= timedelta(0):
            raise ValueError(f"cycle {self.cycle}: must be positive")

    @property
    def severity(self) -> str:
        """The worst severity among the findings."""
        return max((f.severity for f in self.findings), key=_format.severity_rank)

    @property
    def ranked_findings(self) -> list[Finding]:
        """Findings worst first (severity, then absolute impact, then relative change)."""
        return _format.ranked(self.findings)

    def started_at(self, finding: Finding) -> datetime:
        """When ``finding``'s regression began, for ``startsAt``."""
        return self.starts.get(finding.fingerprint) or finding.change_time or finding.window_start

    @property
    def group_labels(self) -> dict[str, str]:
        """The labels that identify this group across runs (Alertmanager's ``groupLabels``)."""
        labels = {
            "alertname": ALERTNAME,
            "service_name": self.service,
            "profile_type": self.profile_type,
        }
        if self.deployment:
            labels["deployment"] = self.deployment
        return labels

    @property
    def group_key(self) -> str:
        """Stable key of the group, in Alertmanager's ``{}:{label="value", ...}`` form."""
        inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(self.group_labels.items()))
        return "{}:{" + inner + "}"

    @property
    def digest(self) -> str:
        """Changes when the status or the set of (finding, severity) pairs changes."""
        parts = sorted(f"{f.fingerprint}:{f.severity}" for f in self.findings)
        return hashlib.sha256("|".join([self.status, *parts]).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """A notification the channel accepted."""

    status_code: int
    duration: timedelta


class DeliveryError(NotifierError):
    """A channel refused or failed a delivery.

    ``channel`` is the configured channel name, ``status_code`` the HTTP status (``None``
    when no answer came), ``reason`` a short machine word (``http_500``, ``timeout``,
    ``connection``, ``invalid_token`` ...), ``duration`` how long the attempt took.
    """

    def __init__(
        self,
        message: str,
        *,
        channel: str,
        reason: str,
        permanent: bool = False,
        retry_after: float | None = None,
        status_code: int | None = None,
        duration: timedelta = timedelta(0),
    ) -> None:
        self.channel = channel
        self.reason = reason
        self.status_code = status_code
        self.duration = duration
        super().__init__(message, permanent=permanent, retry_after=retry_after)


def reveal(secret: SecretLike | str) -> str:
    """The plain value of a secret or a string."""
    if isinstance(secret, str):
        return secret
    return secret.get_secret_value()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds == float("inf"):  # NaN or infinite
        return None
    return max(0.0, seconds)


def _timeout_of(channel: object) -> httpx.Timeout | None:
    value = getattr(channel, "timeout", None)
    if value is None:
        return None
    if isinstance(value, timedelta):
        return httpx.Timeout(value.total_seconds())
    if isinstance(value, int | float):
        return httpx.Timeout(float(value))
    if isinstance(value, httpx.Timeout):
        return value
    return None


class Notifier(ABC):
    """One configured alert channel. Subclasses set ``kind`` and implement ``payload``."""

    kind: ClassVar[str]

    def __init__(self, channel: ChannelConfig) -> None:
        self.channel = channel
        url = reveal(channel.url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # Quote neither the URL nor its parts: the whole value is a secret.
            raise ConfigError(
                "must be an http:// or https:// URL with a host (value not shown: it is secret)",
                key=f"watcher.alert[{channel.name}].url",
            )
        self._url = url
        self._host = parts.hostname

    # -- identity ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The channel's configured name."""
        return self.channel.name

    @property
    def host(self) -> str:
        """The host the channel posts to (not secret)."""
        return self._host

    @property
    def send_resolved(self) -> bool:
        """Whether resolved notifications go to this channel."""
        return bool(self.channel.send_resolved)

    @property
    def repeat_interval(self) -> timedelta:
        """How long a still-firing group waits before it is notified again."""
        return self.channel.repeat_interval

    def describe(self) -> str:
        """``slack channel 'oncall' (hooks.slack.com)``: safe to log and show."""
        return f"{self.kind} channel {self.name!r} ({self._host})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} host={self._host!r}>"

    # -- rendering --------------------------------------------------------------------

    @abstractmethod
    def payload(self, group: AlertGroup, *, now: datetime | None = None) -> Payload:
        """The JSON body for ``group``; pure, ``now`` defaults to the current UTC time."""

    def endpoint(self) -> str:
        """The URL the payload is posted to. Secret: never log or show it."""
        return self._url

    def headers(self) -> dict[str, str]:
        """Request headers: JSON content type, user agent, configured headers (secret
        values revealed: never log the result)."""
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"pyrowatch/{__version__}",
        }
        configured = getattr(self.channel, "headers", None)
        if isinstance(configured, Mapping):
            for key, value in configured.items():
                headers[str(key)] = reveal(value) if isinstance(value, SecretLike) else str(value)
        return headers

    # -- delivery ---------------------------------------------------------------------

    def send(
        self,
        message: AlertGroup | Payload,
        client: httpx.Client,
        *,
        now: datetime | None = None,
        timeout: float | timedelta | None = None,
    ) -> DeliveryResult:
        """POST ``message`` (a group, or a payload rendered earlier) to the channel.

        :returns: the status and duration of an accepted delivery.
        :raises DeliveryError: refused or failed; ``permanent`` says whether retrying can
            help, ``retry_after`` how long the channel asked us to wait.
        """
        body = self.payload(message, now=now) if isinstance(message, AlertGroup) else message
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        request_timeout = _timeout_of(self.channel)
        if timeout is not None:
            seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
            request_timeout = httpx.Timeout(seconds)
        started = time.perf_counter()
        try:
            if request_timeout is None:
                response = client.post(self.endpoint(), content=content, headers=self.headers())
            else:
                response = client.post(
                    self.endpoint(),
                    content=content,
                    headers=self.headers(),
                    timeout=request_timeout,
                )
        except httpx.TimeoutException as exc:
            raise self._error(
                f"timed out ({type(exc).__name__})",
                reason="timeout",
                started=started,
            ) from None
        except httpx.UnsupportedProtocol:
            raise self._error(
                "the URL's scheme is not supported; fix the channel's url",
                reason="bad_url",
                permanent=True,
                started=started,
            ) from None
        except httpx.TransportError as exc:
            raise self._error(
                f"connection failed ({type(exc).__name__}: {self._scrub(str(exc))})",
                reason="connection",
                started=started,
            ) from None
        except httpx.InvalidURL:
            raise self._error(
                "the URL is not valid; fix the channel's url",
                reason="bad_url",
                permanent=True,
                started=started,
            ) from None
        duration = timedelta(seconds=time.perf_counter() - started)
        self.check_response(response, duration=duration)
        return DeliveryResult(status_code=response.status_code, duration=duration)

    def check_response(self, response: httpx.Response, *, duration: timedelta) -> None:
        """Raise :class:`DeliveryError` unless ``response`` means the channel took it."""
        status = response.status_code
        if 200 <= status < 300:
            return
        excerpt = self.body_excerpt(response)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        detail = f": {excerpt}" if excerpt else ""
        if status == 429:
            wait = f"; retry after {retry_after:g}s" if retry_after is not None else ""
            raise self._error(
                f"rate limited (HTTP 429){wait}{detail}",
                reason="http_429",
                status_code=status,
                retry_after=retry_after,
                duration=duration,
            )
        if status >= 500 or status in (408, 425):
            raise self._error(
                f"HTTP {status}{detail}",
                reason=f"http_{status}",
                status_code=status,
                retry_after=retry_after,
                duration=duration,
            )
        if 300 <= status < 400:
            hint = "the channel redirected; point the channel's url at the final address"
        else:
            hint = _PERMANENT_HINTS.get(status, "the channel refused the notification")
        raise self._error(
            f"HTTP {status}{detail} ({hint})",
            reason=f"http_{status}",
            status_code=status,
            permanent=True,
            duration=duration,
        )

    def body_excerpt(self, response: httpx.Response) -> str:
        """The start of a response body, on one line, with the channel's URL scrubbed."""
        try:
            text = response.text
        except (UnicodeDecodeError, LookupError):
            return ""
        text = " ".join(text.split())
        return self._scrub(_format.shorten(text, BODY_EXCERPT_CHARS))

    def _scrub(self, text: str) -> str:
        parts = urlsplit(self._url)
        secrets: list[str | SecretLike | None] = [self._url, parts.password, parts.query]
        if parts.path not in ("", "/"):
            secrets.append(parts.path)
        configured = getattr(self.channel, "headers", None)
        if isinstance(configured, Mapping):
            secrets.extend(v for v in configured.values() if isinstance(v, SecretLike))
        return redact(text, secrets)

    def _error(
        self,
        what: str,
        *,
        reason: str,
        permanent: bool = False,
        retry_after: float | None = None,
        status_code: int | None = None,
        duration: timedelta | None = None,
        started: float | None = None,
    ) -> DeliveryError:
        if duration is None:
            elapsed = time.perf_counter() - started if started is not None else 0.0
            duration = timedelta(seconds=elapsed)
        kind = "permanent" if permanent else "retryable"
        return DeliveryError(
            f"{self.describe()}: {what} [{kind}]",
            channel=self.name,
            reason=reason,
            permanent=permanent,
            retry_after=retry_after,
            status_code=status_code,
            duration=duration,
        )


_PERMANENT_HINTS = {
    400: "the payload was refused; retrying the same payload cannot help",
    401: "the credentials were refused; fix the channel's url or headers",
    403: "access was refused; fix the channel's url or headers",
    404: "nothing at that URL; the webhook may have been deleted",
    410: "the endpoint is gone; the webhook was removed or the channel archived",
    413: "the payload is too large",
    422: "the payload was refused; retrying the same payload cannot help",
}
