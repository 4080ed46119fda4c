"""Shared fixtures: clean environment, shared test data location."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PYROWATCH_SHARED_DIR", REPO.parent / "shared"))
TESTDATA = SHARED / "testdata" / "pyroscope"


@pytest.fixture(autouse=True)
def _clean_environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Strip configuration variables so a developer's own setup never leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("PYROWATCH_", "SRE_CONFIG")) and name not in (
            "PYROWATCH_SHARED_DIR",
            "PYROWATCH_TEST_PG_URL",
        ):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("NO_COLOR", "1")
    yield


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The Pyroscope test data folder; skips when ../shared is not beside the checkout."""
    if not TESTDATA.is_dir():
        pytest.skip(f"Pyroscope test data not found at {TESTDATA} (set PYROWATCH_SHARED_DIR)")
    return TESTDATA
