"""A Pyroscope-compatible sandbox server and test doubles for the watcher.

:class:`Sandbox` serves the Querier API, Push and ``/ingest`` over a :class:`ProfileStore`;
:func:`serve` runs one in the foreground for ``pyrowatch sandbox``. Importing this package is
cheap: the server modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watcher.sandbox.__main__ import serve
    from watcher.sandbox.faults import AuthConfig, Fault, FaultPlan
    from watcher.sandbox.server import Sandbox
    from watcher.sandbox.store import ProfileStore

__all__ = ["AuthConfig", "Fault", "FaultPlan", "ProfileStore", "Sandbox", "serve"]

_WHERE = {
    "Sandbox": "watcher.sandbox.server",
    "ProfileStore": "watcher.sandbox.store",
    "AuthConfig": "watcher.sandbox.faults",
    "Fault": "watcher.sandbox.faults",
    "FaultPlan": "watcher.sandbox.faults",
    "serve": "watcher.sandbox.__main__",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'watcher.sandbox' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
