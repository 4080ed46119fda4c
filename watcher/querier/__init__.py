"""The Pyroscope Querier API client.

- :class:`QuerierClient` (``client.py``): every ``querier.v1.QuerierService`` method over
  Connect JSON, with retries and error mapping.
- ``transport.py``: how the bytes travel, and which transport a client gets: pooled httpx
  (``httpx_transport.py``, the daemon), ``http.client`` (``stdlib_transport.py``, one-shot
  commands) or the ``access_command`` wrapper.
- ``auth.py``: credential headers and the ``access_command`` transport.
- ``models.py``: typed results.

Names are imported on first use, and only ``httpx_transport.py`` imports httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watcher.querier.auth import AccessCommandTransport, DeploymentAuth
    from watcher.querier.client import QuerierClient, RetryPolicy
    from watcher.querier.models import (
        Exemplar,
        ProfileStats,
        ProfileType,
        RetryEvent,
        Series,
        SeriesPoint,
        StacktraceQuery,
    )

__all__ = [
    "AccessCommandTransport",
    "DeploymentAuth",
    "Exemplar",
    "ProfileStats",
    "ProfileType",
    "QuerierClient",
    "RetryEvent",
    "RetryPolicy",
    "Series",
    "SeriesPoint",
    "StacktraceQuery",
]

_HOME = {
    "AccessCommandTransport": "auth",
    "DeploymentAuth": "auth",
    "QuerierClient": "client",
    "RetryPolicy": "client",
    "Exemplar": "models",
    "ProfileStats": "models",
    "ProfileType": "models",
    "RetryEvent": "models",
    "Series": "models",
    "SeriesPoint": "models",
    "StacktraceQuery": "models",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
