"""Daemon fixtures: the fleet in a sandbox, a webhook sink, and databases on SQLite and
PostgreSQL (the pattern of ``tests/store/conftest.py``).

PostgreSQL comes from ``PYROWATCH_TEST_PG_URL`` (``eval "$(scripts/pg start)"`` sets it);
without it the PostgreSQL half is skipped, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from watcher.store.db import upgrade

from .support import (
    SANDBOX_NOW,
    T1,
    CheckedOut,
    Clock,
    ConfigWriter,
    fleet_spec,
    hook_config,
    open_sandbox,
)

PG_ENV = "PYROWATCH_TEST_PG_URL"


# ---------------------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine | None]:
    """An AUTOCOMMIT engine on the harness database (creates and drops test databases)."""
    url = os.environ.get(PG_ENV)
    if not url:
        yield None
        return
    engine = create_engine(
        make_url(url).set(drivername="postgresql+psycopg"),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
    )
    yield engine
    engine.dispose()


def require_pg(admin: Engine | None) -> Engine:
    if admin is not None:
        return admin
    reason = f'{PG_ENV} is not set; start PostgreSQL with: eval "$(scripts/pg start)"'
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL daemon tests: {reason}", pytrace=False)
    pytest.skip(reason)


class Databases:
    """Fresh databases: empty ones, or clones of a template migrated once per session."""

    def __init__(self, admin: Engine | None, workdir: Path) -> None:
        self.admin = admin
        self._workdir = workdir
        self._sqlite_template: Path | None = None
        self._pg_template: str | None = None
        self._pg_databases: list[str] = []

    def pg_url(self, name: str) -> str:
        url = make_url(os.environ[PG_ENV]).set(database=name)
        return url.render_as_string(hide_password=False)

    def _pg_create(self, template: str | None) -> str:
        admin = require_pg(self.admin)
        name = f"pyrowatch_d_{uuid.uuid4().hex[:12]}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self._pg_databases.append(name)
        return name

    def drop(self, url: str) -> None:
        name = make_url(url).database
        if self.admin is None or name not in self._pg_databases:
            return
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._pg_databases.remove(name)

    def empty(self, backend: str, tmp_path: Path) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / 'empty.db'}"
        return self.pg_url(self._pg_create(None))

    def migrated(self, backend: str, tmp_path: Path) -> str:
        if backend == "sqlite":
            if self._sqlite_template is None:
                template = self._workdir / "template.db"
                upgrade(f"sqlite:///{template}")
                self._sqlite_template = template
            target = tmp_path / "watcher.db"
            shutil.copyfile(self._sqlite_template, target)
            return f"sqlite:///{target}"
        if self._pg_template is None:
            template = self._pg_create(None)
            upgrade(self.pg_url(template))
            self._pg_template = template
        return self.pg_url(self._pg_create(self._pg_template))

    def close(self) -> None:
        for name in list(self._pg_databases):
            self.drop(self.pg_url(name))


@pytest.fixture(scope="session")
def databases(
    pg_admin: Engine | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Databases]:
    dbs = Databases(pg_admin, tmp_path_factory.mktemp("daemon-db-templates"))
    yield dbs
    dbs.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, databases: Databases) -> Iterator[str]:
    """A fresh database at head on the parametrized backend."""
    url = databases.migrated(backend, tmp_path)
    yield url
    databases.drop(url)


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path, databases: Databases) -> Iterator[str]:
    """A fresh database without a schema on the parametrized backend."""
    url = databases.empty(backend, tmp_path)
    yield url
    databases.drop(url)


# ---------------------------------------------------------------------------- servers


@pytest.fixture(scope="session")
def fleet() -> tuple[Any, str, Any]:
    """``(spec, regressed function, store)``: the test fleet, generated once."""
    from watcher.sandbox.fleet import load_fleet
    from watcher.sandbox.store import ProfileStore

    spec, function = fleet_spec()
    store = ProfileStore()
    load_fleet(store, spec)
    return spec, function, store


@pytest.fixture(scope="session")
def sandbox(fleet: tuple[Any, str, Any]) -> Iterator[Any]:
    """The sandbox serving the fleet; its clock sits just after the data ends."""
    with open_sandbox(fleet[2], SANDBOX_NOW) as server:
        yield server


@pytest.fixture
def regressed(fleet: tuple[Any, str, Any]) -> str:
    """The function whose self time the fleet raises by 50 %."""
    return str(fleet[1])


@pytest.fixture
def sink() -> Iterator[Any]:
    from watcher.sandbox.sink import WebhookSink

    with WebhookSink() as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, sandbox: Any, sink: Any, database_url: str) -> ConfigWriter:
    """A config writer: the sandbox, the test database and a webhook channel ``hook``."""
    return hook_config(tmp_path / "config.toml", sandbox.url, database_url, sink)


@pytest.fixture
def make_app() -> Iterator[Callable[..., Any]]:
    """Build Apps (stopped at teardown; no database connection may stay checked out).

    The check follows ``stop()``: scheduled jobs (the delivery pass starts with the
    scheduler) may hold a connection until then, and ``stop()`` waits for them.
    """
    from watcher.daemon.app import App

    apps: list[tuple[App, CheckedOut]] = []

    def factory(settings: Any, **kwargs: Any) -> App:
        kwargs.setdefault("clock", Clock(T1))
        kwargs.setdefault("sleep", lambda _seconds: None)
        app = App(settings, **kwargs)
        apps.append((app, CheckedOut(app.engine)))
        return app

    yield factory
    stopped = [(app.stop(timeout=5), checked_out.count) for app, checked_out in apps]
    for clean, count in stopped:
        assert count == 0, (
            f"connections leaked: {count} still checked out after stop() "
            f"(every run and delivery pass ended in time: {clean})"
        )
