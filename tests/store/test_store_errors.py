"""Errors leave the store as StoreError, never with a password in them; faults heal."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from watcher.errors import SchemaOutOfDate, StoreError
from watcher.store import db
from watcher.store.models import Run
from watcher.store.repo import Repository

from .store_support import T0, require_pg_url

SECRET = "s3cr3t-Pa55word"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable_pg_url() -> str:
    return f"postgresql+psycopg://watcher:{SECRET}@127.0.0.1:{closed_port()}/pyrowatch?connect_timeout=2"


def assert_clean(exc: BaseException) -> None:
    text = f"{exc} {exc!r} {exc.args}"
    assert SECRET not in text
    assert "***" in text


def test_unreachable_database_error_hides_the_password() -> None:
    """A refused connection is a StoreError naming the host, with the password masked."""
    engine = db.make_engine(unreachable_pg_url())
    try:
        with pytest.raises(StoreError) as info:
            Repository(engine).outbox_depth()
        assert_clean(info.value)
        assert "127.0.0.1" in str(info.value)
        assert info.value.__cause__ is not None  # the original stays chained for debugging
        with pytest.raises(StoreError) as info:
            db.current_revision(engine)
        assert_clean(info.value)
    finally:
        engine.dispose()


def test_upgrade_failure_hides_the_password() -> None:
    """`pyrowatch db upgrade` against an unreachable server fails cleanly."""
    with pytest.raises(StoreError) as info:
        db.upgrade(unreachable_pg_url())
    assert_clean(info.value)


def test_bad_urls_are_store_errors_without_secrets() -> None:
    """Unsupported or malformed URLs are refused, password masked."""
    with pytest.raises(StoreError, match="unsupported database") as info:
        db.make_engine(f"mysql://root:{SECRET}@localhost/db")
    assert_clean(info.value)
    with pytest.raises(StoreError) as info:
        db.make_engine(f"postgresql://u:{SECRET}@host:notaport/db")
    assert SECRET not in str(info.value)


def test_redaction_helpers() -> None:
    """safe_url and redact mask passwords in URLs and any given secret."""
    url = f"postgresql+psycopg://watcher:{SECRET}@db:5432/pyrowatch"
    assert SECRET not in db.safe_url(url) and "watcher:***@db" in db.safe_url(url)
    assert db.safe_url("postgresql://u:p@h/d").startswith("postgresql+psycopg://")
    assert db.redact(f"failed: {url} and {SECRET}", SECRET).count("***") == 2


@pytest.mark.postgres
def test_wrong_password_on_the_real_server_is_clean(
    make_test_engine: Callable[[str], Engine],
) -> None:
    """Authentication failure against the harness server keeps the bad password out."""
    url = make_url(require_pg_url()).set(password=SECRET).render_as_string(hide_password=False)
    with pytest.raises(StoreError) as info:
        Repository(make_test_engine(url)).outbox_depth()
    assert_clean(info.value)
    assert "password authentication failed" in str(info.value)


def test_schema_out_of_date_message_hides_the_password(
    backend: str, db_url: str, make_test_engine: Callable[[str], Engine]
) -> None:
    """The refusal names the database without its password."""
    with pytest.raises(SchemaOutOfDate) as info:
        db.ensure_at_head(make_test_engine(db_url))
    password = make_url(db_url).password
    if password:
        assert str(password) not in str(info.value)


def test_missing_schema_is_a_store_error(
    db_url: str, make_test_engine: Callable[[str], Engine]
) -> None:
    """Using an unmigrated database fails as StoreError, not a raw SQLAlchemy error."""
    with pytest.raises(StoreError):
        Repository(make_test_engine(db_url)).outbox_depth()


def test_session_scope_commits_and_rolls_back(engine: Engine) -> None:
    """session_scope commits on success, rolls back on error and wraps database errors."""
    with db.session_scope(engine) as session:
        session.add(Run(watch="w", scheduled_at=T0, started_at=T0, owner="o", status="running"))
    with pytest.raises(RuntimeError), db.session_scope(engine) as session:
        session.add(Run(watch="x", scheduled_at=T0, started_at=T0, owner="o", status="running"))
        session.flush()
        raise RuntimeError("boom")
    with pytest.raises(StoreError), db.session_scope(engine) as session:
        session.add(Run(watch="y", scheduled_at=T0, started_at=T0, owner="o", status="bogus"))
    with db.session_scope(engine) as session:
        assert session.scalars(sa.select(Run.watch)).all() == ["w"]


def test_write_sessions_take_the_sqlite_write_lock_up_front(backend: str, engine: Engine) -> None:
    """session_scope(write=True) begins with BEGIN IMMEDIATE on SQLite; reads do not."""
    if backend != "sqlite":
        pytest.skip("BEGIN IMMEDIATE is SQLite's")
    begins: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("BEGIN"):
            begins.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with db.session_scope(engine, write=True) as session:
            session.add(Run(watch="w", scheduled_at=T0, started_at=T0, owner="o"))
        with db.session_scope(engine) as session:
            session.scalars(sa.select(Run.id)).all()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]


def test_pool_recovers_after_the_server_drops_connections(
    backend: str, repo: Repository, migrated_url: str
) -> None:
    """Connections killed by the server are detected by pre-ping and replaced."""
    if backend != "postgres":
        pytest.skip("server-side connection loss is a PostgreSQL fault")
    assert repo.outbox_depth() == 0  # leaves one pooled connection
    admin = sa.create_engine(
        make_url(require_pg_url()),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": make_url(migrated_url).database},
            ).scalar_one()
    finally:
        admin.dispose()
    assert killed >= 1
    assert repo.enqueue("after-fault", "slack", "firing", {}, now=T0)
    assert repo.outbox_depth() == 1
