"""Apply revisions to a database: the one place upgrade, downgrade and stamp go through.

Alembic runs the user's env.py, which calls ``context.run_migrations()``; that
calls back the *work function* given here, which hands Alembic the steps to
run one at a time. Handing them out one at a time is what lets the runner
know when a step starts and when it has finished, whatever env.py looks like,
so progress, locking and failure reporting hook in here and not into env.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import re
import time
import typing as t

import sqlalchemy as sa
from alembic import util as alembic_util
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory

from ..errors import first_line
from ..errors import MigrationFailedError
from ..errors import short_statement
from ..report import report
from ..scripts import graph
from ..state import running
from . import blocking
from . import dataloss
from .interrupt import cancellable
from .interrupt import server_canceller
from .ledger import DEFAULT_TABLE
from .ledger import Ledger
from .ledger import ledger_table
from .ledger import LockProbe
from .leftovers import inspector
from .lock import LockHandle
from .lock import LockMode
from .lock import LockTarget
from .lock import migration_lock
from .tracking import failure_location
from .tracking import statement_kinds
from .tracking import StepTracker
from .tracking import Timeouts

if t.TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.runtime.migration import MigrationStep

Action = t.Literal["upgrade", "downgrade", "stamp"]


@dataclasses.dataclass(frozen=True)
class Step:
    """One revision step that was applied to the database."""

    #: ``"upgrade"``, ``"downgrade"`` or ``"stamp"``.
    action: Action
    #: The revision whose script ran (for a stamp, the revision stamped to or from).
    revision: str | None
    #: Version table contents the step started from.
    source: tuple[str, ...]
    #: Version table contents the step ended at.
    destination: tuple[str, ...]
    #: First line of the revision's docstring.
    message: str | None
    #: The tenant schema it ran in (``--schema``), if any.
    schema: str | None = None
    #: The database it ran on: a bind name, ``""`` for the default database
    #: (and in ``--sql`` mode, which connects to none).
    #:
    #: .. versionadded:: 0.1
    database: str = ""


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """How a run protects the database; see the "Deploying" docs."""

    #: Take the migration lock (never in ``--sql`` mode, which touches nothing).
    lock: bool = True
    lock_mode: LockMode = "session"
    #: Seconds to wait for another process's lock before giving up.
    lock_timeout: float = 600.0
    #: Commit each revision on its own (``True``) or all of them at once;
    #: ``None`` leaves it to env.py and ``Migrate()``, per revision if they
    #: say nothing.
    transaction_per_revision: bool | None = None
    #: The app's databases, to lock and to check for unfinished revisions.
    targets: tuple[LockTarget, ...] = ()
    #: Name of the ledger table; ``None`` records nothing.
    ledger_table: str | None = DEFAULT_TABLE
    #: The command group's name, for messages (``flask <command> ...``).
    command: str = "db"
    #: Server-side lock and statement timeouts for each revision.
    timeouts: Timeouts = dataclasses.field(default_factory=Timeouts)
    #: ``MIGRATE_DATA_LOSS_GUARD``: what to do before dropping rows.
    data_loss_guard: dataloss.GuardMode = "warn"
    #: Go on when the guard asks (``--yes``), or ask this callable.
    confirm_data_loss: dataloss.Confirm = False


@dataclasses.dataclass
class RunResult:
    """What a run did. ``steps`` is empty when there was nothing to do."""

    steps: list[Step] = dataclasses.field(default_factory=list)
    #: Version table contents when the run started (``None`` in ``--sql`` mode).
    initial: tuple[str, ...] | None = None


def _step(action: Action, step: MigrationStep, database: str = "") -> Step:
    info = step.info  # type: ignore[attr-defined]
    revision = info.up_revision_id if not info.is_stamp else None
    if info.is_stamp:
        ids = info.destination_revision_ids or info.source_revision_ids
        revision = ids[0] if ids else None
    script = info.up_revision
    doc = getattr(script, "doc", None) if script is not None else None
    return Step(
        action=action,
        revision=revision,
        source=tuple(info.source_revision_ids),
        destination=tuple(info.destination_revision_ids),
        message=doc or None,
        database=database,
    )


def run(
    config: Config,
    action: Action,
    revision: str | t.Sequence[str],
    *,
    sql: bool = False,
    tag: str | None = None,
    purge: bool = False,
    settings: RunSettings | None = None,
) -> RunResult:
    """Move the database to ``revision`` by running env.py once.

    :param revision: Target; in ``--sql`` mode it may be a ``start:end`` range.
    """
    settings = settings or RunSettings()
    script = graph.scripts(config)
    result = RunResult()
    starting_rev, destination = _split_range(action, revision, sql)
    _check_target_exists(script, destination)

    ledger = None
    if settings.ledger_table and not sql:
        ledger = Ledger(ledger_table(settings.ledger_table))
    trackers: list[StepTracker] = []
    initial: dict[str, tuple[str, ...]] = {}  # per database
    stack = contextlib.ExitStack()
    announced: list[bool] = []  # the transaction mode is said once per run
    held: list[LockHandle] = []  # the migration lock, once taken

    def plan(heads: t.Any, context: MigrationContext) -> t.Iterable[t.Any]:
        tracker = None
        # What env.py ended up configuring, whatever its shape. An env.py that
        # began a transaction itself (the multi-database templates) holds
        # every revision in it: Alembic then commits none on its own.
        in_env_transaction = bool(getattr(context, "_in_external_transaction", False))
        per_revision = (
            bool(context.opts.get("transaction_per_migration"))
            and not in_env_transaction
        )
        if not sql:
            if context.connection is None:
                result.initial = tuple(heads)
            else:
                target = _target(settings, context.connection)
                name = target.name if target else ""
                if name not in initial:  # a retry goes on from the first try
                    result.initial = tuple(heads)
                engine = target.engine if target else context.connection.engine
                canceller = server_canceller(context.connection, engine)
                stack.enter_context(cancellable(canceller))
                tracker = StepTracker(
                    name,
                    context,
                    ledger,
                    engine,
                    settings.timeouts,
                    defer_flush=per_revision,
                    applied=_applied(script, tuple(heads)),
                    per_revision=per_revision,
                )
                stack.callback(tracker.close)
                trackers.append(tracker)
                initial.setdefault(name, tuple(heads))
                graph.check_known(script, heads, name, settings.command)
        steps = graph.plan_steps(script, action, destination, heads)
        if steps and not sql and action != "stamp" and not announced:
            if in_env_transaction:
                report(
                    f"Running {action} in env.py's own transaction: the revisions"
                    " of this run commit together, on each database."
                )
            else:
                report(_mode_line(action, per_revision, context, ledger is not None))
            announced.append(True)
        check = held[0].check if held else None
        return _track(action, steps, result, tracker, check)

    environment = EnvironmentContext(
        config,
        script,
        fn=plan,
        as_sql=sql,
        starting_rev=starting_rev,
        destination_rev=destination,
        tag=tag,
        purge=purge,
    )
    with _locked(settings, sql) as lock:
        held.extend([lock] if lock is not None else [])
        if ledger is not None and action != "stamp":
            for target in settings.targets:
                ledger.check_clean(
                    target.engine,
                    target.name,
                    settings.command,
                    probe="held" if settings.lock else None,
                    inspect=inspector(script, target),
                )
        if not sql:
            _guard_data_loss(script, action, destination, settings)
        for attempt in itertools.count(1):
            try:
                with (
                    stack,
                    running(**_transaction_mode(settings.transaction_per_revision)),
                    environment,
                ):
                    script.run_env()
                break
            except BaseException as error:
                failed = next((tr for tr in trackers if tr.current is not None), None)
                if failed is None:
                    for tracker in trackers:
                        tracker.record_lock_loss()
                    raise
                earlier = _rolled_back_with(failed, initial, result)
                if _retry(failed, error, attempt, trackers, earlier, ledger, result):
                    trackers.clear()  # env.py runs again, from where the database is
                    continue
                others = _others_after_failure(failed, trackers, initial, result)
                _handle_failure(
                    failed, error, ledger, settings, others, earlier, attempt
                )
        if ledger is not None and action == "stamp":
            _record_stamps(ledger, script, result, settings, initial)
    if not sql and not result.steps and action != "stamp":
        at = ", ".join(result.initial or ()) or "base"
        report(f"Nothing to {action}: the database is at {at}.")
    return result


def _guard_data_loss(
    script: ScriptDirectory, action: Action, destination: t.Any, settings: RunSettings
) -> None:
    """Refuse or report dropping rows, before env.py runs (see :mod:`.dataloss`)."""
    dataloss.guard(
        script,
        action,
        destination,
        settings.targets,
        settings.data_loss_guard,
        settings.confirm_data_loss,
        settings.command,
    )


def resolve(
    config: Config, revision: str, applied: bool, settings: RunSettings
) -> list[str]:
    """Mark the failed run of ``revision`` as dealt with and, when ``applied``,
    stamp the version table to it.

    Both happen under one hold of the migration lock, so no other process's
    upgrade can run between the two.

    :return: The databases whose ledger had an entry resolved.
    """
    assert settings.ledger_table is not None
    ledger = Ledger(ledger_table(settings.ledger_table))
    with _locked(settings):
        resolved = []
        for target in settings.targets:
            with target.engine.begin() as connection:
                probe: LockProbe = "held" if settings.lock else None
                if ledger.resolve(connection, revision, probe):
                    resolved.append(target.name)
        if resolved and applied:
            held = dataclasses.replace(settings, lock=False)
            run(config, "stamp", revision, settings=held)
    return resolved


def _locked(
    settings: RunSettings, sql: bool = False
) -> t.ContextManager[LockHandle | None]:
    """The migration lock, as ``settings`` ask (never in ``--sql`` mode)."""
    if not settings.lock or sql:
        return contextlib.nullcontext()
    return migration_lock(
        settings.targets, settings.lock_timeout, settings.lock_mode, settings.command
    )


def _applied(
    script: ScriptDirectory, heads: tuple[str, ...]
) -> t.Callable[[], set[str]]:
    """What a database at ``heads`` has applied, worked out when asked."""
    return lambda: graph.applied_ids(script, heads)


def _record_stamps(
    ledger: Ledger,
    script: ScriptDirectory,
    result: RunResult,
    settings: RunSettings,
    initial: t.Mapping[str, tuple[str, ...]],
) -> None:
    """Write the ledger's rows for a stamp: the revisions it marked applied
    (with their script's checksum) or took out, per database."""
    for target in settings.targets:
        steps = [step for step in result.steps if step.database == target.name]
        if not steps:
            continue
        heads = set(initial.get(target.name, ()))
        for step in steps:  # as Alembic updates the version table
            heads = (heads - set(step.source)) | set(step.destination)
        before = graph.applied_ids(script, initial.get(target.name, ()))
        after = graph.applied_ids(script, heads)
        added = {revision: _path(script, revision) for revision in after - before}
        with target.engine.begin() as connection:
            ledger.ensure(connection, _applied(script, tuple(before)))
            ledger.record_stamp(connection, added, before - after)


def _path(script: ScriptDirectory, revision: str) -> str | None:
    found = script.get_revision(revision)
    return found.path if found is not None else None


def _mode_line(
    action: str, per_revision: bool, context: MigrationContext, ledger: bool
) -> str:
    """What the run's transactions mean for this database, said once.

    Right after Alembic's "Will assume non-transactional DDL", a bare "one
    transaction per revision" reads as a contradiction: say what is rolled
    back when a revision fails.
    """
    scope = "per revision" if per_revision else "for all revisions"
    line = f"Running {action} with one transaction {scope}"
    dialect = context.dialect
    if context.impl.transactional_ddl:
        return f"{line}."
    if dialect.name == "sqlite":
        if _rolls_back_ddl(context, ledger):
            return (
                f"{line}: SQLite rolls back a failed revision's schema changes"
                " too, whatever Alembic assumes."
            )
        return (
            f"{line}: without the ledger (MIGRATE_LOG_TABLE), a failed"
            " revision's schema changes may stay on SQLite."
        )
    name = "MariaDB" if getattr(dialect, "is_mariadb", False) else "MySQL"
    if dialect.name not in ("mysql", "mariadb"):
        name = dialect.name
    return (
        f"{line} for data and the version table: {name} commits each schema"
        " change at once, so a revision that fails part-way stays partly applied."
    )


def _transaction_mode(per_revision: bool | None) -> dict[str, t.Any]:
    """The run's transaction mode: chosen, or per revision unless env.py or
    ``Migrate()`` say otherwise."""
    if per_revision is None:
        return {"fallbacks": {"transaction_per_migration": True}}
    return {"overrides": {"transaction_per_migration": per_revision}}


def _target(settings: RunSettings, connection: sa.Connection) -> LockTarget | None:
    for target in settings.targets:
        if target.serves(connection.engine):
            return target
    return None


def _handle_failure(
    tracker: StepTracker,
    error: BaseException,
    ledger: Ledger | None,
    settings: RunSettings,
    others: str | None = None,
    earlier: t.Sequence[str] = (),
    attempts: int = 1,
) -> t.NoReturn:
    """Record a failed step, say what state it left, and raise.

    :param others: With several databases, what became of the others.
    :param earlier: Revisions of this run on the failed database that were
        rolled back with it (one transaction for all).
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
        and not _rolls_back_ddl(tracker.context, ledger=False)
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
    elif earlier and _rolls_back_ddl(tracker.context, tracker.ledger is not None):
        revisions = _and([*earlier, step.revision])
        state = f"{revisions} were rolled back; {label} is at {at}."
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


def _retry(
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
    if not _rolls_back_ddl(tracker.context, tracker.ledger is not None):
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


def _rolled_back_with(
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


def _commits_ddl(context: MigrationContext) -> bool:
    """MySQL and MariaDB commit at each schema change."""
    return context.dialect.name in ("mysql", "mariadb")


def _label(database: str, several: bool) -> str:
    if database:
        return f"database {database!r}"
    return "the default database" if several else "the database"


def _others_after_failure(
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
        elif _rolls_back_ddl(tracker.context, ledger=tracker.ledger is not None):
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


def _rolls_back_ddl(context: MigrationContext, ledger: bool) -> bool:
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


def _check_target_exists(script: ScriptDirectory, destination: t.Any) -> None:
    """Fail on an unknown target before env.py runs.

    Alembic creates the version table before it looks the target up, so a
    typo would otherwise leave an empty version table in a fresh database.
    Relative targets (``-1``, ``head+2``) depend on the database and are
    left to Alembic.
    """
    for target in alembic_util.to_list(destination):
        if target and not any(sign in target for sign in "+-"):
            script.get_revisions(target)


def _track(
    action: Action,
    steps: t.Sequence[MigrationStep],
    result: RunResult,
    tracker: StepTracker | None,
    check_lock: t.Callable[[], None] | None = None,
) -> t.Iterator[t.Any]:
    # Alembic runs a step between two ``next()`` calls on this generator:
    # being asked for the next step means the previous one is done.
    for position, step in enumerate(steps, 1):
        if check_lock is not None and tracker is not None:
            tracker.check_lock(check_lock, step)
        last = position == len(steps)
        following = None if last else steps[position]
        yield tracker.wrap(step, last, following) if tracker is not None else step
        database = tracker.database if tracker is not None else ""
        result.steps.append(_step(action, step, database))


def _split_range(
    action: Action, revision: str | t.Sequence[str], sql: bool
) -> tuple[str | None, t.Any]:
    if action == "stamp":
        revisions = alembic_util.to_list(revision)
        if not sql:
            return None, tuple(revisions)
        starts = {r.split(":", 1)[0] for r in revisions if ":" in r}
        if len(starts) > 1:
            raise alembic_util.CommandError(
                "Stamp operation with --sql only supports a single starting"
                " revision at a time"
            )
        targets = tuple(r.split(":", 1)[-1] for r in revisions)
        return (starts.pop() if starts else None), targets
    assert isinstance(revision, str)
    if ":" in revision:
        if not sql:
            raise alembic_util.CommandError("Range revision not allowed")
        start, end = revision.split(":", 1)
        return start, end
    if sql and action == "downgrade":
        raise alembic_util.CommandError(
            "downgrade with --sql requires <fromrev>:<torev>"
        )
    return None, revision
