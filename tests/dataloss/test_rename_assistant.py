"""The rename assistant of ``migrate``: a dropped and an added column (or
table) written as a rename, asked about or named with ``--rename``."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_ext import api
from flask_migrate_ext.autogenerate.assistants import ColumnRename
from helpers import AppFactory
from helpers import invoke
from helpers import ok
from helpers import table_names


def _newest(tmp_path: Path) -> str:
    files = sorted(
        (tmp_path / "migrations" / "versions").glob("*.py"),
        key=lambda p: p.stat().st_mtime_ns,
    )
    return files[-1].read_text()


def _revision_count(tmp_path: Path) -> int:
    return len(list((tmp_path / "migrations" / "versions").glob("*.py")))


def _start(make_app: AppFactory, url: str, rows: int = 2) -> None:
    """An upgraded database with ``employee(id, name)`` holding ``rows`` rows."""
    app = make_app(url)
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for number in range(rows):
            connection.execute(
                sa.text("INSERT INTO employee (name) VALUES (:name)"),
                {"name": f"n{number}"},
            )
    engine.dispose()


def _values(url: str, column: str, table: str = "employee") -> list[t.Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            query = f"SELECT {column} FROM {table} ORDER BY id"
            return list(connection.execute(sa.text(query)).scalars())
    finally:
        engine.dispose()


def _renamed_app(make_app: AppFactory, url: str) -> Flask:
    return make_app(url, columns={"full_name": sa.Column(sa.String(80))})


def test_rename_option_keeps_the_data_both_ways(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    _start(make_app, database_url)
    app = _renamed_app(make_app, database_url)
    ok(invoke(app, "migrate", "-m", "rename", "--rename", "employee.name:full_name"))
    text = _newest(tmp_path)
    assert "new_column_name='full_name'" in text
    assert "new_column_name='name'" in text  # the downgrade renames back
    assert "drop_column" not in text and "add_column" not in text
    ok(invoke(app, "upgrade"))
    assert _values(database_url, "full_name") == ["n0", "n1"]
    ok(invoke(app, "downgrade", "--yes"))
    assert _values(database_url, "name") == ["n0", "n1"]


def test_without_terminal_or_option_drop_and_add_with_a_warning(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    _start(make_app, sqlite_url)
    result = ok(invoke(_renamed_app(make_app, sqlite_url), "migrate", "-m", "x"))
    assert (
        "Warning: column employee.name is dropped and employee.full_name added:"
        " written as drop + add, which loses the data." in result.stderr
    )
    assert "--rename employee.name:full_name" in result.stderr
    text = _newest(tmp_path)
    assert "drop_column('name')" in text and "add_column" in text


def test_ask_callable_decides_and_sees_every_pair(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    _start(make_app, sqlite_url)
    columns = {
        "full_name": sa.Column(sa.String(80)),
        "nickname": sa.Column(sa.Text()),
        "age": sa.Column(sa.Integer()),
    }
    app = make_app(sqlite_url, columns=columns)
    asked: list[t.Any] = []

    def ask(question: t.Any) -> bool:
        asked.append(question)
        return question == ColumnRename("employee", "name", "nickname")

    with app.app_context():
        api.migrate(message="rename", ask=ask)
    # Only the string columns are candidates (not the integer), in turn.
    assert [q.question for q in asked] == [
        "Was employee.name renamed to employee.full_name?",
        "Was employee.name renamed to employee.nickname?",
    ]
    text = _newest(tmp_path)
    assert "batch_op.alter_column('name'" in text
    assert "new_column_name='nickname'" in text
    assert "type_=sa.Text()" in text
    assert "add_column(sa.Column('full_name'" in text
    with app.app_context():
        api.upgrade()
    assert _values(sqlite_url, "nickname") == ["n0", "n1"]


def test_table_rename_option(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    _start(make_app, database_url)
    columns = {"__tablename__": "staff", "name": sa.Column(sa.String(50))}
    app = make_app(database_url, columns=columns)
    ok(invoke(app, "migrate", "-m", "rename", "--rename-table", "employee:staff"))
    text = _newest(tmp_path)
    assert "op.rename_table('employee', 'staff')" in text
    assert "op.rename_table('staff', 'employee')" in text
    assert "drop_table" not in text and "create_table" not in text
    ok(invoke(app, "upgrade"))
    assert _values(database_url, "name", table="staff") == ["n0", "n1"]
    ok(invoke(app, "downgrade", "--yes"))
    assert "employee" in table_names(database_url)
    assert _values(database_url, "name") == ["n0", "n1"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            ["--rename", "employee.nope:full_name"],
            "--rename employee.nope:full_name: no such change in this revision",
        ),
        (
            ["--rename-table", "employee:staff"],
            "--rename-table employee:staff: no such change in this revision",
        ),
        (["--rename", "employee"], "write it as table.old_column:new_column"),
        (["--default", "employee.x"], "write it as table.column=SQL_VALUE"),
        (
            ["--default", "employee.name=1"],
            "--default employee.name=1: no such change",
        ),
    ],
)
def test_a_request_matching_nothing_writes_nothing(
    make_app: AppFactory,
    sqlite_url: str,
    tmp_path: Path,
    option: list[str],
    message: str,
) -> None:
    _start(make_app, sqlite_url)
    result = invoke(_renamed_app(make_app, sqlite_url), "migrate", "-m", "x", *option)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert _revision_count(tmp_path) == 1
