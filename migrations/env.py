"""Alembic environment for the pyrowatch database.

The database URL never comes from ``alembic.ini``. It comes from, in order:

1. a connection handed in through ``config.attributes["connection"]`` (tests, embedding);
2. ``config.attributes["url"]``, set by :func:`watcher.store.db.upgrade`
   (what ``pyrowatch db upgrade`` runs);
3. ``-x url=...`` on the alembic command line, e.g.
   ``alembic -c migrations/alembic.ini -x url=sqlite:///watcher.db upgrade head``.

``render_as_batch=True`` lets ALTERs work on SQLite; the target metadata is the models'.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from watcher.store.db import make_engine
from watcher.store.models import UTCDateTime, metadata

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str | URL:
    url: str | URL | None = config.attributes.get("url") or context.get_x_argument(
        as_dictionary=True
    ).get("url")
    if not url:
        raise SystemExit(
            "no database URL: run `pyrowatch db upgrade`, or pass -x url=DATABASE_URL to alembic"
        )
    return url


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes plain ``sa.DateTime(timezone=True)`` for UTCDateTime columns."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=metadata,
        render_item=_render_item,
        render_as_batch=True,
        compare_type=True,
        compare_server_default=False,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``)."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    # SQLite foreign keys stay off while migrating: batch mode rebuilds tables.
    engine = make_engine(_url(), poolclass=NullPool, sqlite_foreign_keys=False)
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
