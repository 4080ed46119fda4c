"""Engines, sessions and schema revision checks.

SQLite and PostgreSQL differ in a handful of places; every such difference is decided
here, from ``engine.dialect.name``, and nowhere else:

- SQLite gets WAL, a busy timeout, foreign keys, and SQLAlchemy-emitted ``BEGIN`` so that
  a write transaction can start with ``BEGIN IMMEDIATE`` (see :func:`write_transaction`):
  the write lock is then taken up front and two writers queue instead of failing.
- PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://``); plain
  ``postgresql://`` and ``postgres://`` URLs are rewritten to use it.

SQLAlchemy and Alembic exceptions are wrapped into :class:`~watcher.errors.StoreError` at
this edge, with the password removed from any URL in the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from watcher.errors import SchemaOutOfDate, StoreError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Table
    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.orm import Session
    from sqlalchemy.sql.dml import Insert
    from sqlalchemy.sql.selectable import GenerativeSelect

__all__ = [
    "UPGRADE_COMMAND",
    "bulk_insert",
    "current_revision",
    "downgrade",
    "ensure_at_head",
    "head_revision",
    "insert_ignoring_conflicts",
    "is_postgres",
    "is_sqlite",
    "make_engine",
    "migrations_dir",
    "redact",
    "safe_url",
    "session_scope",
    "skip_locked",
    "store_error",
    "upgrade",
    "write_transaction",
]

#: The command that brings a database to the schema this version needs.
UPGRADE_COMMAND = "pyrowatch db upgrade"

#: Milliseconds a SQLite connection waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: Execution option set on a connection whose next transaction will write (SQLite only).
_WRITE_OPTION = "pyrowatch_write"

T = TypeVar("T")
SelectT = TypeVar("SelectT", bound="GenerativeSelect")

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)@")


def _parse_url(url: str | URL) -> URL:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"invalid database URL {redact(str(url))!r}: {redact(str(exc))}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL as text with its password replaced by ``***``."""
    try:
        return _parse_url(url).render_as_string(hide_password=True)
    except StoreError:
        return redact(str(url))


def redact(text: str, *secrets: str) -> str:
    """Remove URL passwords (``scheme://user:secret@``) and the given secrets from text."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def store_error(exc: BaseException, action: str, url: str | URL | None = None) -> StoreError:
    """Build the :class:`StoreError` for a failed database operation, without secrets."""
    secrets: list[str] = []
    where = ""
    if url is not None:
        try:
            parsed = _parse_url(url)
            if parsed.password:
                secrets.append(str(parsed.password))
            where = f" on {parsed.render_as_string(hide_password=True)}"
        except StoreError:
            where = f" on {redact(str(url))}"
    detail = getattr(exc, "orig", None) or exc
    message = " ".join(str(detail).split()) or type(detail).__name__
    return StoreError(redact(f"{action} failed{where}: {message}", *secrets))


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def make_engine(
    url: str | URL, *, echo: bool = False, sqlite_foreign_keys: bool = True, **kwargs: Any
) -> Engine:
    """Create an engine for a SQLite or PostgreSQL URL, configured for the watcher.

    SQLite: WAL journal, ``busy_timeout``, ``foreign_keys=ON`` (migrations turn it off, as
    batch table rebuilds need), ``BEGIN`` emitted by SQLAlchemy so DDL is transactional
    and :func:`write_transaction` can use ``BEGIN IMMEDIATE``. PostgreSQL: psycopg 3.
    Both: ``pool_pre_ping=True``. Extra keyword arguments go to ``create_engine``.
    """
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import SQLAlchemyError

    parsed = _parse_url(url)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database {safe_url(parsed)!r}: use sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST/DB"
        )
    options: dict[str, Any] = {"pool_pre_ping": True, "echo": echo}
    if backend == "sqlite":
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        connect_args.setdefault("check_same_thread", False)
        options["connect_args"] = connect_args
    options.update(kwargs)
    try:
        engine = create_engine(parsed, **options)
    except (SQLAlchemyError, ImportError, TypeError) as exc:
        raise store_error(exc, "creating the database engine", parsed) from exc

    if backend == "sqlite":
        in_memory = parsed.database in (None, "", ":memory:")

        @event.listens_for(engine, "connect")
        def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                if not in_memory:
                    cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                cursor.execute(f"PRAGMA foreign_keys={'ON' if sqlite_foreign_keys else 'OFF'}")
                cursor.execute("PRAGMA synchronous=NORMAL")
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def insert_ignoring_conflicts(
    conn: Connection, table: Table, conflict_columns: list[str]
) -> Insert:
    """``INSERT ... ON CONFLICT (cols) DO NOTHING`` for the connection's database.

    Executing it inserts nothing (rowcount 0, no RETURNING row) when a row with the same
    unique key exists, without raising and without aborting a PostgreSQL transaction.
    """
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=conflict_columns)


def bulk_insert(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert many rows at driver speed, inside the connection's transaction.

    PostgreSQL: one ``COPY ... FROM STDIN``. SQLite: one DBAPI ``executemany``. Both skip
    SQLAlchemy's per-row parameter processing, so values must already be driver-ready
    (ints, floats, str, None: no datetimes, no JSON).
    """
    if not rows:
        return
    from sqlalchemy.exc import DBAPIError

    prep = conn.dialect.identifier_preparer
    target = f"{prep.format_table(table)} ({', '.join(prep.quote(c) for c in columns)})"
    if is_postgres(conn):
        sql = f"COPY {target} FROM STDIN"
        dbapi_error = conn.dialect.loaded_dbapi.Error
        try:
            driver_conn: Any = conn.connection.driver_connection
            with driver_conn.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except dbapi_error as exc:
            raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc
        return
    placeholders = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {target} VALUES ({placeholders})", list(rows))


def skip_locked(conn: Connection, stmt: SelectT) -> SelectT:
    """Add ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers already."""
    if is_postgres(conn):
        return stmt.with_for_update(skip_locked=True)
    return stmt


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that will write; commits on success.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE``, so read-then-write sequences
    (compare-and-swap, claims) never fail with "database is locked" on lock upgrade: a
    second writer waits up to the busy timeout instead. On PostgreSQL it is an ordinary
    READ COMMITTED transaction. SQLAlchemy errors propagate unchanged; callers wrap them.
    """
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn


@contextmanager
def session_scope(engine: Engine, *, write: bool = False) -> Iterator[Session]:
    """A Session committed on success, rolled back on error, always closed.

    Objects stay usable after the block (``expire_on_commit=False``). SQLAlchemy errors
    come out as :class:`StoreError`. With ``write=True`` a SQLite session takes the write
    lock up front (``BEGIN IMMEDIATE``), as :func:`write_transaction` does; use it for any
    read-then-write work. Library code should prefer :class:`~watcher.store.repo.Repository`.
    """
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    session = Session(engine, expire_on_commit=False)
    try:
        if write:
            session.connection(execution_options={_WRITE_OPTION: True})
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise store_error(exc, "database transaction", engine.url) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# --------------------------------------------------------------------------- migrations


def migrations_dir() -> Path:
    """The Alembic script directory.

    Installed: the copy shipped as ``watcher/store/_migrations`` (in a checkout that is a
    symlink to ``migrations/``). Else ``migrations/`` at the root of the source checkout
    that holds ``watcher/`` (recognised by its ``pyproject.toml``).
    """
    import watcher

    package_root = Path(watcher.__file__).resolve().parent
    candidates = [Path(__file__).resolve().parent / "_migrations"]
    if (package_root.parent / "pyproject.toml").is_file():
        candidates.append(package_root.parent / "migrations")
    for candidate in candidates:
        if (candidate / "env.py").is_file() and (candidate / "versions").is_dir():
            return candidate
    raise StoreError(
        "the database migrations are missing from this installation "
        f"(looked in {', '.join(str(c) for c in candidates)}); reinstall pyrowatch"
    )


def _alembic_config(url: str | URL | None = None, connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        # Kept out of the main options: never written anywhere, never interpolated.
        cfg.attributes["url"] = _parse_url(url)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _run_alembic(action: str, url: str | URL, fn: Callable[[], T]) -> T:
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return fn()
    except (SQLAlchemyError, CommandError) as exc:
        raise store_error(exc, action, url) from exc


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: head)."""
    from alembic import command

    cfg = _alembic_config(url)
    _run_alembic(
        f"upgrading the database to {revision}", url, lambda: command.upgrade(cfg, revision)
    )


def downgrade(url: str | URL, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base`` empties it)."""
    from alembic import command

    cfg = _alembic_config(url)
    _run_alembic(
        f"downgrading the database to {revision}", url, lambda: command.downgrade(cfg, revision)
    )


def head_revision() -> str:
    """The newest migration revision this version of pyrowatch ships."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise StoreError("no database migrations found; reinstall pyrowatch")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for a database without a schema."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise store_error(exc, "reading the schema revision", engine.url) from exc


def ensure_at_head(engine: Engine) -> str:
    """Return the head revision, or raise :class:`SchemaOutOfDate` naming the fix."""
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return head
    where = safe_url(engine.url)
    if current is None:
        _out_of_date(f"the database {where} has no pyrowatch schema yet; run `{UPGRADE_COMMAND}`")
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory.from_config(_alembic_config())
    try:
        known = script.get_revision(current) is not None
    except CommandError:
        known = False
    if not known:
        _out_of_date(
            f"the database {where} is at revision {current}, which this version of pyrowatch "
            f"does not know (written by a newer version?); upgrade pyrowatch, or if that is "
            f"wrong run `{UPGRADE_COMMAND}`"
        )
    _out_of_date(
        f"the database {where} is at revision {current} but this version needs {head}; "
        f"run `{UPGRADE_COMMAND}`"
    )


def _out_of_date(message: str) -> NoReturn:
    raise SchemaOutOfDate(message)
