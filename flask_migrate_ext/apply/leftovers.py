"""What a revision cut off part-way left behind: each schema change its
``upgrade()`` (or ``downgrade()``) makes, checked against the database.

The changes are found by running the revision offline
(:mod:`flask_migrate_ext.scripts.operations`), never against the database;
the database is only read, through SQLAlchemy's inspector.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from ..errors import first_line

if t.TYPE_CHECKING:
    from alembic.script import ScriptDirectory

    from ..scripts.operations import Change
    from .ledger_rows import Entry
    from .lock import LockTarget

#: Findings beyond this many are counted, not listed.
LIMIT = 8


def leftovers(
    script: ScriptDirectory, entry: Entry, engine: sa.Engine, database: str = ""
) -> list[str]:
    """One line per schema change of ``entry``'s revision: done or not.

    Says so in one line when the changes cannot be known.
    """
    # Loaded when a cut-off run is found: not by every ledger check.
    from ..scripts.operations import planned_changes
    from ..scripts.operations import RecordingFailed

    revision = entry.revision
    try:
        found = script.get_revision(revision)
    except Exception:  # an unknown or ambiguous id: the file is gone
        found = None
    if found is None:
        return [f"(no script for {revision} here: check the schema by hand)"]
    try:
        changes = planned_changes(found, entry.action, engine.dialect, database)
    except RecordingFailed as e:
        reason = first_line(e)
        return [
            f"(its {entry.action}() could not be run offline to list its"
            f" changes: {reason}; check the schema by hand)"
        ]
    if not changes:
        return [
            f"(its {entry.action}() makes no change that can be checked here:"
            " check the schema by hand)"
        ]
    with engine.connect() as connection:
        lines = _check(changes, sa.inspect(connection), revision)
    if len(lines) > LIMIT:
        lines = [*lines[:LIMIT], f"... and {len(lines) - LIMIT} more"]
    return lines


def inspector(
    script: ScriptDirectory, target: LockTarget
) -> t.Callable[[Entry], list[str]]:
    """:func:`leftovers` for the ledger's check of ``target``'s database."""
    return lambda entry: leftovers(script, entry, target.engine, target.name)


def _check(changes: t.Sequence[Change], inspector: sa.Inspector, rev: str) -> list[str]:
    created = {(c.table, c.schema) for c in changes if c.kind == "create_table"}
    lines = []
    for change in changes:
        if change.kind != "create_table" and (change.table, change.schema) in created:
            continue  # its columns and indexes come with the table
        lines.append(_finding(change, inspector, rev))
    return lines


def _finding(change: Change, inspector: sa.Inspector, rev: str) -> str:
    table, schema, name = change.table, change.schema, change.name
    exists = inspector.has_table(table, schema=schema)
    if change.kind == "create_table":
        if exists:
            return f"table {table!r} exists (created by {rev})"
        return f"table {table!r} missing (not created yet)"
    if change.kind == "drop_table":
        if exists:
            return f"table {table!r} still exists (dropped by {rev})"
        return f"table {table!r} dropped"
    if change.kind == "rename_table":
        if inspector.has_table(change.new_name or "", schema=schema):
            return f"table {table!r} renamed to {change.new_name!r}"
        return f"table {table!r} not renamed to {change.new_name!r} yet"
    if not exists:
        return f"table {table!r} missing ({rev} changes it)"
    if change.kind in ("add_column", "drop_column", "rename_column"):
        columns = {c["name"] for c in inspector.get_columns(table, schema=schema)}
        if change.kind == "rename_column":
            if change.new_name in columns:
                return f"column {name!r} of {table!r} renamed to {change.new_name!r}"
            return f"column {name!r} of {table!r} not renamed yet"
        there = name in columns
        return _column_or_index("column", name, table, there, change.kind, rev)
    indexes = {i["name"] for i in inspector.get_indexes(table, schema=schema)}
    there = name in indexes
    return _column_or_index("index", name, table, there, change.kind, rev)


def _column_or_index(
    what: str, name: str | None, table: str, there: bool, kind: str, rev: str
) -> str:
    adds = kind in ("add_column", "create_index")
    if adds:
        state = f"exists (added by {rev})" if there else "missing (not added yet)"
    else:
        state = f"still exists (dropped by {rev})" if there else "dropped"
    return f"{what} {name!r} of {table!r} {state}"
