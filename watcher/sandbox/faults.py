"""Test switches of the sandbox: injected faults and optional required credentials.

A :class:`FaultPlan` maps an RPC name (``"SelectMergeStacktraces"``, ``"Push"``, ``"ingest"``,
``"ready"``) or ``"*"`` (any of them) to a :class:`Fault`. The plan can be replaced or changed
while the server runs; every method is thread-safe. A fault with ``count`` applies to the
next ``count`` matching requests only, then disappears.

An :class:`AuthConfig` makes the sandbox behave like the authenticating proxy that usually
sits in front of Pyroscope: a request must carry one of the configured credentials (bearer
token, HTTP basic, or both Cloudflare Access service-token headers) or it gets a 401.
Secrets are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

__all__ = [
    "ERROR_CODES",
    "AuthConfig",
    "AuthResult",
    "Fault",
    "FaultPlan",
]

#: HTTP status → the Connect code an injected error carries.
ERROR_CODES: dict[int, str] = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    409: "aborted",
    429: "resource_exhausted",
    499: "canceled",
    500: "internal",
    501: "unimplemented",
    502: "unavailable",
    503: "unavailable",
    504: "deadline_exceeded",
}

_DEFAULT_MESSAGES = {
    429: "rate limited: too many requests",
    500: "internal error (injected)",
    502: "bad gateway (injected)",
    503: "service unavailable (injected)",
    504: "gateway timeout (injected)",
}


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to a request. Several effects combine in this order:

    1. ``latency``: wait this many seconds before anything else;
    2. ``reset``: close the connection with a TCP RST, no response at all;
    3. ``status``: answer this HTTP status with a Connect error body (``code`` and
       ``message`` default from the status; 429 carries ``Retry-After: retry_after``);
    4. otherwise handle the request normally, then corrupt the response:
       ``malformed`` replaces the body by invalid JSON (or invalid protobuf),
       ``truncate`` advertises the full ``Content-Length`` but closes after half the body,
       ``slow_body`` dribbles the body out over that many seconds.

    ``count`` limits the fault to the next N matching requests (``None`` = every request).
    """

    latency: float = 0.0
    reset: bool = False
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    malformed: bool = False
    truncate: bool = False
    slow_body: float = 0.0
    count: int | None = None

    def __post_init__(self) -> None:
        if self.latency < 0 or self.slow_body < 0:
            raise ValueError("latency and slow_body must not be negative")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status (4xx/5xx), got {self.status}")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1 (omit it for every request)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build from JSON (unknown keys are an error, so typos do not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The non-default settings, for JSON."""
        default = Fault()
        return {k: v for k, v in asdict(self).items() if v != getattr(default, k)}

    @property
    def error_code(self) -> str:
        """The Connect code of an injected error status."""
        if self.code:
            return self.code
        return ERROR_CODES.get(self.status or 500, "unknown")

    @property
    def error_message(self) -> str:
        if self.message is not None:
            return self.message
        return _DEFAULT_MESSAGES.get(self.status or 500, f"injected error {self.status}")


class FaultPlan:
    """Faults per RPC name or ``"*"``; thread-safe and switchable at run time."""

    def __init__(self, rules: Mapping[str, Fault] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, Fault] = dict(rules or {})
        self._hits: dict[str, int] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultPlan:
        """``{"SelectMergeStacktraces": {"status": 503, "count": 2}, "*": {"latency": 0.1}}``."""
        plan = cls()
        plan.replace_from_dict(data)
        return plan

    def replace_from_dict(self, data: Mapping[str, Any]) -> None:
        """Replace every rule from a JSON-style mapping (validated before anything changes)."""
        rules: dict[str, Fault] = {}
        for method, spec in data.items():
            if not isinstance(spec, Mapping):
                raise ValueError(f"fault for {method!r} must be an object")
            rules[str(method)] = Fault.from_dict(spec)
        with self._lock:
            self._rules = rules

    def set(self, method: str, fault: Fault | None) -> None:
        """Set (or with ``None`` remove) the fault of one RPC name or ``"*"``."""
        with self._lock:
            if fault is None:
                self._rules.pop(method, None)
            else:
                self._rules[method] = fault

    def clear(self) -> None:
        """Remove every rule and forget the hit counts."""
        with self._lock:
            self._rules.clear()
            self._hits.clear()

    def take(self, method: str) -> Fault | None:
        """The fault for one incoming request, consuming one use of a counted fault.

        A rule for the exact method wins over ``"*"``.
        """
        with self._lock:
            for key in (method, "*"):
                fault = self._rules.get(key)
                if fault is None:
                    continue
                if fault.count is not None:
                    if fault.count <= 1:
                        del self._rules[key]
                    else:
                        self._rules[key] = replace(fault, count=fault.count - 1)
                self._hits[key] = self._hits.get(key, 0) + 1
                return fault
            return None

    def hits(self) -> dict[str, int]:
        """How many requests each rule (by key) has affected so far."""
        with self._lock:
            return dict(self._hits)

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {k: f.to_dict() for k, f in self._rules.items()}

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._rules)


AuthResult = Literal["none", "ok", "missing", "invalid"]


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Credentials the sandbox requires; a request must satisfy at least one of them.

    ``bearer_token``: ``Authorization: Bearer <token>``. ``basic``: ``(user, password)`` for
    HTTP Basic. ``cf_access``: ``(client_id, client_secret)``, sent as the
    ``CF-Access-Client-Id`` and ``CF-Access-Client-Secret`` headers (both needed).
    """

    bearer_token: str | None = None
    basic: tuple[str, str] | None = None
    cf_access: tuple[str, str] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.bearer_token or self.basic or self.cf_access)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuthConfig:
        basic = data.get("basic")
        cf = data.get("cf_access")
        return cls(
            bearer_token=data.get("bearer_token"),
            basic=(str(basic[0]), str(basic[1])) if basic else None,
            cf_access=(str(cf[0]), str(cf[1])) if cf else None,
        )

    def check(self, headers: Mapping[str, str]) -> AuthResult:
        """``"none"`` when nothing is required, else ``"ok"``, ``"missing"`` or ``"invalid"``.

        Header names are matched case-insensitively.
        """
        if not self.enabled:
            return "none"
        headers = {name.lower(): value for name, value in headers.items()}
        presented = False
        authorization = headers.get("authorization") or ""
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if authorization:
            presented = True
            if scheme.lower() == "bearer" and self.bearer_token is not None:
                if _same(credentials, self.bearer_token):
                    return "ok"
            elif scheme.lower() == "basic" and self.basic is not None:
                try:
                    decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    decoded = ""
                user, sep, password = decoded.partition(":")
                if sep and _same(user, self.basic[0]) and _same(password, self.basic[1]):
                    return "ok"
        cf_id = headers.get("cf-access-client-id")
        cf_secret = headers.get("cf-access-client-secret")
        if cf_id is not None or cf_secret is not None:
            presented = True
            if (
                self.cf_access is not None
                and cf_id is not None
                and cf_secret is not None
                and _same(cf_id, self.cf_access[0])
                and _same(cf_secret, self.cf_access[1])
            ):
                return "ok"
        return "invalid" if presented else "missing"

    def challenge(self) -> str | None:
        """A ``WWW-Authenticate`` value for 401 answers."""
        if self.basic is not None:
            return 'Basic realm="pyroscope sandbox"'
        if self.bearer_token is not None:
            return 'Bearer realm="pyroscope sandbox"'
        return None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
