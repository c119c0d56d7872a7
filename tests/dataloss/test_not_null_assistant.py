"""The NOT NULL assistant of ``migrate``: a NOT NULL column without a default
added to an existing table, given a value, is added nullable, filled, then
set NOT NULL, so the upgrade works on a table with rows."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask_migrate_ext import api
from helpers import AppFactory
from helpers import invoke
from helpers import ok


def _name() -> dict[str, sa.Column[t.Any]]:
    return {"name": sa.Column(sa.String(50))}


def _start(make_app: AppFactory, url: str) -> None:
    app = make_app(url)
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO employee (name) VALUES ('a'), ('b')"))
    engine.dispose()


def _newest(tmp_path: Path) -> str:
    files = sorted(
        (tmp_path / "migrations" / "versions").glob("*.py"),
        key=lambda p: p.stat().st_mtime_ns,
    )
    return files[-1].read_text()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_default_option_adds_fills_and_sets_not_null(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    _start(make_app, database_url)
    columns = {**_name(), "status": sa.Column(sa.String(20), nullable=False)}
    app = make_app(database_url, columns=columns)
    ok(invoke(app, "migrate", "-m", "status", "--default", "employee.status='new'"))
    text = _newest(tmp_path)
    add = text.index(
        "add_column(sa.Column('status', sa.String(length=20), nullable=True)"
    )
    fill = text.index("op.execute(\"UPDATE employee SET status='new'\")")
    alter = text.index("alter_column('status'")
    assert add < fill < alter
    assert "nullable=False" in text[alter:]
    assert "drop_column('status')" in text  # the downgrade
    ok(invoke(app, "upgrade"))
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            values = connection.execute(sa.text("SELECT status FROM employee"))
            assert list(values.scalars()) == ["new", "new"]
        (column,) = [
            c
            for c in sa.inspect(engine).get_columns("employee")
            if c["name"] == "status"
        ]
        assert column["nullable"] is False
    finally:
        engine.dispose()
    ok(invoke(app, "downgrade", "--yes"))


def test_ask_gives_the_value_or_leaves_it(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    _start(make_app, sqlite_url)
    columns = {
        **_name(),
        "age": sa.Column(sa.Integer, nullable=False),
        "rank": sa.Column(sa.Integer, nullable=False),
    }
    app = make_app(sqlite_url, columns=columns)
    asked: list[t.Any] = []

    def ask(question: t.Any) -> str | None:
        asked.append(question.question)
        return "0" if question.column == "age" else None

    with app.app_context():
        api.migrate(message="two", ask=ask)
    assert asked == [
        "employee.age (Integer()) is added NOT NULL without a default. SQL value"
        " for the existing rows (e.g. 0 or 'unknown'; empty: leave as is)",
        "employee.rank (Integer()) is added NOT NULL without a default. SQL value"
        " for the existing rows (e.g. 0 or 'unknown'; empty: leave as is)",
    ]
    text = _newest(tmp_path)
    assert "op.execute('UPDATE employee SET age=0')" in text
    assert "sa.Column('rank', sa.Integer(), nullable=False)" in text
    assert "UPDATE employee SET rank" not in text
