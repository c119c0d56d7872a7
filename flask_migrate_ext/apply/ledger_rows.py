"""The ledger's rows: its table, what a row says, and which rows say a
revision is applied. Read by :mod:`.ledger` (which writes them), the status
(:mod:`.standing`) and the fast probe (:mod:`.probe`).
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

import sqlalchemy as sa

from ..settings import DEFAULT_LOG_TABLE

DEFAULT_TABLE = DEFAULT_LOG_TABLE

Status = t.Literal[
    "running",
    "applied",
    "failed",
    "interrupted",
    "resolved",
    "crashed",
    "stamped",
    "unstamped",
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


def package_version() -> str:
    """This package's version, as each row records it."""
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
    #: Still ``running``, but its process is gone: the run was cut off. Where
    #: DDL is not transactional, ``partial`` is set with it.
    cut_off: bool = False

    @property
    def needs_attention(self) -> bool:
        """A failure, interruption or crash that may have left changes behind."""
        return self.partial and self.status in ("running", "failed", "interrupted")

    @property
    def process(self) -> str:
        """``process 1234 on host X``, as far as the row knows."""
        pid = f"process {self.pid}" if self.pid is not None else "a process"
        return f"{pid} on {self.host}" if self.host else pid

    def describe(self) -> str:
        started = f"(started {self.started_at:%Y-%m-%d %H:%M:%S} UTC)"
        if self.cut_off:
            return (
                f"{self.action} of revision {self.revision} was cut off"
                f" ({self.process} stopped without recording an end) after its"
                f" DDL started {started}"
            )
        verb = {"running": "stopped", "interrupted": "was interrupted"}.get(
            self.status, "failed"
        )
        count = f"{self.statements} statement{'s' if self.statements != 1 else ''}"
        return (
            f"{self.action} of revision {self.revision} {verb} after {count} {started}"
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


#: The ledger's columns, in the order of :class:`Entry`'s fields (the fields
#: after them are worked out, not stored).
ENTRY_COLUMNS = tuple(
    field.name for field in dataclasses.fields(Entry) if field.name in ledger_table().c
)
