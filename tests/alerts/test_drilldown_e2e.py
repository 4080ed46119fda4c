"""End to end: a regression found in the sandbox reaches the webhook sink with a Grafana
Profiles Drilldown diff link as ``generatorURL``, when ``grafana_url`` is set.

The fleet has one service whose name holds a space and double quotes, and a ``namespace``
label the watch selects on, so the link has to encode both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from watcher.config import Settings, load_settings
from watcher.daemon.delivery import drain
from watcher.daemon.jobs import run_watch
from watcher.errors import ConfigError
from watcher.sandbox.fleet import FleetSpec, TransientSpike, expected_shares, load_fleet
from watcher.sandbox.server import Sandbox
from watcher.sandbox.sink import WebhookSink
from watcher.sandbox.store import ProfileStore
from watcher.store.db import upgrade

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
SERVICE = 'shop "eu" web'
#: The end of the checked window; the regression runs over it.
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
#: Distinctive secrets: in the alert channel path and in the Grafana base URL.
HOOK_SECRET = "hookSECRETtoken5551212"
GRAFANA_PASSWORD = "grafPASSw0rd"
GRAFANA_TOKEN = "glsaSECRET777"


def _ms(moment: datetime) -> str:
    return str(int(moment.timestamp()) * 1000)


@dataclass(frozen=True)
class Fleet:
    sandbox_url: str
    function: str


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """One service, +50 % self time of one function over the checked window."""
    base = FleetSpec(
        start=T0 - DAY - 2 * HOUR,
        end=T0 + HOUR,
        services=(SERVICE,),
        profile_types=(CPU,),
        service_samples={SERVICE: 240_000.0},
        labels={"namespace": "prod"},
        seed=5,
    )
    shares = expected_shares(base, SERVICE, CPU, "self")
    function = min(sorted(shares), key=lambda name: abs(shares[name] - 0.03))
    spike = TransientSpike(SERVICE, function, 1.5, T0 - 2 * HOUR, 3 * HOUR)
    spec = FleetSpec(
        start=base.start,
        end=base.end,
        services=base.services,
        profile_types=base.profile_types,
        service_samples=base.service_samples,
        labels=base.labels,
        seed=base.seed,
        events=(spike,),
    )
    store = ProfileStore()
    load_fleet(store, spec)
    moment = (T0 + HOUR).timestamp()
    with Sandbox(store, clock=lambda: moment) as server:
        yield Fleet(server.url, function)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("drilldown-db") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _settings(
    tmp_path: Path,
    fleet: Fleet,
    template_db: Path,
    sink: WebhookSink,
    watcher: Mapping[str, str],
) -> Settings:
    db = tmp_path / "watcher.db"
    db.write_bytes(template_db.read_bytes())
    hook = f"{sink.url}/hooks/{HOOK_SECRET}"
    lines = [
        "[pyroscope.deployments.sandbox]",
        f"url = {json.dumps(fleet.sandbox_url)}",
        "",
        "[watcher]",
        f"database_url = {json.dumps(f'sqlite:///{db}')}",
        *(f"{key} = {json.dumps(value)}" for key, value in watcher.items()),
        "",
        "[[watcher.watch]]",
        'name = "shop"',
        'deployment = "sandbox"',
        f"services = {json.dumps([SERVICE])}",
        'profile_types = ["cpu"]',
        """selector = '{namespace="prod"}'""",
        'schedule = "*/15 * * * *"',
        'window = "1h"',
        'baselines = ["-1d"]',
        'alerts = ["hook", "am"]',
        "",
        "[[watcher.alert]]",
        'name = "hook"',
        'kind = "webhook"',
        f"url = {json.dumps(hook)}",
        "",
        "[[watcher.alert]]",
        'name = "am"',
        'kind = "alertmanager"',
        f"url = {json.dumps(hook)}",
    ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_settings(str(path), env={})


def _check(settings: Settings, make_app: Callable[..., Any]) -> str:
    """One check at ``T0`` (as ``pyrowatch check --at``), delivered; the function found."""
    app = make_app(settings, clock=lambda: T0 + timedelta(minutes=1))
    result = run_watch(app, settings.watcher.watch[0], scheduled_at=T0, claim=False)
    drain(app)
    assert [(f.service, f.kind) for f in result.findings] == [(SERVICE, "self")]
    return result.findings[0].function


def _bodies(sink: WebhookSink) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The webhook body and the Alertmanager body the sink received."""
    by_path = {r.path: r.json for r in sink.received}
    assert sorted(by_path) == [f"/hooks/{HOOK_SECRET}", f"/hooks/{HOOK_SECRET}/api/v2/alerts"]
    return by_path[f"/hooks/{HOOK_SECRET}"], by_path[f"/hooks/{HOOK_SECRET}/api/v2/alerts"]


def test_alerts_lead_with_the_drilldown_diff_when_grafana_url_is_set(
    tmp_path: Path,
    fleet: Fleet,
    template_db: Path,
    sink: WebhookSink,
    make_app: Callable[..., Any],
) -> None:
    """generatorURL (webhook and Alertmanager) is the Drilldown diff of the checked windows;
    the Pyroscope UI diff stays as a second link; no credential reaches any payload."""
    grafana = f"https://admin:{GRAFANA_PASSWORD}@grafana.example/grafana/?auth={GRAFANA_TOKEN}"
    settings = _settings(
        tmp_path,
        fleet,
        template_db,
        sink,
        {
            "grafana_url": grafana,
            "grafana_datasource_uid": "pyro-prod",
            "pyroscope_ui_url": "https://pyroscope.example/ui",
        },
    )

    function = _check(settings, make_app)

    webhook, alertmanager = _bodies(sink)
    (hook_alert,) = webhook["alerts"]
    (am_alert,) = alertmanager
    assert hook_alert["labels"]["function"] == am_alert["labels"]["function"] == function
    link = hook_alert["generatorURL"]
    assert am_alert["generatorURL"] == link
    assert hook_alert["annotations"]["drilldown_url"] == link
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "grafana.example",
        "/grafana/a/grafana-pyroscope-app/explore",
    )
    assert parse_qs(parts.query) == {
        "explorationType": ["diff-flame-graph"],
        "var-dataSource": ["pyro-prod"],
        "var-serviceName": [SERVICE],
        "var-profileMetricId": [CPU],
        "from": [_ms(T0 - 2 * HOUR)],
        "to": [_ms(T0)],
        "from-2": [_ms(T0 - DAY - 2 * HOUR)],
        "to-2": [_ms(T0 - DAY)],
        "from-3": [_ms(T0 - 2 * HOUR)],
        "to-3": [_ms(T0)],
        "diffFrom": [_ms(T0 - DAY - HOUR)],
        "diffTo": [_ms(T0 - DAY)],
        "diffFrom-2": [_ms(T0 - HOUR)],
        "diffTo-2": [_ms(T0)],
        "var-filtersBaseline": ["namespace|=|prod"],
        "var-filtersComparison": ["namespace|=|prod"],
    }
    assert hook_alert["annotations"]["diff_url"].startswith(
        "https://pyroscope.example/ui/comparison-diff?"
    )
    assert urlsplit(hook_alert["annotations"]["flamegraph_url"]).netloc == "grafana.example"
    everything = json.dumps([webhook, alertmanager])
    for secret in (GRAFANA_PASSWORD, GRAFANA_TOKEN, "admin", HOOK_SECRET):
        assert secret not in everything


def test_without_grafana_url_the_pyroscope_diff_stays_the_link(
    tmp_path: Path,
    fleet: Fleet,
    template_db: Path,
    sink: WebhookSink,
    make_app: Callable[..., Any],
) -> None:
    """No ``grafana_url``: generatorURL is the Pyroscope UI diff on the deployment URL."""
    settings = _settings(tmp_path, fleet, template_db, sink, {})

    _check(settings, make_app)

    webhook, alertmanager = _bodies(sink)
    (hook_alert,) = webhook["alerts"]
    link = hook_alert["generatorURL"]
    assert link.startswith(fleet.sandbox_url + "/comparison-diff?")
    assert alertmanager[0]["generatorURL"] == link
    assert "drilldown_url" not in hook_alert["annotations"]


def test_grafana_url_alone_drops_the_deployment_url_fallback(
    tmp_path: Path,
    fleet: Fleet,
    template_db: Path,
    sink: WebhookSink,
    make_app: Callable[..., Any],
) -> None:
    """With ``grafana_url`` and no ``pyroscope_ui_url`` every link goes to Grafana."""
    settings = _settings(
        tmp_path, fleet, template_db, sink, {"grafana_url": "http://grafana.local:3000"}
    )

    _check(settings, make_app)

    webhook, _ = _bodies(sink)
    (hook_alert,) = webhook["alerts"]
    links = {k: v for k, v in hook_alert["annotations"].items() if k.endswith("_url")}
    assert sorted(links) == ["drilldown_url", "flamegraph_url"]
    for url in links.values():
        assert url.startswith("http://grafana.local:3000/a/grafana-pyroscope-app/explore?")
    assert "var-dataSource" not in parse_qs(urlsplit(links["drilldown_url"]).query)


@pytest.mark.parametrize(
    ("lines", "key", "message"),
    [
        ('grafana_url = "grafana.example"', "watcher.grafana_url", "http://"),
        ('grafana_url = "ftp://grafana.example"', "watcher.grafana_url", "http://"),
        (
            'grafana_url = "https://g.example"\ngrafana_datasource_uid = "a b"',
            "watcher.grafana_datasource_uid",
            "data source UID",
        ),
        (
            'grafana_datasource_uid = "pyro-prod"',
            "watcher.grafana_datasource_uid",
            "set grafana_url too",
        ),
    ],
)
def test_bad_grafana_settings_are_one_line_errors(
    tmp_path: Path, lines: str, key: str, message: str
) -> None:
    """A bad value names the key and what is expected, on one line."""
    path = tmp_path / "config.toml"
    path.write_text(f"[watcher]\n{lines}\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_settings(str(path), env={})

    text = str(caught.value)
    assert key in text and message in text
    assert "\n" not in text
