"""API functions that change a database: upgrade, downgrade, stamp, resolve,
uninstall."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import typing as t

import sqlalchemy as sa

from .. import errors
from ..apply.dataloss import Confirm
from ..apply.lock import LockTarget
from ..apply.lock import migration_lock
from ..apply.lock import uses_table_lock
from ..apply.runner import resolve as resolve_run
from ..apply.runner import run
from ..apply.runner import RunResult
from ..apply.runner import RunSettings
from ..apply.targets import TargetResult
from ..databases.tenants import in_schema
from ..progress import Listener
from ..progress import listening
from ..report import report
from ..scripts import context_rules
from ..settings import LOCK_TABLE
from ..state import get_state
from ..state import MigrateState
from . import targets
from .base import _check_ledgers
from .base import _config
from .base import _run_settings
from .base import _schema_engine
from .base import _schema_names
from .base import _target_plan
from .base import _user_facing
from .base import XArg


@_user_facing
def upgrade(
    directory: str | os.PathLike[str] | None = None,
    revision: str = "head",
    sql: bool = False,
    tag: str | None = None,
    x_arg: XArg = None,
    *,
    lock: bool | None = None,
    lock_timeout: float | None = None,
    binds: t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
    confirm_data_loss: Confirm = False,
    jobs: int = 1,
    continue_on_error: bool = False,
    progress: Listener | None = None,
) -> RunResult:
    """The full run of :func:`flask_migrate_ext.upgrade` (documented there),
    when its quick answer (:mod:`flask_migrate_ext.apply.noop`) can't say."""
    with _listening(progress):
        return _run_targets(
            _Run("upgrade", revision, sql, tag, lock, lock_timeout, confirm_data_loss),
            directory,
            x_arg,
            schemas,
            jobs,
            continue_on_error,
        )


@_user_facing
def downgrade(
    directory: str | os.PathLike[str] | None = None,
    revision: str = "-1",
    sql: bool = False,
    tag: str | None = None,
    x_arg: XArg = None,
    *,
    lock: bool | None = None,
    lock_timeout: float | None = None,
    binds: t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
    confirm_data_loss: Confirm = False,
    jobs: int = 1,
    continue_on_error: bool = False,
    progress: Listener | None = None,
) -> RunResult:
    """Revert the database to an earlier revision, one step back by default.

    :param lock: Take the migration lock; see :func:`upgrade`.
    :param lock_timeout: Seconds to wait for the lock; see :func:`upgrade`.
    :param binds: See :func:`upgrade`.
    :param schemas: See :func:`upgrade`.
    :param confirm_data_loss: When the downgrade drops tables or columns
        holding rows: go on (``True``), refuse (``False``, the default), or
        ask this callable; see :func:`upgrade`.
    :param progress: See :func:`upgrade`.
    :param jobs: See :func:`upgrade`.
    :param continue_on_error: See :func:`upgrade`.
    :return: The steps reverted, and each target's result (``targets``).
    :raises DataLossRefusedError: Rows would be lost and that was not
        confirmed; nothing ran.

    .. versionchanged:: 0.1
        ``confirm_data_loss``, ``jobs``, ``continue_on_error``, ``progress``.
    """
    if sql and revision == "-1":
        revision = "head:-1"
    with _listening(progress):
        return _run_targets(
            _Run(
                "downgrade", revision, sql, tag, lock, lock_timeout, confirm_data_loss
            ),
            directory,
            x_arg,
            schemas,
            jobs,
            continue_on_error,
        )


def _listening(progress: Listener | None) -> t.ContextManager[None]:
    """The listener given, else the one installed (or none)."""
    return contextlib.nullcontext() if progress is None else listening(progress)


class _Run(t.NamedTuple):
    """What each target of an upgrade or downgrade runs."""

    action: t.Literal["upgrade", "downgrade"]
    revision: str
    sql: bool
    tag: str | None
    lock: bool | None
    lock_timeout: float | None
    confirm_data_loss: Confirm


def _run_targets(
    what: _Run,
    directory: str | os.PathLike[str] | None,
    x_arg: XArg,
    schemas: t.Sequence[str] | None,
    jobs: int,
    continue_on_error: bool,
) -> RunResult:
    """Run an upgrade or downgrade on each target (see :mod:`.targets`)."""
    targets.check_jobs(jobs, what.sql)
    config = _config(directory, x_arg)
    names = _schema_names(schemas)
    if names and what.sql:
        raise errors.CommandFailedError(
            "--sql and tenant schemas don't mix: generate the SQL once and run"
            " it in each schema."
        )
    work_plan = _target_plan(
        config, names, jobs, continue_on_error, binds_apart=not what.sql
    )

    def work(target: targets.Target) -> RunResult:
        # Per target: the lock and the ledger checks follow the chosen bind.
        settings = _run_settings(get_state(), what.lock, what.lock_timeout)
        settings = dataclasses.replace(
            settings, confirm_data_loss=what.confirm_data_loss
        )
        return run(
            config,
            what.action,
            what.revision,
            sql=what.sql,
            tag=what.tag,
            settings=settings,
        )

    results, values = targets.run(work_plan, work, _fill)
    first = values[0]
    if not work_plan.several and work_plan.targets[0].schema is None:
        assert first is not None
        first.targets = results
        return first
    combined = RunResult(targets=results)
    for result in results:
        combined.steps.extend(result.steps)
    targets.raise_failed(results, combined, get_state().command)
    return combined


def _fill(value: RunResult, result: TargetResult) -> None:
    """A target's steps and revisions, from what its run returned."""
    result.steps = [
        dataclasses.replace(step, schema=result.schema) if result.schema else step
        for step in value.steps
    ]
    if len({step.database for step in value.steps}) > 1 or value.initial is None:
        return  # several databases in one run: no one "before" and "after"
    heads = set(value.initial)
    for step in value.steps:  # as Alembic updates the version table
        heads = (heads - set(step.source)) | set(step.destination)
    result.before = value.initial
    result.after = tuple(sorted(heads))


@_user_facing
def stamp(
    directory: str | os.PathLike[str] | None = None,
    revision: str | t.Sequence[str] = "head",
    sql: bool = False,
    tag: str | None = None,
    purge: bool = False,
    *,
    lock: bool | None = None,
    lock_timeout: float | None = None,
    binds: t.Sequence[str] | None = None,
) -> RunResult:
    """Set the version table to ``revision`` without running any migration.

    :param purge: Empty the version table first, for a database whose
        recorded revision no longer exists.
    """
    config = _config(directory)
    settings = _run_settings(get_state(), lock, lock_timeout)
    return run(
        config, "stamp", revision, sql=sql, tag=tag, purge=purge, settings=settings
    )


@_user_facing
def resolve(
    directory: str | os.PathLike[str] | None = None,
    revision: str = "",
    applied: bool = False,
    *,
    lock: bool | None = None,
    lock_timeout: float | None = None,
) -> list[str]:
    """Mark a partially applied revision as dealt with, so upgrades can go on.

    After a revision failed part-way on a database that cannot roll back DDL
    (MySQL, MariaDB), fix the schema by hand, then either say the revision's
    changes were undone (``applied=False``: the next upgrade runs it again)
    or completed (``applied=True``: the version table is stamped to it).

    :param lock: Take the migration lock; see :func:`upgrade`.
    :param lock_timeout: Seconds to wait for the lock; see :func:`upgrade`.
    :return: The databases whose ledger had an entry resolved.

    .. versionchanged:: 0.1
        The ``lock`` and ``lock_timeout`` arguments.
    """
    config = _config(directory)
    settings = _run_settings(get_state(), lock, lock_timeout)
    if settings.ledger_table is None:
        raise errors.CommandFailedError(
            "The ledger is disabled (MIGRATE_LOG_TABLE), so there is nothing"
            " to resolve."
        )
    resolved = resolve_run(config, revision, applied, settings)
    if not resolved:
        raise errors.CommandFailedError(
            f"No failed run of revision {revision!r} needs resolving."
        )
    outcome = "stamped as applied" if applied else "marked rolled back"
    config.print_stdout("Resolved %s: %s.", revision, outcome)
    return resolved


@dataclasses.dataclass(frozen=True)
class DroppedTable:
    """One of the extension's own tables, dropped by :func:`uninstall`."""

    #: The table's name.
    name: str
    #: How many rows it held; for the ledger, the runs whose record is lost.
    rows: int
    #: The tenant schema it was in (``--schema``); ``None`` for the default one.
    schema: str | None = None


@dataclasses.dataclass(frozen=True)
class UninstallResult:
    """What :func:`uninstall` dropped from one database (or would drop)."""

    #: The database's name in the app; ``""`` is the default database.
    database: str
    #: The tables, in the order dropped; empty when none of ours was there.
    tables: tuple[DroppedTable, ...] = ()


@_user_facing
def uninstall(
    directory: str | os.PathLike[str] | None = None,
    *,
    binds: t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
    lock: bool | None = None,
    lock_timeout: float | None = None,
    dry_run: bool = False,
) -> list[UninstallResult]:
    """Drop the extension's own tables, so that Flask-Migrate can take over.

    The tables are the ledger (``MIGRATE_LOG_TABLE``, ``flask_migrate_ext_log``
    by default) and the lock table (``flask_migrate_ext_lock``), in every
    database the app migrates: the tables hidden from autogenerate. The
    version table and the app's tables are left alone. The ledger's record
    of past runs is lost; the next upgrade run with this package creates the
    tables again.

    Refuses while the ledger shows a revision left partially applied: that
    record is what says which revision needs repair (see :func:`resolve`).

    :param directory: Not used (the tables are found in the databases);
        accepted so that every function takes the directory first.
    :param binds: See :func:`upgrade`.
    :param schemas: PostgreSQL tenant schemas to clean one after another;
        ``MIGRATE_SCHEMAS`` by default.
    :param lock: Take the migration lock while dropping; see :func:`upgrade`.
    :param lock_timeout: Seconds to wait for the lock; see :func:`upgrade`.
    :param dry_run: Drop nothing; return what would be dropped, after the
        same checks.
    :return: One entry per database, with the tables dropped and their row
        counts.
    :raises PartiallyAppliedError: A revision needs repair first.

    .. versionadded:: 0.1
    """
    state = get_state()
    settings = _run_settings(state, lock, lock_timeout)
    names = _schema_names(schemas)
    if not names:
        return _uninstall_here(state, settings, dry_run)
    engine = _schema_engine(names)
    for schema in names:  # refuse before dropping anything in any schema
        with in_schema(engine, schema):
            _check_before_uninstall(state)
    dropped: list[DroppedTable] = []
    for schema in names:
        with in_schema(engine, schema):
            (result,) = _uninstall_here(state, settings, dry_run, schema)
        dropped.extend(result.tables)
    return [UninstallResult(settings.targets[0].name, tuple(dropped))]


def _check_before_uninstall(state: MigrateState, holding_lock: bool = False) -> None:
    try:
        _check_ledgers(state, holding_lock=holding_lock)
    except errors.PartiallyAppliedError as e:
        raise errors.PartiallyAppliedError(
            f"{e} Not uninstalling: the ledger is the only record of this.",
            entries=e.entries,
        ) from None


def _uninstall_here(
    state: MigrateState,
    settings: RunSettings,
    dry_run: bool,
    schema: str | None = None,
) -> list[UninstallResult]:
    """Drop the extension's tables from each database, in the current schema."""
    found = {target.name: _present(target.engine) for target in settings.targets}
    if not any(found.values()):
        return [UninstallResult(name) for name in found]
    if dry_run:
        _check_before_uninstall(state)
        return [
            UninstallResult(
                target.name,
                _drop(target.engine, found[target.name], schema, dry_run=True),
            )
            for target in settings.targets
        ]
    # In table mode the lock is a row of the lock table: that table is
    # dropped once the lock is released.
    table_locked = {
        target.name
        for target in settings.targets
        if settings.lock and uses_table_lock(target, settings.lock_mode)
    }
    held: t.ContextManager[object] = contextlib.nullcontext()
    if settings.lock:
        held = migration_lock(
            settings.targets, settings.lock_timeout, settings.lock_mode
        )
    dropped: dict[str, tuple[DroppedTable, ...]] = {}
    with held:
        _check_before_uninstall(state, holding_lock=settings.lock)
        for target in settings.targets:
            names = _present(target.engine)  # again, now that nothing changes
            if target.name in table_locked:
                names = [name for name in names if name != LOCK_TABLE]
            dropped[target.name] = _drop(target.engine, names, schema)
    for target in settings.targets:
        if target.name in table_locked:
            dropped[target.name] += _drop_lock_table_if_free(target, schema)
    return [UninstallResult(name, tables) for name, tables in dropped.items()]


def _present(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        return [
            name for name in context_rules.own_tables() if inspector.has_table(name)
        ]


def _drop(
    engine: sa.Engine,
    names: t.Sequence[str],
    schema: str | None,
    *,
    dry_run: bool = False,
    only_if_empty: bool = False,
) -> tuple[DroppedTable, ...]:
    """Count each table's rows, then drop it (not with ``dry_run``)."""
    dropped = []
    with engine.begin() as connection:
        for name in names:
            table = sa.Table(name, sa.MetaData())
            count = sa.select(sa.func.count()).select_from(table)
            rows = int(connection.execute(count).scalar_one())
            if only_if_empty and rows:
                continue
            if not dry_run:
                table.drop(connection)
            dropped.append(DroppedTable(name, rows, schema))
    return tuple(dropped)


def _drop_lock_table_if_free(
    target: LockTarget, schema: str | None
) -> tuple[DroppedTable, ...]:
    """Drop the lock table unless another process holds a lock in it now."""
    if LOCK_TABLE not in _present(target.engine):
        return ()
    dropped = _drop(target.engine, [LOCK_TABLE], schema, only_if_empty=True)
    if not dropped:
        where = f" in database {target.name!r}" if target.name else ""
        report(
            f"Kept {LOCK_TABLE}{where}: another process took the migration lock"
            f" meanwhile. Run 'flask {get_state().command} uninstall' again"
            " when it has finished."
        )
    return dropped
