"""The Python API: Flask-Migrate's functions, returning data and raising typed errors.

Every function needs an app context and has Flask-Migrate 4.1's name,
parameters and parameter order. They print what Flask-Migrate prints, and also
return what they did. Errors are :class:`~flask_migrate_ext.errors.MigrateError`
subclasses; nothing here exits the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import typing as t

import sqlalchemy as sa
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from alembic.util import asbool
from alembic.util import CommandError
from flask import current_app

from . import context_rules
from . import diagnostics
from . import envfile
from . import errors
from . import graph
from .config import build_config
from .config import Config
from .config import TEMPLATES_DIR
from .diffs import describe_diffs
from .envfile import EnvUpgrade
from .extension import current_settings
from .extension import database_names
from .extension import get_db
from .extension import get_engine
from .extension import get_state
from .extension import in_cli
from .extension import ledger_table_name
from .extension import MigrateState
from .extension import resolve_directory
from .extension import running
from .extension import selected_bind_names
from .extension import selected_binds
from .ledger import Ledger
from .ledger import ledger_table
from .lock import control_engine
from .lock import LOCK_TABLE
from .lock import LockTarget
from .lock import migration_lock
from .report import report
from .runner import run
from .runner import RunResult
from .runner import RunSettings
from .settings import misspelled_keys
from .settings import Settings
from .tenants import check_schemas
from .tenants import in_schema
from .tracking import Timeouts
from .urls import masked

if t.TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
XArg = str | t.Sequence[str] | None


def _user_facing(f: F) -> F:
    """Turn Alembic and database errors raised by ``f`` into typed errors."""

    @functools.wraps(f)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        with (
            translate_errors(),
            _host_logging_kept(),
            running(active=True, settings=_read_settings()),
            selected_binds(kwargs.get("binds")),
        ):
            return f(*args, **kwargs)

    return t.cast(F, wrapper)


def _read_settings() -> Settings | None:
    """The app's settings, read once for the command; a likely typo in a
    ``MIGRATE_*`` key is reported, as it would otherwise be ignored."""
    if not current_app:
        return None  # list_templates needs no app
    app_config = current_app.config
    for given, meant in misspelled_keys(app_config):
        report(f"Warning: unknown setting {given}; did you mean {meant}?")
    return Settings.from_config(app_config)


@contextlib.contextmanager
def _host_logging_kept() -> t.Iterator[None]:
    """Leave the host app's logging as it was, outside the ``flask db`` CLI.

    env.py files written by Flask-Migrate call ``logging.config.fileConfig``,
    which disables every existing logger and replaces the root handlers; an
    app calling ``upgrade()`` at startup would lose its logging. Ours skip
    that outside the CLI; for theirs, the logging state is put back.
    """
    if in_cli():
        yield
        return
    manager = logging.Logger.manager
    loggers = [logging.getLogger()] + [
        logger
        for logger in list(manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    saved = [
        (logger, logger.disabled, logger.level, list(logger.handlers), logger.propagate)
        for logger in loggers
    ]
    try:
        yield
    finally:
        for logger, disabled, level, handlers, propagate in saved:
            logger.disabled = disabled
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate


@contextlib.contextmanager
def translate_errors() -> t.Iterator[None]:
    """Re-raise Alembic's and SQLAlchemy's errors as :mod:`.errors` types."""
    import sqlalchemy.exc as sa_exc

    try:
        yield
    except errors.MigrateError:
        raise
    except CommandError as e:
        raise _from_command_error(e) from e
    except sa_exc.DBAPIError as e:
        raise _from_dbapi_error(e) from e


_COMMAND_ERRORS: list[tuple[str, type[errors.MigrateError]]] = [
    ("Can't locate revision", errors.RevisionNotFoundError),
    ("No such revision", errors.RevisionNotFoundError),
    ("Target database is not up to date", errors.NotUpToDateError),
    ("Path doesn't exist", errors.DirectoryNotFoundError),
    # Raised by the multi-database env.py files, which cannot import this package.
    ("Database not configured", errors.DatabaseNotConfiguredError),
]


def _from_command_error(e: CommandError) -> errors.MigrateError:
    message = str(e)
    for prefix, error_class in _COMMAND_ERRORS:
        if message.startswith(prefix):
            return error_class(message)
    return errors.CommandFailedError(message)


def _masked_url(e: BaseException) -> str:
    # The templates' env.py tag a connection error with the database it came
    # from; other env.py files do not, so only a single database is named.
    tagged = getattr(e, "flask_migrate_ext_database", None)
    try:
        if tagged is not None:
            name, url = tagged
            shown = masked(url)
            return f"database {name!r} at {shown}" if name else str(shown)
        names = database_names()
        if len(names) > 1:
            listed = ", ".join(name or "<default>" for name in names)
            return f"one of the databases ({listed})"
        url = get_db(get_state()).engine.url
    except Exception:  # the URL only decorates the message
        return "the database"
    return masked(url)


def _from_dbapi_error(e: t.Any) -> errors.MigrateError:
    reason = errors.first_line(e.orig) or type(e.orig).__name__
    if e.statement is None or e.connection_invalidated:
        # No statement: the error came from connecting, not from SQL.
        return errors.DatabaseUnreachableError(
            f"Cannot connect to {_masked_url(e)}: {reason}"
        )
    return errors.MigrationFailedError(
        f"{reason}\n  while running: {errors.short_statement(e.statement)}"
    )


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
    if selected_bind_names() and not _env_supports_binds(location):
        raise errors.CommandFailedError(
            f"--bind needs an env.py that can choose databases; {location}/env.py"
            " migrates every database. It comes from an older template: copy the"
            " current 'flask-multidb' template's env.py over it."
        )
    return config


def _run_in_schemas(
    schemas: t.Sequence[str] | None, sql: bool, run_one: t.Callable[[], RunResult]
) -> RunResult:
    """Run once, or once per tenant schema, reporting each schema."""
    names = _schema_names(schemas)
    if not names:
        return run_one()
    if sql:
        raise errors.CommandFailedError(
            "--sql and tenant schemas don't mix: generate the SQL once and run"
            " it in each schema."
        )
    engine = _schema_engine(names)
    combined = RunResult()
    for schema in names:
        report(f"Schema {schema}:")
        with in_schema(engine, schema):
            result = run_one()
        combined.steps.extend(
            dataclasses.replace(step, schema=schema) for step in result.steps
        )
    return combined


def _schema_names(schemas: t.Sequence[str] | None) -> list[str]:
    if schemas:
        return list(schemas)
    return list(current_settings().schemas)


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


def _env_supports_binds(location: str) -> bool:
    try:
        with open(os.path.join(location, "env.py"), encoding="utf-8") as f:
            return "database_names" in f.read()
    except OSError:
        return True  # let Alembic report the missing env.py


def _run_settings(
    state: MigrateState, lock: bool | None, lock_timeout: float | None
) -> RunSettings:
    """Settings for one run: arguments first, then app config, then defaults."""
    settings = current_settings()
    return RunSettings(
        lock=settings.lock is not False if lock is None else lock,
        lock_mode="table" if settings.lock == "table" else "session",
        lock_timeout=settings.lock_timeout if lock_timeout is None else lock_timeout,
        transaction_per_revision=settings.per_revision,
        targets=_targets(state),
        ledger_table=settings.log_table,
        command=state.command,
        timeouts=Timeouts(
            lock=settings.db_lock_timeout, statement=settings.statement_timeout
        ),
    )


def _targets(state: MigrateState) -> tuple[LockTarget, ...]:
    version_table = state.context_kwargs.get("version_table", "alembic_version")
    targets = []
    for name in database_names():
        engine = get_engine(state, name)
        targets.append(LockTarget(name, control_engine(engine), version_table, engine))
    return tuple(targets)


def _ledger() -> Ledger | None:
    name = ledger_table_name()
    return Ledger(ledger_table(name)) if name else None


def _check_ledgers(state: MigrateState) -> None:
    """Raise :class:`PartiallyAppliedError` if a revision was left half-done."""
    ledger = _ledger()
    if ledger is not None:
        for target in _targets(state):
            ledger.check_clean(target.engine, target.name, state.command)


def _scripts(config: AlembicConfig) -> ScriptDirectory:
    """The migration scripts, with a broken revision graph reported by file."""
    return graph.scripts(config)


def _path(script: Script | None | list[Script | None]) -> str | None:
    if isinstance(script, list):
        script = next((s for s in script if s is not None), None)
    return script.path if script is not None else None


def _available_templates() -> list[tuple[str, str]]:
    found = []
    for entry in sorted(TEMPLATES_DIR.iterdir()):
        readme = entry / "README"
        if readme.is_file():
            with open(readme, encoding="utf-8") as f:
                found.append((entry.name, f.readline().strip()))
    return found


@_user_facing
def list_templates() -> list[tuple[str, str]]:
    """List the templates ``init`` can use.

    :return: ``(name, description)`` pairs, sorted by name.
    """
    config = Config()
    templates = _available_templates()
    config.print_stdout("Available templates:\n")
    for name, synopsis in templates:
        config.print_stdout("%s - %s", name, synopsis)
    return templates


@_user_facing
def init(
    directory: str | os.PathLike[str] | None = None,
    multidb: bool = False,
    template: str | None = None,
    package: bool = False,
) -> str:
    """Create a new migration directory.

    :param directory: Where to create it; the app's directory by default.
    :param multidb: Use the multiple-database template.
    :param template: Template name, or a path to a template directory.
    :param package: Write ``__init__.py`` files in the new directories.
    :return: The directory created.
    """
    state = get_state()
    directory = resolve_directory(state, directory)
    template_directory = None
    if template is not None and ("/" in template or "\\" in template):
        template_directory, template = os.path.split(template)
    if template is None:
        template = "flask-multidb" if multidb else "flask"
    config = build_config(state, directory, template_directory=template_directory)
    config.config_file_name = os.path.join(directory, "alembic.ini")
    if not os.path.isdir(os.path.join(config.get_template_directory(), template)):
        valid = ", ".join(name for name, _ in _available_templates())
        raise errors.TemplateNotFoundError(
            f"No template named {template!r}. Available templates: {valid}."
        )
    if os.path.isdir(directory) and os.listdir(directory):
        raise errors.DirectoryExistsError(
            f"Directory {directory!r} already exists and is not empty."
        )
    alembic_command.init(config, directory, template=template, package=package)
    return directory


@_user_facing
def revision(
    directory: str | os.PathLike[str] | None = None,
    message: str | None = None,
    autogenerate: bool = False,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    *,
    binds: t.Sequence[str] | None = None,
) -> str | None:
    """Create a new revision file.

    :return: The path of the new file, or ``None`` when autogenerate found no
        change (then no file is written) or with ``sql``.
    """
    return _write_revision(
        directory,
        None,
        message,
        autogenerate=autogenerate,
        sql=sql,
        head=head,
        splice=splice,
        branch_label=branch_label,
        version_path=version_path,
        rev_id=rev_id,
    )


def _write_revision(
    directory: str | os.PathLike[str] | None,
    x_arg: XArg,
    message: str | None,
    autogenerate: bool,
    verbose: bool = False,
    **options: t.Any,
) -> str | None:
    opts = ["autogenerate"] if autogenerate else None
    config = _config(directory, x_arg, opts=opts, needs_db=autogenerate)
    had_revisions = bool(_scripts(config).get_heads())
    if not autogenerate:
        script = alembic_command.revision(config, message, **options)
        return _path(script)
    state = get_state()
    location = config.get_main_option("script_location") or state.directory
    hint = envfile.outdated_hint(location, state.command)
    if hint is not None:
        report(hint)
    with diagnostics.watching() as watcher:
        script = alembic_command.revision(config, message, autogenerate=True, **options)
    path = _path(script)
    diagnostics.explain(
        watcher.comparisons, path is not None, had_revisions, verbose, state.command
    )
    return path


@_user_facing
def migrate(
    directory: str | os.PathLike[str] | None = None,
    message: str | None = None,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    x_arg: XArg = None,
    *,
    binds: t.Sequence[str] | None = None,
    verbose: bool = False,
) -> str | None:
    """Autogenerate a new revision file (``revision --autogenerate``).

    When nothing is found, the reason is reported (no models imported, tables
    made by ``db.create_all()``), as is a revision that adds or drops
    unnamed constraints.

    :param verbose: Report the comparison table by table.
    :return: The path of the new file, or ``None`` when the models match the
        database (then no file is written).
    """
    return _write_revision(
        directory,
        x_arg,
        message,
        autogenerate=True,
        verbose=verbose,
        sql=sql,
        head=head,
        splice=splice,
        branch_label=branch_label,
        version_path=version_path,
        rev_id=rev_id,
    )


@_user_facing
def edit(
    directory: str | os.PathLike[str] | None = None, revision: str = "current"
) -> None:
    """Open a revision file in ``$EDITOR``."""
    config = _config(directory, needs_db=revision == "current")
    _scripts(config)
    alembic_command.edit(config, revision)


@_user_facing
def merge(
    directory: str | os.PathLike[str] | None = None,
    revisions: str | t.Sequence[str] = "",
    message: str | None = None,
    branch_label: str | None = None,
    rev_id: str | None = None,
) -> str | None:
    """Create a revision that merges several revisions.

    With no ``revisions``, all current heads are merged (Flask-Migrate would
    create an unrelated second base revision instead).

    :return: The path of the new file.
    """
    config = _config(directory, needs_db=False)
    if not revisions:
        heads = _scripts(config).get_heads()
        if len(heads) < 2:
            raise errors.CommandFailedError(
                "Nothing to merge: there is only one head. Name the revisions"
                " to merge, e.g. 'flask db merge heads'."
            )
        revisions = "heads"
    script = alembic_command.merge(
        config,
        list(revisions) if not isinstance(revisions, str) else revisions,
        message=message,
        branch_label=branch_label,
        rev_id=rev_id,
    )
    return _path(script)


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
) -> RunResult:
    """Upgrade the database to a later revision.

    :param revision: Target, ``head`` by default; with ``sql`` it may be a
        ``start:end`` range.
    :param lock: Take the migration lock; ``MIGRATE_LOCK`` by default.
    :param lock_timeout: Seconds to wait for the lock; ``MIGRATE_LOCK_TIMEOUT``
        (600) by default.
    :param binds: With several databases, work on these only (``--bind``).
    :param schemas: PostgreSQL tenant schemas to upgrade one after another,
        each with its own version table; ``MIGRATE_SCHEMAS`` by default.
    :return: The steps applied.
    """
    config = _config(directory, x_arg)
    settings = _run_settings(get_state(), lock, lock_timeout)
    return _run_in_schemas(
        schemas,
        sql,
        lambda: run(config, "upgrade", revision, sql=sql, tag=tag, settings=settings),
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
) -> RunResult:
    """Revert the database to an earlier revision, one step back by default.

    :param lock: Take the migration lock; see :func:`upgrade`.
    :param lock_timeout: Seconds to wait for the lock; see :func:`upgrade`.
    :param binds: See :func:`upgrade`.
    :param schemas: See :func:`upgrade`.
    :return: The steps reverted.
    """
    if sql and revision == "-1":
        revision = "head:-1"
    config = _config(directory, x_arg)
    settings = _run_settings(get_state(), lock, lock_timeout)
    return _run_in_schemas(
        schemas,
        sql,
        lambda: run(config, "downgrade", revision, sql=sql, tag=tag, settings=settings),
    )


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


def _run_read_only(
    config: AlembicConfig,
    script: ScriptDirectory,
    fn: t.Callable[[tuple[str, ...], MigrationContext], None],
) -> None:
    """Run env.py with a work function that only reads the database."""

    def work(heads: tuple[str, ...], context: MigrationContext) -> list[t.Any]:
        fn(heads, context)
        return []

    with EnvironmentContext(config, script, fn=work, dont_mutate=True):
        script.run_env()


@_user_facing
def resolve(
    directory: str | os.PathLike[str] | None = None,
    revision: str = "",
    applied: bool = False,
) -> list[str]:
    """Mark a partially applied revision as dealt with, so upgrades can go on.

    After a revision failed part-way on a database that cannot roll back DDL
    (MySQL, MariaDB), fix the schema by hand, then either say the revision's
    changes were undone (``applied=False``: the next upgrade runs it again)
    or completed (``applied=True``: the version table is stamped to it).

    :return: The databases whose ledger had an entry resolved.
    """
    state = get_state()
    config = _config(directory)
    ledger = _ledger()
    if ledger is None:
        raise errors.CommandFailedError(
            "The ledger is disabled (MIGRATE_LOG_TABLE), so there is nothing"
            " to resolve."
        )
    resolved = []
    settings = _run_settings(state, None, None)
    with migration_lock(settings.targets, settings.lock_timeout, settings.lock_mode):
        for target in settings.targets:
            with target.engine.begin() as connection:
                if ledger.resolve(connection, revision):
                    resolved.append(target.name)
    if not resolved:
        raise errors.CommandFailedError(
            f"No failed run of revision {revision!r} needs resolving."
        )
    if applied:
        run(config, "stamp", revision, settings=settings)
    outcome = "stamped as applied" if applied else "marked rolled back"
    config.print_stdout("Resolved %s: %s.", revision, outcome)
    return resolved


@_user_facing
def current(
    directory: str | os.PathLike[str] | None = None,
    verbose: bool = False,
    *,
    binds: t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
) -> list[str]:
    """Show the revision(s) the database is at.

    :param binds: See :func:`upgrade`.
    :param schemas: Tenant schemas to report on, one after another (a
        ``Schema <name>:`` line before each); see :func:`upgrade`.
    :return: The revision ids in the version table(s); empty for a database
        with no migration applied.
    :raises PartiallyAppliedError: After printing, when the ledger shows a
        revision left partially applied.
    """
    config = _config(directory)
    script = _scripts(config)
    found: list[str] = []

    def display(heads: tuple[str, ...], context: MigrationContext) -> None:
        if verbose:
            url = context.connection.engine.url if context.connection else None
            shown = masked(url) if url else "?"
            config.print_stdout("Current revision(s) for %s:", shown)
        for rev in graph.current_revisions(script, heads):
            config.print_stdout(rev.cmd_format(verbose))
        found.extend(heads)

    names = _schema_names(schemas)
    if not names:
        _run_read_only(config, script, display)
        _check_ledgers(get_state())
        return found
    engine = _schema_engine(names)
    for schema in names:
        config.print_stdout("Schema %s:", schema)
        with in_schema(engine, schema):
            _run_read_only(config, script, display)
            _check_ledgers(get_state())
    return found


@_user_facing
def show(
    directory: str | os.PathLike[str] | None = None, revision: str = "head"
) -> list[str]:
    """Show the revision(s) a symbol stands for (``head``, ``current``, an id).

    :return: The revision ids shown.
    """
    config = _config(directory, needs_db=revision == "current")
    script = _scripts(config)
    shown: list[str] = []

    def display(revisions: t.Any) -> None:
        for sc in script.get_revisions(revisions):
            if sc is not None:
                config.print_stdout(sc.log_entry)
                shown.append(sc.revision)

    if revision == "current":
        _run_read_only(config, script, lambda heads, context: display(heads))
    else:
        display(revision)
    return shown


@_user_facing
def history(
    directory: str | os.PathLike[str] | None = None,
    rev_range: str | None = None,
    verbose: bool = False,
    indicate_current: bool = False,
) -> list[str]:
    """List revisions, newest first.

    :param rev_range: ``[start]:[end]``; ``current`` may stand for either end.
    :return: The revision ids listed, in the order shown.
    """
    config = _config(
        directory,
        needs_db=indicate_current or "current" in (rev_range or ""),
    )
    script = _scripts(config)
    base: str | None = None
    head: str | None = None
    if rev_range is not None:
        if ":" not in rev_range:
            raise errors.CommandFailedError(
                "History range requires [start]:[end], [start]:, or :[end]"
            )
        base, head = rev_range.strip().split(":", 1)
    listed: list[str] = []

    def display(base: t.Any, head: t.Any, currents: t.Collection[str] = ()) -> None:
        for sc in script.walk_revisions(base=base or "base", head=head or "heads"):
            if indicate_current:
                sc._db_current_indicator = sc.revision in currents
            config.print_stdout(
                sc.cmd_format(
                    verbose=verbose,
                    include_branches=True,
                    include_doc=True,
                    include_parents=True,
                )
            )
            listed.append(sc.revision)

    env_wanted = indicate_current or asbool(
        config.get_main_option("revision_environment")
    )
    if "current" in (base, head) or env_wanted:

        def with_current(heads: tuple[str, ...], context: MigrationContext) -> None:
            if head == "current":
                display(base, heads, heads)
            elif base == "current":
                display(heads, head, heads)
            else:
                display(base, head, heads)

        _run_read_only(config, script, with_current)
    else:
        display(base, head)
    return listed


@_user_facing
def heads(
    directory: str | os.PathLike[str] | None = None,
    verbose: bool = False,
    resolve_dependencies: bool = False,
) -> list[str]:
    """Show the head revisions of the migration history.

    :return: The head revision ids.
    """
    config = _config(directory, needs_db=False)
    script = _scripts(config)
    if resolve_dependencies:
        found = script.get_revisions("heads")
    else:
        found = script.get_revisions(script.get_heads())
    ids = []
    for rev in found:
        if rev is None:
            continue
        config.print_stdout(
            rev.cmd_format(verbose, include_branches=True, tree_indicators=False)
        )
        ids.append(rev.revision)
    return ids


@_user_facing
def branches(
    directory: str | os.PathLike[str] | None = None, verbose: bool = False
) -> list[str]:
    """Show the branch points of the migration history.

    :return: The ids of the revisions that are branch points.
    """
    config = _config(directory, needs_db=False)
    script = _scripts(config)
    found = []
    for sc in script.walk_revisions():
        if not sc.is_branch_point:
            continue
        indent = " " * len(str(sc.revision))
        children = [script.get_revision(rev) for rev in sc.nextrev]
        config.print_stdout(
            "%s\n%s\n",
            sc.cmd_format(verbose, include_branches=True),
            "\n".join(
                f"{indent} -> "
                + child.cmd_format(False, include_branches=True, include_doc=verbose)
                for child in children
                if child is not None
            ),
        )
        found.append(sc.revision)
    return found


@_user_facing
def check(
    directory: str | os.PathLike[str] | None = None,
    *,
    binds: t.Sequence[str] | None = None,
) -> None:
    """Check that the models match the database, as ``migrate`` would see them.

    :raises SchemaDriftError: The models differ from the database; the
        error lists each difference.
    :raises NotUpToDateError: The database is behind the head revision.
    """
    from alembic.util import AutogenerateDiffsDetected

    config = _config(directory)
    _scripts(config)
    try:
        alembic_command.check(config)
    except AutogenerateDiffsDetected as e:
        lines = describe_diffs(e.diffs)
        summary = "\n".join(f"  {line}" for line in lines)
        raise errors.SchemaDriftError(
            f"The models differ from the database ({len(lines)} change"
            f"{'s' if len(lines) != 1 else ''}); run 'flask"
            f" {get_state().command} migrate':\n{summary}",
            diffs=e.diffs,
            lines=lines,
        ) from e


@_user_facing
def upgrade_env(
    directory: str | os.PathLike[str] | None = None,
    force: bool = False,
    check: bool = False,
    template: str | None = None,
) -> EnvUpgrade:
    """Bring the migration folder's ``env.py`` up to the current template.

    An ``env.py`` written by Flask-Migrate or by an earlier version of this
    package, and never edited, is replaced. One with local edits is left
    alone (status ``"refused"``) unless ``force`` is given; then it is kept
    as ``env.py.orig`` first.

    :param force: Replace an ``env.py`` with local edits.
    :param check: Only compare: write nothing.
    :param template: The template to upgrade to; by default the one the file
        came from (or looks like: multiple databases, async).
    :return: The status, the diff from the old file to the new one, and the
        paths involved.
    """
    config = _config(directory, needs_db=False)
    location = config.get_main_option("script_location") or get_state().directory
    return envfile.upgrade_env_file(
        location, force=force, check=check, template=template
    )


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


def _check_before_uninstall(state: MigrateState) -> None:
    try:
        _check_ledgers(state)
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
    table_lock = settings.lock and settings.lock_mode == "table"
    held: t.ContextManager[None] = contextlib.nullcontext()
    if settings.lock:
        held = migration_lock(
            settings.targets, settings.lock_timeout, settings.lock_mode
        )
    dropped: dict[str, tuple[DroppedTable, ...]] = {}
    with held:
        _check_before_uninstall(state)
        for target in settings.targets:
            names = _present(target.engine)  # again, now that nothing changes
            if table_lock:
                names = [name for name in names if name != LOCK_TABLE]
            dropped[target.name] = _drop(target.engine, names, schema)
    if table_lock:
        for target in settings.targets:
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
