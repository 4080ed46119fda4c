"""Grafana Profiles Drilldown links: URL shape, units, encoding, no credentials, and which
link each channel leads with."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from watcher.alerts import build_links, validate_slack_payload
from watcher.alerts.alertmanager import alertmanager_payload
from watcher.alerts.links import (
    drilldown_diff_url,
    drilldown_filters,
    drilldown_flamegraph_url,
)
from watcher.alerts.slack import slack_payload
from watcher.alerts.webhook import webhook_payload
from watcher.errors import SelectorError

from .support import CPU, DAY, HOUR, T0

GRAFANA = "https://grafana.example"
EXPLORE = "/a/grafana-pyroscope-app/explore"


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def test_diff_url_selects_both_ranges_in_milliseconds() -> None:
    """Baseline in ``diffFrom``/``diffTo``, current in ``diffFrom-2``/``diffTo-2``; each
    panel (``from-2``/``to-2``, ``from-3``/``to-3``) adds one window of context before."""
    url = drilldown_diff_url(
        GRAFANA,
        service="checkout",
        profile_type=CPU,
        baseline=(T0 - DAY, T0 - DAY + HOUR),
        current=(T0, T0 + HOUR),
        datasource_uid="pyro-prod",
    )

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "grafana.example", EXPLORE)
    assert _query(url) == {
        "explorationType": ["diff-flame-graph"],
        "var-dataSource": ["pyro-prod"],
        "var-serviceName": ["checkout"],
        "var-profileMetricId": [CPU],
        "from": ["1714561200000"],  # T0 - 1h
        "to": ["1714568400000"],  # T0 + 1h
        "from-2": ["1714474800000"],  # T0 - 1d - 1h
        "to-2": ["1714482000000"],  # T0 - 1d + 1h
        "from-3": ["1714561200000"],
        "to-3": ["1714568400000"],
        "diffFrom": ["1714478400000"],  # T0 - 1d
        "diffTo": ["1714482000000"],
        "diffFrom-2": ["1714564800000"],  # T0
        "diffTo-2": ["1714568400000"],
    }


def test_milliseconds_are_exact_for_sub_second_times() -> None:
    """Times are truncated to whole milliseconds, never rounded through a float."""
    start = datetime(2024, 5, 1, 12, 0, 0, 999_999, tzinfo=UTC)
    url = drilldown_flamegraph_url(
        GRAFANA, service="s", profile_type=CPU, window=(start, start + HOUR)
    )

    assert _query(url)["from"] == ["1714564800999"]


def test_flamegraph_url_shows_the_current_window_with_filters() -> None:
    """The flame graph view carries the window and the selector as ``var-filters``."""
    url = drilldown_flamegraph_url(
        GRAFANA,
        service="api",
        profile_type=CPU,
        window=(T0, T0 + HOUR),
        selector='{namespace="prod", pod!~"canary-.*"}',
    )

    assert urlsplit(url).path == EXPLORE
    assert _query(url) == {
        "explorationType": ["flame-graph"],
        "var-serviceName": ["api"],
        "var-profileMetricId": [CPU],
        "from": ["1714564800000"],
        "to": ["1714568400000"],
        "var-filters": ["namespace|=|prod", "pod|!~|canary-.*"],
    }


def test_service_names_with_quotes_and_spaces_are_encoded() -> None:
    """The service name goes in as it is, percent-encoded; nothing raw breaks the URL."""
    service = 'shop "eu" & web/1?#'
    url = drilldown_diff_url(
        GRAFANA,
        service=service,
        profile_type=CPU,
        baseline=(T0 - DAY, T0 - DAY + HOUR),
        current=(T0, T0 + HOUR),
    )

    assert _query(url)["var-serviceName"] == [service]
    query = urlsplit(url).query
    for raw in (" ", '"', "#", "?"):
        assert raw not in query
    assert "&web" not in query


def test_filters_escape_pipes_and_commas_and_skip_service_and_metric() -> None:
    """Grafana's ad hoc filter encoding: ``|`` is ``__gfp__`` and ``,`` is ``__gfc__``;
    ``service_name`` and a metric name have their own parameters."""
    selector = 'process_cpu{service_name="x", env=~"prod|stage", "a,b"="1,2", q="say \\"hi\\""}'

    assert drilldown_filters(selector) == [
        "env|=~|prod__gfp__stage",
        "a__gfc__b|=|1__gfc__2",
        'q|=|say "hi"',
    ]
    assert drilldown_filters(None) == drilldown_filters(" ") == drilldown_filters("{}") == []


def test_diff_url_puts_the_selector_on_both_sides() -> None:
    """Baseline and comparison are filtered alike."""
    url = drilldown_diff_url(
        GRAFANA,
        service="s",
        profile_type=CPU,
        baseline=(T0 - DAY, T0 - DAY + HOUR),
        current=(T0, T0 + HOUR),
        selector='{namespace="prod"}',
    )

    query = _query(url)
    assert query["var-filtersBaseline"] == query["var-filtersComparison"] == ["namespace|=|prod"]


def test_a_selector_that_does_not_parse_is_an_error() -> None:
    """A bad selector raises (a ValueError), so the caller can fall back to no links."""
    with pytest.raises(SelectorError):
        drilldown_filters('{namespace="prod"')
    assert issubclass(SelectorError, ValueError)


@pytest.mark.parametrize(
    ("grafana_url", "prefix"),
    [
        ("https://admin:hunter2@grafana.example/", "https://grafana.example/a/"),
        ("https://grafana.example/grafana?auth_token=SEKRIT", "https://grafana.example/grafana/a/"),
        ("https://grafana.example#access_token=SEKRIT", "https://grafana.example/a/"),
        ("http://viewer@[::1]:3000/g/", "http://[::1]:3000/g/a/"),
    ],
)
def test_links_never_include_credentials(grafana_url: str, prefix: str) -> None:
    """User info, query string and fragment of the Grafana URL are dropped; a sub-path and
    a port are kept."""
    links = build_links(
        None,
        service="s",
        profile_type=CPU,
        current=(T0, T0 + HOUR),
        baseline=(T0 - DAY, T0 - DAY + HOUR),
        grafana_url=grafana_url,
    )

    for url in (links.drilldown, links.flamegraph):
        assert url is not None and url.startswith(prefix + "grafana-pyroscope-app/explore?")
        for secret in ("admin", "hunter2", "viewer", "SEKRIT", "auth_token", "access_token"):
            assert secret not in url


def test_naive_datetimes_are_refused() -> None:
    """Times must be timezone-aware."""
    with pytest.raises(ValueError, match="timezone-aware"):
        drilldown_flamegraph_url(
            GRAFANA,
            service="s",
            profile_type=CPU,
            window=(datetime(2024, 1, 1), datetime(2024, 1, 2)),
        )


def test_build_links_with_grafana_and_pyroscope_ui() -> None:
    """Both set: Drilldown diff first, Pyroscope diff second, flame graph in Drilldown."""
    links = build_links(
        "https://pyroscope.example",
        service="s",
        profile_type=CPU,
        current=(T0, T0 + HOUR),
        baseline=(T0 - DAY, T0 - DAY + HOUR),
        grafana_url=GRAFANA,
        datasource_uid="pyro",
    )

    assert links.drilldown is not None and links.drilldown.startswith(GRAFANA + EXPLORE)
    assert links.diff is not None and links.diff.startswith("https://pyroscope.example/comp")
    assert links.flamegraph is not None
    assert _query(links.flamegraph)["explorationType"] == ["flame-graph"]
    assert links.primary == links.drilldown


def test_build_links_without_grafana_is_unchanged() -> None:
    """No Grafana URL: no Drilldown link; the Pyroscope UI diff leads."""
    links = build_links(
        "https://pyroscope.example",
        service="s",
        profile_type=CPU,
        current=(T0, T0 + HOUR),
        baseline=(T0 - DAY, T0 - DAY + HOUR),
    )

    assert links.drilldown is None
    assert links.primary == links.diff
    assert links.flamegraph is not None and links.flamegraph.startswith("https://pyroscope.")


def test_without_a_baseline_the_flame_graph_leads() -> None:
    """No baseline window: no diff anywhere, the Drilldown flame graph is the primary link."""
    links = build_links(
        None,
        service="s",
        profile_type=CPU,
        current=(T0, T0 + HOUR),
        baseline=None,
        grafana_url=GRAFANA,
    )

    assert (links.drilldown, links.diff) == (None, None)
    assert links.primary == links.flamegraph is not None


def test_every_channel_leads_with_the_drilldown_diff(make_group: Any) -> None:
    """generatorURL of the webhook and Alertmanager payloads, and the first Slack link."""
    links = build_links(
        "https://pyroscope.example",
        service="checkout",
        profile_type=CPU,
        current=(T0, T0 + HOUR),
        baseline=(T0 - DAY, T0 - DAY + HOUR),
        selector='{namespace="prod", cluster=~"eu-.*"}',
        grafana_url=GRAFANA,
        datasource_uid="pyro-prod",
    )
    group = make_group(links=links)

    (hook_alert,) = webhook_payload(group, receiver="oncall")["alerts"]
    assert hook_alert["generatorURL"] == links.drilldown
    assert hook_alert["annotations"]["drilldown_url"] == links.drilldown
    assert hook_alert["annotations"]["diff_url"] == links.diff
    (am_alert,) = alertmanager_payload(group, now=T0)
    assert am_alert["generatorURL"] == links.drilldown

    slack = slack_payload(group)
    assert validate_slack_payload(slack) == []
    text = json.dumps(slack["blocks"])
    assert f"<{links.drilldown}|Compare in Grafana>" in text
    assert text.index("Compare in Grafana") < text.index("Compare in Pyroscope")
