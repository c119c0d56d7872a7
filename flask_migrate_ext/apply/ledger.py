"""The ledger: a table recording every revision applied or reverted, and how it went.

Rows are written inside the revision's own transaction. Where DDL is not
transactional (MySQL, MariaDB, SQLite), a row is written when a revision
starts and updated when it ends: statements that ran before a failure stay
applied, the row says how many ran, and further upgrades refuse to run until
someone says what was done about it (:func:`flask_migrate_ext.resolve`). On
PostgreSQL a failed revision is rolled back whole, so one complete row is
written when it ends. A failure is recorded from a fresh connection.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import socket
import typing as t

import sqlalchemy as sa

from ..errors import PartiallyAppliedError
from ..settings import DEFAULT_LOG_TABLE

DEFAULT_TABLE = DEFAULT_LOG_TABLE

Status = t.Literal["running", "applied", "failed", "interrupted", "resolved"]


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
        schema=schema,
    )


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


class Ledger:
    """Reads and writes one database's ledger table."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        # Built once: a run writes to the ledger for every revision, and
        # building the statements anew each time cost more than executing them.
        self._insert = table.insert()
        self._update = table.update().where(table.c.id == sa.bindparam("entry_id"))
        self._host = socket.gethostname()[:255]

    def ensure(self, connection: sa.Connection) -> None:
        self.table.create(connection, checkfirst=True)

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
    ) -> None:
        """Record a finished step in one row (see :meth:`start`, :meth:`finish`)."""
        row = self._row(revision, action, started_at=started_at)
        row.update(status=status, statements=statements, finished_at=utcnow())
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
        }

    def finish(
        self,
        connection: sa.Connection,
        entry_id: int,
        status: Status,
        statements: int,
        partial: bool = False,
        error: str | None = None,
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
        """All rows, oldest first; empty when the table does not exist."""
        if not sa.inspect(connection).has_table(
            self.table.name, schema=self.table.schema
        ):
            return []
        c = self.table.c
        rows = connection.execute(
            sa.select(
                c.id,
                c.revision,
                c.action,
                c.status,
                c.partial,
                c.statements,
                c.started_at,
                c.finished_at,
                c.error,
            ).order_by(c.id)
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
