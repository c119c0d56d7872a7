"""The ledger's statements that carry other work, as SQL text.

A revision's ledger writes ride on statements it sends anyway: the
"running" row is written only while the migration lock is still ours
(:func:`start_if_sql`), and on PostgreSQL the hand-over from one revision to
the next (this one applied, the next one running) is one statement of
data-modifying ``WITH`` parts, on its own or carried by the version table's
UPDATE (:func:`handover_sql`). Built once per run by :class:`.ledger.Ledger`.
"""

from __future__ import annotations

import sqlalchemy as sa

#: Turns the transaction's commit asynchronous (see the tracker's begin()).
_FLUSH_LATER = ", set_config('synchronous_commit', 'off', true)"


def start_if_sql(table: sa.Table, dialect: sa.Dialect, condition: str) -> str:
    """An INSERT of a ``running`` row, only where ``condition`` holds;
    PostgreSQL returns the new row's id."""
    name, listed, values = _insert_parts(table, dialect)
    returning = " RETURNING id" if dialect.name == "postgresql" else ""
    source = "" if dialect.name == "postgresql" else " FROM DUAL"
    return (
        f"INSERT INTO {name} ({listed}) SELECT {values}{source}"
        f" WHERE {condition}{returning}"
    )


def handover_sql(
    table: sa.Table,
    dialect: sa.Dialect,
    deferred: bool,
    version_table: sa.Table | None = None,
) -> str:
    """PostgreSQL: record the row ``:entry_id`` as applied and insert the
    next revision's ``running`` row, returning its id; with
    ``version_table``, as parts of the UPDATE of its row ``:fmx_from`` to
    ``:fmx_to`` (no row returned: the version row was not there). With
    ``deferred``, the transaction's commit does not wait for the disk."""
    name, listed, values = _insert_parts(table, dialect)
    q = dialect.identifier_preparer.quote
    parts = (
        f"WITH done AS (UPDATE {name} SET {q('status')} = 'applied',"
        f" {q('statements')} = :done_statements, {q('partial')} = false,"
        f" {q('finished_at')} = :done_at, {q('error')} = NULL,"
        f" {q('checksum')} = :done_checksum WHERE id = :entry_id RETURNING id),"
        f" following AS (INSERT INTO {name} ({listed}) SELECT {values}"
        " RETURNING id)"
    )
    flush = _FLUSH_LATER if deferred else ""
    if version_table is None:
        return f"{parts} SELECT (SELECT id FROM following){flush}"
    version = dialect.identifier_preparer.format_table(version_table)
    column = q("version_num")
    return (
        f"{parts} UPDATE {version} SET {column} = :fmx_to WHERE {column} = :fmx_from"
        f" RETURNING (SELECT id FROM following){flush}"
    )


def _insert_parts(table: sa.Table, dialect: sa.Dialect) -> tuple[str, str, str]:
    """The table's name, its columns but ``id``, and their parameters."""
    preparer = dialect.identifier_preparer
    columns = [c for c in table.c if c.name != "id"]
    listed = ", ".join(preparer.quote(c.name) for c in columns)
    if dialect.name == "postgresql":
        # Typed: a parameter selected into a row would be taken for text.
        values = ", ".join(
            f"CAST(:{c.name} AS {c.type.compile(dialect)})" for c in columns
        )
    else:
        values = ", ".join(f":{c.name}" for c in columns)
    return preparer.format_table(table), listed, values
