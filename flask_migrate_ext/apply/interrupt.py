"""Stop the statement a migration is running on the server, when the user stops us.

Ctrl-C or SIGTERM only stops the Python process's wait: the server would go
on running the statement, holding its locks, until it ends. While a run is
under way the runner registers a canceller for each migration connection;
the CLI's signal handlers call them before unwinding.

SQLite runs the statement in this process, in C: Python runs signal handlers
only between bytecodes of the main thread, so a handler would wait for the
statement to end. There, a thread woken by the signal itself (through
:func:`signal.set_wakeup_fd`) interrupts the statement at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import typing as t

import sqlalchemy as sa

from ..databases.poolers import known_pooler

Canceller = t.Callable[[], None]

_cancellers: list[Canceller] = []


class SQLiteCanceller:
    """Stops what a SQLite connection runs, from any thread.

    Called in the main thread (by the signal handler, once the interrupted
    statement has returned), it also rolls the connection's transaction
    back: unwinding may close the connection while the interrupted
    statement is still referenced, and SQLite then keeps the connection,
    and its write lock, alive until that statement is freed, so the
    interrupted run could not be recorded.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def interrupt(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.connection.interrupt()

    def __call__(self) -> None:
        self.interrupt()
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(sqlite3.Error):
                self.connection.rollback()


@contextlib.contextmanager
def cancellable(canceller: Canceller | None) -> t.Iterator[None]:
    """Make ``canceller`` reachable by :func:`cancel_running` inside the block."""
    if canceller is None:
        yield
        return
    _cancellers.append(canceller)
    try:
        if isinstance(canceller, SQLiteCanceller):
            with _signal_watcher():
                yield
        else:
            yield
    finally:
        _cancellers.remove(canceller)


_STOP_SIGNALS = frozenset({int(signal.SIGINT), int(signal.SIGTERM)})
_watching: list[bool] = []


@contextlib.contextmanager
def _signal_watcher() -> t.Iterator[None]:
    """Interrupt SQLite statements the moment SIGINT or SIGTERM arrives.

    The interpreter's C-level handler writes the signal's number to the
    wakeup file descriptor at once, even while the main thread waits in C;
    a thread reading it interrupts the statements, and the Python handler
    runs as soon as the statement returns. Bytes are passed on to a wakeup
    descriptor set before (an event loop's).
    """
    main = threading.current_thread() is threading.main_thread()
    if _watching or not main or os.name == "nt":
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(
        target=_watch, args=(read_fd, previous), name="flask_migrate_ext signals"
    )
    watcher.daemon = True
    watcher.start()
    _watching.append(True)
    try:
        yield
    finally:
        _watching.clear()
        signal.set_wakeup_fd(previous)
        os.close(write_fd)  # the watcher reads the end of the pipe, and stops
        watcher.join()
        os.close(read_fd)


def _watch(read_fd: int, previous: int) -> None:
    while data := os.read(read_fd, 64):
        if previous != -1:
            with contextlib.suppress(OSError):
                os.write(previous, data)
        if _STOP_SIGNALS.intersection(data):
            for canceller in list(_cancellers):
                if isinstance(canceller, SQLiteCanceller):
                    canceller.interrupt()


def cancel_running() -> None:
    """Ask the servers to stop the statements of every run under way."""
    for canceller in list(_cancellers):
        with contextlib.suppress(Exception):
            canceller()


def server_canceller(connection: sa.Connection, engine: sa.Engine) -> Canceller | None:
    """A function that cancels what ``connection`` runs, from another connection
    of ``engine`` (a synchronous engine on the same database)."""
    dialect = connection.dialect.name
    if dialect == "postgresql" and known_pooler(connection.engine):
        # Behind a transaction pooler the backend running our statement is
        # not known in advance (a pid read now may serve another client
        # then): the driver's cancel request goes through the pooler, which
        # sends it to the right one.
        driver_cancel = getattr(connection.connection.dbapi_connection, "cancel", None)
        return t.cast("Canceller | None", driver_cancel)
    if dialect == "postgresql":
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        statement = sa.text("SELECT pg_cancel_backend(:id)")
    elif dialect in ("mysql", "mariadb"):
        pid = connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        statement = sa.text(f"KILL QUERY {int(t.cast(int, pid))}")
    elif dialect == "sqlite":
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, sqlite3.Connection):
            return SQLiteCanceller(dbapi_connection)
        return None
    else:
        return None

    def cancel() -> None:
        with engine.connect() as other:
            other.execute(statement, {"id": pid})
            other.commit()

    return cancel
