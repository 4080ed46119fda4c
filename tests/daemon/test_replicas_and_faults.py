"""Several replicas on one database; a failing pair; truncation warnings; shutdown."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from watcher.daemon.delivery import drain
from watcher.daemon.jobs import run_watch

from .support import SECRET, T0, Clock, ConfigWriter, run_together

MINUTE = timedelta(minutes=1)


def test_two_replicas_split_the_pairs_and_alert_once(
    config: ConfigWriter, sink: Any, regressed: str, make_app: Callable[..., Any]
) -> None:
    """Same watch, same scheduled time, two owners: each pair is evaluated once, one alert."""
    settings = config.settings()
    replicas = [make_app(settings, owner=f"replica-{i}", clock=Clock(T0 + MINUTE)) for i in (1, 2)]
    watch = settings.watcher.watch[0]

    results = run_together(
        *(lambda app=app: run_watch(app, watch, scheduled_at=T0) for app in replicas)
    )
    run_together(*(lambda app=app: drain(app) for app in replicas))

    evaluated = sorted(
        (p.service, p.profile_type) for r in results for p in r.pairs if p.status == "ok"
    )
    claimed = sorted(
        (p.service, p.profile_type) for r in results for p in r.pairs if p.status == "claimed"
    )
    assert evaluated == claimed == sorted({(p.service, p.profile_type) for p in results[0].pairs})
    assert [f.function for r in results for f in r.findings] == [regressed]
    assert len(sink.received) == 1
    assert [a["labels"]["function"] for a in sink.received[0].json["alerts"]] == [regressed]
    runs = replicas[0].repo.runs()
    assert sorted(r.owner for r in runs) == ["replica-1", "replica-2"]
    assert sum(r.pairs_ok for r in runs) == 2


class _FailOneService(httpx.BaseTransport):
    """Passes requests to the network, except queries about ``service`` (answered 500)."""

    def __init__(self, service: str) -> None:
        self._inner = httpx.HTTPTransport()
        self._needle = f'service_name=\\"{service}\\"'.encode()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        if self._needle in body and request.url.path.endswith("SelectMergeStacktraces"):
            return httpx.Response(500, json={"code": "internal", "message": "boom"})
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def test_a_failing_pair_is_recorded_and_the_others_complete(
    config: ConfigWriter, sink: Any, regressed: str, make_app: Callable[..., Any]
) -> None:
    """cart fails (500 from the querier); checkout is still evaluated, stored and alerted."""
    clock = Clock(T0 + MINUTE)
    app = make_app(config.settings(), clock=clock, transport=_FailOneService("cart"))

    result = run_watch(app, app.settings.watcher.watch[0], scheduled_at=T0)
    drain(app)

    assert result.status == "partial"
    by_service = {p.service: p for p in result.pairs}
    assert by_service["checkout"].status == "ok"
    assert by_service["cart"].status == "failed"
    assert "500" in (by_service["cart"].error or "")
    assert [f.function for f in result.findings] == [regressed]
    assert len(sink.received) == 1
    stored = {p.service: p for p in app.repo.pair_results(result.run_id)}
    assert stored["cart"].status == "failed" and "500" in (stored["cart"].error or "")
    run = app.repo.run(result.run_id)
    assert run is not None and (run.status, run.pairs_ok, run.pairs_failed) == ("partial", 1, 1)
    metrics = app.render_metrics()[0].decode()
    assert 'pyrowatch_pair_failures_total{reason="QuerierResponseError",watch="shop"} 1.0' in (
        metrics
    )
    assert 'pyrowatch_runs_total{status="partial",watch="shop"} 1.0' in metrics


def test_heavy_truncation_is_recorded_as_a_warning(
    config: ConfigWriter, make_app: Callable[..., Any]
) -> None:
    """With max_nodes far too small, the pair still runs and its record says so."""
    settings = config.settings(services=["cart"], extra_watcher={"max_nodes": 20})
    app = make_app(settings, clock=Clock(T0 + MINUTE))

    result = run_watch(app, settings.watcher.watch[0], scheduled_at=T0)

    (pair,) = result.pairs
    assert pair.status == "ok"
    assert any("truncated" in w and "max_nodes" in w for w in pair.warnings)
    (stored,) = app.repo.pair_results(result.run_id)
    assert stored.status == "ok" and (stored.error or "").startswith("warning: ")
    (snapshot,) = app.repo.snapshots("cart")
    assert snapshot.truncated_share > 0.01


def test_a_stopping_app_abandons_the_pairs_it_has_not_started(
    config: ConfigWriter, make_app: Callable[..., Any]
) -> None:
    """Once stop() was called, a run records its unstarted pairs as failed, not lost."""
    settings = config.settings()
    app = make_app(settings, clock=Clock(T0 + MINUTE))
    app.stopping.set()

    result = run_watch(app, settings.watcher.watch[0], scheduled_at=T0)

    assert {p.status for p in result.pairs} == {"failed"}
    assert all("shutting down" in (p.error or "") for p in result.pairs)
    run = app.repo.run(result.run_id)
    assert run is not None and run.status == "failed"


def test_errors_stored_for_a_pair_never_hold_a_secret(
    config: ConfigWriter, make_app: Callable[..., Any], tmp_path: Any
) -> None:
    """A deployment token in an error path is masked before it is stored or returned."""
    settings = config.settings()
    app = make_app(settings, clock=Clock(T0 + MINUTE), transport=_EchoSecret())
    app.secrets.append(SECRET)

    result = run_watch(app, settings.watcher.watch[0], scheduled_at=T0)

    assert result.status == "failed"
    for pair in result.pairs:
        assert pair.error and SECRET not in pair.error and "[REDACTED]" in pair.error
    for stored in app.repo.pair_results(result.run_id):
        assert SECRET not in (stored.error or "")
    run = app.repo.run(result.run_id)
    assert run is not None and SECRET not in (run.error or "")


class _EchoSecret(httpx.BaseTransport):
    """A querier that answers every call with an error quoting a secret."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": "invalid_argument", "message": f"bad {SECRET}"})
