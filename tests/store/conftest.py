"""Store fixtures: every test runs against SQLite and PostgreSQL, each on a fresh database.

PostgreSQL comes from ``PYROWATCH_TEST_PG_URL`` (``eval "$(scripts/pg start)"`` sets it).
Without it the PostgreSQL half is skipped, except under CI (``CI`` set), where that is an
error: CI must exercise both databases.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from watcher.findings import Finding
from watcher.store.db import make_engine, upgrade
from watcher.store.repo import Repository

from .store_support import PG_ENV, T0, require_pg_url


@pytest.fixture(scope="session")
def _pg_admin() -> Iterator[Engine | None]:
    """An AUTOCOMMIT engine on the harness database, used to create and drop databases."""
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


def _require_pg(admin: Engine | None) -> Engine:
    require_pg_url()
    assert admin is not None
    return admin


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class _Databases:
    """Makes fresh databases: empty ones, or clones of a template migrated once per session.

    The template is brought to head by :func:`watcher.store.db.upgrade` itself, so every
    migrated test database is exactly what the migrations produce.
    """

    def __init__(self, admin: Engine | None, workdir: Path) -> None:
        self._admin = admin
        self._workdir = workdir
        self._sqlite_template: Path | None = None
        self._pg_template: str | None = None
        self._pg_databases: list[str] = []

    def _pg_url(self, name: str) -> str:
        url = make_url(os.environ[PG_ENV]).set(database=name)
        return url.render_as_string(hide_password=False)

    def _pg_create(self, template: str | None) -> str:
        admin = _require_pg(self._admin)
        name = f"pyrowatch_t_{uuid.uuid4().hex[:12]}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self._pg_databases.append(name)
        return name

    def drop(self, url: str) -> None:
        name = make_url(url).database
        if self._admin is None or name not in self._pg_databases:
            return
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._pg_databases.remove(name)

    def empty(self, backend: str, tmp_path: Path) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / 'watcher.db'}"
        return self._pg_url(self._pg_create(None))

    def migrated(self, backend: str, tmp_path: Path) -> str:
        if backend == "sqlite":
            if self._sqlite_template is None:
                template = self._workdir / "template.db"
                upgrade(f"sqlite:///{template}")
                assert not template.with_name("template.db-wal").exists()
                self._sqlite_template = template
            tmp_path.mkdir(exist_ok=True)
            target = tmp_path / "watcher.db"
            shutil.copyfile(self._sqlite_template, target)
            return f"sqlite:///{target}"
        if self._pg_template is None:
            template = self._pg_create(None)
            upgrade(self._pg_url(template))
            self._pg_template = template
        return self._pg_url(self._pg_create(self._pg_template))

    def close(self) -> None:
        for name in list(self._pg_databases):
            self.drop(self._pg_url(name))


@pytest.fixture(scope="session")
def _databases(
    _pg_admin: Engine | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_Databases]:
    databases = _Databases(_pg_admin, tmp_path_factory.mktemp("store-templates"))
    yield databases
    databases.close()


@pytest.fixture
def db_url(backend: str, tmp_path: Path, _databases: _Databases) -> Iterator[str]:
    """URL of a fresh, empty database (no schema) on the parametrized backend."""
    url = _databases.empty(backend, tmp_path)
    yield url
    _databases.drop(url)


@pytest.fixture
def migrated_url(backend: str, tmp_path: Path, _databases: _Databases) -> Iterator[str]:
    """URL of a fresh database at head (a clone of a template migrated by ``upgrade``)."""
    url = _databases.migrated(backend, tmp_path / "migrated")
    yield url
    _databases.drop(url)


def _assert_no_checked_out(engine: Engine) -> None:
    checked_out = engine.pool.checkedout()  # type: ignore[attr-defined]
    assert checked_out == 0, f"connections leaked: {engine.pool.status()}"


@pytest.fixture
def make_test_engine() -> Iterator[Callable[[str], Engine]]:
    """Factory of engines (one per 'replica'); each is checked for leaked connections."""
    engines: list[Engine] = []

    def factory(url: str) -> Engine:
        engine = make_engine(url)
        engines.append(engine)
        return engine

    yield factory
    try:
        for engine in engines:
            _assert_no_checked_out(engine)
    finally:
        for engine in engines:
            engine.dispose()


@pytest.fixture
def engine(migrated_url: str, make_test_engine: Callable[[str], Engine]) -> Engine:
    """An engine on a fresh database at head."""
    return make_test_engine(migrated_url)


@pytest.fixture
def repo(engine: Engine) -> Repository:
    return Repository(engine)


@pytest.fixture
def make_repo(
    migrated_url: str, make_test_engine: Callable[[str], Engine]
) -> Callable[[], Repository]:
    """Factory of repositories on the same database, each with its own engine ('replicas')."""
    return lambda: Repository(make_test_engine(migrated_url))


@pytest.fixture
def make_finding() -> Callable[..., Finding]:
    def factory(**overrides: object) -> Finding:
        values: dict[str, object] = {
            "service": "checkout",
            "profile_type": "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
            "function": "pkg.Foo",
            "kind": "self",
            "baseline_share": 0.008,
            "current_share": 0.011,
            "relative_change": 0.375,
            "absolute_change": 0.003,
            "impact_per_second": 0.9,
            "impact_unit": "cores",
            "p_value": 1e-6,
            "ci_low": 0.2,
            "ci_high": 0.5,
            "mde": 0.05,
            "window_start": T0 - timedelta(hours=1),
            "window_end": T0,
            "baseline_starts": (T0 - timedelta(days=1, hours=1),),
            "severity": "warning",
            "callers": ("main", "pkg.Handler"),
            "labels": (("namespace", "shop"),),
        }
        values.update(overrides)
        return Finding(**values)  # type: ignore[arg-type]

    return factory
