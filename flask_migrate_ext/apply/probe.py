"""Where the app's databases stand, read directly: for ``Migrate.status()``
(health checks) and the pending-migration guard.

``flask db status`` reads each database through env.py with Alembic. Here
the revisions come from the revision cache (:func:`~..scripts.quick.history_graph`,
no Alembic, no revision file executed) and each database answers two
queries on one connection: its version table, its ledger. The judgement is
:func:`~.standing.database_status`'s, as for the command, so the two cannot
disagree. Whenever the cache or env.py leaves any doubt, :func:`fast_status`
returns ``None`` and the caller asks the command's path instead.
"""

from __future__ import annotations

import functools
import typing as t

import sqlalchemy as sa

from ..databases.adapters import is_async_engine
from ..databases.urls import masked
from ..scripts.quick import history_graph
from ..state import current_settings
from ..state import get_db
from ..state import get_engine
from ..state import get_state
from ..state import MigrateState
from .ledger import Ledger
from .ledger_rows import Entry
from .ledger_rows import ENTRY_COLUMNS
from .ledger_rows import ledger_table
from .lock import control_engine
from .standing import database_status
from .standing import DatabaseStatus
from .standing import LedgerState
from .standing import StatusResult

if t.TYPE_CHECKING:
    from ..scripts.revisions import Revision

#: The templates whose env.py migrates every database of the app; the others
#: migrate the default database only.
_MULTIDB = ("flask-multidb", "aioflask-multidb")
_ASYNC = ("aioflask", "aioflask-multidb")


class Revisions(t.NamedTuple):
    """The scripts' side of a status: every revision, and the heads."""

    revisions: t.Mapping[str, Revision]
    heads: tuple[str, ...]


def fast_status(verify: bool = False) -> StatusResult | None:
    """The current app's status, read without Alembic; ``None`` when only
    the command's path (env.py) can be trusted to say which databases to
    read and how: the cache cannot vouch for every revision file, env.py has
    local edits or is Flask-Migrate's multi-database one, ``configure``
    callbacks, ``alembic.ini`` options, tenant schemas, or an engine that
    does not match env.py's template (env.py would report that).
    """
    state = get_state()
    get_db(state)
    if current_settings().schemas:
        return None
    graph = history_graph(None)
    if graph is None or graph.template is None:
        return None
    if graph.template in _MULTIDB:
        if graph.tool != "flask_migrate_ext":
            return None  # older multi-database files choose databases their way
        names = state.database_names()
    else:
        names = [""]
    engines = [get_engine(state, name) for name in names]
    if any(is_async_engine(e) != (graph.template in _ASYNC) for e in engines):
        return None
    scripts = Revisions(graph.revisions, graph.heads)
    return StatusResult(
        tuple(
            _read_one(state, name, engine, scripts, verify)
            for name, engine in zip(names, engines, strict=True)
        )
    )


def _read_one(
    state: MigrateState, name: str, engine: t.Any, scripts: Revisions, verify: bool
) -> DatabaseStatus:
    try:
        connection = control_engine(engine).connect()
    except sa.exc.DBAPIError as e:
        # Named in the message as env.py's connection errors are.
        e.flask_migrate_ext_database = (name, engine.url)  # type: ignore[attr-defined]
        raise
    with connection:
        return database_standing(
            state, connection, connection.rollback, name, engine.url, scripts, verify
        )


def database_standing(
    state: MigrateState,
    connection: sa.Connection,
    rollback: t.Callable[[], None],
    name: str,
    url: sa.URL,
    scripts: Revisions,
    verify: bool = False,
) -> DatabaseStatus:
    """Read one database on ``connection`` and judge it; ``rollback`` ends
    what the reads began (and a failed read's transaction)."""
    kwargs = state.context_kwargs
    statements = _statements(
        kwargs.get("version_table", "alembic_version"),
        kwargs.get("version_table_schema"),
        current_settings().log_table,
    )
    current, entries, ledger = read_database(connection, rollback, statements)
    return database_status(
        name=name,
        url=masked(url),
        schema=None,
        revisions=scripts.revisions,
        heads=scripts.heads,
        current=current,
        entries=entries,
        ledger=ledger,
        command=state.command,
        verify=verify,
    )


class Statements(t.NamedTuple):
    """The two queries, built once per table name: SQLAlchemy then compiles
    them once too (its cache knows the same statement object)."""

    version: sa.Table
    current: sa.Select[t.Any]
    ledger: sa.Table | None
    entries: sa.Select[t.Any] | None


@functools.lru_cache(maxsize=32)
def _statements(
    version_name: str, version_schema: str | None, ledger_name: str | None
) -> Statements:
    version = sa.Table(
        version_name,
        sa.MetaData(),
        sa.Column("version_num", sa.String(32)),
        schema=version_schema,
    )
    ledger = ledger_table(ledger_name) if ledger_name is not None else None
    entries = None
    if ledger is not None:
        entries = sa.select(*(ledger.c[name] for name in ENTRY_COLUMNS)).order_by(
            ledger.c.id
        )
    return Statements(version, sa.select(version.c.version_num), ledger, entries)


def read_database(
    connection: sa.Connection, rollback: t.Callable[[], None], statements: Statements
) -> tuple[tuple[str, ...], list[Entry], LedgerState]:
    """The version table's revisions and the ledger's rows: one query each
    when both tables exist (a missing one costs a look at the catalog)."""
    try:
        try:
            current = tuple(connection.execute(statements.current).scalars())
        except sa.exc.DBAPIError:
            rollback()
            if _has_table(connection, statements.version):
                raise
            current = ()
        if statements.ledger is None or statements.entries is None:
            return current, [], "off"
        try:
            rows = connection.execute(statements.entries).all()
            # Selected in the order of Entry's fields: built by position.
            return current, [Entry(*row) for row in rows], "current"
        except sa.exc.DBAPIError:
            rollback()
        # Missing, or made by a version without the newer columns.
        ledger = Ledger(statements.ledger)
        columns = ledger.columns(connection)
        if columns is None:
            return current, [], "missing"
        state: LedgerState = "current" if "checksum" in columns else "old"
        return current, ledger.entries(connection), state
    finally:
        rollback()


def _has_table(connection: sa.Connection, table: sa.Table) -> bool:
    found = sa.inspect(connection).has_table(table.name, schema=table.schema)
    return bool(found)
