"""Migrations reach head on both databases and match the models exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from watcher.errors import SchemaOutOfDate, StoreError
from watcher.store import db
from watcher.store.models import Base, Run, metadata
from watcher.store.repo import Repository

REPO_ROOT = Path(__file__).resolve().parents[2]
MakeEngine = Callable[[str], Engine]


def _diff(engine: Engine, target: sa.MetaData) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, target))


def test_upgrade_reaches_head(db_url: str, make_test_engine: MakeEngine) -> None:
    """`upgrade` takes an empty database to the head revision, matching the models."""
    engine = make_test_engine(db_url)
    assert db.current_revision(engine) is None
    db.upgrade(db_url)
    assert db.current_revision(engine) == db.head_revision()
    assert db.ensure_at_head(engine) == db.head_revision()
    assert _diff(engine, metadata) == []
    db.upgrade(db_url)  # idempotent at head
    assert db.current_revision(engine) == db.head_revision()


def test_migrated_schema_matches_models(engine: Engine) -> None:
    """`alembic check`: comparing the models with the migrated database finds nothing."""
    assert _diff(engine, metadata) == []


def test_schema_comparison_is_not_vacuous(engine: Engine) -> None:
    """The comparison does see a difference when the models change (guards the test above)."""
    changed = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["runs"].append_column(sa.Column("extra", sa.Integer(), nullable=True))
    sa.Table("brand_new", changed, sa.Column("id", sa.Integer, primary_key=True))
    kinds = {entry[0] for entry in _diff(engine, changed) if isinstance(entry, tuple)}
    assert {"add_column", "add_table"} <= kinds


def test_downgrade_to_base_and_back(migrated_url: str, engine: Engine) -> None:
    """Every migration can be undone and redone."""
    db.downgrade(migrated_url, "base")
    assert db.current_revision(engine) is None
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    db.upgrade(migrated_url)
    assert _diff(engine, metadata) == []


def test_ensure_at_head_refuses_an_empty_database(
    db_url: str, make_test_engine: MakeEngine
) -> None:
    """The daemon refuses an unmigrated database and names the command that fixes it."""
    engine = make_test_engine(db_url)
    with pytest.raises(SchemaOutOfDate) as info:
        db.ensure_at_head(engine)
    assert "pyrowatch db upgrade" in str(info.value)
    assert isinstance(info.value, StoreError)


def test_ensure_at_head_refuses_an_older_revision(
    db_url: str, make_test_engine: MakeEngine
) -> None:
    """A database behind head is refused with the upgrade command."""
    engine = make_test_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('0000')"))
    with pytest.raises(SchemaOutOfDate) as info:
        db.ensure_at_head(engine)
    message = str(info.value)
    assert "0000" in message and "pyrowatch db upgrade" in message


def test_ensure_at_head_explains_an_unknown_revision(migrated_url: str, engine: Engine) -> None:
    """A revision written by a newer pyrowatch is called out as such."""
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'fffffff'"))
    with pytest.raises(SchemaOutOfDate, match="does not know"):
        db.ensure_at_head(engine)


def test_single_head_and_linear_history() -> None:
    """The shipped migrations have exactly one head (no unmerged branches)."""
    script = ScriptDirectory(str(db.migrations_dir()))
    assert len(script.get_heads()) == 1
    assert db.head_revision() == script.get_current_head()


def test_migrations_dir_is_the_shipped_package_copy() -> None:
    """The package copy (watcher/store/_migrations) is found and is the repository's tree."""
    found = db.migrations_dir()
    assert (found / "env.py").is_file()
    assert (found / "script.py.mako").is_file()
    assert found.resolve() == (REPO_ROOT / "migrations").resolve()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_alembic_command_line_takes_the_url_from_x_argument(
    db_url: str, make_test_engine: MakeEngine
) -> None:
    """`alembic -c migrations/alembic.ini -x url=...` works; the ini holds no URL."""
    ini = REPO_ROOT / "migrations" / "alembic.ini"
    assert "sqlalchemy.url" not in ini.read_text()
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), "-x", f"url={db_url}", "upgrade", "head"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    assert db.current_revision(make_test_engine(db_url)) == db.head_revision()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_alembic_without_a_url_says_how_to_give_one(db_url: str) -> None:
    """Without -x url the environment stops with a hint instead of using a default."""
    ini = REPO_ROOT / "migrations" / "alembic.ini"
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "-x url=" in result.stderr + result.stdout


def test_times_round_trip_as_aware_utc(repo: Repository, engine: Engine) -> None:
    """UTCDateTime stores any aware time and returns it in UTC on both databases."""
    cet = timezone(timedelta(hours=1))
    scheduled = datetime(2025, 1, 2, 13, 30, 15, 123456, tzinfo=cet)
    run_id = repo.start_run("w", scheduled, owner="a", now=scheduled)
    run = repo.run(run_id)
    assert run is not None
    assert run.scheduled_at == scheduled
    assert run.scheduled_at.tzinfo is UTC
    assert run.scheduled_at.hour == 12


def test_naive_times_are_refused(repo: Repository) -> None:
    """A naive datetime is a bug; it is refused rather than guessed."""
    with pytest.raises(StoreError, match="naive datetime"):
        repo.start_run("w", datetime(2025, 1, 1), owner="a")


def test_models_use_the_naming_convention() -> None:
    """Every constraint and index has a conventional name Alembic can address."""
    assert Base.metadata is metadata
    names = {c.name for c in Run.__table__.constraints} | {i.name for i in Run.__table__.indexes}  # type: ignore[attr-defined]
    assert {"pk_runs", "ck_runs_status", "ix_runs_watch_scheduled_at"} <= names
    assert UTC  # keep import
