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
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
import typing as t
import weakref
import zlib

import sqlalchemy as sa

from ..databases.urls import masked
from ..errors import LockTimeoutError
from ..report import report
from ..settings import LOCK_TABLE

if t.TYPE_CHECKING:
    from collections.abc import Iterator

LockMode = t.Literal["session", "table"]

#: How often a waiting process asks again.
POLL_INTERVAL = 0.25


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


@contextlib.contextmanager
def migration_lock(
    targets: t.Sequence[LockTarget], timeout: float, mode: LockMode = "session"
) -> Iterator[None]:
    """Hold the migration lock on every target for the length of the block."""
    with contextlib.ExitStack() as stack:
        for target in sorted(targets, key=lambda target: target.name):
            try:
                stack.enter_context(_lock_one(target, timeout, mode))
            except sa.exc.DBAPIError as e:
                # Say which database could not be reached, as env.py does.
                app_engine = target.app_engine or target.engine
                e.flask_migrate_ext_database = (  # type: ignore[attr-defined]
                    target.name,
                    app_engine.url,
                )
                raise
        yield


def _lock_one(
    target: LockTarget, timeout: float, mode: LockMode
) -> t.ContextManager[None]:
    if mode == "table":
        return _table_lock(target, timeout)
    dialect = target.engine.dialect.name
    if dialect == "postgresql":
        return _postgresql_lock(target, timeout)
    if dialect in ("mysql", "mariadb"):
        return _mysql_lock(target, timeout)
    if dialect == "sqlite":
        return _sqlite_lock(target, timeout)
    return _table_lock(target, timeout)


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
def _postgresql_lock(target: LockTarget, timeout: float) -> Iterator[None]:
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
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextlib.contextmanager
def _mysql_lock(target: LockTarget, timeout: float) -> Iterator[None]:
    # GET_LOCK names are server-wide, so the database name is part of it;
    # MySQL limits them to 64 characters.
    with target.engine.connect() as conn:
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
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):
                conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
                conn.commit()


@contextlib.contextmanager
def _sqlite_lock(target: LockTarget, timeout: float) -> Iterator[None]:
    database = target.engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        yield
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
        yield
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
)


def _create_lock_table(engine: sa.Engine) -> None:
    # Several processes may find the table missing at once; all but one then
    # fail to create it, and find it there on the next look.
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                lock_table.create(conn, checkfirst=True)
            return
        except (
            sa.exc.IntegrityError,
            sa.exc.ProgrammingError,
            sa.exc.OperationalError,
        ):
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


@contextlib.contextmanager
def _table_lock(target: LockTarget, timeout: float) -> Iterator[None]:
    name = target.version_table
    holder = f"pid {os.getpid()} on {socket.gethostname()}"
    _create_lock_table(target.engine)

    def try_acquire() -> bool:
        try:
            with target.engine.begin() as conn:
                conn.execute(
                    lock_table.insert().values(
                        name=name, holder=holder, acquired_at=sa.func.now()
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def describe_holder() -> str | None:
        with target.engine.connect() as conn:
            row = conn.execute(
                sa.select(lock_table.c.holder, lock_table.c.acquired_at).where(
                    lock_table.c.name == name
                )
            ).first()
        return f"{row.holder} since {row.acquired_at}" if row else None

    _wait(target, timeout, try_acquire, describe_holder)
    try:
        yield
    finally:
        with target.engine.begin() as conn:
            conn.execute(lock_table.delete().where(lock_table.c.name == name))


def is_held(target: LockTarget, mode: LockMode = "session") -> bool:
    """Whether some process holds the migration lock on ``target`` now.

    Asked without taking the lock (or, for SQLite's file lock, taking it for
    an instant), so ``current`` can tell a run under way from one that
    stopped without recording its end. In ``table`` mode a row left by a
    killed process looks held: the caller should also check the process.
    """
    if mode == "table":
        with target.engine.connect() as conn:
            if not sa.inspect(conn).has_table(LOCK_TABLE):
                return False
            found = conn.execute(
                sa.select(lock_table.c.name).where(
                    lock_table.c.name == target.version_table
                )
            ).first()
        return found is not None
    dialect = target.engine.dialect.name
    if dialect == "postgresql":
        with target.engine.connect() as conn:
            return bool(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND granted AND classid = 0 AND objid = :key"
                        " AND database = (SELECT oid FROM pg_database"
                        "   WHERE datname = current_database())"
                    ),
                    {"key": _lock_key(target)},
                ).scalar()
            )
    if dialect in ("mysql", "mariadb"):
        with target.engine.connect() as conn:
            database = conn.execute(sa.text("SELECT DATABASE()")).scalar() or ""
            name = f"fmx:{database}:{target.version_table}"[:64]
            used = conn.execute(sa.text("SELECT IS_USED_LOCK(:name)"), {"name": name})
            return used.scalar() is not None
    if dialect == "sqlite":
        database = target.engine.url.database
        if (
            not database
            or database == ":memory:"
            or database.startswith("file::memory:")
        ):
            return False
        try:
            lock_file = open(os.path.abspath(database) + ".migrate-lock")
        except FileNotFoundError:
            return False
        with lock_file:
            if not _try_file_lock(lock_file):
                return True
            _unlock_file(lock_file)
        return False
    return False
