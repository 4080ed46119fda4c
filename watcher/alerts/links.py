"""Links from an alert into the Pyroscope UI: the diff of two windows and a flame graph.

The Pyroscope UI keeps its state in the query string: ``query`` with ``from``/``until`` for
the single view (``/``), and ``leftQuery``/``leftFrom``/``leftUntil`` plus
``rightQuery``/``rightFrom``/``rightUntil`` for the comparison views (``/comparison`` side by
side, ``/comparison-diff`` as one diff flame graph). Times are unix seconds. A query is a
profile type ID followed by a label selector::

    process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="checkout"}

Links never carry credentials: user info, query string and fragment of the base URL are
dropped, so a base URL such as ``https://user:pass@pyroscope.example/?token=x`` yields
``https://pyroscope.example/...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from .base import AlertLinks

Window = tuple[datetime, datetime]


def base_url(ui_url: str) -> str:
    """``ui_url`` without credentials, query or fragment, and without a trailing slash."""
    parts = urlsplit(ui_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the Pyroscope UI URL must be an http:// or https:// URL with a host")
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _quote_label_value(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def pyroscope_query(service: str, profile_type: str, selector: str | None = None) -> str:
    """``profile_type{service_name="service", <selector matchers>}``.

    ``selector`` is an optional extra label selector such as ``{namespace="prod"}``; its
    matchers are appended after ``service_name``.
    """
    matchers = [f"service_name={_quote_label_value(service)}"]
    if selector:
        inner = selector.strip()
        if inner.startswith("{") and inner.endswith("}"):
            inner = inner[1:-1]
        inner = inner.strip().strip(",").strip()
        if inner:
            matchers.append(inner)
    return f"{profile_type}{{{', '.join(matchers)}}}"


def _seconds(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: times must be timezone-aware")
    return str(int(moment.timestamp()))


def _url(ui_url: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    return f"{base_url(ui_url)}{path}?{urlencode(list(params))}"


def comparison_url(
    ui_url: str,
    *,
    service: str,
    profile_type: str,
    baseline: Window,
    current: Window,
    selector: str | None = None,
    view: str = "comparison-diff",
) -> str:
    """The Pyroscope UI diff (``view="comparison-diff"``) or side-by-side (``"comparison"``)
    of ``baseline`` (left) against ``current`` (right), same query on both sides."""
    if view not in ("comparison-diff", "comparison"):
        raise ValueError(f"view {view!r}: must be 'comparison-diff' or 'comparison'")
    query = pyroscope_query(service, profile_type, selector)
    start = min(baseline[0], current[0])
    end = max(baseline[1], current[1])
    params = [
        ("query", query),
        ("from", _seconds(start)),
        ("until", _seconds(end)),
        ("leftQuery", query),
        ("leftFrom", _seconds(baseline[0])),
        ("leftUntil", _seconds(baseline[1])),
        ("rightQuery", query),
        ("rightFrom", _seconds(current[0])),
        ("rightUntil", _seconds(current[1])),
    ]
    return _url(ui_url, f"/{view}", params)


def flamegraph_url(
    ui_url: str,
    *,
    service: str,
    profile_type: str,
    window: Window,
    selector: str | None = None,
) -> str:
    """The Pyroscope UI single view (flame graph) of ``window``."""
    params = [
        ("query", pyroscope_query(service, profile_type, selector)),
        ("from", _seconds(window[0])),
        ("until", _seconds(window[1])),
    ]
    return _url(ui_url, "/", params)


def baseline_window(current: Window, baseline_start: datetime) -> Window:
    """A baseline window as long as ``current`` starting at ``baseline_start``."""
    length: timedelta = current[1] - current[0]
    return (baseline_start, baseline_start + length)


def build_links(
    ui_url: str | None,
    *,
    service: str,
    profile_type: str,
    current: Window,
    baseline: Window | None,
    selector: str | None = None,
    runbook: str | None = None,
    silence: str | None = None,
) -> AlertLinks:
    """Links for one alert group; without ``ui_url`` only ``runbook``/``silence`` are set."""
    if not ui_url:
        return AlertLinks(runbook=runbook, silence=silence)
    diff = None
    if baseline is not None:
        diff = comparison_url(
            ui_url,
            service=service,
            profile_type=profile_type,
            baseline=baseline,
            current=current,
            selector=selector,
        )
    flame = flamegraph_url(
        ui_url, service=service, profile_type=profile_type, window=current, selector=selector
    )
    return AlertLinks(diff=diff, flamegraph=flame, runbook=runbook, silence=silence)
