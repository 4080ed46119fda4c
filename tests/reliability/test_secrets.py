"""No secret ever leaves: distinctive values for every kind of secret, searched for in
everything pyrowatch writes, on success and failure paths.

The secrets: a bearer token, a basic-auth password, a Cloudflare Access client secret, the
path of the webhook URL (Slack-style: the path is the credential) and the database
password (a PostgreSQL role of its own). The failures are chosen to make them likely to
leak: a Pyroscope error that quotes the credentials back, a webhook that echoes its own
URL in a 404 body, connection errors (httpx exceptions name the URL they failed on), a
refused database login, ``--debug`` tracebacks and debug logs.

Searched: stdout and stderr of every command, the JSON log lines of ``pyrowatch run``,
``/metrics``, ``/readyz`` and every ``/api/*`` answer, and every row of every table.
"""

from __future__ import annotations

import base64
import signal
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon.support import T0
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from watcher.daemon.jobs import run_watch

from .support import (
    AT_T0,
    MINUTE,
    YEARLY,
    Config,
    Proc,
    Processes,
    SandboxControl,
    dump_tables,
    wait_until,
)

TOKEN = "tokRELIABILITYbearer7f3a9c21"
PASSWORD = "pwRELIABILITYbasic4e8d2b95"
CF_SECRET = "cfRELIABILITYsecret91c5e0aa"
HOOK = "hookRELIABILITYpath6d2f1a7e"
DB_PASSWORD = "dbRELIABILITYpass3b7e55c4"
WRONG_DB_PASSWORD = "dbRELIABILITYwrong0c9d8e7f"
USER = "reliability-user"
#: What must never show, including the encodings a leak would take.
SECRETS = (
    TOKEN,
    PASSWORD,
    CF_SECRET,
    HOOK,
    DB_PASSWORD,
    WRONG_DB_PASSWORD,
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
)
WINDOW = ("--start", "2025-03-01T11:00:00Z", "--end", "2025-03-01T12:00:00Z")


def _no_secret(where: str, text_: str) -> None:
    for secret in SECRETS:
        assert secret not in text_, f"a secret leaked into {where}:\n{text_}"


def _no_secret_in(procs: list[Proc]) -> None:
    for proc in procs:
        _no_secret(" ".join(proc.argv[1:]), proc.out + proc.err)


@pytest.fixture
def secret_database(pg_admin: Engine, database_url: str) -> Iterator[str]:
    """The test database, reached as a role whose password is a distinctive secret."""
    role = f"pyrowatch_secret_{uuid.uuid4().hex[:8]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE \"{role}\" LOGIN SUPERUSER PASSWORD '{DB_PASSWORD}'"))
    yield (
        make_url(database_url)
        .set(username=role, password=DB_PASSWORD)
        .render_as_string(hide_password=False)
    )
    with pg_admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
            {"r": role},
        )
        conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


@pytest.fixture
def secret_config(
    tmp_path: Path, sandbox: Any, sink: Any, secret_database: str
) -> Iterator[Config]:
    """Every secret configured; the sandbox demands the basic credentials."""
    from watcher.sandbox import AuthConfig

    sandbox.auth = AuthConfig(basic=(USER, PASSWORD))
    config = Config(
        path=tmp_path / "config.toml",
        sandbox_url=sandbox.url,
        database_url=secret_database,
        channels=[{"name": "hook", "kind": "webhook", "url": f"{sink.url}/hooks/T0/{HOOK}"}],
        deployment={
            "token": TOKEN,
            "username": USER,
            "password": PASSWORD,
            "cf_access_client_id": "reliability.access",
            "cf_access_client_secret": CF_SECRET,
        },
    )
    config.write(schedule=YEARLY)
    yield config
    sandbox.auth = AuthConfig()


def test_no_secret_in_cli_output_errors_or_debug_tracebacks(
    secret_config: Config, sandbox: Any, sink: Any, processes: Processes, tmp_path: Path
) -> None:
    """Success paths, then failures that quote the secrets back (error bodies, redirect
    locations), then unreachable services and a refused database login, with and without
    ``--debug``."""
    path = secret_config.path
    succeeded = processes.run_all(
        [
            (["config"], path),
            (["config", "--json"], path),
            (["config", "check"], path),
            (["flamegraph", "sandbox", "checkout", *WINDOW], path),
            (["check", "--at", AT_T0, "--json"], path),
        ]
    )
    for proc in succeeded:
        assert proc.popen.returncode == 0, proc
    assert "Work" in succeeded[3].out or succeeded[3].out.strip(), succeeded[3]
    assert len(sink.received) == 1  # the check's alert went out
    listed = processes.run_all(
        [(["regressions", "--json"], path), (["alerts", "list", "--json"], path)]
    )

    echo = (
        f"denied: token={TOKEN} password={PASSWORD} cf={CF_SECRET} url={sink.url}/hooks/T0/{HOOK}"
    )
    SandboxControl(sandbox.url).faults(
        {"SelectMergeStacktraces": {"status": 400, "code": "invalid_argument", "message": echo}}
    )
    sink.fail(404, body=f"no hook at {sink.url}/hooks/T0/{HOOK} (path /hooks/T0/{HOOK})")
    at = (T0 + 15 * MINUTE).strftime("%Y-%m-%dT%H:%M:%SZ")
    failed = processes.run_all(
        [
            (["--debug", "flamegraph", "sandbox", "checkout", *WINDOW], path),
            (["check", "--at", at], path),
            (["--debug", "alerts", "test", "hook"], path),
        ]
    )
    for proc in failed:
        assert proc.popen.returncode == 1, proc
    assert "invalid_argument" in failed[0].err and "Traceback" in failed[0].err
    assert "[REDACTED]" in failed[1].err, failed[1]  # the pair errors, masked
    assert "HTTP 404" in failed[2].err

    # Redirects: the Location of a login page quotes the credentials (a Pyroscope behind a
    # proxy), and a webhook redirects to its own secret path.
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f'\n[pyroscope.deployments.proxied]\nurl = "{sink.url}"\ntoken = "{TOKEN}"\n')
    location = f"{sink.url}/login/{TOKEN}/hooks/T0/{HOOK}?password={PASSWORD}&cf={CF_SECRET}"
    sink.fail(302, body=f"see {location}", headers={"Location": location})
    redirected = processes.run_all(
        [
            (["--debug", "services", "proxied"], path),
            (["alerts", "test", "hook"], path),
        ]
    )
    for proc in redirected:
        assert proc.popen.returncode == 1, proc
    assert "redirected to" in redirected[0].err, redirected[0]

    sink.down()
    wrong = Config(
        path=tmp_path / "wrong.toml",
        sandbox_url=secret_config.sandbox_url,
        database_url=secret_config.database_url.replace(DB_PASSWORD, WRONG_DB_PASSWORD),
        channels=secret_config.channels,
        deployment=secret_config.deployment,
    )
    wrong_path = wrong.write(schedule=YEARLY)
    unreachable = processes.run_all(
        [
            (["alerts", "test", "hook"], path),
            (["--debug", "regressions"], wrong_path),
            (["check", "--at", AT_T0], wrong_path),
        ]
    )
    sink.up()
    for proc in unreachable:
        assert proc.popen.returncode == 1, proc
    assert "password authentication failed" in unreachable[1].err, unreachable[1]

    _no_secret_in([*succeeded, *listed, *failed, *redirected, *unreachable])


def test_no_secret_in_endpoints_logs_or_the_stored_record(
    secret_config: Config,
    sandbox: Any,
    sink: Any,
    processes: Processes,
    make_app: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An app with a failed pair (Pyroscope quoting the credentials), a regression and a
    notification the webhook refuses while echoing its URL: /metrics, /readyz and /api/*
    answers, the log lines of the app and of ``pyrowatch run``, and every stored row are
    free of secrets."""
    settings = secret_config.settings(schedule=YEARLY)
    app = make_app(settings, clock=lambda: datetime.now(UTC))  # the run process's clock
    app.start(schedule=False)
    watch = settings.watcher.watch[0]
    run_watch(app, watch, scheduled_at=T0)  # a regression, a queued notification
    echo = f"bad credentials {TOKEN} {PASSWORD} {CF_SECRET} {settings.watcher.alert[0].url}"
    SandboxControl(sandbox.url).faults(
        {"*": {"status": 401, "code": "unauthenticated", "message": echo}}
    )
    failed = run_watch(app, watch, scheduled_at=T0 + 15 * MINUTE)
    assert failed.status == "failed"
    sink.fail(500, body=f"cannot post to {sink.url}/hooks/T0/{HOOK}")

    proc = processes.start("run", "--stop-timeout", "5", config=secret_config.path)
    sink.wait_for(1, timeout=120)
    wait_until(
        lambda: "notification failed, will retry" in proc.err or not proc.alive(),
        what="the failed delivery to be logged",
    )
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, proc

    base = app.status_server.url
    run_id = failed.run_id
    answers = {
        path: httpx.get(base + path, timeout=30)
        for path in (
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/regressions",
            "/api/regressions?open=1",
            "/api/runs",
            f"/api/runs?id={run_id}",
            "/api/snapshots?service=checkout&functions=50",
            "/api/snapshots",
            "/api/runs?id=nope",
        )
    }
    assert answers[f"/api/runs?id={run_id}"].json()["pairs"][0]["error"]
    for path, answer in answers.items():
        _no_secret(path, answer.text)
    assert "[REDACTED]" in proc.err, proc  # the echoed URL, masked
    _no_secret("the logs of pyrowatch run", proc.err)
    in_process = capsys.readouterr()
    assert "pair failed" in in_process.out and "[REDACTED]" in in_process.out
    _no_secret("the logs of the in-process app", in_process.out + in_process.err)
    stored = dump_tables(secret_config.database_url)
    assert stored["pair_results"] and stored["outbox"] and stored["delivery_attempts"]
    for table, rows in stored.items():
        _no_secret(f"table {table}", repr(rows))
