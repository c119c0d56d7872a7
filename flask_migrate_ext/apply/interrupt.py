"""Stop the statement a migration is running on the server, when the user stops us.

Ctrl-C or SIGTERM only stops the Python process's wait: the server would go
on running the statement, holding its locks, until it ends. While a run is
under way the runner registers a canceller for each migration connection;
the CLI's signal handlers call them before unwinding.
"""

from __future__ import annotations

import contextlib
import sqlite3
import typing as t

import sqlalchemy as sa

Canceller = t.Callable[[], None]

_cancellers: list[Canceller] = []


@contextlib.contextmanager
def cancellable(canceller: Canceller | None) -> t.Iterator[None]:
    """Make ``canceller`` reachable by :func:`cancel_running` inside the block."""
    if canceller is None:
        yield
        return
    _cancellers.append(canceller)
    try:
        yield
    finally:
        _cancellers.remove(canceller)


def cancel_running() -> None:
    """Ask the servers to stop the statements of every run under way."""
    for canceller in list(_cancellers):
        with contextlib.suppress(Exception):
            canceller()


def server_canceller(connection: sa.Connection, engine: sa.Engine) -> Canceller | None:
    """A function that cancels what ``connection`` runs, from another connection
    of ``engine`` (a synchronous engine on the same database)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        statement = sa.text("SELECT pg_cancel_backend(:id)")
    elif dialect in ("mysql", "mariadb"):
        pid = connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        statement = sa.text(f"KILL QUERY {int(t.cast(int, pid))}")
    elif dialect == "sqlite":
        dbapi_connection = connection.connection.dbapi_connection
        interrupt = getattr(dbapi_connection, "interrupt", None)
        return interrupt if isinstance(dbapi_connection, sqlite3.Connection) else None
    else:
        return None

    def cancel() -> None:
        with engine.connect() as other:
            other.execute(statement, {"id": pid})
            other.commit()

    return cancel
