"""Pyroscope UI links: diff of two windows, flame graph, no credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from watcher.alerts.links import (
    base_url,
    baseline_window,
    build_links,
    comparison_url,
    flamegraph_url,
    pyroscope_query,
)

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def test_comparison_url_carries_both_windows_and_the_query() -> None:
    """``/comparison-diff`` with left = baseline, right = current, in unix seconds."""
    url = comparison_url(
        "https://pyroscope.example/ui/",
        service="checkout",
        profile_type=CPU,
        baseline=(T0 - DAY, T0 - DAY + HOUR),
        current=(T0, T0 + HOUR),
    )

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "pyroscope.example",
        "/ui/comparison-diff",
    )
    query = f'{CPU}{{service_name="checkout"}}'
    assert parse_qs(parts.query) == {
        "query": [query],
        "from": ["1714478400"],
        "until": ["1714568400"],
        "leftQuery": [query],
        "leftFrom": ["1714478400"],
        "leftUntil": ["1714482000"],
        "rightQuery": [query],
        "rightFrom": ["1714564800"],
        "rightUntil": ["1714568400"],
    }


def test_flamegraph_url_shows_the_current_window() -> None:
    """The single view at ``/`` with the current window."""
    url = flamegraph_url(
        "http://localhost:4040", service="api", profile_type=CPU, window=(T0, T0 + HOUR)
    )

    parts = urlsplit(url)
    assert parts.path == "/"
    assert parse_qs(parts.query) == {
        "query": [f'{CPU}{{service_name="api"}}'],
        "from": ["1714564800"],
        "until": ["1714568400"],
    }


@pytest.mark.parametrize(
    "ui_url",
    [
        "https://admin:hunter2@pyroscope.example/ui",
        "https://pyroscope.example/ui?api_key=SEKRIT",
        "https://pyroscope.example/ui#token=SEKRIT",
        "https://admin@pyroscope.example/ui/",
    ],
)
def test_links_never_include_credentials(ui_url: str) -> None:
    """User info, query string and fragment of the base URL are dropped."""
    url = comparison_url(
        ui_url, service="s", profile_type=CPU, baseline=(T0 - HOUR, T0), current=(T0, T0 + HOUR)
    )

    assert url.startswith("https://pyroscope.example/ui/comparison-diff?query=")
    for secret in ("admin", "hunter2", "SEKRIT", "api_key", "token"):
        assert secret not in url


def test_base_url_keeps_ports_and_ipv6_hosts() -> None:
    """Ports and bracketed IPv6 literals survive credential stripping."""
    assert base_url("http://u:p@[::1]:4040/") == "http://[::1]:4040"


def test_base_url_refuses_non_http_urls() -> None:
    """Only http(s) URLs with a host make links."""
    with pytest.raises(ValueError, match="http"):
        base_url("javascript:alert(1)")


def test_query_escapes_label_values_and_appends_the_selector() -> None:
    """Quotes and backslashes in names are escaped; extra matchers follow service_name."""
    query = pyroscope_query('we"ird\\svc', CPU, '{namespace="prod", env=~"eu.*"}')

    assert query == f'{CPU}{{service_name="we\\"ird\\\\svc", namespace="prod", env=~"eu.*"}}'


def test_build_links_without_a_ui_url_keeps_only_other_links() -> None:
    """No UI URL: no diff or flame graph, runbook and silence still pass through."""
    links = build_links(
        None,
        service="s",
        profile_type=CPU,
        current=(T0, T0 + HOUR),
        baseline=None,
        runbook="https://rb.example",
    )

    assert (links.diff, links.flamegraph, links.runbook) == (None, None, "https://rb.example")


def test_baseline_window_has_the_current_windows_length() -> None:
    """A baseline starting a day earlier lasts as long as the current window."""
    assert baseline_window((T0, T0 + HOUR), T0 - DAY) == (T0 - DAY, T0 - DAY + HOUR)


def test_naive_datetimes_are_refused() -> None:
    """Times must be timezone-aware."""
    with pytest.raises(ValueError, match="timezone-aware"):
        flamegraph_url(
            "http://x.example",
            service="s",
            profile_type=CPU,
            window=(datetime(2024, 1, 1), datetime(2024, 1, 2)),
        )
