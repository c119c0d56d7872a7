"""The migration lock: one process at a time changes a database's schema.

Each database gets a lock that lives outside the migration's own connection,
so revisions that leave their transaction (``autocommit_block()``, for
``CREATE INDEX CONCURRENTLY``) still run under it:

- PostgreSQL: a session-level advisory lock on a connection of its own;
- MySQL / MariaDB: ``GET_LOCK`` on a connection of its own;
- SQLite: an OS file lock on ``<database file>.migrate-lock``, a file that
  exists only while a command runs (nothing for an in-memory database, which
  no other process can see);
- ``table`` mode, for connection poolers that break session locks (PgBouncer
  in transaction mode): a row in a small lock table, inserted and deleted in
  short transactions of their own.

A process that has to wait says so once, naming the holder where the database
can tell, and gives up with :class:`~flask_migrate_ext.errors.LockTimeoutError`
after the timeout. Several databases are locked in name order, so two
processes can never wait on each other.

A held lock can be lost: a server or a proxy closes an idle connection
(``wait_timeout``, ``idle_session_timeout``, a load balancer), and a session
lock dies with it. While the lock is held, a heartbeat thread keeps its
connection busy (and renews the table lock's lease), and the runner calls
:meth:`LockHandle.check` before each revision, which raises
:class:`~flask_migrate_ext.errors.LockLostError` if the lock is no longer
ours. A table lock whose holder died (``kill -9``, a lost host) is taken
over once its lease has expired.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import threading
import time
import typing as t
import uuid
import weakref
import zlib

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from ..databases.urls import masked
from ..errors import first_line
from ..errors import LockLostError
from ..errors import LockTimeoutError
from ..report import report
from ..settings import LOCK_TABLE

if t.TYPE_CHECKING:
    from collections.abc import Iterator

LockMode = t.Literal["session", "table"]

#: How often a waiting process asks again.
POLL_INTERVAL = 0.25
#: Longest pause between two heartbeats on a session lock's connection
#: (shorter when the server closes idle sessions sooner).
HEARTBEAT_INTERVAL = 5.0
#: Seconds a table lock stays valid without its holder's heartbeat, which
#: renews it every third of that; a lease that expired marks a dead holder.
TABLE_LEASE = 30.0


@dataclasses.dataclass(frozen=True)
class LockTarget:
    """One database to lock: its name in the app (``""`` is the default one).

    ``engine`` is a synchronous engine for the lock, the ledger and
    cancelling statements; ``app_engine`` is the app's own, which may be an
    ``AsyncEngine``.
    """

    name: str
    engine: sa.Engine
    version_table: str = "alembic_version"
    app_engine: t.Any = None

    def serves(self, engine: sa.Engine) -> bool:
        """Whether ``engine`` (a migration connection's) is this database's."""
        app_engine = self.app_engine if self.app_engine is not None else self.engine
        return engine is app_engine or engine is getattr(app_engine, "sync_engine", 0)


_SYNC_DRIVERS = {
    "psycopg_async": "psycopg",
    "asyncpg": "psycopg",
    "aiosqlite": "pysqlite",
    "aiomysql": "pymysql",
    "asyncmy": "pymysql",
}
#: Each async engine's synchronous twin, gone with the async engine (an id()
#: key could be reused by a later engine and hand it the wrong database).
_sync_engines: weakref.WeakKeyDictionary[t.Any, sa.Engine] = weakref.WeakKeyDictionary()


def control_engine(engine: t.Any) -> sa.Engine:
    """A synchronous engine on the same database as ``engine``.

    The lock and the ledger work outside the event loop an async engine
    needs, so an async engine gets a small synchronous twin (created once,
    without a pool) on the matching synchronous driver.
    """
    if isinstance(engine, sa.Engine):
        return engine
    twin = _sync_engines.get(engine)
    if twin is None:
        url = engine.url
        driver = _SYNC_DRIVERS.get(url.get_driver_name(), "")
        name = (
            f"{url.get_backend_name()}+{driver}" if driver else url.get_backend_name()
        )
        twin = sa.create_engine(url.set(drivername=name), poolclass=sa.pool.NullPool)
        _sync_engines[engine] = twin
    return twin


def _label(target: LockTarget) -> str:
    url = masked(
        target.app_engine.url if target.app_engine is not None else target.engine.url
    )
    return f"{target.name} ({url})" if target.name else url


def _lock_key(target: LockTarget) -> int:
    # Advisory lock keys are bigints; one key per version table keeps two
    # independent migration histories in one database from blocking each other.
    return zlib.crc32(f"flask_migrate_ext:{target.version_table}".encode())


class Held(t.Protocol):
    """One database's lock while it is held."""

    #: Longest pause between two calls of :meth:`beat`.
    interval: float

    def check(self) -> None:
        """Raise :class:`LockLostError` unless the lock is still ours."""

    def beat(self) -> None:
        """Keep the lock alive (a ping, a lease renewal); never raises."""


class LockHandle:
    """What :func:`migration_lock` yields: :meth:`check` says whether every
    lock taken is still held, a heartbeat thread keeps them alive."""

    def __init__(self, held: t.Sequence[Held] = ()) -> None:
        self._held = list(held)
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        if self._held:
            self._thread = threading.Thread(
                target=self._beat, name="flask_migrate_ext lock heartbeat", daemon=True
            )
            self._thread.start()

    def check(self) -> None:
        """Raise :class:`LockLostError` if a lock was lost."""
        for held in self._held:
            held.check()

    def _beat(self) -> None:
        interval = min(held.interval for held in self._held)
        while not self._stopped.wait(interval):
            for held in self._held:
                held.beat()

    def stop(self) -> None:
        """Stop the heartbeat (before the locks are released)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()


@contextlib.contextmanager
def migration_lock(
    targets: t.Sequence[LockTarget],
    timeout: float,
    mode: LockMode = "session",
    command: str = "db",
) -> Iterator[LockHandle]:
    """Hold the migration lock on every target for the length of the block.

    :param command: The command group's name, for messages.
    """
    held: list[Held] = []
    with contextlib.ExitStack() as stack:
        for target in sorted(targets, key=lambda target: target.name):
            try:
                one = stack.enter_context(_lock_one(target, timeout, mode, command))
            except sa.exc.DBAPIError as e:
                # Say which database could not be reached, as env.py does.
                app_engine = target.app_engine or target.engine
                e.flask_migrate_ext_database = (  # type: ignore[attr-defined]
                    target.name,
                    app_engine.url,
                )
                raise
            if one is not None:
                held.append(one)
        handle = LockHandle(held)
        stack.callback(handle.stop)  # runs first: no heartbeat during release
        yield handle


def _lock_one(
    target: LockTarget, timeout: float, mode: LockMode, command: str
) -> t.ContextManager[Held | None]:
    if mode == "table":
        return _table_lock(target, timeout, command)
    dialect = target.engine.dialect.name
    if dialect == "postgresql":
        return _postgresql_lock(target, timeout, command)
    if dialect in ("mysql", "mariadb"):
        return _mysql_lock(target, timeout, command)
    if dialect == "sqlite":
        return _sqlite_lock(target, timeout)
    return _table_lock(target, timeout, command)


def _lost(target: LockTarget, why: str, command: str) -> LockLostError:
    return LockLostError(
        f"Lost the migration lock on {_label(target)}: {why}. Another process"
        f" may have taken it and started migrating: check 'flask {command}"
        " current' and the ledger before running it again."
    )


class _SessionLock:
    """A session-level lock on a connection of its own (PostgreSQL, MySQL).

    The main thread's :meth:`check` and the heartbeat thread's :meth:`beat`
    share the connection, never at once.
    """

    def __init__(
        self,
        target: LockTarget,
        connection: sa.Connection,
        owned: sa.TextClause,
        params: dict[str, t.Any],
        idle_timeout: float | None,
        command: str,
    ) -> None:
        self.target = target
        self.connection = connection
        self._owned = owned
        self._params = params
        self._command = command
        self._guard = threading.Lock()
        self._why: str | None = None
        self.interval = HEARTBEAT_INTERVAL
        if idle_timeout:
            # Well inside the server's idle timeout, whatever the ping costs.
            self.interval = max(0.1, min(self.interval, idle_timeout / 4))

    def _still_held(self) -> None:
        with self._guard:
            if self._why is not None:
                return  # lost for good: a session lock never comes back
            try:
                owned = self.connection.execute(self._owned, self._params).scalar()
            except sa.exc.SQLAlchemyError as e:
                cause = getattr(e, "orig", None) or e
                reason = first_line(cause) or type(cause).__name__
                if not reason.startswith("("):
                    reason = f"({reason})"
                self._why = f"its connection failed {reason}"
                return
            if not owned:
                self._why = "the database no longer grants it to this process"

    def check(self) -> None:
        self._still_held()
        if self._why is not None:
            raise _lost(self.target, self._why, self._command)

    def beat(self) -> None:
        self._still_held()

    def release(self, statement: sa.TextClause) -> None:
        with self._guard, contextlib.suppress(sa.exc.SQLAlchemyError):
            if self._why is None:
                self.connection.execute(statement, self._params)


def _wait(
    target: LockTarget,
    timeout: float,
    try_acquire: t.Callable[[], bool],
    describe_holder: t.Callable[[], str | None],
) -> None:
    """Poll ``try_acquire`` until it succeeds or ``timeout`` seconds pass."""
    if try_acquire():
        return
    holder = describe_holder()
    held_by = f", held by {holder}" if holder else ""
    report(
        f"Waiting for the migration lock on {_label(target)}{held_by}"
        f" (up to {timeout:g} s)..."
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(min(POLL_INTERVAL, max(deadline - time.monotonic(), 0)))
        if try_acquire():
            report(f"Got the migration lock on {_label(target)}.")
            return
    holder = describe_holder() or holder
    held_by = f" is held by {holder}" if holder else " is held by another process"
    raise LockTimeoutError(
        f"Gave up after {timeout:g} s: the migration lock on {_label(target)}"
        f"{held_by}. Try again later, or raise --lock-timeout."
    )


@contextlib.contextmanager
def _postgresql_lock(
    target: LockTarget, timeout: float, command: str
) -> Iterator[Held]:
    key = _lock_key(target)
    with target.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as conn:

        def try_acquire() -> bool:
            query = sa.text("SELECT pg_try_advisory_lock(:key)")
            return bool(conn.execute(query, {"key": key}).scalar())

        def describe_holder() -> str | None:
            row = conn.execute(
                sa.text(
                    "SELECT a.pid, a.application_name, a.client_addr, a.backend_start"
                    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted"
                    " AND l.objid = :key AND l.database = ("
                    "   SELECT oid FROM pg_database WHERE datname = current_database())"
                    " LIMIT 1"
                ),
                {"key": key},
            ).first()
            if row is None:
                return None
            who = f"pid {row.pid}"
            if row.application_name:
                who += f" ({row.application_name})"
            if row.client_addr:
                who += f" from {row.client_addr}"
            return f"{who} since {row.backend_start:%Y-%m-%d %H:%M:%S}"

        _wait(target, timeout, try_acquire, describe_holder)
        # idle_session_timeout (PostgreSQL 14+) in milliseconds, 0 when off.
        idle = conn.execute(
            sa.text(
                "SELECT setting FROM pg_settings WHERE name = 'idle_session_timeout'"
            )
        ).scalar()
        held = _SessionLock(
            target,
            conn,
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                " AND granted AND pid = pg_backend_pid() AND classid = 0"
                " AND objid = :key AND objsubid = 1)"
            ),
            {"key": key},
            int(idle) / 1000 if idle else None,
            command,
        )
        try:
            yield held
        finally:
            held.release(sa.text("SELECT pg_advisory_unlock(:key)"))


@contextlib.contextmanager
def _mysql_lock(target: LockTarget, timeout: float, command: str) -> Iterator[Held]:
    # GET_LOCK names are server-wide, so the database name is part of it;
    # MySQL limits them to 64 characters. In autocommit mode, so that the
    # heartbeat's queries keep no transaction (and no read view) open.
    with target.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as conn:
        database = conn.execute(sa.text("SELECT DATABASE()")).scalar() or ""
        name = f"fmx:{database}:{target.version_table}"[:64]

        def try_acquire() -> bool:
            query = sa.text("SELECT GET_LOCK(:name, 0)")
            return conn.execute(query, {"name": name}).scalar() == 1

        def describe_holder() -> str | None:
            holder = conn.execute(
                sa.text("SELECT IS_USED_LOCK(:name)"), {"name": name}
            ).scalar()
            if holder is None:
                return None
            row = conn.execute(
                sa.text(
                    "SELECT USER, HOST FROM information_schema.PROCESSLIST"
                    " WHERE ID = :id"
                ),
                {"id": holder},
            ).first()
            where = f" ({row.USER}@{row.HOST})" if row is not None else ""
            return f"connection {holder}{where}"

        _wait(target, timeout, try_acquire, describe_holder)
        idle = conn.execute(sa.text("SELECT @@session.wait_timeout")).scalar()
        held = _SessionLock(
            target,
            conn,
            sa.text("SELECT IS_USED_LOCK(:name) = CONNECTION_ID()"),
            {"name": name},
            float(idle) if idle else None,
            command,
        )
        try:
            yield held
        finally:
            held.release(sa.text("SELECT RELEASE_LOCK(:name)"))


@contextlib.contextmanager
def _sqlite_lock(target: LockTarget, timeout: float) -> Iterator[None]:
    # A file lock is held by this process's open file until it closes it:
    # nothing can take it away, so there is nothing to check or keep alive.
    database = target.engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        yield None
        return
    path = os.path.abspath(database) + ".migrate-lock"
    held: list[t.IO[str]] = []

    def try_acquire() -> bool:
        # The holder deletes the file when it releases the lock (below): a
        # process that locked the file just before it was deleted holds a
        # lock on nothing, sees the path no longer leads to its file, and
        # opens the path again.
        for _attempt in range(3):
            lock_file = open(path, "a+")  # closed on release
            if not _try_file_lock(lock_file):
                lock_file.close()
                return False
            if _is_at(path, lock_file):
                break
            lock_file.close()
        else:
            return False
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        lock_file.flush()
        held.append(lock_file)
        return True

    def describe_holder() -> str | None:
        with contextlib.suppress(OSError):
            with open(path) as f:
                return f.read().strip() or None
        return None

    _wait(target, timeout, try_acquire, describe_holder)
    try:
        yield None
    finally:
        (lock_file,) = held
        if _DELETE_WHILE_LOCKED:
            # Deleted while still locked, so no one can lock it in between.
            with contextlib.suppress(OSError):
                os.unlink(path)
        _unlock_file(lock_file)
        lock_file.close()


def _is_at(path: str, f: t.IO[str]) -> bool:
    """Whether ``path`` still names the open file ``f``."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(f.fileno())
    return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)


#: Windows cannot delete an open file: there, the lock file stays.
_DELETE_WHILE_LOCKED = os.name != "nt"

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_file_lock(f: t.IO[str]) -> bool:
        f.seek(0)
        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True

    def _unlock_file(f: t.IO[str]) -> None:
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]

else:
    import fcntl

    def _try_file_lock(f: t.IO[str]) -> bool:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock_file(f: t.IO[str]) -> None:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


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
    sa.Column(
        "expires_at",
        sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
    ),
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
            raise _lost(self.target, self._why, self._command)

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
def _table_lock(target: LockTarget, timeout: float, command: str) -> Iterator[Held]:
    name = target.version_table
    dialect = target.engine.dialect.name
    # Unique to this hold of the lock: a later run of the same process, or
    # a process with the same pid on another host, is someone else.
    holder = f"pid {os.getpid()} on {socket.gethostname()} [{uuid.uuid4().hex[:8]}]"
    _create_lock_table(target.engine)

    def try_acquire() -> bool:
        try:
            with _write(target.engine, busy_ms=int(POLL_INTERVAL * 1000)) as conn:
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
        with _write(target.engine, busy_ms=int(POLL_INTERVAL * 1000)) as conn:
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
            f"Took over the migration lock on {_label(target)} from"
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

    _wait(target, timeout, try_acquire, describe_holder)
    held = _TableLock(target, holder, command)
    try:
        yield held
    finally:
        # Only our own row: after losing the lock, the row is someone else's.
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            with _write(target.engine) as conn:
                conn.execute(lock_table.delete().where(held._mine))
