"""The public surface of watcher.store."""

from __future__ import annotations

import subprocess
import sys

import watcher.store


def test_all_is_sorted_and_resolves() -> None:
    """__all__ is sorted and every name in it can be imported."""
    names = watcher.store.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(watcher.store, name) is not None


def test_importing_the_package_does_not_load_sqlalchemy() -> None:
    """`import watcher.store` stays cheap; SQLAlchemy loads on first real use."""
    code = "import sys, watcher.store; print('sqlalchemy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
