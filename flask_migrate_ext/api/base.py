"""What every API function shares: the error boundary, settings, the Alembic
config, the databases and their ledgers."""

from __future__ import annotations

import functools
import os
import typing as t

import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory

from .. import errors
from ..apply.ledger import Ledger
from ..apply.ledger_checks import check_clean
from ..apply.ledger_checks import LockProbe
from ..apply.ledger_rows import ledger_table
from ..apply.leftovers import inspector
from ..apply.lock import control_engine
from ..apply.lock import is_held
from ..apply.lock import LockMode
from ..apply.lock import LockTarget
from ..databases.tenants import check_schemas
from ..databases.tenants import in_schema
from ..databases.urls import masked
from ..scripts import context_rules
from ..scripts import graph
from ..scripts.config import build_config
from ..scripts.envfile import read_env_py
from ..scripts.event_loop import asks_for_current_loop
from ..scripts.event_loop import current_event_loop
from ..state import current_settings
from ..state import database_names
from ..state import get_db
from ..state import get_engine
from ..state import get_state
from ..state import ledger_table_name
from ..state import MigrateState
from ..state import run_state
from ..state import selected_bind_names
from . import targets
from .boundary import user_facing
from .targets import schema_list

if t.TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script

    from ..apply.runner import RunSettings


# Every API function runs env.py with the extension's rules applied.
context_rules.install()


XArg = str | t.Sequence[str] | None

# The boundary, under the names the API modules import from here.
_user_facing = user_facing


def _config(
    directory: str | os.PathLike[str] | None,
    x_arg: XArg = None,
    opts: t.Iterable[str] | None = None,
    needs_db: bool = True,
) -> AlembicConfig:
    """The command's config, after checking what the command needs exists."""
    state = get_state()
    if needs_db:
        get_db(state)
    config = build_config(state, directory, x_arg, opts)
    location = config.get_main_option("script_location") or state.directory
    if not os.path.isdir(location):
        raise errors.DirectoryNotFoundError(
            f"Migration directory {location!r} does not exist:"
            f" run 'flask {state.command} init' to create it."
        )
    resources = run_state().resources
    if resources is not None and asks_for_current_loop(location):
        resources.enter_context(current_event_loop())
    if selected_bind_names() and not _env_supports_binds(location):
        raise errors.CommandFailedError(
            f"--bind needs an env.py that can choose databases; {location}/env.py"
            " migrates every database. It comes from an older template: copy the"
            " current 'flask-multidb' template's env.py over it."
        )
    return config


def _schema_names(schemas: t.Sequence[str] | None) -> list[str]:
    return schema_list(schemas)


def _schema_engine(names: list[str]) -> sa.Engine:
    state = get_state()
    if len(database_names()) > 1:
        raise errors.CommandFailedError(
            "Tenant schemas work with a single database; use --bind to choose one."
        )
    engine = get_engine(state, database_names()[0])
    sync_engine = t.cast(sa.Engine, getattr(engine, "sync_engine", engine))
    check_schemas(control_engine(engine), names)
    return sync_engine


def _target_plan(
    config: AlembicConfig,
    schemas: list[str],
    jobs: int,
    continue_on_error: bool,
    binds_apart: bool = True,
) -> targets.Plan:
    """The command's targets (:func:`.targets.plan`); binds can be targets of
    their own only when ``binds_apart`` and the config's env.py can work on
    some of the databases only."""
    location = config.get_main_option("script_location") or get_state().directory
    return targets.plan(
        schemas,
        _schema_engine,
        binds_apart and _env_supports_binds(location),
        jobs=jobs,
        continue_on_error=continue_on_error,
    )


def _env_supports_binds(location: str) -> bool:
    text = read_env_py(location)
    return text is None or "database_names" in text  # None: Alembic reports it


def _run_settings(
    state: MigrateState, lock: bool | None, lock_timeout: float | None
) -> RunSettings:
    """Settings for one run: arguments first, then app config, then defaults."""
    # The runner only for commands that run: not for current, check, history...
    from ..apply.runner import RunSettings
    from ..apply.timeouts import Timeouts

    settings = current_settings()
    return RunSettings(
        lock=settings.lock is not False if lock is None else lock,
        lock_mode=_lock_mode(settings.lock),
        lock_timeout=settings.lock_timeout if lock_timeout is None else lock_timeout,
        transaction_per_revision=settings.per_revision,
        targets=_targets(state),
        ledger_table=settings.log_table,
        command=state.command,
        timeouts=Timeouts(
            lock=settings.db_lock_timeout,
            statement=settings.statement_timeout,
            retries=settings.db_lock_retries,
        ),
        data_loss_guard=settings.data_loss_guard,
    )


def _lock_mode(setting: t.Any) -> LockMode:
    """The lock mode ``MIGRATE_LOCK`` asks for (``True``: found out)."""
    if setting in ("table", "session"):
        return t.cast(LockMode, setting)
    return "auto"


def _targets(state: MigrateState) -> tuple[LockTarget, ...]:
    version_table = state.context_kwargs.get("version_table", "alembic_version")
    schema = run_state().overrides.get("version_table_schema")  # a tenant's
    targets = []
    for name in database_names():
        engine = get_engine(state, name)
        targets.append(
            LockTarget(name, control_engine(engine), version_table, engine, schema)
        )
    return tuple(targets)


def _ledger() -> Ledger | None:
    name = ledger_table_name()
    return Ledger(ledger_table(name)) if name else None


def _check_ledgers(
    state: MigrateState,
    script: ScriptDirectory | None = None,
    holding_lock: bool = False,
) -> None:
    """Raise :class:`PartiallyAppliedError` if a revision was left half-done.

    Without the lock: a run still ``running`` in the ledger is alive while
    someone holds the lock. Runs cut off and rolled back are said, and left
    for the next upgrade to record.

    :param script: To say what a revision cut off left behind.
    :param holding_lock: The caller holds the migration lock: every
        ``running`` row is a run cut off.
    """
    ledger = _ledger()
    if ledger is None:
        return
    settings = current_settings()
    mode = _lock_mode(settings.lock)
    for target in _targets(state):
        probe: LockProbe = None
        if holding_lock:
            probe = "held"
        elif settings.lock is not False:
            probe = functools.partial(is_held, target, mode)
        check_clean(
            ledger,
            target.engine,
            target.name,
            state.command,
            probe=probe,
            mark=False,
            inspect=inspector(script, target) if script is not None else None,
        )


def _scripts(config: AlembicConfig) -> ScriptDirectory:
    """The migration scripts, with a broken revision graph reported by file."""
    return graph.scripts(config)


def _path(script: Script | None | list[Script | None]) -> str | None:
    if isinstance(script, list):
        script = next((s for s in script if s is not None), None)
    return script.path if script is not None else None


def _run_read_only(
    config: AlembicConfig,
    script: ScriptDirectory,
    fn: t.Callable[[tuple[str, ...], MigrationContext], None],
    *,
    unknown_ok: bool = False,
) -> None:
    """Run env.py with a work function that only reads the database.

    :param unknown_ok: A version table naming a revision no script defines
        is for ``fn`` to report (``status``), not an error.
    """

    def work(heads: tuple[str, ...], context: MigrationContext) -> list[t.Any]:
        if not unknown_ok:
            connection = context.connection
            engine = connection.engine if connection is not None else None
            graph.check_known(
                script, heads, _database_name(engine), get_state().command
            )
        fn(heads, context)
        return []

    with EnvironmentContext(config, script, fn=work, dont_mutate=True):
        script.run_env()


def _each_schema(schemas: t.Sequence[str] | None) -> t.Iterator[str | None]:
    """Run the loop's body once (``None``), or once per tenant schema with the
    app's connections working in that schema."""
    names = _schema_names(schemas)
    if not names:
        yield None
        return
    engine = _schema_engine(names)
    for schema in names:
        with in_schema(engine, schema):
            yield schema


def _connected_to(context: MigrationContext) -> tuple[str, str]:
    """The bind name and masked URL of the database env.py connected to."""
    connection = context.connection
    if connection is None:
        return "", "?"
    return _database_name(connection.engine), masked(connection.engine.url)


def _database_name(engine: sa.Engine | None) -> str:
    """The bind name of the database env.py connected to (``""``: default)."""
    if engine is None:
        return ""
    state = get_state()
    for name in database_names():
        app_engine = get_engine(state, name)
        if engine is app_engine or engine is getattr(app_engine, "sync_engine", 0):
            return name
    return ""


def _not_up_to_date(
    config: AlembicConfig, script: ScriptDirectory, retry: str
) -> errors.NotUpToDateError:
    """Alembic's "Target database is not up to date.", naming each database's
    revisions and the heads, and the way on."""
    heads = tuple(script.get_heads())
    found: list[tuple[str, tuple[str, ...]]] = []

    def read(current: tuple[str, ...], context: MigrationContext) -> None:
        connection = context.connection
        engine = connection.engine if connection is not None else None
        found.append((_database_name(engine), tuple(current)))

    _run_read_only(config, script, read)
    several = len(found) > 1
    behind = []
    for name, current in found:
        if set(current) == set(heads):
            continue
        if name:
            where = f"database {name!r}"
        else:
            where = "the default database" if several else "the database"
        behind.append(f"{where} is at {', '.join(current) or 'base (empty)'}")
    plural = len(heads) != 1
    command = get_state().command
    first = f"'flask {command} upgrade'"
    if plural:
        first = f"'flask {command} merge heads' and {first}"
    return errors.NotUpToDateError(
        f"Target database is not up to date: {'; '.join(behind) or 'it is behind'};"
        f" the head{'s' if plural else ''} {'are' if plural else 'is'}"
        f" {', '.join(heads)}. Run {first} first, then 'flask {command} {retry}' again."
    )
