"""What a failed run says and records: which revision failed, where, what
stayed applied and what was rolled back, on each database; and whether a
revision that waited too long for a table lock may be retried.

The runner (:mod:`.runner`) calls these once env.py has stopped; nothing
here runs a revision.
"""

from __future__ import annotations

import contextlib
import re
import time
import typing as t

import sqlalchemy as sa

from ..errors import first_line
from ..errors import MigrationFailedError
from ..errors import short_statement
from ..report import report
from . import blocking
from .ledger import Ledger
from .statements import failure_location
from .statements import statement_kinds
from .tracking import StepTracker

if t.TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

    from .runner import RunResult
    from .runner import RunSettings


def handle_failure(
    tracker: StepTracker,
    error: BaseException,
    ledger: Ledger | None,
    settings: RunSettings,
    others: str | None = None,
    earlier: t.Sequence[str] = (),
    attempts: int = 1,
    expected: t.Collection[str] = (),
) -> t.NoReturn:
    """Record a failed step, say what state it left, and raise.

    :param others: With several databases, what became of the others.
    :param earlier: Revisions of this run on the failed database that were
        rolled back with it (one transaction for all).
    :param expected: Where a rollback leaves the failed database's version
        table, as far as this run knows (see :func:`expected_versions`).
    """
    step = tracker.current
    assert step is not None
    interrupted = isinstance(error, KeyboardInterrupt)
    reason = _reason(error)
    partial = False
    if ledger is not None:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            status: t.Literal["interrupted", "failed"] = (
                "interrupted" if interrupted else "failed"
            )
            partial = _record_failure(tracker, ledger, status, reason)
    at = _version(tracker)
    label = _label(tracker.database, several=others is not None)
    statement = getattr(error, "statement", None)
    stayed, undone = tracker.split_by_commit(statement)
    kept = _kept(step.revision, stayed, undone)
    if partial:
        state = (
            f"{label[0].upper()}{label[1:]} cannot roll back DDL: {kept}. It is"
            f" recorded at {at}; upgrades are refused until you run"
            f" 'flask {settings.command} resolve {step.revision} --applied' or"
            f" '--rolled-back' (see 'flask {settings.command} current')."
        )
    elif ledger is None and stayed and _commits_ddl(tracker.context):
        state = (
            f"{label[0].upper()}{label[1:]} cannot roll back DDL: {kept}. With the"
            " ledger off (MIGRATE_LOG_TABLE) nothing recorded it: the version"
            f" table says {at}; fix the schema before upgrading again."
        )
    elif (
        ledger is None
        and step.statements
        and not rolls_back_ddl(tracker.context, ledger=False)
    ):
        # With the ledger on, its row tells exactly what stayed (above);
        # without it, nothing does.
        state = (
            f"{label[0].upper()}{label[1:]} may not roll back DDL, and with the"
            f" ledger off (MIGRATE_LOG_TABLE) nothing recorded whether it did:"
            f" {step.statements} statement(s) of {step.revision} may have stayed"
            f" applied. The version table says {at}; check the schema before"
            " upgrading again."
        )
    elif earlier and rolls_back_ddl(tracker.context, tracker.ledger is not None):
        revisions = _and([*earlier, step.revision])
        state = f"{revisions} were rolled back; {label} is at {at}."
    elif _moved(at, expected):
        # Our rollback cannot have put it there: another process migrated
        # the database meanwhile (the likely cause of the failure, too).
        state = (
            f"Revision {step.revision} was rolled back here, but {label} is now"
            f" at {at}, not {_versions(expected)}: another process migrated it"
            " meanwhile (was the migration lock off, or broken by a connection"
            f" pooler?). Check 'flask {settings.command} current'."
        )
    else:
        state = f"Revision {step.revision} was rolled back; {label} is at {at}."
    if others:
        state += f" {others}"
    if interrupted:
        report(f"Stopped during the {step.action} of {step.revision}. {state}")
        raise error
    location = failure_location(error, step.path)
    lines = [f"Revision {step.revision} failed: {reason}"]
    if location:
        lines.append(f"  at {location}")
    if statement:
        lines.append(f"  while running: {short_statement(statement)}")
    if blocking.is_lock_timeout(error):
        held = blocking.describe(blocking.blockers(tracker.engine, statement))
        waited = f"{tracker.timeouts.lock:g} s" if tracker.timeouts.lock else ""
        times = f", {attempts} times" if attempts > 1 else ""
        lines.append(
            f"  It waited {waited} for {held}{times} (MIGRATE_DB_LOCK_TIMEOUT,"
            " MIGRATE_DB_LOCK_RETRIES)."
        )
    lines.append(f"  {state}")
    if at == "base" and step.action == "upgrade" and not partial:
        existing = _created_table_that_exists(tracker, statement)
        if existing is not None:
            lines.append(
                f"  Table {existing!r} was there before any revision ran (made by"
                " db.create_all()?). If the database already matches the models,"
                f" record that with 'flask {settings.command} stamp head' instead"
                " of upgrading."
            )
    raise MigrationFailedError("\n".join(lines)) from error


def retry(
    tracker: StepTracker,
    error: BaseException,
    attempt: int,
    trackers: t.Sequence[StepTracker],
    earlier: t.Sequence[str],
    ledger: Ledger | None,
    result: RunResult,
) -> bool:
    """After a lock timeout that left nothing behind, record it, say so,
    wait, and return True: the run goes on from where the database is.

    Nothing is left behind where the failed revision was rolled back whole:
    on a database with transactional DDL, or on MySQL/MariaDB when none of
    its statements had committed (and, in one transaction for all, no
    earlier revision of the run either). One database per run only: with
    several, env.py decides what the others kept.
    """
    step = tracker.current
    timeouts = tracker.timeouts
    if (
        step is None
        or attempt > timeouts.retries
        or len(trackers) != 1
        or not blocking.is_lock_timeout(error)
    ):
        return False
    if not rolls_back_ddl(tracker.context, tracker.ledger is not None):
        stayed, _undone = tracker.split_by_commit(getattr(error, "statement", None))
        if stayed or earlier:
            return False
    reason = _reason(error)
    if ledger is not None:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            if _record_failure(tracker, ledger, "failed", reason):
                return False  # something stayed after all: report it
    held = blocking.describe(
        blocking.blockers(tracker.engine, getattr(error, "statement", None))
    )
    delay = blocking.backoff(attempt)
    report(
        f"Revision {step.revision} waited {timeouts.lock:g} s for {held};"
        f" retrying in {delay:g} s ({attempt} of {timeouts.retries})."
    )
    ran = set(earlier)
    result.steps[:] = [
        done
        for done in result.steps
        if not (done.database == tracker.database and done.revision in ran)
    ]
    time.sleep(delay)
    return True


def _record_failure(
    tracker: StepTracker,
    ledger: Ledger,
    status: t.Literal["interrupted", "failed"],
    reason: str,
) -> bool:
    """Record the tracker's failed step; return whether changes may have
    stayed (see :meth:`Ledger.record_failure`). A "running" row committed
    apart (see the tracker) outlives every failure: its revision was still
    rolled back."""
    step = tracker.current
    assert step is not None
    if tracker.rows_outside and step.entry_id is not None:
        ledger.record_rolled_back(tracker.engine, step, status, reason)
        return False
    return ledger.record_failure(tracker.engine, step, status, reason)


def _reason(error: BaseException) -> str:
    """The error's first line, as the failure report and the ledger give it."""
    if isinstance(error, sa.exc.DBAPIError):
        return first_line(error.orig) or type(error.orig).__name__
    return f"{type(error).__name__}: {first_line(error)}".rstrip(": ")


def _kept(revision: str, stayed: t.Sequence[str], undone: t.Sequence[str]) -> str:
    """``r2's CREATE TABLE stayed applied, its INSERT was rolled back``."""
    text = f"{revision}'s {statement_kinds(stayed)} stayed applied"
    if undone:
        verb = "was" if len(undone) == 1 else "were"
        text += f"; its {statement_kinds(undone)} {verb} rolled back"
    return text


def _and(names: t.Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def rolled_back_with(
    failed: StepTracker, initial: dict[str, tuple[str, ...]], result: RunResult
) -> list[str]:
    """The revisions of this run on ``failed``'s database that its failure
    rolled back too: all of them, when the version table is back where the
    run started (one transaction for all)."""
    ran = [
        step.revision
        for step in result.steps
        if step.database == failed.database and step.revision
    ]
    start = ", ".join(sorted(initial.get(failed.database, ()))) or "base"
    return ran if ran and _version(failed) == start else []


def expected_versions(
    failed: StepTracker, initial: dict[str, tuple[str, ...]], result: RunResult
) -> set[str]:
    """The failed database's version table as this run left it before the
    failed step: where it started, moved by the steps that completed."""
    heads = set(initial.get(failed.database, ()))
    for step in result.steps:
        if step.database == failed.database:
            heads = (heads - set(step.source)) | set(step.destination)
    return heads


def _versions(heads: t.Collection[str]) -> str:
    return ", ".join(sorted(heads)) or "base"


def _moved(at: str, expected: t.Collection[str]) -> bool:
    """Whether the version table read after the failure (``at``) is not
    where this run's rollback leaves it."""
    if at.startswith("an unknown revision"):
        return False
    return at != _versions(expected)


def _commits_ddl(context: MigrationContext) -> bool:
    """MySQL and MariaDB commit at each schema change."""
    return context.dialect.name in ("mysql", "mariadb")


def _label(database: str, several: bool) -> str:
    if database:
        return f"database {database!r}"
    return "the default database" if several else "the database"


def others_after_failure(
    failed: StepTracker,
    trackers: t.Sequence[StepTracker],
    initial: dict[str, tuple[str, ...]],
    result: RunResult,
) -> str | None:
    """What became of the other databases' revisions of this run, read from
    their version tables (env.py decides: the multi-database templates
    commit all databases together, or none)."""
    others = [tr for tr in trackers if tr is not failed]
    if not others:
        return None
    said = []
    for tracker in others:
        label = _label(tracker.database, several=True)
        ran = [
            step.revision
            for step in result.steps
            if step.database == tracker.database and step.revision
        ]
        now = _version(tracker)
        if not ran:
            said.append(f"{label} had no revision to run and is at {now}")
            continue
        revisions = ", ".join(ran)
        if now != (", ".join(sorted(initial.get(tracker.database, ()))) or "base"):
            said.append(f"{label} kept {revisions} of this run and is at {now}")
        elif rolls_back_ddl(tracker.context, ledger=tracker.ledger is not None):
            verb = "were" if len(ran) > 1 else "was"
            said.append(
                f"{label}'s {revisions} of this run {verb} rolled back too;"
                f" it is at {now}"
            )
        else:
            said.append(
                f"{label} is back at {now}, but it cannot roll back DDL: the"
                f" schema changes of {revisions} of this run may have stayed"
            )
    text = "; ".join(said)
    return f"{text[0].upper()}{text[1:]}."


def rolls_back_ddl(context: MigrationContext, ledger: bool) -> bool:
    """Whether a failed revision's schema changes are rolled back with it.

    Alembic assumes SQLite has no transactional DDL, and without an open
    transaction its driver commits each DDL statement at once. The ledger's
    row, written first in each revision's transaction, opens one, and the DDL
    after it is rolled back with it; without the ledger, nothing opens one.
    """
    if context.impl.transactional_ddl:
        return True
    return ledger and context.dialect.name == "sqlite"


_CREATE_TABLE = re.compile(
    r"""\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?
    (?:(?P<schema>[`"\[]?[\w$]+[`"\]]?)\s*\.\s*)?(?P<name>[`"\[]?[\w$]+[`"\]]?)""",
    re.IGNORECASE | re.VERBOSE,
)


def _created_table_that_exists(tracker: StepTracker, statement: object) -> str | None:
    """The table a failed ``CREATE TABLE`` statement creates, if the database
    has it already (as after ``db.create_all()``)."""
    match = _CREATE_TABLE.match(str(statement or ""))
    if match is None:
        return None
    name = match["name"].strip('`"[]')
    schema = match["schema"].strip('`"[]') if match["schema"] else None
    try:
        with tracker.engine.connect() as connection:
            found = sa.inspect(connection).has_table(name, schema=schema)
    except sa.exc.SQLAlchemyError:
        return None
    return name if found else None


def _version(tracker: StepTracker) -> str:
    """The version table's contents, read afresh after a failure."""
    context = tracker.context
    table = sa.table(
        context.version_table,
        sa.column("version_num"),
        schema=context.version_table_schema,
    )
    try:
        with tracker.engine.connect() as connection:
            if not sa.inspect(connection).has_table(table.name, schema=table.schema):
                return "base"
            rows = connection.execute(sa.select(table.c.version_num)).scalars().all()
    except sa.exc.SQLAlchemyError:
        return "an unknown revision (the version table could not be read)"
    return ", ".join(sorted(rows)) or "base"
