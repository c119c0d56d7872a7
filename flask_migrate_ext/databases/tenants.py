"""Run migrations once per PostgreSQL schema, for apps with a schema per tenant.

For each schema, the connections of the run get ``search_path`` set to that
schema, and the version table (and ledger) live in it, so every tenant has
its own migration state. Nothing in env.py has to change.

Behind a transaction pooler a session's ``SET`` would land on one server
session and the next transaction on another (while the first one keeps the
tenant's ``search_path`` for some other client): there, each transaction
sets it with ``SET LOCAL`` instead.
"""

from __future__ import annotations

import contextlib
import re
import typing as t

import sqlalchemy as sa

from ..errors import CommandFailedError
from ..state import run_state
from ..state import running
from .poolers import behind_transaction_pooler

if t.TYPE_CHECKING:
    from collections.abc import Iterator

#: The ``context.configure`` option :func:`in_schema` sets.
_SCHEMA_KEY = "version_table_schema"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


def check_schemas(engine: sa.Engine, schemas: t.Sequence[str]) -> None:
    """Refuse schema names that are not plain identifiers or do not exist."""
    if engine.dialect.name != "postgresql":
        raise CommandFailedError(
            f"Tenant schemas (--schema, MIGRATE_SCHEMAS) work on PostgreSQL only,"
            f" not {engine.dialect.name}."
        )
    for schema in schemas:
        if not _NAME.match(schema):
            raise CommandFailedError(f"{schema!r} is not a plain schema name.")
    with engine.connect() as connection:
        existing = set(sa.inspect(connection).get_schema_names())
    missing = [schema for schema in schemas if schema not in existing]
    if missing:
        raise CommandFailedError(
            f"Schema {', '.join(map(repr, missing))} does not exist: create it"
            " first (CREATE SCHEMA ...)."
        )


@contextlib.contextmanager
def in_schema(engine: sa.Engine, schema: str) -> Iterator[None]:
    """Inside the block, ``engine``'s connections work in ``schema``: per
    transaction behind a transaction pooler (found out once per engine), else
    per session."""
    if behind_transaction_pooler(engine):
        with _in_schema_per_transaction(engine, schema):
            yield
        return

    def on_checkout(dbapi_connection: t.Any, record: t.Any, proxy: t.Any) -> None:
        _set_search_path(dbapi_connection, f'"{schema}"')
        record.info["flask_migrate_ext_schema"] = schema

    def on_checkin(dbapi_connection: t.Any, record: t.Any) -> None:
        if record.info.pop("flask_migrate_ext_schema", None) and dbapi_connection:
            _set_search_path(dbapi_connection, "DEFAULT")

    sa.event.listen(engine, "checkout", on_checkout)
    sa.event.listen(engine, "checkin", on_checkin)
    try:
        with running(overrides={_SCHEMA_KEY: schema}):
            yield
    finally:
        sa.event.remove(engine, "checkout", on_checkout)
        sa.event.remove(engine, "checkin", on_checkin)


@contextlib.contextmanager
def _in_schema_per_transaction(engine: sa.Engine, schema: str) -> Iterator[None]:
    def on_begin(connection: sa.Connection) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is None or getattr(dbapi_connection, "autocommit", False):
            return  # each statement its own transaction: see the docs
        cursor = dbapi_connection.cursor()
        try:
            # The transaction's first statement: psycopg begins it here.
            cursor.execute(f'SET LOCAL search_path TO "{schema}"')
        finally:
            cursor.close()

    sa.event.listen(engine, "begin", on_begin)
    try:
        with running(overrides={_SCHEMA_KEY: schema}):
            yield
    finally:
        sa.event.remove(engine, "begin", on_begin)


def current_schema() -> str | None:
    """The tenant schema the run works in now (inside :func:`in_schema`)."""
    schema = run_state().overrides.get(_SCHEMA_KEY)
    return schema if isinstance(schema, str) else None


def _set_search_path(dbapi_connection: t.Any, value: str) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"SET search_path TO {value}")
    finally:
        cursor.close()
    dbapi_connection.commit()
