"""What the ledger says before a run, and what is done about it: runs cut
off (their process gone without recording an end), revisions that may be
partially applied, which block further upgrades until resolved, and the
crashes whose transaction was rolled back, said once and marked.

Only the unsettled rows are read (see :meth:`.Ledger.entries`).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import typing as t

import sqlalchemy as sa

from ..errors import PartiallyAppliedError
from ..report import report
from .ledger import Ledger
from .ledger_rows import Entry
from .ledger_rows import utcnow

#: How to tell whether the process of a ``running`` row is still at work:
#: ``"held"`` when the caller holds the migration lock itself (nobody else
#: runs), a function telling whether anyone holds the lock now, or ``None``
#: when the lock is off (only a process on this host can be checked).
LockProbe = t.Literal["held"] | t.Callable[[], bool] | None


def examine(ledger: Ledger, connection: sa.Connection, probe: LockProbe) -> list[Entry]:
    """The unsettled rows (see :meth:`.Ledger.entries`), oldest first, with the
    runs that were cut off marked.

    A ``running`` row whose process is gone was cut off. Where DDL is not
    transactional its changes may be left behind (``partial``);
    elsewhere they were rolled back with its transaction.
    """
    entries = ledger.entries(connection, unsettled=True)
    cut = {entry.id for entry in entries if _is_cut_off(entry, probe)}
    if cut and callable(probe):
        # The lock was free when asked: a run that ended between the read
        # and the question recorded its end first, so read the rows again
        # (in a new transaction: MySQL would show the same snapshot).
        connection.rollback()
        c = ledger.table.c
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
    ledger: Ledger, connection: sa.Connection, probe: LockProbe = "held"
) -> list[Entry]:
    """Runs that may have left a revision partially applied."""
    return [
        entry for entry in examine(ledger, connection, probe) if entry.needs_attention
    ]


def check_clean(
    ledger: Ledger,
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
        entries = examine(ledger, connection, probe)
        stuck = [entry for entry in entries if entry.needs_attention]
        crashed = [e for e in entries if e.cut_off and not e.needs_attention]
        if crashed:
            _report_rolled_back(crashed, connection.dialect, database)
            if mark:
                mark_crashed(ledger, connection, [entry.id for entry in crashed])
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


def mark_crashed(
    ledger: Ledger, connection: sa.Connection, ids: t.Sequence[int]
) -> None:
    """Record runs that were cut off and rolled back as ``crashed``."""
    c = ledger.table.c
    connection.execute(
        ledger.table.update()
        .where(c.id.in_(ids), c.status == "running")
        .values(status="crashed", finished_at=utcnow())
    )


def resolve(
    ledger: Ledger, connection: sa.Connection, revision: str, probe: LockProbe = "held"
) -> list[Entry]:
    """Mark the runs of ``revision`` that need attention as resolved."""
    stuck = [
        entry
        for entry in needing_attention(ledger, connection, probe)
        if entry.revision == revision
    ]
    for entry in stuck:
        connection.execute(
            ledger.table.update()
            .where(ledger.table.c.id == entry.id)
            .values(status="resolved", finished_at=utcnow())
        )
    return stuck


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
