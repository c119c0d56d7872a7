"""The data-loss guard: a run that drops tables or columns holding rows lists
them; a downgrade (or an upgrade with MIGRATE_DATA_LOSS_GUARD = "confirm")
needs confirming."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_ext import api
from flask_migrate_ext.errors import DataLossRefusedError
from flask_migrate_ext.errors import ExitCode
from helpers import AppFactory
from helpers import invoke
from helpers import ok
from helpers import table_names
from helpers import write_revision

CREATE = """
op.create_table("employee", sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("name", sa.String(50)))
"""
DROP_COLUMN = """
with op.batch_alter_table("employee") as batch_op:
    batch_op.drop_column("name")
"""
ADD_COLUMN = """
op.add_column("employee", sa.Column("name", sa.String(50)))
"""


def _app(make_app: AppFactory, url: str, tmp_path: Path, **config: object) -> Flask:
    """An app at r2: r1 creates ``employee``, r2 drops its ``name`` column;
    the table holds two rows."""
    app = make_app(url)
    app.config.update(config)
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, "r1", None, CREATE, 'op.drop_table("employee")')
    ok(invoke(app, "upgrade", "r1"))
    _insert(url, 2)
    write_revision(versions, "r2", "r1", DROP_COLUMN, ADD_COLUMN)
    return app


def _insert(url: str, rows: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for number in range(rows):
            connection.execute(
                sa.text("INSERT INTO employee (name) VALUES (:n)"), {"n": f"n{number}"}
            )
    engine.dispose()


def _columns(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns("employee")}
    finally:
        engine.dispose()


def test_downgrade_dropping_rows_is_refused_without_yes(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    app = _app(make_app, database_url, tmp_path)
    result = invoke(app, "downgrade", "base")
    assert result.exit_code == ExitCode.DATA_LOSS_REFUSED == 11, result.output
    assert "This downgrade drops data:\n  table employee (2 rows), revision r1" in (
        result.stderr
    )
    assert "'flask db downgrade --yes'" in result.stderr
    assert "employee" in table_names(database_url)  # nothing dropped
    ok(invoke(app, "downgrade", "base", "--yes"))
    assert "employee" not in table_names(database_url)


def test_downgrade_of_an_empty_table_passes_silently(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    app = _app(make_app, database_url, tmp_path)
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM employee"))
    engine.dispose()
    result = ok(invoke(app, "downgrade", "base"))
    assert "drops data" not in result.stderr
    assert "employee" not in table_names(database_url)


def test_upgrade_lists_and_goes_on_by_default(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    app = _app(make_app, database_url, tmp_path)
    result = ok(invoke(app, "upgrade"))
    assert (
        "This upgrade drops data:\n  column employee.name (2 values), revision r2\n"
        "Going on (MIGRATE_DATA_LOSS_GUARD is 'warn')." in result.stderr
    )
    assert "name" not in _columns(database_url)


def test_upgrade_with_confirm_setting_is_refused_without_yes(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    app = _app(make_app, database_url, tmp_path, MIGRATE_DATA_LOSS_GUARD="confirm")
    result = invoke(app, "upgrade")
    assert result.exit_code == 11, result.output
    assert "column employee.name (2 values), revision r2" in result.stderr
    assert "MIGRATE_DATA_LOSS_GUARD = 'confirm'" in result.stderr
    assert "name" in _columns(database_url)
    ok(invoke(app, "upgrade", "-y"))
    assert "name" not in _columns(database_url)


def test_off_checks_nothing(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = _app(make_app, sqlite_url, tmp_path, MIGRATE_DATA_LOSS_GUARD="off")
    result = ok(invoke(app, "upgrade"))
    assert "drops data" not in result.stderr
    ok(invoke(app, "downgrade", "base"))
    assert "employee" not in table_names(sqlite_url)


def test_api_confirm_callable_and_error(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = _app(make_app, sqlite_url, tmp_path)
    asked = []
    with app.app_context():
        with pytest.raises(DataLossRefusedError) as refused:
            api.downgrade(revision="base", confirm_data_loss=asked.append)
        assert [loss.describe() for loss in refused.value.losses] == [
            "table employee (2 rows), revision r1"
        ]
        assert [[loss.rows for loss in losses] for losses in asked] == [[2]]
        api.downgrade(revision="base", confirm_data_loss=lambda losses: True)
    assert "employee" not in table_names(sqlite_url)


def test_bad_setting_is_refused(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = _app(make_app, sqlite_url, tmp_path)
    app.config["MIGRATE_DATA_LOSS_GUARD"] = "ask"
    result = invoke(app, "upgrade")
    assert result.exit_code == 2
    assert "MIGRATE_DATA_LOSS_GUARD must be 'warn', 'confirm' or 'off'" in result.stderr
    assert "name" in _columns(sqlite_url)


def test_sql_mode_is_not_guarded(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = _app(make_app, sqlite_url, tmp_path)
    result = ok(invoke(app, "downgrade", "--sql", "r1:base"))
    assert "DROP TABLE employee" in result.stdout
    assert "drops data" not in result.stderr
    assert "employee" in table_names(sqlite_url)


def test_revision_code_is_read_not_run(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    """The guard reads what a revision drops from its source: a revision's
    side effects (a file written, a service called) happen once, when it
    runs. A drop whose table is not a plain string is said to be unchecked."""
    app = _app(make_app, sqlite_url, tmp_path)
    ok(invoke(app, "upgrade"))
    calls = tmp_path / "calls.txt"
    write_revision(
        tmp_path / "migrations" / "versions",
        "r3",
        "r2",
        f"with open({str(calls)!r}, 'a') as f:\n    f.write('up\\n')",
        f"with open({str(calls)!r}, 'a') as f:\n    f.write('down\\n')\n"
        "name = 'employee'\n"
        "op.drop_table(name)",
    )
    ok(invoke(app, "upgrade"))
    assert calls.read_text() == "up\n"
    result = ok(invoke(app, "downgrade", "r2"))
    assert calls.read_text() == "up\ndown\n"
    assert "Could not tell what revision r3 drops at line" in result.stderr
    assert "not checked for data loss" in result.stderr
