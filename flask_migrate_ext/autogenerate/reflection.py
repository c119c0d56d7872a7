"""Fewer catalog round trips while autogenerate reflects the database.

Alembic already reflects columns, keys, indexes and comments with one
``get_multi_*`` query per kind. Two per-table loops remain, and on a few
hundred tables they cost more than the comparison itself:

- PostgreSQL: for every integer column whose default is ``nextval(...)``,
  Alembic asks which column owns the sequence (to drop the default of a
  ``SERIAL``), one query per column;
- SQLite: SQLAlchemy reads each table's ``PRAGMA``\\ s and ``CREATE TABLE``
  text one statement at a time, about a dozen per table.

While an API function runs autogenerate, a comparator registered first in
Alembic's (public) ``alembic.autogenerate.comparators`` registry fetches
those answers for the whole schema in one statement per kind, and serves
them to the per-table code for that run only: the answers live on the run's
``Inspector`` (one per autogenerate run). Alembic's and SQLAlchemy's own code
still turns the rows into what is compared, so the comparison sees the same
data. Anything the batch did not answer (another schema, a name not found,
an unusual dialect, a customised Alembic implementation) takes the normal,
one-by-one path.
"""

from __future__ import annotations

import logging
import re
import typing as t
import weakref

from ..state import run_state

if t.TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import UpgradeOps
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Dialect
    from sqlalchemy.engine.reflection import Inspector

# Alembic's log for a SERIAL column, kept word for word.
_alembic_pg_log = logging.getLogger("alembic.ddl.postgresql")

_NEXTVAL = re.compile(r"nextval\('(.+?)'::regclass\)")

_installed = False


def install() -> None:
    """Register the batching comparator with Alembic (once per process)."""
    global _installed
    if _installed:
        return
    from alembic.autogenerate import comparators
    from alembic.util import DispatchPriority

    comparators.dispatch_for(
        "schema", subgroup="flask_migrate_ext_batches", priority=DispatchPriority.FIRST
    )(_prepare)
    _installed = True


def _prepare(
    autogen_context: AutogenContext,
    upgrade_ops: UpgradeOps,
    schemas: set[str | None],
) -> t.Any:
    """Before Alembic's tables comparator: batch this run's catalog reads."""
    from alembic.util import PriorityDispatchResult

    if run_state().active and autogen_context.connection is not None:
        inspector = autogen_context.inspector
        name = inspector.dialect.name
        if name == "postgresql":
            _batch_serial_lookups(autogen_context, inspector)
        elif name == "sqlite":
            _batch_sqlite_pragmas(inspector)
    return PriorityDispatchResult.CONTINUE


# PostgreSQL: which column owns each sequence ---------------------------------

_OWNERS_SQL = """\
SELECT s.name, c.relname, a.attname
FROM unnest(CAST(:names AS text[])) AS s(name)
JOIN pg_class AS c ON c.oid = to_regclass(s.name)
JOIN pg_depend AS d ON d.objid = c.oid
    AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
JOIN pg_class AS t ON t.oid = d.refobjid
JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE c.relkind = 'S'"""


class _SerialLookup:
    """Answers Alembic's "is this sequence owned by this column?" for one
    run's inspector, from one query over every ``nextval`` default."""

    def __init__(self, impl: t.Any, inspector: Inspector) -> None:
        self._original = type(impl).autogen_column_reflect.__get__(impl)
        self._inspector = weakref.ref(inspector)
        # sequence name -> (sequence, owning column); absent: not answered.
        self._owners: dict[str, tuple[str, str]] | None = None

    def __call__(
        self, inspector: Inspector, table: t.Any, column_info: dict[str, t.Any]
    ) -> None:
        from sqlalchemy.types import BIGINT
        from sqlalchemy.types import INTEGER

        default = column_info.get("default")
        if (
            inspector is not self._inspector()
            or not default
            or not isinstance(column_info["type"], (INTEGER, BIGINT))
        ):
            self._original(inspector, table, column_info)
            return
        match = _NEXTVAL.match(default)
        if match is None:
            return
        owners = self._load(inspector)
        owner = owners.get(match.group(1))
        if owner is None:  # not found, or not owned: Alembic's own query
            self._original(inspector, table, column_info)
            return
        sequence, column = owner
        if column == column_info["name"]:
            _alembic_pg_log.info(
                "Detected sequence named '%s' as owned by integer column '%s(%s)',"
                " assuming SERIAL and omitting",
                sequence,
                table.name,
                column,
            )
            del column_info["default"]

    def _load(self, inspector: Inspector) -> dict[str, tuple[str, str]]:
        if self._owners is None:
            self._owners = _sequence_owners(inspector)
        return self._owners


def _sequence_owners(inspector: Inspector) -> dict[str, tuple[str, str]]:
    import sqlalchemy as sa

    names = sorted(
        {
            match.group(1)
            for columns in _cached_columns(inspector)
            for column in columns
            if isinstance(column.get("default"), str)
            and (match := _NEXTVAL.match(column["default"]))
        }
    )
    if not names:
        return {}
    statement = sa.text(_OWNERS_SQL).bindparams(
        sa.bindparam("names", type_=sa.ARRAY(sa.Text()))
    )
    connection = t.cast("Connection", inspector.bind)
    rows = connection.execute(statement, {"names": names}).all()
    found: dict[str, list[tuple[str, str]]] = {}
    for name, sequence, column in rows:
        found.setdefault(name, []).append((sequence, column))
    # More than one row: Alembic takes whichever comes first; let it ask.
    return {name: pairs[0] for name, pairs in found.items() if len(pairs) == 1}


def _cached_columns(inspector: Inspector) -> t.Iterator[list[dict[str, t.Any]]]:
    """The columns Alembic has reflected for this run so far (all kinds of
    cache entry that hold them)."""
    cached = inspector.info_cache.get("alembic_columns")
    if isinstance(cached, dict):
        yield from (v for v in cached.values() if isinstance(v, list))


def _batch_serial_lookups(
    autogen_context: AutogenContext, inspector: Inspector
) -> None:
    import sqlalchemy as sa
    from alembic.ddl.postgresql import PostgresqlImpl

    impl = autogen_context.migration_context.impl
    version = inspector.dialect.server_version_info or ()
    if not isinstance(inspector.bind, sa.engine.Connection) or version < (9, 6):
        return  # to_regclass(text) is 9.6+
    # A customised implementation (a subclass that reflects differently, or
    # an instance already patched) keeps its own path.
    if (
        type(impl).autogen_column_reflect is not PostgresqlImpl.autogen_column_reflect
        or "autogen_column_reflect" in vars(impl)
        and not isinstance(vars(impl)["autogen_column_reflect"], _SerialLookup)
    ):
        return
    # Alembic looks the method up on the impl once per reflected table: the
    # lookup answers only for this run's inspector, and the next run replaces it.
    setattr(impl, "autogen_column_reflect", _SerialLookup(impl, inspector))  # noqa: B010


# SQLite: pragmas and CREATE TABLE text, all tables at once -------------------

#: Pragmas taking a table name, and the one taking an index name.
_TABLE_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "foreign_key_list", "index_list"}
)
_INDEX_PRAGMAS = frozenset({"index_info", "index_xinfo"})


class _SQLiteBatch:
    """Rows of ``PRAGMA main.<pragma>(<name>)`` for every table (or index) of
    the main database, fetched with one statement per pragma."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._pragmas: dict[str, dict[str, list[tuple[t.Any, ...]]] | None] = {}
        self._names: dict[str, set[str]] = {}
        self._temp_names: set[str] | None = None
        self._sql: dict[str, str | None] | None = None

    def pragma(self, pragma: str, name: str) -> list[tuple[t.Any, ...]] | None:
        """What ``_get_table_pragma`` returns for ``name`` in the default
        schema, or ``None`` if the batch cannot tell."""
        if pragma not in self._pragmas:
            self._pragmas[pragma] = self._fetch_pragma(pragma)
        rows = self._pragmas[pragma]
        if rows is None:
            return None
        if name in rows:
            return rows[name]
        # No rows in main for an object main has: SQLAlchemy then asks temp,
        # which answers nothing unless temp has an object of that name
        # (SQLite compares names without regard to ASCII case).
        kind = "table" if pragma in _TABLE_PRAGMAS else "index"
        if name in self._names[kind] and name.lower() not in self._temp():
            return []
        return None

    def _fetch_pragma(self, pragma: str) -> dict[str, list[tuple[t.Any, ...]]] | None:
        import sqlalchemy as sa

        kind = "table" if pragma in _TABLE_PRAGMAS else "index"
        statement = (
            f"SELECT m.name, p.* FROM main.sqlite_master AS m"
            f" JOIN pragma_{pragma}(m.name, 'main') AS p"
            f" WHERE m.type = '{kind}' ORDER BY m.rowid, p.rowid"
        )
        try:
            result = self.connection.exec_driver_sql(statement)
            if kind not in self._names:
                self._names[kind] = set(
                    self.connection.exec_driver_sql(
                        "SELECT name FROM main.sqlite_master WHERE type = ?", (kind,)
                    ).scalars()
                )
        except sa.exc.DBAPIError:  # an SQLite without table-valued pragmas
            return None
        found: dict[str, list[tuple[t.Any, ...]]] = {}
        for row in result:
            found.setdefault(row[0], []).append(tuple(row[1:]))
        return found

    def _temp(self) -> set[str]:
        if self._temp_names is None:
            names = self.connection.exec_driver_sql(
                "SELECT name FROM sqlite_temp_master"
            ).scalars()
            self._temp_names = {name.lower() for name in names}
        return self._temp_names

    def table_sql(self, name: str) -> str | None:
        """The ``sql`` of table or view ``name`` as SQLAlchemy would read it,
        or ``None`` if not answered."""
        import sqlalchemy as sa

        if self._sql is None:
            try:
                rows = self.connection.exec_driver_sql(
                    "SELECT name, sql FROM (SELECT * FROM sqlite_master UNION ALL"
                    " SELECT * FROM sqlite_temp_master)"
                    " WHERE type in ('table', 'view')"
                ).all()
            except sa.exc.DBAPIError:
                rows = []
            sql: dict[str, str | None] = {}
            for row_name, row_sql in rows:
                sql.setdefault(row_name, row_sql)  # the first row, as .scalar()
            self._sql = sql
        return self._sql.get(name)


_batched_classes: dict[type[Dialect], type[Dialect]] = {}


def _batched_dialect_class(cls: type[Dialect]) -> type[Dialect]:
    """A subclass of the SQLite dialect ``cls`` whose table SQL and pragmas
    come from the run's batch where it has the answer."""
    if cls in _batched_classes:
        return _batched_classes[cls]

    def _get_table_pragma(
        self: t.Any,
        connection: Connection,
        pragma: str,
        table_name: str,
        schema: str | None = None,
    ) -> t.Any:
        batch: _SQLiteBatch = self._flask_migrate_ext_batch
        # SQLAlchemy asks PRAGMA main.x(name), then temp.x(name) when main
        # has no rows; what the batch cannot tell, SQLite is asked as usual.
        if (
            schema is None
            and connection is batch.connection
            and (pragma in _TABLE_PRAGMAS or pragma in _INDEX_PRAGMAS)
        ):
            rows = batch.pragma(pragma, table_name)
            if rows is not None:
                return rows
        return cls._get_table_pragma(  # type: ignore[attr-defined]
            self, connection, pragma, table_name, schema=schema
        )

    def _get_table_sql(
        self: t.Any,
        connection: Connection,
        table_name: str,
        schema: str | None = None,
        **kw: t.Any,
    ) -> t.Any:
        batch: _SQLiteBatch = self._flask_migrate_ext_batch
        if schema is None and connection is batch.connection:
            sql = batch.table_sql(table_name)
            if sql is not None:
                return sql
        return cls._get_table_sql(  # type: ignore[attr-defined]
            self, connection, table_name, schema=schema, **kw
        )

    batched = _batched_classes[cls] = type(
        f"Batched{cls.__name__}",
        (cls,),
        {
            "_get_table_pragma": _get_table_pragma,
            "_get_table_sql": _get_table_sql,
            "__module__": __name__,
        },
    )
    return batched


def _batch_sqlite_pragmas(inspector: Inspector) -> None:
    import sqlalchemy as sa
    from sqlalchemy.dialects.sqlite.base import SQLiteDialect

    dialect = inspector.dialect
    cls = type(dialect)
    if not isinstance(dialect, SQLiteDialect) or not _plain_sqlite_reflection(cls):
        return
    connection = inspector.bind
    if not isinstance(connection, sa.engine.Connection):
        return
    # A copy of the engine's dialect for this run's inspector alone: the
    # engine, other connections and later runs keep the original.
    batched = object.__new__(_batched_dialect_class(cls))
    batched.__dict__.update(dialect.__dict__)
    batched._flask_migrate_ext_batch = _SQLiteBatch(connection)  # type: ignore[attr-defined]
    inspector.dialect = batched


def _plain_sqlite_reflection(cls: type[Dialect]) -> bool:
    """Whether ``cls`` reads pragmas and table SQL the way SQLAlchemy's
    SQLite dialect does (a third-party subclass may not)."""
    from sqlalchemy.dialects.sqlite.base import SQLiteDialect

    return all(
        getattr(cls, name) is getattr(SQLiteDialect, name)
        for name in ("_get_table_pragma", "_get_table_sql")
    )
