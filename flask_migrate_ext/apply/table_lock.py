"""The table lock (``MIGRATE_LOCK = "table"``): a row in a small lock table,
inserted and deleted in short transactions of their own, for connection
poolers that break session locks (PgBouncer in transaction mode).

The row carries a lease that its holder's heartbeat renews; a waiter that
finds the lease expired (its holder was killed, its host vanished) takes the
lock over, in one statement that only one waiter can win.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import typing as t
import uuid

import sqlalchemy as sa

from ..errors import first_line
from ..report import report
from ..settings import LOCK_TABLE
from . import lock_wait
from .lock_wait import Held
from .lock_wait import label
from .lock_wait import LockTarget
from .lock_wait import lost
from .lock_wait import wait

if t.TYPE_CHECKING:
    from collections.abc import Iterator

#: Seconds a table lock stays valid without its holder's heartbeat, which
#: renews it every third of that; a lease that expired marks a dead holder.
TABLE_LEASE = 30.0


class _Timestamp(sa.types.TypeDecorator[t.Any]):
    """``DATETIME(6)`` on MySQL and MariaDB (a lease needs sub-second
    precision), SQLAlchemy's ``DateTime`` elsewhere. Not
    ``with_variant(mysql.DATETIME(fsp=6))``: that imports SQLAlchemy's MySQL
    dialect (~1 MB) into every process that takes the lock, on any database."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[t.Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())


_lock_metadata = sa.MetaData()
lock_table = sa.Table(
    LOCK_TABLE,
    _lock_metadata,
    sa.Column("name", sa.String(191), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("acquired_at", sa.DateTime, nullable=False),
    #: When the lease ends unless the holder renews it, by the database's
    #: clock, in UTC. Tables made by earlier versions get the column added;
    #: their rows (``NULL``) never expire.
    sa.Column("expires_at", _Timestamp()),
)


def _utc_now(dialect: str, later: float = 0) -> sa.ColumnElement[t.Any]:
    """The database's clock in UTC, ``later`` seconds from now.

    Every process compares leases with the same clock, and in UTC, so
    neither a client's clock nor a session's time zone matters.
    """
    ms = int(later * 1000)
    if dialect == "postgresql":
        return sa.literal_column(
            f"(timezone('UTC', now()) + interval '{ms} milliseconds')"
        )
    if dialect in ("mysql", "mariadb"):
        return sa.literal_column(
            f"(UTC_TIMESTAMP(6) + INTERVAL {ms * 1000} MICROSECOND)"
        )
    if dialect == "sqlite":
        # In SQLAlchemy's storage format (6 digits), so values read back
        # and compare as text.
        return sa.literal_column(
            f"(strftime('%Y-%m-%d %H:%M:%f', 'now', '{later:+.3f} seconds') || '000')"
        )
    return sa.func.now()  # pragma: no cover - other databases: their own clock


def _create_lock_table(engine: sa.Engine) -> None:
    # Several processes may find the table (or its lease column, added since
    # the table's first version) missing at once; all but one then fail to
    # add it, and find it there on the next look.
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                lock_table.create(conn, checkfirst=True)
                columns = sa.inspect(conn).get_columns(LOCK_TABLE)
                if all(column["name"] != "expires_at" for column in columns):
                    column_type = lock_table.c.expires_at.type.compile(conn.dialect)
                    name = conn.dialect.identifier_preparer.quote(LOCK_TABLE)
                    conn.exec_driver_sql(
                        f"ALTER TABLE {name} ADD COLUMN expires_at {column_type}"
                    )
            return
        except (
            sa.exc.IntegrityError,
            sa.exc.ProgrammingError,
            sa.exc.OperationalError,
        ):
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def _is_busy(error: sa.exc.DBAPIError) -> bool:
    """SQLite's "database is locked": another connection is writing."""
    return "locked" in str(error.orig) or "busy" in str(error.orig)


@contextlib.contextmanager
def _write(engine: sa.Engine, busy_ms: int | None = None) -> Iterator[sa.Connection]:
    """A short transaction; on SQLite, waiting ``busy_ms`` at most for
    another connection's write (the pool's connection gets its own setting
    back)."""
    with engine.begin() as conn:
        if busy_ms is None or engine.dialect.name != "sqlite":
            yield conn
            return
        before = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(busy_ms)}")
        try:
            yield conn
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(before or 0)}")


class _TableLock:
    """Our row in the lock table, with a lease the heartbeat renews."""

    def __init__(self, target: LockTarget, holder: str, command: str) -> None:
        self.target = target
        self.holder = holder
        self.interval = TABLE_LEASE / 3
        self._command = command
        self._dialect = target.engine.dialect.name
        self._why: str | None = None
        c = lock_table.c
        self._mine = sa.and_(c.name == target.version_table, c.holder == holder)

    def renew(self) -> bool:
        """Extend the lease; whether the row is still ours."""
        # On SQLite, not waiting for a write lock: the one in the way is
        # most likely our own revision's (see _still_held).
        with _write(self.target.engine, busy_ms=0) as conn:
            renewed = conn.execute(
                lock_table.update()
                .where(self._mine)
                .values(expires_at=_utc_now(self._dialect, TABLE_LEASE))
            )
        return renewed.rowcount == 1

    def _still_held(self) -> None:
        try:
            if self.renew():
                return
        except sa.exc.DBAPIError as e:
            if not (self._dialect == "sqlite" and _is_busy(e)):
                raise
            # SQLite: our own revision's transaction is writing. Reading
            # still works: the row must be ours, its lease still running.
            with self.target.engine.connect() as conn:
                ours = conn.execute(
                    sa.select(lock_table.c.name).where(
                        self._mine,
                        lock_table.c.expires_at > _utc_now(self._dialect),
                    )
                ).first()
            if ours is not None:
                return
        with self.target.engine.connect() as conn:
            row = conn.execute(
                sa.select(lock_table.c.holder).where(
                    lock_table.c.name == self.target.version_table
                )
            ).first()
        self._why = (
            f"its row in {LOCK_TABLE} now names {row.holder}"
            if row is not None
            else f"its row in {LOCK_TABLE} was deleted"
        )

    def check(self) -> None:
        if self._why is None:
            try:
                self._still_held()
            except sa.exc.DBAPIError as e:
                self._why = f"its lease could not be renewed ({first_line(e.orig)})"
        if self._why is not None:
            raise lost(self.target, self._why, self._command)

    def beat(self) -> None:
        # A failed renewal is told by the next check, not here: a lease
        # outlives a few missed beats.
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            if not self.renew():
                self._why = self._why or f"its row in {LOCK_TABLE} is no longer ours"


def _table_holder_row(conn: sa.Connection, name: str, dialect: str) -> t.Any:
    c = lock_table.c
    expired = sa.and_(c.expires_at.is_not(None), c.expires_at < _utc_now(dialect))
    return conn.execute(
        sa.select(
            c.holder, c.acquired_at, c.expires_at, expired.label("expired")
        ).where(c.name == name)
    ).first()


@contextlib.contextmanager
def table_lock(target: LockTarget, timeout: float, command: str) -> Iterator[Held]:
    name = target.version_table
    dialect = target.engine.dialect.name
    # Unique to this hold of the lock: a later run of the same process, or
    # a process with the same pid on another host, is someone else.
    holder = f"pid {os.getpid()} on {socket.gethostname()} [{uuid.uuid4().hex[:8]}]"
    _create_lock_table(target.engine)

    def try_acquire() -> bool:
        try:
            with _write(
                target.engine, busy_ms=int(lock_wait.POLL_INTERVAL * 1000)
            ) as conn:
                conn.execute(
                    lock_table.insert().values(
                        name=name,
                        holder=holder,
                        acquired_at=_utc_now(dialect),
                        expires_at=_utc_now(dialect, TABLE_LEASE),
                    )
                )
            return True
        except sa.exc.IntegrityError:
            return take_over()
        except sa.exc.OperationalError as e:
            if dialect == "sqlite" and _is_busy(e):
                return False  # a migration is writing: wait like the others
            raise

    def take_over() -> bool:
        """Take the lock from a holder whose lease expired, in one statement
        that only one waiter can win."""
        with target.engine.connect() as conn:
            stale = _table_holder_row(conn, name, dialect)
        if stale is None or not stale.expired:
            return False
        c = lock_table.c
        with _write(target.engine, busy_ms=int(lock_wait.POLL_INTERVAL * 1000)) as conn:
            taken = conn.execute(
                lock_table.update()
                .where(
                    c.name == name,
                    c.holder == stale.holder,
                    c.expires_at < _utc_now(dialect),
                )
                .values(
                    holder=holder,
                    acquired_at=_utc_now(dialect),
                    expires_at=_utc_now(dialect, TABLE_LEASE),
                )
            )
        if taken.rowcount != 1:
            return False
        report(
            f"Took over the migration lock on {label(target)} from"
            f" {stale.holder} (its lease expired at"
            f" {stale.expires_at:%Y-%m-%d %H:%M:%S} UTC)."
        )
        return True

    def describe_holder() -> str | None:
        with target.engine.connect() as conn:
            row = _table_holder_row(conn, name, dialect)
        if row is None:
            return None
        if row.expires_at is None:
            return (
                f"{row.holder} since {row.acquired_at} (an earlier version's"
                f" lock, without a lease: delete its row from {LOCK_TABLE} if"
                " that process is gone)"
            )
        return (
            f"{row.holder} since {row.acquired_at:%Y-%m-%d %H:%M:%S} UTC"
            f" (lease until {row.expires_at:%H:%M:%S} UTC)"
        )

    wait(target, timeout, try_acquire, describe_holder)
    held = _TableLock(target, holder, command)
    try:
        yield held
    finally:
        # Only our own row: after losing the lock, the row is someone else's.
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            with _write(target.engine) as conn:
                conn.execute(lock_table.delete().where(held._mine))


def table_lock_is_held(target: LockTarget) -> bool:
    """Whether a row of the lock table holds ``target`` with a lease not yet
    expired (a row of an old lock table, without a lease, counts as held)."""
    with target.engine.connect() as conn:
        if not sa.inspect(conn).has_table(LOCK_TABLE):
            return False
        row = _table_holder_row(conn, target.version_table, target.engine.dialect.name)
    return row is not None and not row.expired
