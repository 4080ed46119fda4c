"""Fixtures for the alert tests: findings, groups, channel configs, a live webhook sink, and
the daemon tests' App factory (which checks that no database connection leaks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from daemon import conftest as _daemon
from pydantic import SecretStr

from watcher.alerts import AlertGroup, build_links
from watcher.findings import Finding
from watcher.sandbox.sink import WebhookSink

from .support import CPU, HOUR, T0

# The daemon tests' fixtures, shared: a running webhook sink (stopped after the test) and
# the App factory.
sink = _daemon.sink
make_app = _daemon.make_app

#: A distinctive secret in a webhook URL path, as Slack webhook URLs have.
SECRET_TOKEN = "xoxSECRETtoken1234567890"
SECRET_PATH = f"/services/T0SECRET/B0SECRET/{SECRET_TOKEN}"


@dataclass
class Channel:
    """A duck-typed alert channel config, shaped like ``[[watcher.alert]]``."""

    name: str
    kind: str
    url: SecretStr
    repeat_interval: timedelta = timedelta(hours=4)
    send_resolved: bool = True
    headers: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    max_alerts: int = 0


FindingFactory = Callable[..., Finding]
GroupFactory = Callable[..., AlertGroup]
ChannelFactory = Callable[..., Channel]


@pytest.fixture
def make_channel() -> ChannelFactory:
    """Build a channel config: ``make_channel("slack", url, name="oncall", timeout=...)``."""

    def make(kind: str, url: str, *, name: str = "oncall", **overrides: Any) -> Channel:
        return Channel(name=name, kind=kind, url=SecretStr(url), **overrides)

    return make


@pytest.fixture
def make_finding() -> FindingFactory:
    """Build a CPU self-regression finding in ``checkout``; keywords override fields."""

    def make(function: str = "pkg.Foo", **overrides: Any) -> Finding:
        values: dict[str, Any] = {
            "service": "checkout",
            "profile_type": CPU,
            "function": function,
            "kind": "self",
            "baseline_share": 0.008,
            "current_share": 0.0107,
            "relative_change": 0.34,
            "absolute_change": 0.0027,
            "impact_per_second": 0.9,
            "impact_unit": "cores",
            "p_value": 2.1e-7,
            "ci_low": 0.20,
            "ci_high": 0.48,
            "mde": 0.05,
            "window_start": T0,
            "window_end": T0 + HOUR,
            "baseline_starts": (T0 - timedelta(days=1),),
        }
        values.update(overrides)
        return Finding(**values)

    return make


@pytest.fixture
def make_group(make_finding: FindingFactory) -> GroupFactory:
    """Build an alert group for ``checkout`` with Pyroscope links; keywords override."""

    def make(findings: list[Finding] | None = None, **overrides: Any) -> AlertGroup:
        links = build_links(
            "https://pyroscope.example/ui",
            service="checkout",
            profile_type=CPU,
            current=(T0, T0 + HOUR),
            baseline=(T0 - timedelta(days=1), T0 - timedelta(days=1) + HOUR),
        )
        values: dict[str, Any] = {
            "service": "checkout",
            "profile_type": CPU,
            "deployment": "prod",
            "run_id": "42",
            "window_start": T0,
            "window_end": T0 + HOUR,
            "findings": findings if findings is not None else [make_finding()],
            "links": links,
            "watch": "checkout-cpu",
        }
        values.update(overrides)
        return AlertGroup(**values)

    return make


@pytest.fixture(scope="session")
def client() -> Iterator[httpx.Client]:
    """One httpx client (building one loads TLS roots), with a generous default timeout."""
    with httpx.Client(timeout=10.0) as http:
        yield http


@pytest.fixture
def secret_url(sink: WebhookSink) -> str:
    """A webhook URL on the sink whose path carries a secret token."""
    return sink.url + SECRET_PATH
