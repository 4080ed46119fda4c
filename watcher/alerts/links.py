"""Links from an alert: Grafana Profiles Drilldown and the standalone Pyroscope UI.

Grafana Profiles Drilldown
==========================
The Drilldown app (Grafana plugin ``grafana-pyroscope-app``) lives at
``<grafana>/a/grafana-pyroscope-app/explore`` and keeps its state in the query string. The
shape below was read from the plugin's source, ``grafana/explore-profiles`` (since renamed
``grafana/profiles-drilldown``) at release v1.4.0, commit ``697f3c77f6fd``; the route, the
data source parameter and the filter keys were checked again in a later
``profiles-drilldown`` revision.

``explorationType``
    The view: ``diff-flame-graph`` (baseline against comparison) or ``flame-graph``.
``var-dataSource``
    UID of the Pyroscope data source. When absent Grafana picks the user's last one or the
    default Pyroscope data source.
``var-serviceName``, ``var-profileMetricId``
    The service name as it is (not quoted) and the full profile type ID
    (``process_cpu:cpu:nanoseconds:cpu:nanoseconds``).
``from``, ``to``
    The page's time range. Times are unix **milliseconds** (ISO 8601 and ``now-1h`` also
    work; milliseconds are what the app's own share links use).
``from-2``/``to-2``, ``diffFrom``/``diffTo``
    Diff view, baseline panel: the panel's time range and, inside it, the selected range
    the diff is computed over.
``from-3``/``to-3``, ``diffFrom-2``/``diffTo-2``
    Diff view, comparison panel: the same two ranges.
``var-filters`` (flame graph), ``var-filtersBaseline``, ``var-filtersComparison`` (diff)
    Extra label matchers, one parameter per matcher: ``name|op|value`` with ``|`` written
    ``__gfp__`` and ``,`` written ``__gfc__`` inside the name and value (Grafana's ad hoc
    filter encoding). ``service_name`` is not repeated there.

Each panel shows its selected window plus one window length before it, so the step into
the regression is visible; the page range is the comparison panel's. The app pastes
service names and filter values between double quotes without escaping them, so a value
holding ``"`` or ``\\`` may not query correctly there; the Pyroscope UI diff link (with
``pyroscope_ui_url``) escapes them.

Pyroscope UI
============
The standalone UI keeps its state in the query string too: ``query`` with
``from``/``until`` for the single view (``/``), and ``leftQuery``/``leftFrom``/``leftUntil``
plus ``rightQuery``/``rightFrom``/``rightUntil`` for the comparison views (``/comparison``
side by side, ``/comparison-diff`` as one diff flame graph). Times are unix seconds. A query
is a profile type ID followed by a label selector::

    process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="checkout"}

Credentials
===========
Links never carry credentials: user info, query string and fragment of a base URL are
dropped, so a base URL such as ``https://user:pass@pyroscope.example/?token=x`` yields
``https://pyroscope.example/...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from watcher.selectors import METRIC_NAME, parse_selector
from watcher.times import to_ms

from .base import AlertLinks

Window = tuple[datetime, datetime]

#: Where the Drilldown app is served, below the Grafana base URL.
DRILLDOWN_PATH = "/a/grafana-pyroscope-app/explore"


def base_url(ui_url: str) -> str:
    """``ui_url`` without credentials, query or fragment, and without a trailing slash."""
    parts = urlsplit(ui_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a link base URL must be an http:// or https:// URL with a host")
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


def _millis(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: times must be timezone-aware")
    return str(to_ms(moment))


def _filter_part(text: str) -> str:
    return text.replace("|", "__gfp__").replace(",", "__gfc__")


def drilldown_filters(selector: str | None) -> list[str]:
    """The extra matchers of ``selector`` as Drilldown ad hoc filters (``name|op|value``).

    ``service_name`` and a metric name are left out: the service and the profile type have
    their own parameters. Raises :class:`~watcher.errors.SelectorError` (a ``ValueError``)
    for a selector that does not parse.
    """
    if not selector or not selector.strip():
        return []
    return [
        f"{_filter_part(m.name)}|{m.op}|{_filter_part(m.value)}"
        for m in parse_selector(selector)
        if m.name not in (METRIC_NAME, "service_name")
    ]


def _panel(window: Window) -> Window:
    """A window with one window length of context before it."""
    return (window[0] - (window[1] - window[0]), window[1])


def _drilldown_url(
    grafana_url: str,
    view: str,
    *,
    service: str,
    profile_type: str,
    datasource_uid: str | None,
    params: Sequence[tuple[str, str]],
) -> str:
    head = [("explorationType", view)]
    if datasource_uid:
        head.append(("var-dataSource", datasource_uid))
    head += [("var-serviceName", service), ("var-profileMetricId", profile_type)]
    return _url(grafana_url, DRILLDOWN_PATH, [*head, *params])


def drilldown_diff_url(
    grafana_url: str,
    *,
    service: str,
    profile_type: str,
    baseline: Window,
    current: Window,
    selector: str | None = None,
    datasource_uid: str | None = None,
) -> str:
    """The Grafana Profiles Drilldown diff flame graph of ``baseline`` against ``current``
    (the comparison), both ranges selected, same matchers on both sides."""
    base_panel, current_panel = _panel(baseline), _panel(current)
    filters = drilldown_filters(selector)
    params = [
        ("from", _millis(current_panel[0])),
        ("to", _millis(current_panel[1])),
        ("from-2", _millis(base_panel[0])),
        ("to-2", _millis(base_panel[1])),
        ("from-3", _millis(current_panel[0])),
        ("to-3", _millis(current_panel[1])),
        ("diffFrom", _millis(baseline[0])),
        ("diffTo", _millis(baseline[1])),
        ("diffFrom-2", _millis(current[0])),
        ("diffTo-2", _millis(current[1])),
        *(("var-filtersBaseline", f) for f in filters),
        *(("var-filtersComparison", f) for f in filters),
    ]
    return _drilldown_url(
        grafana_url,
        "diff-flame-graph",
        service=service,
        profile_type=profile_type,
        datasource_uid=datasource_uid,
        params=params,
    )


def drilldown_flamegraph_url(
    grafana_url: str,
    *,
    service: str,
    profile_type: str,
    window: Window,
    selector: str | None = None,
    datasource_uid: str | None = None,
) -> str:
    """The Grafana Profiles Drilldown flame graph of ``window``."""
    params = [
        ("from", _millis(window[0])),
        ("to", _millis(window[1])),
        *(("var-filters", f) for f in drilldown_filters(selector)),
    ]
    return _drilldown_url(
        grafana_url,
        "flame-graph",
        service=service,
        profile_type=profile_type,
        datasource_uid=datasource_uid,
        params=params,
    )


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
    grafana_url: str | None = None,
    datasource_uid: str | None = None,
) -> AlertLinks:
    """Links for one alert group.

    With ``grafana_url`` the Drilldown diff is the primary link and the flame graph opens in
    Drilldown too; with ``ui_url`` the Pyroscope UI diff is added (and is the flame graph's
    target when there is no ``grafana_url``). Without either only ``runbook``/``silence``
    are set. ``datasource_uid`` picks the Grafana data source.
    """
    drilldown = diff = flame = None
    if grafana_url:
        if baseline is not None:
            drilldown = drilldown_diff_url(
                grafana_url,
                service=service,
                profile_type=profile_type,
                baseline=baseline,
                current=current,
                selector=selector,
                datasource_uid=datasource_uid,
            )
        flame = drilldown_flamegraph_url(
            grafana_url,
            service=service,
            profile_type=profile_type,
            window=current,
            selector=selector,
            datasource_uid=datasource_uid,
        )
    if ui_url:
        if baseline is not None:
            diff = comparison_url(
                ui_url,
                service=service,
                profile_type=profile_type,
                baseline=baseline,
                current=current,
                selector=selector,
            )
        if flame is None:
            flame = flamegraph_url(
                ui_url,
                service=service,
                profile_type=profile_type,
                window=current,
                selector=selector,
            )
    return AlertLinks(
        diff=diff, flamegraph=flame, runbook=runbook, silence=silence, drilldown=drilldown
    )
