"""The ledger: a table recording every revision applied or reverted, and how it went.

A row is written when a revision starts and updated, inside the revision's
own transaction, when it ends. Where DDL is not transactional (MySQL,
MariaDB), the row is written in that transaction too: statements that ran
before a failure stay applied, the row says how many ran, and further
upgrades refuse to run until someone says what was done about it
(:func:`flask_migrate_ext.resolve`). On PostgreSQL and SQLite, where a failed
revision is rolled back whole, the row is committed apart before the
revision starts (see the tracker). A failure is recorded from a fresh
connection.

A row still ``running`` whose process is gone (``kill -9``, a lost node) is a
run that was cut off. Where DDL is not transactional it blocks like a partial
failure; elsewhere its transaction was rolled back, which is said once and
recorded as ``crashed`` (:mod:`.ledger_checks`).

Each applied revision's row holds the checksum of its script
(:mod:`flask_migrate_ext.scripts.checksum`) and the tool's version, so
``flask db verify`` can tell when an applied script was edited. ``stamp``
writes rows too (action ``stamp``). A ledger created by an earlier version
gets the new columns on the next run, and revisions applied before the
ledger saw them (by Flask-Migrate, or before checksums) get ``baseline``
rows without a checksum: known, never an error.
"""

from __future__ import annotations

import datetime
import functools
import os
import socket
import typing as t

import sqlalchemy as sa

from ..errors import SettingsError
from ..scripts.checksum import script_checksum
from .ledger_rows import APPLYING
from .ledger_rows import Entry
from .ledger_rows import ENTRY_COLUMNS
from .ledger_rows import package_version
from .ledger_rows import REMOVING
from .ledger_rows import RunningStep
from .ledger_rows import Status
from .ledger_rows import utcnow
from .ledger_sql import handover_sql
from .ledger_sql import start_if_sql

if t.TYPE_CHECKING:
    from .lock import LockCondition

#: Columns every version of the ledger has; a table by that name without
#: them belongs to someone else.
_REQUIRED = ("id", "revision", "action", "status")
#: Columns added since the first version, added to older tables on the next run.
_ADDED = ("checksum", "tool_version")


class Ledger:
    """Reads and writes one database's ledger table."""

    def __init__(self, table: sa.Table, tool_version: str | None = None) -> None:
        self.table = table
        # Built once: a run writes to the ledger for every revision, and
        # building the statements anew each time cost more than executing them.
        self._insert = table.insert()
        self._update = table.update().where(table.c.id == sa.bindparam("entry_id"))
        self._host = socket.gethostname()[:255]
        self._tool_version = (tool_version or package_version())[:32]
        #: Columns of the table in each database, once looked up.
        self._columns: dict[sa.Engine, frozenset[str]] = {}
        #: The statements of :mod:`.ledger_sql`, built once each.
        self._statements: dict[tuple[t.Any, ...], sa.TextClause] = {}

    def ensure(
        self,
        connection: sa.Connection,
        applied: t.Callable[[], t.Collection[str]] | None = None,
    ) -> None:
        """Create the table, or bring one made by an earlier version up to date.

        :param applied: The revisions the database is at and their ancestors;
            when the table is created or upgraded, those without a row get a
            ``baseline`` row (applied before the ledger saw them).
        """
        columns = self.columns(connection)
        if columns is None:
            self.table.create(connection)
            self._columns[connection.engine] = frozenset(self.table.c.keys())
        elif not set(_ADDED) - columns:
            return
        else:
            preparer = connection.dialect.identifier_preparer
            for name in _ADDED:
                if name not in columns:
                    column = self.table.c[name]
                    connection.exec_driver_sql(
                        f"ALTER TABLE {preparer.format_table(self.table)} ADD"
                        f" {preparer.format_column(column)}"
                        f" {column.type.compile(connection.dialect)}"
                    )
            self._columns[connection.engine] = frozenset(self.table.c.keys())
        if applied is not None:
            self.baseline(connection, applied())

    def columns(self, connection: sa.Connection) -> frozenset[str] | None:
        """The table's columns in the database; None when it does not exist.

        :raises SettingsError: A table of that name exists but is not a ledger.
        """
        known = self._columns.get(connection.engine)
        if known is not None:
            return known
        inspector = sa.inspect(connection)
        if not inspector.has_table(self.table.name, schema=self.table.schema):
            return None
        found = frozenset(
            column["name"].lower()
            for column in inspector.get_columns(
                self.table.name, schema=self.table.schema
            )
        )
        missing = [name for name in _REQUIRED if name not in found]
        if missing:
            raise SettingsError(
                f"Table {self.table.name!r} is not flask-migrate-ext's ledger (it"
                f" has no {missing[0]!r} column): another table has its name."
                " Set MIGRATE_LOG_TABLE to a name of its own."
            )
        self._columns[connection.engine] = found
        return found

    def baseline(
        self, connection: sa.Connection, applied: t.Collection[str]
    ) -> list[str]:
        """Record ``applied`` revisions the ledger has no row for, without a
        checksum. :return: The revisions recorded."""
        missing = sorted(set(applied) - self.recorded_revisions(connection))
        for revision in missing:
            row = self._row(revision, "baseline")
            row.update(status="applied", finished_at=row["started_at"])
            connection.execute(self._insert, row)
        return missing

    def recorded_revisions(self, connection: sa.Connection) -> set[str]:
        """The revisions :func:`.ledger_rows.applied_rows` would find, worked out by the
        database: each revision's last row that applies or removes it, in
        one query returning a row per applied revision, however long the
        history. An ``accept`` row counts as applying (it keeps a revision
        applied, or records one)."""
        c = self.table.c

        def kind(pairs: t.Iterable[tuple[str, str]]) -> sa.ColumnElement[bool]:
            return sa.or_(*((c.action == a) & (c.status == s) for a, s in pairs))

        last = (
            sa.select(c.revision, sa.func.max(c.id).label("last"))
            .where(kind(APPLYING | REMOVING))
            .group_by(c.revision)
            .subquery()
        )
        query = (
            sa.select(c.revision).join(last, c.id == last.c.last).where(kind(APPLYING))
        )
        return set(connection.execute(query).scalars())

    def record_stamp(
        self,
        connection: sa.Connection,
        added: t.Mapping[str, str | None],
        removed: t.Iterable[str],
    ) -> None:
        """Record a stamp: ``added`` revisions (with their script's path) are
        now in the database without having run, ``removed`` ones no longer."""
        for revision, path in sorted(added.items()):
            row = self._row(revision, "stamp")
            row.update(
                status="stamped",
                finished_at=row["started_at"],
                checksum=script_checksum(path),
            )
            connection.execute(self._insert, row)
        for revision in sorted(removed):
            row = self._row(revision, "stamp")
            row.update(status="unstamped", finished_at=row["started_at"])
            connection.execute(self._insert, row)

    def accept(self, connection: sa.Connection, revision: str, checksum: str) -> None:
        """Record ``checksum`` as the applied script's, after an intended edit."""
        row = self._row(revision, "accept")
        row.update(status="applied", finished_at=row["started_at"], checksum=checksum)
        connection.execute(self._insert, row)

    def start(self, connection: sa.Connection, revision: str, action: str) -> int:
        """Record that ``revision`` starts; returns the row id."""
        result = connection.execute(self._insert, self._row(revision, action))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def start_if(
        self,
        connection: sa.Connection,
        revision: str,
        action: str,
        condition: LockCondition,
    ) -> int | None:
        """:meth:`start`, in the same statement as the lock's check: None,
        and no row, when the migration lock is no longer ours."""
        row = self._row(revision, action)
        statement = self._statement(
            ("start", connection.dialect.name, condition.sql),
            lambda: start_if_sql(self.table, connection.dialect, condition.sql),
        )
        result = connection.execute(statement, {**row, **condition.params})
        if connection.dialect.name == "postgresql":
            return result.scalar()
        return int(result.lastrowid) if result.rowcount == 1 else None

    def finish_and_start(
        self,
        connection: sa.Connection,
        entry_id: int,
        statements: int,
        checksum: str | None,
        following: tuple[str, str],
        defer_flush: bool,
    ) -> int:
        """PostgreSQL, in one round trip: record the step ``entry_id`` as
        applied (:meth:`finish`) and write the ``running`` row of the
        ``following`` ``(revision, action)``; with ``defer_flush``, the
        transaction's commit does not wait for the disk (see the tracker).
        The lock is checked when the following revision begins.

        :return: The new row's id.
        """
        statement = self._statement(
            ("handover", connection.dialect.name, defer_flush),
            lambda: handover_sql(self.table, connection.dialect, defer_flush),
        )
        params = self._handover(entry_id, statements, checksum, following)
        return int(connection.execute(statement, params).scalar_one())

    def _handover(
        self,
        entry_id: int,
        statements: int,
        checksum: str | None,
        following: tuple[str, str],
    ) -> dict[str, t.Any]:
        """The parameters of a statement that records step ``entry_id`` as
        applied and writes the ``running`` row of ``following``."""
        return {
            **self._row(*following),
            "entry_id": entry_id,
            "done_statements": statements,
            "done_at": utcnow(),
            "done_checksum": checksum,
        }

    def finish_start_and_move(
        self,
        connection: sa.Connection,
        entry_id: int,
        statements: int,
        checksum: str | None,
        following: tuple[str, str],
        defer_flush: bool,
        version_table: sa.Table,
        move: tuple[str, str],
    ) -> tuple[int, int | None]:
        """PostgreSQL: :meth:`finish_and_start` carried by the step's own
        version UPDATE (``move``: from one revision to another), in the one
        statement the step sends anyway.

        :return: The version rows updated, and the new ledger row's id.
        """
        statement = self._statement(
            ("handover", connection.dialect.name, defer_flush, version_table),
            lambda: handover_sql(
                self.table, connection.dialect, defer_flush, version_table
            ),
        )
        params = self._handover(entry_id, statements, checksum, following)
        params.update(fmx_from=move[0], fmx_to=move[1])
        rows = connection.execute(statement, params).all()
        return len(rows), (rows[0][0] if rows else None)

    def _statement(
        self, key: tuple[t.Any, ...], build: t.Callable[[], str]
    ) -> sa.TextClause:
        """The statement ``key`` names, built by ``build`` the first time."""
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = sa.text(build())
        return found

    def record(
        self,
        connection: sa.Connection,
        revision: str,
        action: str,
        started_at: datetime.datetime,
        status: Status,
        statements: int,
        checksum: str | None = None,
    ) -> None:
        """Record a finished step in one row (see :meth:`start`, :meth:`finish`)."""
        row = self._row(revision, action, started_at=started_at)
        row.update(
            status=status,
            statements=statements,
            finished_at=utcnow(),
            checksum=checksum,
        )
        connection.execute(self._insert, row)

    def _row(
        self, revision: str, action: str, started_at: datetime.datetime | None = None
    ) -> dict[str, t.Any]:
        return {
            "revision": revision,
            "action": action,
            "status": "running",
            "partial": False,
            "statements": 0,
            "started_at": started_at or utcnow(),
            "finished_at": None,
            "error": None,
            "host": self._host,
            "pid": os.getpid(),
            "checksum": None,
            "tool_version": self._tool_version,
        }

    def finish(
        self,
        connection: sa.Connection,
        entry_id: int,
        status: Status,
        statements: int,
        partial: bool = False,
        error: str | None = None,
        checksum: str | None = None,
    ) -> None:
        connection.execute(
            self._update,
            {
                "entry_id": entry_id,
                "status": status,
                "statements": statements,
                "partial": partial,
                "finished_at": utcnow(),
                "error": error,
                "checksum": checksum,
            },
        )

    def hold(self, connection: sa.Connection, entry_id: int) -> None:
        """Write to the step's row inside its transaction (see the tracker)."""
        connection.execute(self._hold, {"entry_id": entry_id})

    @functools.cached_property
    def _hold(self) -> sa.Update:
        # Built once, as the other statements written for every revision.
        c = self.table.c
        return (
            self.table.update()
            .where(c.id == sa.bindparam("entry_id"))
            .values(status="running")
        )

    def record_rolled_back(
        self, engine: sa.Engine, step: RunningStep, status: Status, error: str
    ) -> None:
        """Record a failed step whose row was committed before it started and
        whose changes were rolled back (see :meth:`record_failure`)."""
        assert step.entry_id is not None
        with engine.begin() as connection:
            self.finish(
                connection, step.entry_id, status, step.statements, False, error[:2000]
            )

    def record_failure(
        self, engine: sa.Engine, step: RunningStep, status: Status, error: str
    ) -> bool:
        """Record a failed or interrupted step from a fresh connection.

        :return: Whether changes may be left behind: the step's "running" row
            outlived the rollback (an implicit commit, as MySQL does for DDL)
            after at least one statement ran.
        """
        # The table may have been created in the transaction just rolled
        # back: look again instead of trusting what was seen inside it.
        self._columns.pop(engine, None)
        with engine.begin() as connection:
            self.ensure(connection)
            survived = step.entry_id is not None and (
                connection.execute(
                    sa.select(self.table.c.id).where(self.table.c.id == step.entry_id)
                ).first()
                is not None
            )
            entry_id = step.entry_id if survived else None
            if entry_id is None:
                entry_id = self.start(connection, step.revision, step.action)
            partial = survived and step.statements > 0
            self.finish(
                connection, entry_id, status, step.statements, partial, error[:2000]
            )
        return partial

    def entries(
        self, connection: sa.Connection, *, unsettled: bool = False
    ) -> list[Entry]:
        """All rows, oldest first; empty when the table does not exist.

        A table made by an earlier version is read as it is (the columns it
        lacks read as NULL): reading never changes the table.

        :param unsettled: Only the rows a run may still have to answer for:
            ``running`` ones, and failures or interruptions that may have
            left changes behind. The ledger grows with every run; the checks
            before each run read only these, so they cost the same after
            years of history.
        """
        columns = self.columns(connection)
        if columns is None:
            return []
        wanted = ENTRY_COLUMNS
        c = self.table.c
        query = sa.select(*(c[name] for name in wanted if name in columns))
        if unsettled:
            open_ = c.status == "running"
            if "partial" in columns:
                open_ = open_ | (
                    c.partial.is_(True) & c.status.in_(("failed", "interrupted"))
                )
            query = query.where(open_)
        rows = connection.execute(query.order_by(c.id))
        return [Entry(**row._mapping) for row in rows]
