"""Persistence: engines and schema checks (:mod:`.db`), models (:mod:`.models`), and the
:class:`Repository` every other module goes through (:mod:`.repo`).

Names are re-exported lazily, so ``import watcher.store`` does not load SQLAlchemy until a
name that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watcher.store.db import (
        current_revision,
        ensure_at_head,
        head_revision,
        make_engine,
        migrations_dir,
        session_scope,
        upgrade,
    )
    from watcher.store.records import (
        DeliveryAttemptRecord,
        FindingsOutcome,
        FunctionStat,
        OutboxEntry,
        OutboxItem,
        PairResultRecord,
        RegressionChange,
        RegressionEventRecord,
        RegressionRecord,
        RunRecord,
        SnapshotFunctionRecord,
        SnapshotInput,
        SnapshotRecord,
    )
    from watcher.store.repo import Repository

__all__ = [
    "DeliveryAttemptRecord",
    "FindingsOutcome",
    "FunctionStat",
    "OutboxEntry",
    "OutboxItem",
    "PairResultRecord",
    "RegressionChange",
    "RegressionEventRecord",
    "RegressionRecord",
    "Repository",
    "RunRecord",
    "SnapshotFunctionRecord",
    "SnapshotInput",
    "SnapshotRecord",
    "current_revision",
    "ensure_at_head",
    "head_revision",
    "make_engine",
    "migrations_dir",
    "session_scope",
    "upgrade",
]

_HOMES = {
    **dict.fromkeys(
        (
            "current_revision",
            "ensure_at_head",
            "head_revision",
            "make_engine",
            "migrations_dir",
            "session_scope",
            "upgrade",
        ),
        "watcher.store.db",
    ),
    "Repository": "watcher.store.repo",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_HOMES.get(name, "watcher.store.records"))
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
