"""Transaction poolers in front of PostgreSQL (PgBouncer in transaction mode,
Supavisor, RDS Proxy): noticed once per engine and process.

Such a pooler hands a client a server session for one transaction only.
Whatever lives in a session is then lost or leaks to other clients between
two transactions: an advisory lock, a ``SET``, a prepared statement. The
lock (:mod:`..apply.lock`) switches to its table lock, and the engine's
psycopg connections stop preparing statements (PgBouncer before 1.21 does
not follow them from one server connection to the next).

Two signs, either one enough:

- something opened the server's side of the connection other than this
  process: the ports the server reports for the connection
  (``inet_client_port()``, ``inet_server_port()``) are not those of this
  process's socket. Through a pooler they never are. A plain TCP proxy
  (an SSH tunnel, a Docker port mapping, a cloud SQL proxy) and a session
  pooler show the same sign and are taken for a pooler too: their sessions
  would hold, but nothing tells them from a transaction pooler, and the
  table lock works through all of them. NAT that keeps ports does not
  show it. ``MIGRATE_LOCK = "session"`` keeps session locks.
- one server session serves two client connections open at once, or one
  client connection gets another server session on its next transaction:
  only a transaction pooler does that. Asked only on a Unix socket, where
  there are no ports to compare (under load it can miss a pooler).
"""

from __future__ import annotations

import os
import socket
import typing as t
import weakref

import sqlalchemy as sa

from ..report import report
from .urls import masked

_PROBE = sa.text("SELECT pg_backend_pid(), inet_client_port(), inet_server_port()")

#: What was found for each engine, in this process.
_found: weakref.WeakKeyDictionary[sa.Engine, bool] = weakref.WeakKeyDictionary()
#: The synchronous twin the lock uses for an async engine: one database,
#: found out (and said) once.
_twins: weakref.WeakKeyDictionary[sa.Engine, sa.Engine] = weakref.WeakKeyDictionary()


def same_database(twin: sa.Engine, engine: t.Any) -> None:
    """``twin`` reaches the database of ``engine`` (an async engine)."""
    _twins[twin] = t.cast(sa.Engine, getattr(engine, "sync_engine", engine))


def behind_transaction_pooler(engine: t.Any) -> bool:
    """Whether ``engine`` (sync or async) reaches PostgreSQL through a
    transaction pooler. Found out once per engine; the first time it is,
    says so in one line and turns off prepared statements on the engine."""
    engine = t.cast(sa.Engine, getattr(engine, "sync_engine", engine))
    if engine.dialect.name != "postgresql":
        return False
    key = _twins.get(engine, engine)
    found = _found.get(key)
    if found is None:
        sign = _pooler_sign(engine)
        found = _found[key] = sign is not None
        if found:
            report(
                f"{masked(key.url)} is behind a pooler or proxy ({sign}): using"
                " the table lock, no prepared statements (see MIGRATE_LOCK)."
            )
    if found:
        without_prepared_statements(engine)
    return found


def known_pooler(engine: t.Any) -> bool:
    """Whether ``engine`` was found behind a transaction pooler (without
    asking the database)."""
    engine = getattr(engine, "sync_engine", engine)
    return _found.get(_twins.get(engine, engine), False)


def _pooler_sign(engine: sa.Engine) -> str | None:
    """What shows a pooler between us and the server, or ``None``."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as first:
        pid, client_port, server_port = first.execute(_PROBE).one()
        ends = _socket_ports(first)
        if ends is not None:
            # TCP: the server's peer is this process's socket, or something
            # in between (which the ports tell, but for a coincidence).
            if (client_port, server_port) != ends:
                return "its server connection is not this process's"
            return None
        # A pooler gives the server session just released to the next
        # client, most often: a second client shows the first one's pid.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as second:
            other = second.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        if (
            other == pid
            or first.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
        ):
            return "server sessions are shared"
    return None


def _socket_ports(connection: sa.Connection) -> tuple[int, int] | None:
    """This end's port and the other end's port of ``connection``'s TCP
    socket; ``None`` on a Unix socket, or a driver that does not tell."""
    fileno = getattr(connection.connection.dbapi_connection, "fileno", None)
    if fileno is None:
        return None
    try:
        with socket.socket(fileno=os.dup(fileno())) as sock:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                return None
            return int(sock.getsockname()[1]), int(sock.getpeername()[1])
    except (OSError, ValueError):
        return None


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
