"""Batched reflection gives autogenerate the same data as Alembic's own path.

Each test compares the same models with the same database twice: once the
way Alembic does it alone, once with the batches of
:mod:`flask_migrate_ext.autogenerate.reflection` (which serve only while an
API function runs), and expects the same operations, rendered as Alembic
renders them. Statement counts prove the batched path was taken.
"""

from __future__ import annotations

import contextlib
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.autogenerate import render_python_code
from alembic.runtime.migration import MigrationContext

from flask_migrate_ext.autogenerate import reflection
from flask_migrate_ext.state import running
from helpers import AppFactory
from helpers import invoke
from helpers import ok

reflection.install()


def _old_metadata(backend: str) -> sa.MetaData:
    """The tables as they are in the database."""
    m = sa.MetaData()
    comments = backend != "sqlite"
    sa.Table(
        "parent",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("code", sa.String(10)),
        sa.Column("kind", sa.String(10), comment="old kind" if comments else None),
        sa.UniqueConstraint("code", name="uq_parent_code"),
        comment="parents" if comments else None,
    )
    sa.Table(
        "other",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "big", sa.BigInteger, sa.Identity() if backend == "postgresql" else None
        ),
    )
    sa.Table(
        "child",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id")),
        sa.Column("other_id", sa.Integer),
        sa.Column("amount", sa.Numeric(10, 2)),
        sa.Column("label", sa.String(20), server_default="x"),
        sa.Column("note", sa.String(100)),
        sa.Column("old_col", sa.Integer),
        sa.Index("ix_child_note", "note"),
    )
    sa.Table(
        "same",
        m,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id"), index=True),
        sa.Column("flag", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created", sa.DateTime, server_default=sa.func.current_timestamp()),
        sa.Column("ref", sa.String(30), unique=True),
        sa.Index("ix_same_flag_created", "flag", "created"),
    )
    return m


def _new_metadata(backend: str) -> sa.MetaData:
    """The models: every kind of change autogenerate compares."""
    m = sa.MetaData()
    comments = backend != "sqlite"
    sa.Table(
        "parent",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=True),  # nullability
        sa.Column("code", sa.String(10)),
        sa.Column("kind", sa.String(10), comment="new kind" if comments else None),
        sa.Column("extra", sa.String(5)),  # column added
        sa.UniqueConstraint("kind", name="uq_parent_kind"),  # unique changed
        comment="all parents" if comments else None,  # table comment
    )
    sa.Table(
        "other",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "big", sa.BigInteger, sa.Identity() if backend == "postgresql" else None
        ),
    )
    sa.Table(
        "child",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id")),
        sa.Column(
            "other_id", sa.Integer, sa.ForeignKey("other.id", name="fk_child_other")
        ),  # FK added
        sa.Column("amount", sa.Numeric(12, 2)),  # type
        sa.Column("label", sa.String(20), server_default="y"),  # server default
        sa.Column("note", sa.String(100)),
        # old_col removed; ix_child_note removed, ix_child_amount added
        sa.Index("ix_child_amount", "amount"),
    )
    sa.Table(
        "same",
        m,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id"), index=True),
        sa.Column("flag", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created", sa.DateTime, server_default=sa.func.current_timestamp()),
        sa.Column("ref", sa.String(30), unique=True),
        sa.Index("ix_same_flag_created", "flag", "created"),
    )
    sa.Table("added", m, sa.Column("id", sa.Integer, primary_key=True))
    return m


def _by_hand(conn: sa.Connection) -> None:
    """A table made in the database by hand, not in the models."""
    conn.execute(sa.text("CREATE TABLE by_hand (id INTEGER PRIMARY KEY, x VARCHAR(5))"))


class Run(t.NamedTuple):
    code: str
    statements: list[str]


def _compare(
    conn: sa.Connection,
    metadata: sa.MetaData,
    batched: bool,
    **opts: t.Any,
) -> Run:
    """Autogenerate against ``conn``; the rendered upgrade and downgrade."""
    statements: list[str] = []

    def record(*args: t.Any) -> None:
        statements.append(args[2])

    sa.event.listen(conn, "before_cursor_execute", record)
    scope = running(active=True) if batched else contextlib.nullcontext()
    try:
        with scope:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "target_metadata": metadata,
                    **opts,
                },
            )
            script = produce_migrations(context, metadata)
    finally:
        sa.event.remove(conn, "before_cursor_execute", record)
    code = render_python_code(script.upgrade_ops) + render_python_code(
        script.downgrade_ops
    )
    return Run(code, statements)


def _setup(url: str, backend: str) -> sa.Engine:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _old_metadata(backend).create_all(conn)
        _by_hand(conn)
    return engine


def _per_table_queries(backend: str, statements: list[str]) -> int:
    """Statements Alembic/SQLAlchemy run once per table or column."""
    if backend == "postgresql":
        return sum("cast(%(seqname)s as regclass)" in s for s in statements)
    if backend == "sqlite":
        return sum(s.startswith("PRAGMA") or "WHERE name = ?" in s for s in statements)
    return 0


def test_same_operations_for_every_kind_of_change(
    database_url: str, backend: str
) -> None:
    engine = _setup(database_url, backend)
    metadata = _new_metadata(backend)
    with engine.connect() as conn:
        plain = _compare(conn, metadata, batched=False)
        batched = _compare(conn, metadata, batched=True)
    engine.dispose()
    assert batched.code == plain.code
    for expected in (
        "op.add_column('parent', sa.Column('extra'",
        "op.drop_column('child', 'old_col')",
        "type_=sa.Numeric(precision=12, scale=2)",
        "nullable=True",
        "server_default='y'",
        "op.create_index('ix_child_amount'",
        "op.drop_index(op.f('ix_child_note')",
        "op.create_unique_constraint('uq_parent_kind'",
        "'uq_parent_code'",
        "op.create_foreign_key('fk_child_other', 'child', 'other'",
        "op.drop_table('by_hand')",
        "op.create_table('added'",
    ):
        assert expected in plain.code
    if backend != "sqlite":
        assert "op.create_table_comment(" in plain.code
        assert "comment='new kind'" in plain.code
    # The batched run took its shortcut: far fewer per-table statements.
    if backend != "mariadb":
        assert _per_table_queries(backend, plain.statements) >= 3
        assert _per_table_queries(backend, batched.statements) == 0
    # Nothing differs when the models are the database.
    with engine.connect() as conn:
        assert _compare(conn, _old_metadata(backend), batched=True).code == (
            _compare(conn, _old_metadata(backend), batched=False).code
        )
    engine.dispose()


def test_same_operations_with_filters(database_url: str, backend: str) -> None:
    engine = _setup(database_url, backend)
    metadata = _new_metadata(backend)

    def include_name(name: str | None, type_: str, parents: t.Any) -> bool:
        return not (type_ == "table" and name == "by_hand") and name != "old_col"

    def include_object(obj: t.Any, name: str | None, type_: str, *args: t.Any) -> bool:
        return not (type_ == "index" and name == "ix_child_note") and name != "parent"

    opts = {"include_name": include_name, "include_object": include_object}
    with engine.connect() as conn:
        plain = _compare(conn, metadata, batched=False, **opts)
        batched = _compare(conn, metadata, batched=True, **opts)
    engine.dispose()
    assert batched.code == plain.code
    assert "by_hand" not in plain.code and "old_col" not in plain.code
    assert "ix_child_note" not in plain.code and "uq_parent_kind" not in plain.code
    assert "ix_child_amount" in plain.code


def test_same_operations_with_schemas(make_database: t.Callable[[str], str]) -> None:
    url = make_database("postgresql")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA extra"))
        conn.execute(
            sa.text("CREATE TABLE extra.thing (id SERIAL PRIMARY KEY, n INTEGER)")
        )
        conn.execute(sa.text("CREATE TABLE extra.by_hand (id SERIAL PRIMARY KEY)"))
        _old_metadata("postgresql").create_all(conn)
    metadata = _new_metadata("postgresql")
    sa.Table(
        "thing",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n", sa.BigInteger),
        schema="extra",
    )
    with engine.connect() as conn:
        plain = _compare(conn, metadata, batched=False, include_schemas=True)
        batched = _compare(conn, metadata, batched=True, include_schemas=True)
    engine.dispose()
    assert batched.code == plain.code
    assert (
        "schema='extra'" in plain.code
        and "op.drop_table('by_hand', schema='extra')" in (plain.code)
    )
    assert "existing_type=sa.INTEGER()" in plain.code


def test_a_second_run_sees_a_change(database_url: str, backend: str) -> None:
    """The batches belong to one run: the next run on the same connection
    reads the database again."""
    engine = _setup(database_url, backend)
    metadata = _old_metadata(backend)
    with engine.connect() as conn:
        first = _compare(conn, metadata, batched=True)
        assert "by_hand" in first.code and "add_column" not in first.code
        conn.execute(sa.text("ALTER TABLE parent ADD COLUMN late INTEGER"))
        conn.execute(sa.text("CREATE TABLE by_hand_2 (id INTEGER PRIMARY KEY)"))
        second = _compare(conn, metadata, batched=True)
        assert second.code == _compare(conn, metadata, batched=False).code
        conn.rollback()
    engine.dispose()
    assert "op.drop_column('parent', 'late')" in second.code
    assert "op.drop_table('by_hand_2')" in second.code


def test_outside_a_command_alembic_is_left_alone(sqlite_url: str) -> None:
    engine = _setup(sqlite_url, "sqlite")
    with engine.connect() as conn:
        run = _compare(conn, _old_metadata("sqlite"), batched=False)
    engine.dispose()
    assert _per_table_queries("sqlite", run.statements) > 10


@pytest.mark.parametrize("command", ["check", "migrate"])
def test_commands_find_the_change(
    backend: str,
    database_url: str,
    make_app: AppFactory,
    command: str,
) -> None:
    """``check`` and ``migrate`` through the CLI, batched: a change made in
    the database by hand is found."""
    app = make_app(database_url)
    for args in (["init"], ["migrate", "-m", "one"], ["upgrade"], ["check"]):
        ok(invoke(app, *args))
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        _by_hand(conn)
    engine.dispose()
    result = invoke(app, command)
    if command == "check":
        assert result.exit_code != 0
        assert "- table by_hand" in result.output
    else:
        ok(result)
        (script,) = [
            path
            for path in Path("migrations", "versions").glob("*.py")
            if "by_hand" in path.read_text()
        ]
        assert "op.drop_table('by_hand')" in script.read_text()
