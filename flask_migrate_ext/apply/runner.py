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
import typing as t

import sqlalchemy as sa
from alembic import util as alembic_util
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory

from ..report import report
from ..scripts import graph
from ..scripts import version_writes
from ..state import running
from . import dataloss
from . import ledger_checks
from .failures import expected_versions
from .failures import handle_failure
from .failures import others_after_failure
from .failures import retry
from .failures import rolled_back_with
from .failures import rolls_back_ddl
from .interrupt import cancellable
from .interrupt import server_canceller
from .ledger import Ledger
from .ledger_checks import LockProbe
from .ledger_rows import DEFAULT_TABLE
from .ledger_rows import ledger_table
from .leftovers import inspector
from .lock import LockHandle
from .lock import LockMode
from .lock import LockTarget
from .lock import migration_lock
from .progress_emitter import run_progress
from .progress_emitter import RunProgress
from .results import Action as Action
from .results import RunResult as RunResult
from .results import Step as Step
from .timeouts import Timeouts
from .tracking import StepTracker

if t.TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.runtime.migration import MigrationStep


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """How a run protects the database; see the "Deploying" docs."""

    #: Take the migration lock (never in ``--sql`` mode, which touches nothing).
    lock: bool = True
    #: ``auto``: the table lock behind a transaction pooler, else session locks.
    lock_mode: LockMode = "auto"
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
                    lock=held[0] if held else None,
                )
                stack.callback(tracker.close)
                trackers.append(tracker)
                initial.setdefault(name, tuple(heads))
                graph.check_known(script, heads, name, settings.command)
        steps = graph.plan_steps(script, action, destination, heads)
        progress = run_progress(action, steps, tracker, len(settings.targets))
        if progress is not None:
            stack.callback(progress.close)
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
        return _track(action, steps, result, tracker, check, progress)

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
    with locked(settings, sql) as lock:
        held.extend([lock] if lock is not None else [])
        if ledger is not None and action != "stamp":
            for target in settings.targets:
                ledger_checks.check_clean(
                    ledger,
                    target.engine,
                    target.name,
                    settings.command,
                    probe="held" if settings.lock else None,
                    inspect=inspector(script, target),
                )
        if not sql:
            _guard_data_loss(script, action, destination, settings)
        version_writes.install()
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
                earlier = rolled_back_with(failed, initial, result)
                if retry(failed, error, attempt, trackers, earlier, ledger, result):
                    trackers.clear()  # env.py runs again, from where the database is
                    continue
                others = others_after_failure(failed, trackers, initial, result)
                expected = expected_versions(failed, initial, result)
                handle_failure(
                    failed, error, ledger, settings, others, earlier, attempt, expected
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
    with locked(settings):
        resolved = []
        for target in settings.targets:
            with target.engine.begin() as connection:
                probe: LockProbe = "held" if settings.lock else None
                if ledger_checks.resolve(ledger, connection, revision, probe):
                    resolved.append(target.name)
        if resolved and applied:
            held = dataclasses.replace(settings, lock=False)
            run(config, "stamp", revision, settings=held)
    return resolved


def locked(
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
        if rolls_back_ddl(context, ledger):
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
    progress: RunProgress | None = None,
) -> t.Iterator[t.Any]:
    # Alembic runs a step between two ``next()`` calls on this generator:
    # being asked for the next step means the previous one is done.
    for position, step in enumerate(steps, 1):
        if check_lock is not None and tracker is not None:
            tracker.check_lock(check_lock, step)
        last = position == len(steps)
        following = None if last else steps[position]
        if progress is not None:
            progress.started(position)
        yield tracker.wrap(step, last, following) if tracker is not None else step
        if progress is not None:
            progress.finished()
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
