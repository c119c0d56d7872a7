"""What ``migrate`` explains: no models, tables made by ``create_all``, the
comparison table by table (``--verbose``), unnamed constraints."""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import Migrate
from flask_migrate_ext.autogenerate.diagnostics import NO_MODELS
from helpers import AppFactory
from helpers import invoke

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


@pytest.fixture
def make_plain_app(tmp_path: Path) -> t.Iterator[t.Callable[..., Flask]]:
    """An app whose models the test defines on the ``db`` it is given."""
    made: list[tuple[Flask, SQLAlchemy]] = []

    def factory(
        url: str,
        models: t.Callable[[SQLAlchemy], None] = lambda db: None,
        metadata: sa.MetaData | None = None,
    ) -> Flask:
        app = Flask("plainapp", root_path=os.fspath(tmp_path))
        app.config["SQLALCHEMY_DATABASE_URI"] = url
        db = SQLAlchemy(app, metadata=metadata)
        models(db)
        Migrate(app, db)
        made.append((app, db))
        return app

    yield factory
    for app, db in made:
        with app.app_context():
            db.engine.dispose()


def _revisions(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "migrations" / "versions").glob("*.py"))


def _ok(app: Flask, *args: str) -> t.Any:
    result = invoke(app, *args)
    assert result.exit_code == 0, result.output
    return result


def test_empty_metadata_is_explained(
    make_plain_app: t.Callable[..., Flask], sqlite_url: str, tmp_path: Path
) -> None:
    app = make_plain_app(sqlite_url)
    _ok(app, "init")
    result = _ok(app, "migrate", "-m", "initial")
    assert NO_MODELS in result.stderr
    result = _ok(app, "revision", "--autogenerate", "-m", "initial")
    assert NO_MODELS in result.stderr
    assert _revisions(tmp_path) == []


def test_tables_made_by_create_all_are_explained(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    app = make_app(database_url)
    with app.app_context():
        app.extensions["sqlalchemy"].create_all()
    _ok(app, "init")
    result = _ok(app, "migrate", "-m", "initial")
    assert "The database already has all 1 tables of the models" in result.stderr
    assert "db.create_all()" in result.stderr
    assert "'flask db stamp head'" in result.stderr
    assert _revisions(tmp_path) == []


def test_nothing_to_do_lists_the_tables_compared(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url)
    for args in (["init"], ["migrate", "-m", "initial"], ["upgrade"]):
        result = _ok(app, *args)
    assert "match the database" not in result.stderr
    result = _ok(app, "migrate", "-m", "nothing")
    assert "The models' 1 table (employee) match the database." in result.stderr
    assert NO_MODELS not in result.stderr
    assert "create_all" not in result.stderr


def test_verbose_compares_table_by_table(
    make_plain_app: t.Callable[..., Flask], database_url: str
) -> None:
    def models(with_email: bool) -> t.Callable[[SQLAlchemy], None]:
        def define(db: SQLAlchemy) -> None:
            columns: dict[str, t.Any] = {"id": sa.Column(sa.Integer, primary_key=True)}
            if with_email:
                columns["email"] = sa.Column(sa.String(80))
            type("Employee", (db.Model,), {"__tablename__": "employee", **columns})
            type(
                "Department",
                (db.Model,),
                {
                    "__tablename__": "department",
                    "id": sa.Column(sa.Integer, primary_key=True),
                },
            )

        return define

    app = make_plain_app(database_url, models(False))
    _ok(app, "init")
    result = _ok(app, "migrate", "-m", "initial", "--verbose")
    assert "Compared 2 tables:\n  + table department\n  + table employee\n" in (
        result.stderr
    )
    _ok(app, "upgrade")

    app = make_plain_app(database_url, models(True))
    result = _ok(app, "migrate", "-v", "-m", "email")
    assert (
        "Compared 2 tables:\n  department: in sync\n"
        "  + column employee.email VARCHAR(80)\n"
    ) in result.stderr
    _ok(app, "upgrade")
    result = _ok(app, "migrate", "-v", "-m", "nothing")
    assert (
        "Compared 2 tables:\n  department: in sync\n  employee: in sync\n"
    ) in result.stderr
    # Without --verbose, no table-by-table lines.
    assert "in sync" not in _ok(app, "migrate", "-m", "nothing").stderr


def test_missing_models_dropping_every_table_are_flagged(
    make_app: AppFactory,
    make_plain_app: t.Callable[..., Flask],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    app = make_app(sqlite_url)
    for args in (["init"], ["migrate", "-m", "initial"], ["upgrade"]):
        _ok(app, *args)
    result = _ok(make_plain_app(sqlite_url), "migrate", "-m", "oops")
    assert "so this revision drops every table of the database" in result.stderr
    assert len(_revisions(tmp_path)) == 2


UNNAMED_WARNING = "Warning: this revision adds or drops unnamed constraints"

# Alembic 1.16+ warns too, in general terms, when it renders the drop.
ignore_alembic_warning = pytest.mark.filterwarnings(
    "ignore:Autogenerate rendered a drop_constraint:UserWarning"
)


@ignore_alembic_warning
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_unnamed_unique_constraint_is_flagged(
    make_app: AppFactory, database_url: str, backend: str
) -> None:
    app = make_app(database_url, columns={"email": sa.Column(sa.String(80))})
    for args in (["init"], ["migrate", "-m", "initial"], ["upgrade"]):
        result = _ok(app, *args)
        assert UNNAMED_WARNING not in result.stderr

    app = make_app(
        database_url, columns={"email": sa.Column(sa.String(80), unique=True)}
    )
    result = _ok(app, "migrate", "-m", "unique email")
    assert f"{UNNAMED_WARNING} (unique constraint on employee (email))" in (
        result.stderr
    )
    assert '"uq": "uq_%(table_name)s_%(column_0_name)s"' in result.stderr
    # The warning is true.
    if backend == "sqlite":
        assert "the revision fails with 'Constraint must have a name'" in result.stderr
        result = invoke(app, "upgrade")
        assert result.exit_code == 1
        assert "Constraint must have a name" in result.stderr
    else:
        assert "the revision's downgrade cannot drop them" in result.stderr
        _ok(app, "upgrade")
        result = invoke(app, "downgrade")
        assert result.exit_code == 1
        assert "it has no name" in result.stderr


@ignore_alembic_warning
def test_unnamed_foreign_key_is_flagged_on_sqlite(
    make_plain_app: t.Callable[..., Flask], sqlite_url: str
) -> None:
    def models(with_fk: bool) -> t.Callable[[SQLAlchemy], None]:
        def define(db: SQLAlchemy) -> None:
            type(
                "Department",
                (db.Model,),
                {
                    "__tablename__": "department",
                    "id": sa.Column(sa.Integer, primary_key=True),
                },
            )
            column = (
                sa.Column(sa.Integer, sa.ForeignKey("department.id"))
                if with_fk
                else sa.Column(sa.Integer)
            )
            type(
                "Employee",
                (db.Model,),
                {
                    "__tablename__": "employee",
                    "id": sa.Column(sa.Integer, primary_key=True),
                    "department_id": column,
                },
            )

        return define

    app = make_plain_app(sqlite_url, models(False))
    for args in (["init"], ["migrate", "-m", "initial"], ["upgrade"]):
        _ok(app, *args)
    result = _ok(make_plain_app(sqlite_url, models(True)), "migrate", "-m", "fk")
    assert (
        f"{UNNAMED_WARNING} (foreign key on employee (department_id))" in result.stderr
    )


def test_naming_convention_silences_the_warning(
    make_plain_app: t.Callable[..., Flask], sqlite_url: str, tmp_path: Path
) -> None:
    def models(unique: bool) -> t.Callable[[SQLAlchemy], None]:
        def define(db: SQLAlchemy) -> None:
            type(
                "Employee",
                (db.Model,),
                {
                    "__tablename__": "employee",
                    "id": sa.Column(sa.Integer, primary_key=True),
                    "email": sa.Column(sa.String(80), unique=unique),
                },
            )

        return define

    def metadata() -> sa.MetaData:
        return sa.MetaData(naming_convention=NAMING_CONVENTION)

    app = make_plain_app(sqlite_url, models(False), metadata())
    for args in (["init"], ["migrate", "-m", "initial"], ["upgrade"]):
        _ok(app, *args)
    app = make_plain_app(sqlite_url, models(True), metadata())
    result = _ok(app, "migrate", "-m", "unique email")
    assert UNNAMED_WARNING not in result.stderr
    assert any("uq_employee_email" in p.read_text() for p in _revisions(tmp_path))
    for args in (["upgrade"], ["downgrade"]):
        _ok(app, *args)
