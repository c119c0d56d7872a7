"""What a revision's ``upgrade()`` or ``downgrade()`` does to the schema, found
without touching a database.

The function runs against Alembic in offline (``--sql``) mode, where every
operation is rendered to a buffer instead of executed; the DDL constructs
passing through are recorded on the way. Operations written as raw SQL
(``op.execute("CREATE TABLE ...")``) are not understood, and a function that
reads the database (``op.get_bind()``) cannot run offline at all.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import logging
import typing as t

import sqlalchemy as sa

if t.TYPE_CHECKING:
    from alembic.script import Script

ChangeKind = t.Literal[
    "create_table",
    "drop_table",
    "rename_table",
    "add_column",
    "drop_column",
    "rename_column",
    "create_index",
    "drop_index",
]


@dataclasses.dataclass(frozen=True)
class Change:
    """One schema change a revision makes."""

    kind: ChangeKind
    table: str
    schema: str | None = None
    #: The column or index; for a rename, the old name.
    name: str | None = None
    #: For a rename, the new name.
    new_name: str | None = None


def planned_changes(
    script: Script, action: str, dialect: sa.Dialect, database: str = ""
) -> list[Change]:
    """The schema changes ``script``'s ``upgrade()`` or ``downgrade()`` makes.

    :param database: The bind it runs for: multi-database templates pass it
        to the function as ``engine_name``.
    :raises Exception: Whatever the function raised when run offline.
    """
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    # Alembic's "Context impl ..." lines would read as if a migration ran.
    logger = logging.getLogger("alembic.runtime.migration")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        context = MigrationContext.configure(
            dialect=dialect, opts={"as_sql": True, "output_buffer": io.StringIO()}
        )
    finally:
        logger.setLevel(level)
    changes: list[Change] = []
    impl = context.impl
    render = impl._exec

    def record(construct: t.Any, *args: t.Any, **kw: t.Any) -> t.Any:
        change = _change(construct)
        if change is not None:
            changes.append(change)
        return render(construct, *args, **kw)

    impl._exec = record  # type: ignore[method-assign]
    fn = getattr(script.module, action)
    kwargs = {}
    if "engine_name" in inspect.signature(fn).parameters:
        kwargs["engine_name"] = database
    with Operations.context(context):
        fn(**kwargs)
    return changes


def _change(construct: t.Any) -> Change | None:
    from alembic.ddl import base

    if isinstance(construct, (sa.schema.CreateTable, sa.schema.DropTable)):
        table = construct.element
        kind: ChangeKind = (
            "create_table"
            if isinstance(construct, sa.schema.CreateTable)
            else "drop_table"
        )
        return Change(kind, table.name, table.schema)
    if isinstance(construct, (sa.schema.CreateIndex, sa.schema.DropIndex)):
        index = construct.element
        if index.table is None:
            return None
        kind = (
            "create_index"
            if isinstance(construct, sa.schema.CreateIndex)
            else "drop_index"
        )
        return Change(kind, index.table.name, index.table.schema, index.name)
    if isinstance(construct, base.RenameTable):
        return Change(
            "rename_table",
            construct.table_name,
            construct.schema,
            construct.table_name,
            construct.new_table_name,
        )
    if isinstance(construct, (base.AddColumn, base.DropColumn)):
        kind = "add_column" if isinstance(construct, base.AddColumn) else "drop_column"
        return Change(
            kind, construct.table_name, construct.schema, construct.column.name
        )
    if isinstance(construct, base.ColumnName):
        return Change(
            "rename_column",
            construct.table_name,
            construct.schema,
            construct.column_name,
            construct.newname,
        )
    return None
