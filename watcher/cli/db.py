"""``db upgrade`` and ``db current``: the watcher database schema."""

from __future__ import annotations

import click

from watcher.cli._common import CONTEXT_SETTINGS, echo
from watcher.cli._core import global_options, state_of


@click.group(context_settings=CONTEXT_SETTINGS)
@global_options
def db() -> None:
    """Manage the watcher database ([watcher] database_url).

    \b
    Examples:
      pyrowatch db upgrade
      pyrowatch db current
    """


@db.command(context_settings=CONTEXT_SETTINGS)
@global_options
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Create the schema, or migrate it to the version this pyrowatch needs.

    Safe to run repeatedly and on a live database (several replicas may share it).
    """
    from watcher.daemon.app import prepare_database_url
    from watcher.store import current_revision, head_revision, make_engine
    from watcher.store import upgrade as run_upgrade
    from watcher.store.db import safe_url

    url = prepare_database_url(state_of(ctx).settings().watcher.database_url.get_secret_value())
    engine = make_engine(url)
    try:
        before = current_revision(engine)
    finally:
        engine.dispose()
    run_upgrade(url)
    head = head_revision()
    where = safe_url(url)
    if before == head:
        echo(f"{where}: already at revision {head} (head)")
    else:
        echo(f"{where}: upgraded from {before or 'an empty database'} to revision {head} (head)")


@db.command(context_settings=CONTEXT_SETTINGS)
@global_options
@click.pass_context
def current(ctx: click.Context) -> None:
    """Show the database's schema revision and whether it is at head."""
    from watcher.daemon.app import prepare_database_url
    from watcher.store import current_revision, head_revision, make_engine
    from watcher.store.db import UPGRADE_COMMAND, safe_url

    url = prepare_database_url(state_of(ctx).settings().watcher.database_url.get_secret_value())
    engine = make_engine(url)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    where = safe_url(url)
    if revision == head:
        echo(f"{where}: revision {revision} (head)")
    else:
        echo(f"{where}: revision {revision or 'none'}; head is {head}: run `{UPGRADE_COMMAND}`")
