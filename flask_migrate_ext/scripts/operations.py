"""What a revision's ``upgrade()`` or ``downgrade()`` does to the schema, found
without touching a database.

The function runs with ``op`` recording (:mod:`.recorder`); its operations
are read as schema changes. Operations written as raw SQL
(``op.execute("CREATE TABLE ...")``) are not understood.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing as t

import sqlalchemy as sa

from .recorder import record

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
    :raises RecordingFailed: The function could not run to its end offline.
    """
    fn = getattr(script.module, action)
    kwargs = {}
    if "engine_name" in inspect.signature(fn).parameters:
        kwargs["engine_name"] = database
    recording = record(fn, script.path, dialect.name, kwargs=kwargs)
    if recording.stopped is not None:
        raise RecordingFailed(recording.stopped)
    changes = [_change(recorded.operation) for recorded in recording.ops]
    return [change for change in changes if change is not None]


class RecordingFailed(Exception):
    """A revision function stopped when run offline (the message says why)."""


def _change(op: t.Any) -> Change | None:
    from alembic.operations import ops

    if isinstance(op, ops.CreateTableOp):
        return Change("create_table", op.table_name, op.schema)
    if isinstance(op, ops.DropTableOp):
        return Change("drop_table", op.table_name, op.schema)
    if isinstance(op, ops.RenameTableOp):
        return Change(
            "rename_table", op.table_name, op.schema, op.table_name, op.new_table_name
        )
    if isinstance(op, ops.AddColumnOp):
        return Change("add_column", op.table_name, op.schema, op.column.name)
    if isinstance(op, ops.DropColumnOp):
        return Change("drop_column", op.table_name, op.schema, op.column_name)
    if isinstance(op, ops.AlterColumnOp) and op.modify_name:
        return Change(
            "rename_column", op.table_name, op.schema, op.column_name, op.modify_name
        )
    if isinstance(op, ops.CreateIndexOp):
        return Change("create_index", op.table_name, op.schema, op.index_name)
    if isinstance(op, ops.DropIndexOp):
        if op.table_name is None:
            return None
        return Change("drop_index", op.table_name, op.schema, op.index_name)
    return None
