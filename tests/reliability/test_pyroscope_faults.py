"""Pyroscope misbehaving: the sandbox injects latency, 429 + Retry-After, 5xx, resets,
truncated, malformed and slow bodies, and answers far larger than the configured limit.

- The CLI (a real subprocess) exits non-zero with one ``error: ...`` line and no traceback,
  or, when a retry or the timeout absorbs the fault, prints exactly the fault-free result.
- The daemon (an in-process :class:`~watcher.daemon.app.App` running ``run_watch``) retries
  within its budget, records the failed pair with its reason, completes the other pairs,
  reports the failure in ``/metrics`` and the run record, and finds the regression at the
  next run: nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon.support import T0, Clock

from watcher.daemon.delivery import drain
from watcher.daemon.jobs import run_watch

from .support import (
    MINUTE,
    YEARLY,
    Config,
    Processes,
    SandboxControl,
    acked,
    alert_keys,
    assert_one_line_error,
    metric,
    toml_value,
)

SMS = "SelectMergeStacktraces"
#: Seconds the deployment waits for an answer in these tests (generous: the sandboxes share
#: the test process, and CI machines are busy).
TIMEOUT = 5
WINDOW = ("--start", "2025-03-01T11:00:00Z", "--end", "2025-03-01T12:00:00Z")


def _query_config(path: Path, url: str, **keys: Any) -> Path:
    """A deployments-only file, the shape an on-call engineer's query commands read."""
    keys.setdefault("timeout", TIMEOUT)
    lines = ["[pyroscope.deployments.prod]", f"url = {toml_value(url)}"]
    lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _flamegraph_args(service: str = "checkout") -> list[str]:
    return ["flamegraph", "prod", service, *WINDOW, "--top", "5"]


def _flamegraph(processes: Processes, config: Path, service: str = "checkout") -> Any:
    return processes.run(*_flamegraph_args(service), config=config)


# ---------------------------------------------------------------------------- CLI

#: A fault on every attempt -> what the one error line says.
CLI_ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    "latency beyond the timeout": ({"latency": 600}, "no answer from"),
    "429 with Retry-After": ({"status": 429, "retry_after": 0.1}, "429 resource_exhausted"),
    "503": ({"status": 503, "retry_after": 0.1}, "503 unavailable"),
    "502": ({"status": 502, "retry_after": 0.1}, "502 unavailable"),
    "500": ({"status": 500}, "500 internal"),
    "connection reset": ({"reset": True}, "Connection reset by peer (after 3 attempts)"),
    "truncated body": ({"truncate": True}, "without sending complete message body"),
    "malformed body": ({"malformed": True}, "the response is not JSON"),
    "slow body beyond the timeout": ({"slow_body": 600}, "no answer from"),
}

#: Faults a retry or the timeout absorbs.
CLI_RECOVERIES: dict[str, dict[str, Any]] = {
    "latency within the timeout": {"latency": 0.3},
    "429 twice": {"status": 429, "retry_after": 0.1, "count": 2},
    "503 once": {"status": 503, "count": 1},
    "reset twice": {"reset": True, "count": 2},
    "truncated once": {"truncate": True, "count": 1},
    "slow body within the timeout": {"slow_body": 0.4},
}


@contextmanager
def _sandboxes(
    fleet: tuple[Any, str, Any], faults: dict[str, dict[str, Any]]
) -> Iterator[dict[str, str]]:
    """One sandbox per case over the shared fleet, each with its own fault plan on ``SMS``;
    yields their URLs by case name."""
    from watcher.sandbox.server import Sandbox

    moment = (T0 + timedelta(hours=3, minutes=1)).timestamp()
    with ExitStack() as stack:
        urls: dict[str, str] = {}
        for name, fault in faults.items():
            server = stack.enter_context(Sandbox(fleet[2], clock=lambda: moment))
            SandboxControl(server.url).faults({SMS: fault})
            urls[name] = server.url
        yield urls


def test_cli_reports_each_pyroscope_fault_in_one_line(
    fleet: tuple[Any, str, Any], processes: Processes, tmp_path: Path
) -> None:
    """Each fault on every attempt (one process per fault, run side by side): exit 1, one
    ``error:`` line naming the fault, nothing on stdout, no traceback."""
    faults = {name: fault for name, (fault, _needle) in CLI_ERRORS.items()}
    with _sandboxes(fleet, faults) as urls:
        commands = [
            (_flamegraph_args(), _query_config(tmp_path / f"{i}.toml", urls[name]))
            for i, name in enumerate(faults)
        ]
        procs = dict(zip(faults, processes.run_all(commands), strict=True))

    for name, (_fault, needle) in CLI_ERRORS.items():
        proc = procs[name]
        line = assert_one_line_error(proc, code=1)
        assert needle in line, f"{name}: {proc}"
        assert proc.out == "", f"{name}: {proc}"


def test_cli_absorbs_transient_faults_and_prints_the_exact_result(
    sandbox: Any, fleet: tuple[Any, str, Any], processes: Processes, tmp_path: Path
) -> None:
    """Faults within the retry budget or the timeout: exactly the fault-free output."""
    clean = processes.run(
        *_flamegraph_args(), config=_query_config(tmp_path / "clean.toml", sandbox.url)
    )
    assert clean.popen.returncode == 0 and clean.out.strip(), clean
    with _sandboxes(fleet, CLI_RECOVERIES) as urls:
        commands = [
            (_flamegraph_args(), _query_config(tmp_path / f"{i}.toml", urls[name]))
            for i, name in enumerate(CLI_RECOVERIES)
        ]
        procs = dict(zip(CLI_RECOVERIES, processes.run_all(commands), strict=True))
        hits = {name: SandboxControl(urls[name]).hits(SMS) for name in CLI_RECOVERIES}

    for name, fault in CLI_RECOVERIES.items():
        proc = procs[name]
        assert proc.popen.returncode == 0, f"{name}: {proc}"
        assert proc.out == clean.out, f"{name}: {proc}"
        assert "Traceback" not in proc.err
        if "count" in fault:
            assert hits[name] == fault["count"], name


def _huge_sandbox(stacks: int) -> Any:
    """A sandbox holding one profile with ``stacks`` distinct stacks (a huge answer)."""
    from watcher.sandbox.server import Sandbox
    from watcher.sandbox.store import ProfileStore

    store = ProfileStore()
    profile = {
        ("main", f"pkg{i % 97}.handler{i}", f"pkg{i % 89}.Deep{i}.Work"): 1000 + i
        for i in range(stacks)
    }
    store.add(
        {"service_name": "huge"},
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
        int((T0 - timedelta(minutes=30)).timestamp() * 1000),
        profile,
    )
    moment = (T0 + MINUTE).timestamp()
    return Sandbox(store, clock=lambda: moment)


def test_cli_refuses_an_answer_far_larger_than_max_response_bytes(
    processes: Processes, tmp_path: Path
) -> None:
    """A multi-megabyte answer against a 4 KiB limit: one line naming the limit and the fix;
    the same query succeeds once the limit is raised."""
    limit = 4096
    with _huge_sandbox(40_000) as server:
        small = _query_config(tmp_path / "small.toml", server.url, max_response_bytes=limit)
        large = _query_config(tmp_path / "large.toml", server.url)
        refused = _flamegraph(processes, small, "huge")
        accepted = _flamegraph(processes, large, "huge")
        size = len(
            httpx.post(
                f"{server.url}/querier.v1.QuerierService/{SMS}",
                json={
                    "profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                    "labelSelector": '{service_name="huge"}',
                    "start": str(int((T0 - timedelta(hours=1)).timestamp() * 1000)),
                    "end": str(int(T0.timestamp() * 1000)),
                },
                timeout=60,
            ).content
        )

    assert size > 20 * limit  # far larger, not just over
    line = assert_one_line_error(refused, code=1)
    assert f"larger than {limit} bytes" in line and "max_response_bytes" in line, refused
    assert accepted.popen.returncode == 0 and "Work" in accepted.out, accepted


# ---------------------------------------------------------------------------- daemon

#: (fault, requests it affects, the pair's failure reason, a word of the stored error)
DAEMON_FAULTS = [
    pytest.param({"latency": 600}, 1, "QuerierUnavailable", "no answer", id="latency"),
    pytest.param({"status": 429, "retry_after": 0.1}, 3, "QuerierResponseError", "429", id="429"),
    pytest.param({"status": 503, "retry_after": 0.1}, 3, "QuerierResponseError", "503", id="503"),
    pytest.param({"status": 500}, 1, "QuerierResponseError", "500", id="500"),
    pytest.param({"reset": True}, 3, "QuerierUnavailable", "reset", id="reset"),
    pytest.param({"truncate": True}, 3, "QuerierUnavailable", "complete message", id="truncated"),
    pytest.param({"malformed": True}, 1, "DecodeError", "not", id="malformed"),
    pytest.param({"slow_body": 600}, 1, "QuerierUnavailable", "no answer", id="slow-body"),
]


def _get(app: Any, path: str) -> httpx.Response:
    return httpx.get(app.status_server.url + path, timeout=30)


@pytest.mark.parametrize(("fault", "count", "reason", "word"), DAEMON_FAULTS)
def test_daemon_records_the_failed_pair_completes_the_rest_and_loses_nothing(
    config: Config,
    sandbox: Any,
    sink: Any,
    regressed: str,
    make_app: Callable[..., Any],
    fault: dict[str, Any],
    count: int,
    reason: str,
    word: str,
) -> None:
    """The first pair (checkout) meets the fault on every attempt of its budget; the second
    (cart) is evaluated normally. The failure shows in the run record, /api/runs and
    /metrics. At the next scheduled time the regression in checkout is found and alerted
    exactly once."""
    config.deployment = {"timeout": TIMEOUT}
    settings = config.settings(schedule=YEARLY, extra_watcher={"concurrency": 1})
    clock = Clock(T0 + MINUTE)
    app = make_app(settings, clock=clock, sleep=lambda _s: None)
    app.start(schedule=False)
    watch = settings.watcher.watch[0]
    control = SandboxControl(sandbox.url)
    control.faults({SMS: {**fault, "count": count}})

    first = run_watch(app, watch, scheduled_at=T0)

    assert control.hits(SMS) == count  # retried up to the budget, never beyond
    by_service = {p.service: p for p in first.pairs}
    assert (first.status, by_service["checkout"].status, by_service["cart"].status) == (
        "partial",
        "failed",
        "ok",
    )
    assert reason in (by_service["checkout"].error or "")
    assert word in (by_service["checkout"].error or "")
    run = _get(app, f"/api/runs?id={first.run_id}").json()
    assert (run["run"]["status"], run["run"]["pairs_ok"], run["run"]["pairs_failed"]) == (
        "partial",
        1,
        1,
    )
    stored = {p["service"]: p for p in run["pairs"]}
    assert stored["checkout"]["status"] == "failed" and reason in stored["checkout"]["error"]
    metrics = _get(app, "/metrics").text
    assert metric(metrics, "pyrowatch_pair_failures_total", reason=reason, watch="shop") == 1
    assert metric(metrics, "pyrowatch_runs_total", status="partial", watch="shop") == 1
    retries = metric(metrics, "pyrowatch_query_retries_total", method=SMS) or 0
    assert retries == count - 1
    drain(app)
    assert acked(sink) == []  # nothing was found, nothing invented

    clock.set(T0 + 16 * MINUTE)
    second = run_watch(app, watch, scheduled_at=T0 + 15 * MINUTE)
    drain(app)

    assert second.status == "ok"
    assert [f.function for f in second.findings] == [regressed]
    assert alert_keys(acked(sink)) == [("firing", regressed)]


def test_daemon_refuses_answers_over_max_response_bytes_per_pair(
    config: Config, sandbox: Any, make_app: Callable[..., Any]
) -> None:
    """Every profile is far over a 2 KiB limit: each pair fails with a clear, stored reason;
    the run is recorded as failed, not lost, and the daemon carries on."""
    config.deployment = {"max_response_bytes": 2048}
    settings = config.settings(schedule=YEARLY)
    app = make_app(settings, clock=Clock(T0 + MINUTE))

    result = run_watch(app, settings.watcher.watch[0], scheduled_at=T0)

    assert result.status == "failed"
    assert {p.status for p in result.pairs} == {"failed"}
    for pair in app.repo.pair_results(result.run_id):
        assert "ResponseTooLarge" in (pair.error or "")
        assert "larger than 2048 bytes (max_response_bytes" in (pair.error or "")
    run = app.repo.run(result.run_id)
    assert run is not None and (run.status, run.pairs_failed) == ("failed", 2)
    text = app.render_metrics()[0].decode()
    assert (
        metric(text, "pyrowatch_pair_failures_total", reason="ResponseTooLarge", watch="shop") == 2
    )


def test_check_subprocess_with_pyroscope_down_reports_every_pair_and_exits_one(
    config: Config, sandbox: Any, processes: Processes
) -> None:
    """``pyrowatch check`` while Pyroscope answers 503 to everything: each failed pair is
    listed, then one error line; exit 1; the run is recorded as failed."""
    from .support import AT_T0, query

    SandboxControl(sandbox.url).faults({"*": {"status": 503, "retry_after": 0.05}})
    path = config.write()

    proc = processes.run("check", "--at", AT_T0, config=path)

    line = assert_one_line_error(proc, code=1)
    assert "every pair failed" in line
    assert "checkout cpu: failed: " in proc.err and "cart cpu: failed: " in proc.err
    assert "listing services failed" in proc.err
    runs = query(config.database_url, "SELECT status, pairs_failed FROM runs")
    assert runs == [{"status": "failed", "pairs_failed": 2}]
