"""Transaction poolers in front of PostgreSQL (PgBouncer in transaction mode,
Supavisor, RDS Proxy): noticed once per engine and process.

Such a pooler hands a client a server session for one transaction only.
Whatever lives in a session is then lost or leaks to other clients between
two transactions: an advisory lock, a ``SET``, a prepared statement. The
lock (:mod:`..apply.lock`) switches to its table lock, and the engine's
psycopg connections stop preparing statements (PgBouncer before 1.21 does
not follow them from one server connection to the next).

The test is exact: two client connections open at once never share a server
session, unless a transaction pooler is in between, and one client
connection keeps its server session, unless a transaction pooler is in
between. So a session pooler or a plain TCP proxy (an SSH tunnel, a Docker
port mapping, NAT) is not taken for one: they keep session semantics, and
session locks work through them.
"""

from __future__ import annotations

import typing as t
import weakref

import sqlalchemy as sa

from ..report import report
from .urls import masked

_PID = "SELECT pg_backend_pid()"

#: What was found for each engine (the app's, the lock's twin), in this process.
_found: weakref.WeakKeyDictionary[sa.Engine, bool] = weakref.WeakKeyDictionary()
#: The databases said to be behind one (an async engine and its sync twin
#: for the lock are one database: said once).
_said: set[str] = set()


def behind_transaction_pooler(engine: t.Any) -> bool:
    """Whether ``engine`` (sync or async) reaches PostgreSQL through a
    transaction pooler. Found out once per engine; the first time it is,
    says so in one line and turns off prepared statements on the engine."""
    engine = t.cast(sa.Engine, getattr(engine, "sync_engine", engine))
    if engine.dialect.name != "postgresql":
        return False
    found = _found.get(engine)
    if found is None:
        found = _shares_sessions(engine)
        _found[engine] = found
        if found:
            without_prepared_statements(engine)
            where = masked(engine.url.set(drivername=engine.url.get_backend_name()))
            if where not in _said:
                _said.add(where)
                report(
                    f"{where} is behind a transaction pooler: using the table"
                    " lock, no prepared statements (see MIGRATE_LOCK)."
                )
    return found


def known_pooler(engine: t.Any) -> bool:
    """Whether ``engine`` was found behind a transaction pooler (without
    asking the database)."""
    return _found.get(getattr(engine, "sync_engine", engine), False)


def _shares_sessions(engine: sa.Engine) -> bool:
    """Whether the server session of one client connection is handed to
    another, or changes between two of its transactions."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as first:
        pid = first.exec_driver_sql(_PID).scalar()
        # A pooler gives the server session just released to the next
        # client, most often: a second client shows the first one's pid.
        with engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as second:
            other = second.exec_driver_sql(_PID).scalar()
        if other == pid:
            return True
        # Or the first client, on its next transaction, gets another one.
        return first.exec_driver_sql(_PID).scalar() != pid


def without_prepared_statements(engine: sa.Engine, connection: t.Any = None) -> None:
    """Stop psycopg (3) preparing statements on ``engine``'s connections
    from now on (and on ``connection``, a checked-out :class:`sa.Connection`).

    psycopg prepares a statement run five times on one connection, under a
    name every client uses: through a transaction pooler the next run may
    land on a server session without it, or one where another client
    prepared its own ("prepared statement "_pg3_0" already exists").
    """
    if engine.dialect.driver != "psycopg":
        return  # psycopg2 never prepares; asyncpg: see the docs
    if not sa.event.contains(engine, "checkout", _no_prepare):
        sa.event.listen(engine, "checkout", _no_prepare)
    if connection is not None:
        _no_prepare(connection.connection.dbapi_connection, None, None)


def _no_prepare(dbapi_connection: t.Any, record: t.Any, proxy: t.Any) -> None:
    if getattr(dbapi_connection, "prepare_threshold", None) is not None:
        dbapi_connection.prepare_threshold = None
