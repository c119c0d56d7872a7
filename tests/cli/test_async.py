"""The ``aioflask`` and ``aioflask-multidb`` templates: migrating with async engines.

Engines come from ``SQLAlchemyDatabases`` with async URLs (aiosqlite, psycopg's
async driver) or from Flask-SQLAlchemy-Lite's async engines.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy_lite import SQLAlchemy as LiteSQLAlchemy

from flask_migrate_ext import ExitCode
from flask_migrate_ext import Migrate
from flask_migrate_ext import SQLAlchemyDatabases
from flask_migrate_ext import SQLAlchemyLiteDatabases
from helpers import invoke
from helpers import ok
from helpers import table_names
from helpers import version_rows

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg_async"}


def async_url(url: str) -> str:
    """The same database, through the backend's async driver."""
    parsed = sa.make_url(url)
    parsed = parsed.set(drivername=ASYNC_DRIVERS[parsed.get_backend_name()])
    return parsed.render_as_string(hide_password=False)


def employee_metadata(email: bool = False) -> sa.MetaData:
    metadata = sa.MetaData()
    columns = [sa.Column("id", sa.Integer, primary_key=True)]
    if email:
        columns.append(sa.Column("email", sa.String(80)))
    sa.Table("employee", metadata, *columns)
    return metadata


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.server)]
)
def test_aioflask_flow(
    new_app: t.Callable[[], Flask], database_url: str, tmp_path: Path
) -> None:
    url = async_url(database_url)

    def make(email: bool = False) -> Flask:
        app = new_app()
        Migrate(app, SQLAlchemyDatabases(url, employee_metadata(email)))
        return app

    app = make()
    ok(invoke(app, "init", "-t", "aioflask"))
    assert "run_sync" in (tmp_path / "migrations" / "env.py").read_text()
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))
    assert table_names(database_url) == {"alembic_version", "employee"}
    ok(invoke(app, "check"))
    assert "No changes in schema detected." in ok(invoke(app, "migrate")).stderr

    app2 = make(email=True)
    assert invoke(app2, "check").exit_code == ExitCode.SCHEMA_DRIFT
    ok(invoke(app2, "migrate", "-m", "email"))
    assert invoke(app2, "status").exit_code == ExitCode.NOT_UP_TO_DATE
    ok(invoke(app2, "upgrade"))
    assert ok(invoke(app2, "current")).stdout.strip().endswith("(head)")
    assert ok(invoke(app2, "status")).stdout.endswith("Up to date.\n")
    ok(invoke(app2, "verify"))
    sql = ok(invoke(app2, "upgrade", "--sql", "base:head")).stdout
    assert "CREATE TABLE employee" in sql and "ADD COLUMN email" in sql
    ok(invoke(app2, "downgrade", "base"))
    assert table_names(database_url) == {"alembic_version"}
    assert version_rows(database_url) == []


def test_aioflask_api_calls_in_one_process(
    new_app: t.Callable[[], Flask], sqlite_url: str
) -> None:
    from flask_migrate_ext import init
    from flask_migrate_ext import migrate
    from flask_migrate_ext import upgrade

    app = new_app()
    Migrate(app, SQLAlchemyDatabases(async_url(sqlite_url), employee_metadata()))
    with app.app_context():
        init(template="aioflask")
        # Each call runs its own event loop; the engine outlives them all.
        assert upgrade().steps == []
        path = migrate(message="initial")
        assert path is not None
        assert [s.revision for s in upgrade().steps] == [Path(path).name[:12]]
        assert migrate(message="nothing") is None
    assert table_names(sqlite_url) == {"alembic_version", "employee"}


@pytest.mark.server
def test_aioflask_multidb_sqlite_and_postgresql(
    new_app: t.Callable[[], Flask], make_database: t.Callable[[str], str]
) -> None:
    main_url, reports_url = make_database("sqlite"), make_database("postgresql")
    reports = sa.MetaData()
    sa.Table("report", reports, sa.Column("id", sa.Integer, primary_key=True))
    app = new_app()
    databases = SQLAlchemyDatabases(
        async_url(main_url),
        employee_metadata(),
        binds={"reports": (async_url(reports_url), reports)},
    )
    Migrate(app, databases)
    ok(invoke(app, "init", "-t", "aioflask-multidb"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))
    assert table_names(main_url) == {"alembic_version", "employee"}
    assert table_names(reports_url) == {"alembic_version", "report"}
    assert version_rows(main_url) == version_rows(reports_url) != []
    ok(invoke(app, "check"))
    assert ok(invoke(app, "current")).stdout.count("(head)") == 2
    assert ok(invoke(app, "status")).stdout.count("Up to date.") == 2
    ok(invoke(app, "verify"))
    sql = ok(invoke(app, "upgrade", "--sql", "base:head")).stdout
    assert "-- Database: reports" in sql and "CREATE TABLE report" in sql
    ok(invoke(app, "downgrade", "base"))
    assert table_names(main_url) == table_names(reports_url) == {"alembic_version"}


def test_aioflask_multidb_unreachable_bind(
    new_app: t.Callable[[], Flask], sqlite_url: str
) -> None:
    app = new_app()
    databases = SQLAlchemyDatabases(
        async_url(sqlite_url),
        employee_metadata(),
        binds={
            "reports": (
                "postgresql+psycopg_async://scott:tiger@127.0.0.1:1/nowhere",
                sa.MetaData(),
            )
        },
    )
    Migrate(app, databases)
    ok(invoke(app, "init", "-t", "aioflask-multidb"))
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.DATABASE_UNREACHABLE, result.output
    assert result.stderr.startswith(
        "Error: Cannot connect to database 'reports' at"
        " postgresql+psycopg_async://scott:***@127.0.0.1:1/nowhere: "
    )
    assert "tiger" not in result.output


def test_flask_sqlalchemy_lite_async_engines(
    new_app: t.Callable[[], Flask], sqlite_url: str
) -> None:
    app = new_app()
    app.config["SQLALCHEMY_ASYNC_ENGINES"] = {"default": async_url(sqlite_url)}
    db = LiteSQLAlchemy(app)
    Migrate(app, SQLAlchemyLiteDatabases(db, employee_metadata(), use_async=True))
    ok(invoke(app, "init", "-t", "aioflask"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))
    assert table_names(sqlite_url) == {"alembic_version", "employee"}
    ok(invoke(app, "downgrade", "base"))
    assert table_names(sqlite_url) == {"alembic_version"}


@pytest.mark.parametrize(
    ("template", "use_async", "message"),
    [
        ("aioflask", False, "The database has a synchronous engine"),
        ("aioflask-multidb", False, "Database '<default>' has a synchronous engine"),
        ("flask", True, "The database has an async engine"),
        ("flask-multidb", True, "Database '<default>' has an async engine"),
    ],
)
def test_template_and_engine_kind_mismatch(
    new_app: t.Callable[[], Flask],
    sqlite_url: str,
    template: str,
    use_async: bool,
    message: str,
) -> None:
    url = async_url(sqlite_url) if use_async else sqlite_url
    app = new_app()
    Migrate(app, SQLAlchemyDatabases(url, employee_metadata()))
    ok(invoke(app, "init", "-t", template))
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.ERROR
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: {message}")
    assert table_names(sqlite_url) == set()


def test_list_templates_lists_all_four(new_app: t.Callable[[], Flask]) -> None:
    app = new_app()
    Migrate(app)
    lines = ok(invoke(app, "list-templates")).stdout.splitlines()
    assert lines[:2] == ["Available templates:", ""]
    assert lines[2:] == [
        "aioflask - Single-database configuration for Flask, with an async engine.",
        "aioflask-multidb - Multi-database configuration for Flask, with async"
        " engines.",
        "flask - Single-database configuration for Flask.",
        "flask-multidb - Multi-database configuration for Flask.",
    ]
