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
recorded as ``crashed``.

Each applied revision's row holds the checksum of its script
(:mod:`flask_migrate_ext.scripts.checksum`) and the tool's version, so
``flask db verify`` can tell when an applied script was edited. ``stamp``
writes rows too (action ``stamp``). A ledger created by an earlier version
gets the new columns on the next run, and revisions applied before the
ledger saw them (by Flask-Migrate, or before checksums) get ``baseline``
rows without a checksum: known, never an error.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import socket
import typing as t

import sqlalchemy as sa

from ..errors import PartiallyAppliedError
from ..errors import SettingsError
from ..report import report
from ..scripts.checksum import script_checksum
from .ledger_rows import APPLYING
from .ledger_rows import Entry
from .ledger_rows import ENTRY_COLUMNS
from .ledger_rows import package_version
from .ledger_rows import REMOVING
from .ledger_rows import RunningStep
from .ledger_rows import Status
from .ledger_rows import utcnow

if t.TYPE_CHECKING:
    from .lock import LockCondition

#: Columns every version of the ledger has; a table by that name without
#: them belongs to someone else.
_REQUIRED = ("id", "revision", "action", "status")
#: Columns added since the first version, added to older tables on the next run.
_ADDED = ("checksum", "tool_version")


#: How to tell whether the process of a ``running`` row is still at work:
#: ``"held"`` when the caller holds the migration lock itself (nobody else
#: runs), a function telling whether anyone holds the lock now, or ``None``
#: when the lock is off (only a process on this host can be checked).
LockProbe = t.Literal["held"] | t.Callable[[], bool] | None


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
        self._statements: dict[tuple[str, str, str], sa.TextClause] = {}
        self._moves: dict[tuple[int, bool], sa.TextClause] = {}

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
        statement = self._statement(connection, "start", condition.sql)
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
        key = "finish_and_start_deferred" if defer_flush else "finish_and_start"
        statement = self._statement(connection, key, "")
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
        key = (id(version_table), defer_flush)
        statement = self._moves.get(key)
        if statement is None:
            statement = self._moves[key] = sa.text(
                _move_sql(self.table, connection.dialect, version_table, defer_flush)
            )
        params = self._handover(entry_id, statements, checksum, following)
        params.update(fmx_from=move[0], fmx_to=move[1])
        rows = connection.execute(statement, params).all()
        return len(rows), (rows[0][0] if rows else None)

    def _statement(
        self, connection: sa.Connection, kind: str, condition: str
    ) -> sa.TextClause:
        """The statements that carry the lock's check, built once each."""
        key = (connection.dialect.name, kind, condition)
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = sa.text(
                _combined_sql(self.table, connection.dialect, kind, condition)
            )
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

    def examine(self, connection: sa.Connection, probe: LockProbe) -> list[Entry]:
        """The unsettled rows (see :meth:`entries`), oldest first, with the
        runs that were cut off marked.

        A ``running`` row whose process is gone was cut off. Where DDL is not
        transactional its changes may be left behind (``partial``);
        elsewhere they were rolled back with its transaction.
        """
        entries = self.entries(connection, unsettled=True)
        cut = {entry.id for entry in entries if _is_cut_off(entry, probe)}
        if cut and callable(probe):
            # The lock was free when asked: a run that ended between the read
            # and the question recorded its end first, so read the rows again
            # (in a new transaction: MySQL would show the same snapshot).
            connection.rollback()
            c = self.table.c
            cut &= set(
                connection.execute(
                    sa.select(c.id).where(c.id.in_(cut), c.status == "running")
                ).scalars()
            )
        if not cut:
            return entries
        left = not rolls_back_ddl(connection.dialect)
        return [
            dataclasses.replace(entry, cut_off=True, partial=entry.partial or left)
            if entry.id in cut
            else entry
            for entry in entries
        ]

    def needing_attention(
        self, connection: sa.Connection, probe: LockProbe = "held"
    ) -> list[Entry]:
        """Runs that may have left a revision partially applied."""
        return [
            entry for entry in self.examine(connection, probe) if entry.needs_attention
        ]

    def check_clean(
        self,
        engine: sa.Engine,
        database: str,
        command: str,
        *,
        probe: LockProbe = "held",
        mark: bool = True,
        inspect: t.Callable[[Entry], t.Sequence[str]] | None = None,
    ) -> None:
        """Refuse to go on while a revision may be partially applied.

        Runs cut off where their transaction was rolled back are said once:
        with ``mark``, they are recorded as ``crashed`` and not said again.

        :param probe: See :data:`LockProbe`.
        :param inspect: Says what a revision left behind, one line a finding.
        """
        with engine.connect() as connection:
            entries = self.examine(connection, probe)
            stuck = [entry for entry in entries if entry.needs_attention]
            crashed = [e for e in entries if e.cut_off and not e.needs_attention]
            if crashed:
                _report_rolled_back(crashed, connection.dialect, database)
                if mark:
                    self.mark_crashed(connection, [entry.id for entry in crashed])
                    connection.commit()
        if not stuck:
            return
        entry = stuck[-1]
        where = f" in database {database!r}" if database else ""
        findings = list(inspect(entry)) if inspect is not None else []
        found = "".join(f"\n  {line}" for line in findings)
        if found:
            found = (
                f"\nWhat {entry.revision}'s {entry.action}() changes, as the"
                f" database has it now:{found}\n"
            )
        else:
            found = " "
        raise PartiallyAppliedError(
            f"The {entry.describe()}{where}, and {_name(engine.dialect)} cannot"
            f" roll back DDL, so it may be partially applied.{found}Check the"
            f" schema, then run 'flask {command} resolve {entry.revision}"
            f" --rolled-back' (after undoing its changes) or 'flask {command}"
            f" resolve {entry.revision} --applied' (after completing them).",
            entries=stuck,
        )

    def mark_crashed(self, connection: sa.Connection, ids: t.Sequence[int]) -> None:
        """Record runs that were cut off and rolled back as ``crashed``."""
        c = self.table.c
        connection.execute(
            self.table.update()
            .where(c.id.in_(ids), c.status == "running")
            .values(status="crashed", finished_at=utcnow())
        )

    def resolve(
        self, connection: sa.Connection, revision: str, probe: LockProbe = "held"
    ) -> list[Entry]:
        """Mark the runs of ``revision`` that need attention as resolved."""
        stuck = [
            entry
            for entry in self.needing_attention(connection, probe)
            if entry.revision == revision
        ]
        for entry in stuck:
            connection.execute(
                self.table.update()
                .where(self.table.c.id == entry.id)
                .values(status="resolved", finished_at=utcnow())
            )
        return stuck


def _combined_sql(
    table: sa.Table, dialect: sa.Dialect, kind: str, condition: str
) -> str:
    """The SQL of :meth:`Ledger.start_if` (``kind="start"``) or
    :meth:`Ledger.finish_and_start` (PostgreSQL: a data-modifying ``WITH``)."""
    preparer = dialect.identifier_preparer
    name = preparer.format_table(table)
    columns = [c.name for c in table.c if c.name != "id"]
    listed = ", ".join(preparer.quote(column) for column in columns)
    if dialect.name == "postgresql":
        # Typed: a parameter selected into a row would be taken for text.
        values = ", ".join(
            f"CAST(:{c.name} AS {c.type.compile(dialect)})"
            for c in table.c
            if c.name != "id"
        )
    else:
        values = ", ".join(f":{column}" for column in columns)
    if kind == "start":
        returning = " RETURNING id" if dialect.name == "postgresql" else ""
        source = "" if dialect.name == "postgresql" else " FROM DUAL"
        return (
            f"INSERT INTO {name} ({listed}) SELECT {values}{source}"
            f" WHERE {condition}{returning}"
        )
    q = preparer.quote
    flush = ", set_config('synchronous_commit', 'off', true)"
    return (
        f"WITH done AS (UPDATE {name} SET {q('status')} = 'applied',"
        f" {q('statements')} = :done_statements, {q('partial')} = false,"
        f" {q('finished_at')} = :done_at, {q('error')} = NULL,"
        f" {q('checksum')} = :done_checksum WHERE id = :entry_id RETURNING id),"
        f" following AS (INSERT INTO {name} ({listed}) SELECT {values}"
        " RETURNING id)"
        " SELECT (SELECT id FROM following)"
        f"{flush if kind.endswith('deferred') else ''}"
    )


def _move_sql(
    table: sa.Table, dialect: sa.Dialect, version_table: sa.Table, deferred: bool
) -> str:
    """The SQL of :meth:`Ledger.finish_start_and_move`: the ledger's writes
    as data-modifying ``WITH`` parts of the version table's UPDATE, whose
    ``RETURNING`` gives the new row's id (no row: the version row was not
    there)."""
    head = _combined_sql(table, dialect, "finish_and_start", "")
    ctes = head[: head.index(" SELECT (SELECT id FROM following)")]
    preparer = dialect.identifier_preparer
    name = preparer.format_table(version_table)
    column = preparer.quote("version_num")
    flush = ", set_config('synchronous_commit', 'off', true)" if deferred else ""
    return (
        f"{ctes} UPDATE {name} SET {column} = :fmx_to WHERE {column} = :fmx_from"
        f" RETURNING (SELECT id FROM following){flush}"
    )


def rolls_back_ddl(dialect: sa.Dialect) -> bool:
    """Whether a revision cut off on this database was rolled back whole.

    SQLite counts: the ledger's row opens each revision's transaction, and
    the DDL after it is rolled back with it (see the runner).
    """
    from alembic.ddl.impl import DefaultImpl

    if dialect.name == "sqlite":
        return True
    return bool(DefaultImpl.get_by_dialect(dialect).transactional_ddl)


def _name(dialect: sa.Dialect) -> str:
    if dialect.name in ("mysql", "mariadb"):
        return "MariaDB" if getattr(dialect, "is_mariadb", False) else "MySQL"
    return {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(
        dialect.name, "the database"
    )


def _report_rolled_back(
    entries: t.Sequence[Entry], dialect: sa.Dialect, database: str
) -> None:
    where = f" in database {database!r}" if database else ""
    for entry in entries:
        report(
            f"The {entry.action} of {entry.revision} by {entry.process} was cut"
            f" off{where}; {_name(dialect)} rolled it back."
        )


def _is_cut_off(entry: Entry, probe: LockProbe) -> bool:
    """Whether ``entry`` is a run whose process stopped without recording an end."""
    if entry.status != "running":
        return False
    here = entry.pid is not None and entry.host == socket.gethostname()[:255]
    if here and not _process_exists(t.cast(int, entry.pid)):
        return True
    if probe == "held":
        return True
    if probe is None:
        return not here
    return not probe()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or a platform that cannot tell
    return True
