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
  short transactions of their own. In ``auto`` mode (the default), a
  PostgreSQL database found behind a transaction pooler gets it
  (:mod:`..databases.poolers`), the others their session lock.

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
ours. A session lock can also be checked from another connection
(:meth:`LockHandle.condition`): the ledger's statements carry that check, so
it costs no round trip of its own. A table lock whose holder died
(``kill -9``, a lost host) is taken over once its lease has expired.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import threading
import typing as t
import weakref
import zlib

import sqlalchemy as sa

from ..databases.poolers import behind_transaction_pooler
from ..databases.poolers import same_database
from ..errors import first_line
from ..errors import LockLostError
from .lock_wait import Held
from .lock_wait import LockTarget as LockTarget
from .lock_wait import lost
from .lock_wait import wait
from .table_lock import lock_table as lock_table
from .table_lock import table_lock
from .table_lock import table_lock_is_held

if t.TYPE_CHECKING:
    from collections.abc import Iterator

#: ``auto``: the table lock behind a transaction pooler, else the session lock.
LockMode = t.Literal["auto", "session", "table"]


@dataclasses.dataclass(frozen=True)
class LockCondition:
    """SQL that is true while the lock is still ours, evaluated by another
    connection on the same database: a statement the run sends anyway (a
    ledger row) carries the check of :meth:`LockHandle.check` at no extra
    round trip. ``sql`` is a boolean expression with ``:name`` parameters."""

    sql: str
    params: t.Mapping[str, t.Any]


#: Longest pause between two heartbeats on a session lock's connection
#: (shorter when the server closes idle sessions sooner).
HEARTBEAT_INTERVAL = 5.0


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
        same_database(twin, engine)
    return twin


def _lock_key(target: LockTarget) -> int:
    # Advisory lock keys are bigints; one key per version table keeps two
    # independent migration histories in one database from blocking each other.
    return zlib.crc32(f"flask_migrate_ext:{target.lock_name}".encode())


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

    def condition(self, database: str) -> LockCondition | None:
        """:meth:`check` as SQL for a connection on ``database``, when that
        database's session lock is the only one held; else None (then
        :meth:`check` it is)."""
        if len(self._held) != 1:
            return None
        (held,) = self._held
        if not isinstance(held, _SessionLock) or held.target.name != database:
            return None
        return held.condition()

    def lost(self) -> LockLostError:
        """The error to raise once a :class:`LockCondition` was false."""
        try:
            self.check()
        except LockLostError as error:
            return error
        (held,) = self._held  # a condition exists only for one session lock
        assert isinstance(held, _SessionLock)
        return held.lost()

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
    mode: LockMode = "auto",
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


def uses_table_lock(target: LockTarget, mode: LockMode) -> bool:
    """Whether ``target`` gets the table lock in ``mode``."""
    if mode == "auto":
        return behind_transaction_pooler(target.engine)
    return mode == "table"


def _lock_one(
    target: LockTarget, timeout: float, mode: LockMode, command: str
) -> t.ContextManager[Held | None]:
    if uses_table_lock(target, mode):
        return table_lock(target, timeout, command)
    dialect = target.engine.dialect.name
    if dialect == "postgresql":
        return _postgresql_lock(target, timeout, command)
    if dialect in ("mysql", "mariadb"):
        return _mysql_lock(target, timeout, command)
    if dialect == "sqlite":
        return _sqlite_lock(target, timeout)
    return table_lock(target, timeout, command)


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
        self._condition: LockCondition | None = None
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
            raise lost(self.target, self._why, self._command)

    def beat(self) -> None:
        self._still_held()

    def condition(self) -> LockCondition | None:
        """The lock is still ours, as SQL for another connection: held by
        this connection (PostgreSQL: its backend, told apart from a later
        one with the same pid by its start time). None once it failed."""
        with self._guard:
            if self._why is None and self._condition is None:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    self._condition = self._identify()
            return self._condition if self._why is None else None

    def _identify(self) -> LockCondition:
        if self.connection.dialect.name == "postgresql":
            pid, started = self.connection.execute(
                sa.text(
                    "SELECT pid, backend_start"
                    " FROM pg_stat_get_activity(pg_backend_pid())"
                )
            ).one()
            # pg_stat_get_activity(pid) reads one backend's entry; the
            # pg_stat_activity view joins every backend with the catalogs,
            # about 1.3 ms more on each revision.
            return LockCondition(
                "(EXISTS (SELECT 1 FROM pg_locks l"
                " WHERE l.locktype = 'advisory' AND l.granted"
                " AND l.pid = :fmx_lock_pid AND l.classid = 0"
                " AND l.objid = :fmx_lock_key AND l.objsubid = 1)"
                " AND (SELECT a.backend_start"
                " FROM pg_stat_get_activity(:fmx_lock_pid) a)"
                " = :fmx_lock_started)",
                {
                    "fmx_lock_pid": pid,
                    "fmx_lock_started": started,
                    "fmx_lock_key": self._params["key"],
                },
            )
        connection_id = self.connection.execute(
            sa.text("SELECT CONNECTION_ID()")
        ).scalar()
        return LockCondition(
            "IS_USED_LOCK(:fmx_lock_name) = :fmx_lock_connection",
            {
                "fmx_lock_name": self._params["name"],
                "fmx_lock_connection": connection_id,
            },
        )

    def lost(self) -> LockLostError:
        """The lock was found lost from another connection."""
        with self._guard:
            self._why = self._why or "the database no longer grants it to this process"
        return lost(self.target, self._why, self._command)

    def release(self, statement: sa.TextClause) -> None:
        with self._guard, contextlib.suppress(sa.exc.SQLAlchemyError):
            if self._why is None:
                self.connection.execute(statement, self._params)


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

        wait(target, timeout, try_acquire, describe_holder)
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
        name = f"fmx:{database}:{target.lock_name}"[:64]

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

        wait(target, timeout, try_acquire, describe_holder)
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

    wait(target, timeout, try_acquire, describe_holder)
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


def is_held(target: LockTarget, mode: LockMode = "auto") -> bool:
    """Whether some process holds the migration lock on ``target`` now.

    Asked without taking the lock (or, for SQLite's file lock, taking it for
    an instant), so ``current`` can tell a run under way from one that
    stopped without recording its end. In ``table`` mode a row left by a
    killed process looks held until its lease expires: the caller should also
    check the process.
    """
    if uses_table_lock(target, mode):
        return table_lock_is_held(target)
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
            name = f"fmx:{database}:{target.lock_name}"[:64]
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
