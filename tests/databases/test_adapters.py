"""Apps without Flask-SQLAlchemy: plain SQLAlchemy and Flask-SQLAlchemy-Lite.

``SQLAlchemyDatabases`` and ``SQLAlchemyLiteDatabases`` are passed to
``Migrate`` as the database; the ``flask`` and ``flask-multidb`` templates
run them through the whole init, migrate, upgrade, check, downgrade flow.
"""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy_lite import SQLAlchemy as LiteSQLAlchemy
from sqlalchemy import orm

from flask_migrate_ext import DatabaseNotConfiguredError
from flask_migrate_ext import ExitCode
from flask_migrate_ext import Migrate
from flask_migrate_ext import SQLAlchemyDatabases
from flask_migrate_ext import SQLAlchemyLiteDatabases
from helpers import invoke
from helpers import ok
from helpers import table_names
from helpers import version_rows


def employee_metadata(email: bool = False) -> sa.MetaData:
    metadata = sa.MetaData()
    columns = [sa.Column("id", sa.Integer, primary_key=True)]
    if email:
        columns.append(sa.Column("email", sa.String(80)))
    sa.Table("employee", metadata, *columns)
    return metadata


def report_metadata() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table("report", metadata, sa.Column("id", sa.Integer, primary_key=True))
    return metadata


def columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def run_single_flow(make: t.Callable[[bool], Flask], url: str) -> None:
    """init, migrate, upgrade, check, a second revision, downgrade to base."""
    app = make(False)
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))
    assert table_names(url) == {"alembic_version", "employee"}
    ok(invoke(app, "check"))
    result = ok(invoke(app, "migrate", "-m", "nothing"))
    assert "No changes in schema detected." in result.stderr

    app2 = make(True)
    assert invoke(app2, "check").exit_code == ExitCode.SCHEMA_DRIFT
    ok(invoke(app2, "migrate", "-m", "email"))
    ok(invoke(app2, "upgrade"))
    assert columns(url, "employee") == {"id", "email"}
    assert len(version_rows(url)) == 1
    ok(invoke(app2, "downgrade"))
    assert columns(url, "employee") == {"id"}
    ok(invoke(app2, "downgrade", "base"))
    assert table_names(url) == {"alembic_version"}
    assert version_rows(url) == []


def test_plain_sqlalchemy_url(
    new_app: t.Callable[[], Flask], database_url: str
) -> None:
    def make(email: bool) -> Flask:
        app = new_app()
        Migrate(app, SQLAlchemyDatabases(database_url, employee_metadata(email)))
        return app

    run_single_flow(make, database_url)


def test_plain_sqlalchemy_engine_and_declarative_base(
    new_app: t.Callable[[], Flask], sqlite_url: str
) -> None:
    engine = sa.create_engine(sqlite_url)

    def make(email: bool) -> Flask:
        class Base(orm.DeclarativeBase):
            pass

        class Employee(Base):
            __tablename__ = "employee"
            id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
            if email:
                email_: orm.Mapped[str | None] = orm.mapped_column(
                    "email", sa.String(80)
                )

        app = new_app()
        Migrate(app, SQLAlchemyDatabases(engine, Base))
        return app

    try:
        run_single_flow(make, sqlite_url)
    finally:
        engine.dispose()


def test_flask_sqlalchemy_lite(
    new_app: t.Callable[[], Flask], database_url: str
) -> None:
    def make(email: bool) -> Flask:
        app = new_app()
        app.config["SQLALCHEMY_ENGINES"] = {"default": database_url}
        db = LiteSQLAlchemy(app)
        Migrate(app, SQLAlchemyLiteDatabases(db, employee_metadata(email)))
        return app

    run_single_flow(make, database_url)


def run_multidb_flow(app: Flask, main_url: str, reports_url: str) -> None:
    ok(invoke(app, "init", "--multidb"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))
    assert table_names(main_url) == {"alembic_version", "employee"}
    assert table_names(reports_url) == {"alembic_version", "report"}
    ok(invoke(app, "check"))
    assert ok(invoke(app, "current")).stdout.count("(head)") == 2
    ok(invoke(app, "downgrade", "base"))
    assert table_names(main_url) == table_names(reports_url) == {"alembic_version"}


@pytest.mark.parametrize(
    "reports_backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.server)]
)
def test_plain_sqlalchemy_binds(
    new_app: t.Callable[[], Flask],
    make_database: t.Callable[[str], str],
    reports_backend: str,
) -> None:
    main_url, reports_url = make_database("sqlite"), make_database(reports_backend)
    app = new_app()
    databases = SQLAlchemyDatabases(
        main_url,
        employee_metadata(),
        binds={"reports": (reports_url, report_metadata())},
    )
    Migrate(app, databases)
    run_multidb_flow(app, main_url, reports_url)


@pytest.mark.parametrize(
    "reports_backend", ["sqlite", pytest.param("mariadb", marks=pytest.mark.server)]
)
def test_flask_sqlalchemy_lite_binds(
    new_app: t.Callable[[], Flask],
    make_database: t.Callable[[str], str],
    reports_backend: str,
) -> None:
    main_url, reports_url = make_database("sqlite"), make_database(reports_backend)
    app = new_app()
    app.config["SQLALCHEMY_ENGINES"] = {"default": main_url, "reports": reports_url}
    db = LiteSQLAlchemy(app)
    databases = SQLAlchemyLiteDatabases(
        db, employee_metadata(), binds={"reports": report_metadata()}
    )
    Migrate(app, databases)
    run_multidb_flow(app, main_url, reports_url)


# -- the adapters themselves ---------------------------------------------------


def test_engines_from_urls_are_created_lazily_once_per_app(
    new_app: t.Callable[[], Flask], tmp_path: Path
) -> None:
    databases = SQLAlchemyDatabases(
        f"sqlite:///{tmp_path / 'a.db'}",
        employee_metadata(),
        binds={"reports": (f"sqlite:///{tmp_path / 'b.db'}", report_metadata())},
        engine_options={"echo": False},
    )
    app1, app2 = new_app(), new_app()
    Migrate(app1, databases)
    Migrate(app2, databases)
    assert not os.path.exists(tmp_path / "a.db")
    with app1.app_context():
        engine = databases.engine
        assert databases.engine is engine is databases.engines[None]
        assert databases.get_engine("") is engine
        assert databases.get_engine("reports") is databases.engines["reports"]
        assert databases.bind_names() == ["reports"]
        assert set(databases.metadatas) == {None, "reports"}
        assert databases.metadata is databases.metadatas[None]
    with app2.app_context():
        assert databases.engine is not engine
        assert databases.engine.url == engine.url
    assert "binds=['reports']" in repr(databases)


def test_adapter_argument_errors() -> None:
    with pytest.raises(TypeError, match="metadata must be a sqlalchemy.MetaData"):
        SQLAlchemyDatabases("sqlite://", object())
    with pytest.raises(TypeError, match=r"binds\['x'\] must be an"):
        SQLAlchemyDatabases("sqlite://", sa.MetaData(), binds={"x": "sqlite://"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="non-empty strings"):
        SQLAlchemyDatabases(
            "sqlite://", sa.MetaData(), binds={"": ("sqlite://", sa.MetaData())}
        )
    with pytest.raises(TypeError, match="'default' is the default engine"):
        SQLAlchemyLiteDatabases(None, sa.MetaData(), binds={"default": sa.MetaData()})


def test_unknown_bind(new_app: t.Callable[[], Flask]) -> None:
    databases = SQLAlchemyDatabases("sqlite://", sa.MetaData())
    app = new_app()
    Migrate(app, databases)
    with app.app_context(), pytest.raises(DatabaseNotConfiguredError) as error:
        databases.get_engine("nosuch")
    assert str(error.value) == (
        "Database not configured: no bind 'nosuch' (binds: none)."
    )


def test_flask_sqlalchemy_lite_engine_missing(
    new_app: t.Callable[[], Flask], sqlite_url: str, tmp_path: Path
) -> None:
    app = new_app()
    app.config["SQLALCHEMY_ENGINES"] = {"default": sqlite_url}
    db = LiteSQLAlchemy(app)
    databases = SQLAlchemyLiteDatabases(
        db, employee_metadata(), binds={"reports": report_metadata()}
    )
    Migrate(app, databases)
    ok(invoke(app, "init", "--multidb"))
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.ERROR
    assert result.stderr.splitlines() == [
        "Error: Database not configured: Flask-SQLAlchemy-Lite has no engine"
        " 'reports' in SQLALCHEMY_ENGINES (configured: 'default')."
    ]
    assert table_names(sqlite_url) == set()


def test_migrate_options_still_reach_alembic(
    new_app: t.Callable[[], Flask], sqlite_url: str
) -> None:
    app = new_app()
    databases = SQLAlchemyDatabases(sqlite_url, employee_metadata())
    Migrate(app, databases, version_table="my_versions")
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))
    assert table_names(sqlite_url) == {"my_versions", "employee"}
