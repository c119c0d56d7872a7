"""The data-loss guard's shortcuts: every count of a run in one statement,
and scripts whose compiled code names no drop are not parsed. Both must
find what parsing every script and counting one drop at a time found."""

from __future__ import annotations

import typing as t
from pathlib import Path

import sqlalchemy as sa

from helpers import AppFactory
from helpers import invoke
from helpers import ok
from helpers import write_revision

TABLES = """
op.create_table("x", sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("a", sa.Integer), sa.Column("b", sa.Integer),
                sa.Column("c", sa.Integer), sa.Column("d:e", sa.Integer))
op.create_table("y", sa.Column("id", sa.Integer, primary_key=True))
op.create_table("z", sa.Column("id", sa.Integer, primary_key=True))
"""


def _fill(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO x (a, b, c) VALUES (1, 1, NULL), (2, NULL, NULL)")
        )
        connection.execute(sa.table("x", sa.column("d:e")).update().values({"d:e": 5}))
        connection.execute(sa.text("INSERT INTO y (id) VALUES (1), (2), (3)"))
    engine.dispose()


def test_counts_of_many_drops_each_go_to_their_drop(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    """A downgrade dropping columns with 2, 1 and 0 values (one with a colon
    in its name), a table with 3 rows, an empty one and one that is not
    there: each count is its own."""
    app = make_app(database_url)
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        TABLES,
        'op.drop_table("z")\nop.drop_table("y")\nop.drop_table("x")',
    )
    write_revision(
        versions,
        "r2",
        "r1",
        "pass",
        """
        op.drop_column("x", "c")
        op.drop_column("x", "d:e")
        op.drop_column("x", "b")
        op.drop_column("x", "a")
        op.drop_column("x", "gone")
        op.drop_table("nowhere")
        """,
    )
    ok(invoke(app, "upgrade"))
    _fill(database_url)
    result = invoke(app, "downgrade", "base")
    assert result.exit_code != 0
    listed = [
        line.strip()
        for line in result.stderr.splitlines()
        if line.startswith("  ") and ", revision r" in line
    ]
    assert sorted(listed) == [
        "column x.a (2 values), revision r2",
        "column x.b (1 value), revision r2",
        "column x.d:e (2 values), revision r2",
        "table x (2 rows), revision r1",
        "table y (3 rows), revision r1",
    ]


def test_a_drop_in_a_nested_function_is_found(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    """The drop sits in a helper defined inside upgrade(): the compiled
    function's own names hold no drop, the nested code's do."""
    app = make_app(sqlite_url)
    app.config["MIGRATE_DATA_LOSS_GUARD"] = "confirm"
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, "r1", None, TABLES, 'op.drop_table("x")')
    ok(invoke(app, "upgrade"))
    _fill(sqlite_url)
    write_revision(
        versions,
        "r2",
        "r1",
        """
        def helper():
            op.drop_table("y")

        helper()
        """,
        "pass",
    )
    result = invoke(app, "upgrade")
    assert result.exit_code != 0
    assert "table y (3 rows), revision r2" in result.stderr


def test_a_table_in_another_schema_is_counted_there(
    make_app: AppFactory, make_database: t.Callable[[str], str], tmp_path: Path
) -> None:
    """PostgreSQL: ``schema.x`` holds rows, the search path's ``x`` none."""
    url = make_database("postgresql")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE SCHEMA other"))
        connection.execute(sa.text("CREATE TABLE other.x (id integer)"))
        connection.execute(sa.text("INSERT INTO other.x VALUES (1), (2)"))
        connection.execute(sa.text("CREATE TABLE x (id integer)"))
    engine.dispose()
    app = make_app(url)
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, "r1", None, "pass", 'op.drop_table("x", schema="other")')
    write_revision(versions, "r2", "r1", "pass", 'op.drop_table("x")')
    ok(invoke(app, "upgrade"))
    result = invoke(app, "downgrade", "base")
    assert result.exit_code != 0
    assert "table other.x (2 rows), revision r1" in result.stderr
    assert "revision r2" not in result.stderr
