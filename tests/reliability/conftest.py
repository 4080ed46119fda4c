"""Reliability fixtures: the daemon tests' databases, fleet, sink and app factory, on
PostgreSQL only, plus a sandbox of each test's own (faults never leak between tests) and a
private PostgreSQL cluster that a test may restart without disturbing anyone else.

PostgreSQL comes from ``PYROWATCH_TEST_PG_URL`` (``eval "$(scripts/pg start)"``); without it
these tests are skipped, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon import conftest as _daemon
from daemon.support import SANDBOX_NOW, hook_config, open_sandbox
from sqlalchemy.engine import Engine

from .support import Config, PrivateCluster, Processes

# The daemon tests' fixtures, shared (the names are what tests ask for).
pg_admin = _daemon.pg_admin
databases = _daemon.databases
database_url = _daemon.database_url
fleet = _daemon.fleet
regressed = _daemon.regressed
sink = _daemon.sink
make_app = _daemon.make_app
require_pg = _daemon.require_pg


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Every reliability test runs on PostgreSQL, the production database."""
    return str(request.param)


@pytest.fixture
def sandbox(fleet: tuple[Any, str, Any]) -> Iterator[Any]:
    """A sandbox of this test over the shared fleet; stopping it wakes held requests."""
    with open_sandbox(fleet[2], SANDBOX_NOW) as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, sandbox: Any, sink: Any, database_url: str) -> Config:
    """The sandbox deployment, the test database and a webhook channel ``hook``."""
    return hook_config(tmp_path / "config.toml", sandbox.url, database_url, sink, writer=Config)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Background ``pyrowatch`` processes; any still running at teardown is killed."""
    procs = Processes(tmp_path)
    yield procs
    procs.cleanup()


@pytest.fixture(scope="module")
def private_cluster(pg_admin: Engine | None) -> Iterator[PrivateCluster]:
    """A throwaway cluster: restarting the shared one would break other test sessions."""
    require_pg(pg_admin)
    if shutil.which("bash") is None:
        pytest.fail("bash is needed to drive scripts/pg", pytrace=False)
    state = Path(tempfile.gettempdir()) / f"pyrowatch-reliability-pg-{uuid.uuid4().hex[:8]}"
    cluster = PrivateCluster(state)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
