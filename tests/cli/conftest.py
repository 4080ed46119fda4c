"""End-to-end CLI fixtures: the real sandbox over HTTP and a config file pointing at it.

Every command runs as its installed console script (found next to ``sys.executable``), in
a fresh process, against a :class:`~watcher.sandbox.Sandbox` started in the test process on
127.0.0.1 with a free port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .support import Env

if TYPE_CHECKING:
    from watcher.sandbox import Sandbox


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    """One sandbox for the session; each test starts from a clean one (see ``env``)."""
    from watcher.sandbox import Sandbox

    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def env(sandbox_server: Sandbox, tmp_path: Path) -> Iterator[Env]:
    """A clean sandbox (no data, faults, auth or tenants) and a config with ``prod`` on it."""
    from watcher.sandbox import AuthConfig

    sandbox_server.reset()
    sandbox_server.auth = AuthConfig()
    sandbox_server.tenants = False
    e = Env(sandbox_server, tmp_path / "config.toml", tmp_path)
    e.write_config({"prod": {"url": sandbox_server.url}, "staging": {"url": sandbox_server.url}})
    yield e
    sandbox_server.reset()
    sandbox_server.auth = AuthConfig()
    sandbox_server.tenants = False
