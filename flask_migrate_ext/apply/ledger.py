"""The ledger: a table recording every revision applied or reverted, and how it went.

Rows are written inside the revision's own transaction. Where DDL is not
transactional (MySQL, MariaDB, SQLite), a row is written when a revision
starts and updated when it ends: statements that ran before a failure stay
applied, the row says how many ran, and further upgrades refuse to run until
someone says what was done about it (:func:`flask_migrate_ext.resolve`). On
PostgreSQL a failed revision is rolled back whole, so one complete row is
written when it ends. A failure is recorded from a fresh connection.

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
import os
import socket
import typing as t

import sqlalchemy as sa

from ..errors import PartiallyAppliedError
from ..errors import SettingsError
from ..scripts.checksum import script_checksum
from ..settings import DEFAULT_LOG_TABLE

DEFAULT_TABLE = DEFAULT_LOG_TABLE

Status = t.Literal[
    "running", "applied", "failed", "interrupted", "resolved", "stamped", "unstamped"
]
#: Actions whose applied row means "this revision is in the database".
APPLYING = {
    ("upgrade", "applied"),
    ("stamp", "stamped"),
    ("baseline", "applied"),
    ("accept", "applied"),
}
#: Actions whose applied row means "this revision was taken out again".
REMOVING = {("downgrade", "applied"), ("stamp", "unstamped")}
#: Columns every version of the ledger has; a table by that name without
#: them belongs to someone else.
_REQUIRED = ("id", "revision", "action", "status")
#: Columns added since the first version, added to older tables on the next run.
_ADDED = ("checksum", "tool_version")


def ledger_table(name: str = DEFAULT_TABLE, schema: str | None = None) -> sa.Table:
    """The ledger's table definition (a new ``MetaData`` each time)."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("revision", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        #: Changes may be left behind (DDL could not be rolled back).
        sa.Column("partial", sa.Boolean, nullable=False, default=False),
        sa.Column("statements", sa.Integer, nullable=False, default=0),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("error", sa.Text),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer),
        #: Checksum of the script that ran (``sha256:...``); NULL when not
        #: known (rows written before checksums, baseline rows).
        sa.Column("checksum", sa.String(80)),
        #: The flask-migrate-ext version that wrote the row.
        sa.Column("tool_version", sa.String(32)),
        schema=schema,
    )


def _tool_version() -> str:
    from ..version import __version__

    return __version__


def utcnow() -> datetime.datetime:
    """Now, in UTC, without a time zone (as the ledger stores it)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


@dataclasses.dataclass
class RunningStep:
    """The step a database is running, kept for the failure report."""

    revision: str
    action: str
    path: str | None
    statements: int = 0
    entry_id: int | None = None
    started_at: datetime.datetime = dataclasses.field(default_factory=utcnow)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One ledger row."""

    id: int
    revision: str
    action: str
    status: str
    partial: bool
    statements: int
    started_at: datetime.datetime
    finished_at: datetime.datetime | None
    error: str | None
    host: str | None = None
    pid: int | None = None
    checksum: str | None = None
    tool_version: str | None = None

    @property
    def needs_attention(self) -> bool:
        """A failure, interruption or crash that may have left changes behind."""
        return self.partial and self.status in ("running", "failed", "interrupted")

    def describe(self) -> str:
        verb = {"running": "stopped", "interrupted": "was interrupted"}.get(
            self.status, "failed"
        )
        count = f"{self.statements} statement{'s' if self.statements != 1 else ''}"
        return (
            f"{self.action} of revision {self.revision} {verb} after {count}"
            f" (started {self.started_at:%Y-%m-%d %H:%M:%S} UTC)"
        )


def applied_rows(entries: t.Iterable[Entry]) -> dict[str, Entry]:
    """For each revision the ledger believes is applied, the row saying so
    (the latest upgrade, stamp, baseline or accepted checksum, unless a
    downgrade or stamp took it out after)."""
    latest: dict[str, Entry] = {}
    for entry in entries:
        key = (entry.action, entry.status)
        previous = latest.get(entry.revision)
        if entry.action == "accept" and previous is not None:
            # An accepted edit changes the checksum, not when it was applied.
            latest[entry.revision] = dataclasses.replace(
                previous, checksum=entry.checksum
            )
        elif key in APPLYING:
            latest[entry.revision] = entry
        elif key in REMOVING:
            latest.pop(entry.revision, None)
    return latest


class Ledger:
    """Reads and writes one database's ledger table."""

    def __init__(self, table: sa.Table, tool_version: str | None = None) -> None:
        self.table = table
        # Built once: a run writes to the ledger for every revision, and
        # building the statements anew each time cost more than executing them.
        self._insert = table.insert()
        self._update = table.update().where(table.c.id == sa.bindparam("entry_id"))
        self._host = socket.gethostname()[:255]
        self._tool_version = (tool_version or _tool_version())[:32]
        #: Columns of the table in each database, once looked up.
        self._columns: dict[sa.Engine, frozenset[str]] = {}

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
        recorded = self.applied_rows(connection)
        missing = sorted(set(applied) - set(recorded))
        for revision in missing:
            row = self._row(revision, "baseline")
            row.update(status="applied", finished_at=row["started_at"])
            connection.execute(self._insert, row)
        return missing

    def applied_rows(self, connection: sa.Connection) -> dict[str, Entry]:
        """See :func:`applied_rows`."""
        return applied_rows(self.entries(connection))

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

    def record_failure(
        self, engine: sa.Engine, step: RunningStep, status: Status, error: str
    ) -> bool:
        """Record a failed or interrupted step from a fresh connection.

        :return: Whether changes may be left behind: the step's "running" row
            outlived the rollback (an implicit commit, as MySQL does for DDL)
            after at least one statement ran.
        """
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

    def entries(self, connection: sa.Connection) -> list[Entry]:
        """All rows, oldest first; empty when the table does not exist.

        A table made by an earlier version is read as it is (the columns it
        lacks read as NULL): reading never changes the table.
        """
        columns = self.columns(connection)
        if columns is None:
            return []
        wanted = [f.name for f in dataclasses.fields(Entry)]
        c = self.table.c
        rows = connection.execute(
            sa.select(*(c[name] for name in wanted if name in columns)).order_by(c.id)
        )
        return [Entry(**row._mapping) for row in rows]

    def needing_attention(self, connection: sa.Connection) -> list[Entry]:
        """Runs that may have left a revision partially applied."""
        return [entry for entry in self.entries(connection) if entry.needs_attention]

    def check_clean(self, engine: sa.Engine, database: str, command: str) -> None:
        """Refuse to go on while a revision may be partially applied."""
        with engine.connect() as connection:
            stuck = self.needing_attention(connection)
        if not stuck:
            return
        entry = stuck[-1]
        where = f" in database {database!r}" if database else ""
        raise PartiallyAppliedError(
            f"The {entry.describe()}{where}, and the database cannot roll back"
            f" DDL, so it may be partially applied. Check the schema by hand,"
            f" then run 'flask {command} resolve {entry.revision} --rolled-back'"
            f" (after undoing its changes) or 'flask {command} resolve"
            f" {entry.revision} --applied' (after completing them).",
            entries=stuck,
        )

    def resolve(self, connection: sa.Connection, revision: str) -> list[Entry]:
        """Mark the runs of ``revision`` that need attention as resolved."""
        stuck = [
            entry
            for entry in self.needing_attention(connection)
            if entry.revision == revision
        ]
        for entry in stuck:
            connection.execute(
                self.table.update()
                .where(self.table.c.id == entry.id)
                .values(status="resolved", finished_at=utcnow())
            )
        return stuck
