"""``status`` and ``verify``: where each database stands, and whether the
scripts it ran are the ones in the migration directory.

Both read each database through env.py (so they see the databases and
schemas upgrade would), then leave the judgement to
:func:`flask_migrate_ext.apply.standing.database_status`.
"""

from __future__ import annotations

import dataclasses
import os
import typing as t

import sqlalchemy as sa

from .. import errors
from ..apply.ledger import Ledger
from ..apply.ledger_rows import applied_rows
from ..apply.ledger_rows import Entry
from ..apply.ledger_rows import ledger_table
from ..apply.runner import locked
from ..apply.standing import database_status
from ..apply.standing import DatabaseStatus
from ..apply.standing import Finding
from ..apply.standing import LedgerState
from ..apply.standing import RevisionStatus
from ..apply.standing import StatusResult
from ..scripts.checksum import script_checksum
from ..scripts.revisions import from_script
from ..scripts.revisions import Revision
from ..state import get_state
from ..state import ledger_table_name
from .base import _config
from .base import _connected_to
from .base import _each_schema
from .base import _run_read_only
from .base import _run_settings
from .base import _scripts
from .base import _user_facing

if t.TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory


@_user_facing
def status(
    directory: str | os.PathLike[str] | None = None,
    *,
    binds: t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
    verify: bool = True,
) -> StatusResult:
    """Where each database stands: its revisions applied and pending, what
    the ledger knows of each, and anything that needs a look.

    Never raises for what it finds: the result's :attr:`~StatusResult.state`
    and :attr:`~StatusResult.exit_code` say how things are (``flask db
    status`` exits with that code).

    :param binds: See :func:`upgrade`.
    :param schemas: Tenant schemas to read; ``MIGRATE_SCHEMAS`` by default.
    :param verify: Also compare each applied script with the checksum the
        ledger recorded (reads every applied script file).

    .. versionadded:: 0.1
    """
    config = _config(directory)
    script = _scripts(config)
    return StatusResult(tuple(_read_all(config, script, schemas, verify)))


@dataclasses.dataclass(frozen=True)
class Accepted:
    """A checksum re-recorded by :func:`verify` ``accept=``.

    .. versionadded:: 0.1
    """

    revision: str
    #: The bind name; ``""`` for the default database.
    database: str
    schema: str | None
    #: The checksum recorded before (``None``: none was).
    old: str | None
    new: str


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found, and what it accepted.

    .. versionadded:: 0.1
    """

    status: StatusResult
    accepted: tuple[Accepted, ...] = ()


@_user_facing
def verify(
    directory: str | os.PathLike[str] | None = None,
    *,
    binds: t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
    accept: t.Sequence[str] = (),
    lock: bool | None = None,
    lock_timeout: float | None = None,
) -> VerifyResult:
    """Check that the scripts each database ran are the ones here.

    Finds applied scripts edited since (line endings and trailing spaces
    aside), applied revisions whose file is gone, and revisions in the
    database that the ledger never saw applied.

    :param accept: Revisions whose script was edited on purpose: record the
        current file's checksum as theirs (under the migration lock), then
        check again.
    :raises VerifyFailedError: Something was found; its ``result`` holds the
        :class:`VerifyResult`.

    .. versionadded:: 0.1
    """
    state = get_state()
    config = _config(directory)
    script = _scripts(config)
    accepted: list[Accepted] = []
    if accept:
        if ledger_table_name() is None:
            raise errors.CommandFailedError(
                "The ledger is disabled (MIGRATE_LOG_TABLE), so there are no"
                " checksums to accept."
            )
        wanted = [_revision_id(script, revision) for revision in accept]
        settings = _run_settings(state, lock, lock_timeout)
        with locked(settings):
            for found in _read_all(config, script, schemas, verify=True):
                accepted.extend(_accept(found, wanted, script, settings.targets))
        missing = sorted(set(wanted) - {a.revision for a in accepted})
        if missing:
            raise errors.CommandFailedError(
                f"Revision {', '.join(missing)} is not applied to any database;"
                " there is no checksum to accept."
            )
    result = VerifyResult(
        StatusResult(tuple(_read_all(config, script, schemas, verify=True))),
        tuple(accepted),
    )
    failures = result.status.verify_failures
    if failures:
        count = len(failures)
        listed = ", ".join(
            f"{f.revision} {_PROBLEMS[f.kind]}" for f in failures[:3] if f.revision
        )
        more = f" and {count - 3} more" if count > 3 else ""
        raise errors.VerifyFailedError(
            f"{count} problem{'s' if count != 1 else ''} with applied revisions:"
            f" {listed}{more}.",
            result=result,
        )
    return result


#: How :func:`verify`'s error names each kind of problem.
_PROBLEMS = {
    "edited": "edited after it was applied",
    "missing-file": "has no script",
    "out-of-band": "applied without the ledger",
    "unknown-revision": "unknown to the scripts",
}


def _revision_id(script: ScriptDirectory, revision: str) -> str:
    found = script.get_revision(revision)
    if found is None:
        raise errors.RevisionNotFoundError(f"No such revision {revision!r}.")
    return found.revision


def _accept(
    found: DatabaseStatus,
    wanted: t.Sequence[str],
    script: ScriptDirectory,
    targets: t.Sequence[t.Any],
) -> list[Accepted]:
    """Record the current checksum of each ``wanted`` revision applied here."""
    target = next(target for target in targets if target.name == found.name)
    name = ledger_table_name()
    assert name is not None
    ledger = Ledger(ledger_table(name))
    applied = {rev.id for rev in found.revisions if rev.applied}
    done = []
    with target.engine.begin() as connection:
        ledger.ensure(connection)
        recorded = applied_rows(ledger.entries(connection))
        for revision in wanted:
            if revision not in applied:
                continue
            path = script.get_revision(revision).path
            new = script_checksum(path)
            if new is None:
                raise errors.CommandFailedError(f"Cannot read {path}.")
            row = recorded.get(revision)
            ledger.accept(connection, revision, new)
            done.append(
                Accepted(
                    revision,
                    found.name,
                    found.schema,
                    row.checksum if row is not None else None,
                    new,
                )
            )
    return done


def _read_all(
    config: t.Any,
    script: ScriptDirectory,
    schemas: t.Sequence[str] | None,
    verify: bool,
) -> list[DatabaseStatus]:
    revisions = {sc.revision: from_script(sc) for sc in script.walk_revisions()}
    heads = tuple(script.get_heads())
    found = []
    for schema in _each_schema(schemas):
        found.extend(_read(config, script, revisions, heads, schema, verify))
    return found


def _read(
    config: t.Any,
    script: ScriptDirectory,
    revisions: dict[str, Revision],
    heads: tuple[str, ...],
    schema: str | None,
    verify: bool,
) -> list[DatabaseStatus]:
    name = ledger_table_name()
    command = get_state().command
    found: list[DatabaseStatus] = []

    def work(current: tuple[str, ...], context: MigrationContext) -> None:
        connection = context.connection
        entries: list[Entry] = []
        ledger: LedgerState = "off"
        if connection is not None and name is not None:
            entries, ledger = read_ledger(connection, name)
        database, url = _connected_to(context)
        found.append(
            database_status(
                name=database,
                url=url,
                schema=schema,
                revisions=revisions,
                heads=heads,
                current=current,
                entries=entries,
                ledger=ledger,
                command=command,
                verify=verify,
            )
        )

    _run_read_only(config, script, work, unknown_ok=True)
    return found


def read_ledger(
    connection: sa.Connection, name: str
) -> tuple[list[Entry], LedgerState]:
    """The ledger's rows, and which version of the ledger it is."""
    ledger = Ledger(ledger_table(name))
    columns = ledger.columns(connection)
    if columns is None:
        return [], "missing"
    state: LedgerState = "current" if "checksum" in columns else "old"
    return ledger.entries(connection), state


__all__ = [
    "Accepted",
    "DatabaseStatus",
    "Finding",
    "RevisionStatus",
    "StatusResult",
    "VerifyResult",
    "status",
    "verify",
]
