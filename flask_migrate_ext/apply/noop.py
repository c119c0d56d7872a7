"""``flask db upgrade`` on a database already at the head, answered without Alembic.

Every container start runs ``flask db upgrade``, and nearly always there is
nothing to do. Proving that takes no Alembic: the revision cache says what
the head is (:func:`~..scripts.quick.history_graph`: it vouches for every
revision file, or says nothing), and one connection reads the version table
and the ledger's rows that would stop or change a run. When all of it
agrees, :func:`upgraded_already` answers as the full run would: the same
lines on stderr (Alembic's two ``Context impl`` lines, through the logging
setup env.py would make, then "Nothing to upgrade"), the same
:class:`~.results.RunResult`, and no write. Otherwise it returns ``None``
and the command takes the full path (lock, env.py, runner), which decides.

Left to the full path: any target but ``head``/``heads``, ``--sql``,
``--tag``, ``-x``, ``--bind``, tenant schemas, ``configure`` callbacks, an
``alembic.ini`` or revision files the cache cannot vouch for (or the cache
turned off), an ``env.py`` that is not a pristine single-database template,
an async engine, several heads, a version table holding anything but the
head, a ledger row still ``running`` or left partially applied, a database
that cannot be read as expected, a dialect whose Alembic lines are not
known here.

The full path writes nothing either when there is nothing to do: the
ledger's table and its ``baseline`` rows (for a database migrated before
the ledger existed) are written by the next run that applies a revision,
and the lock table (``MIGRATE_LOCK = "table"``) by the next run that takes
the lock.
"""

from __future__ import annotations

import logging
import os
import typing as t

import sqlalchemy as sa

from ..report import report
from ..scripts.quick import history_graph
from ..state import current_settings
from ..state import get_engine
from ..state import get_state
from ..state import in_cli
from ..state import resolve_directory
from ..state import run_state
from ..state import selected_bind_names
from .results import RunResult
from .targets import TargetResult

#: The targets answered here: with one head, both mean it.
TARGETS = ("head", "heads")
#: The env.py templates whose upgrade migrates the default database alone,
#: on a synchronous engine. (The multi-database ones also check every
#: revision file for each database's functions, which needs the files.)
_TEMPLATES = ("flask",)
#: What Alembic's ``MigrationContext`` logs when it starts, by dialect: the
#: class of its DDL implementation and whether that assumes transactional
#: DDL (``alembic.ddl``; a test holds this against the installed Alembic).
IMPLS: dict[str, tuple[str, bool]] = {
    "sqlite": ("SQLiteImpl", False),
    "postgresql": ("PostgresqlImpl", True),
    "mysql": ("MySQLImpl", False),
    "mariadb": ("MariaDBImpl", False),
    "mssql": ("MSSQLImpl", True),
    "oracle": ("OracleImpl", False),
}
#: Ledger rows that make the full run stop, wait or write: a run still
#: going (or cut off), and a revision that may be partially applied (see
#: :attr:`~.ledger_rows.Entry.needs_attention`).
_PARTIAL = ("running", "failed", "interrupted")

_alembic_log = logging.getLogger("alembic.runtime.migration")


def upgraded_already(
    directory: str | os.PathLike[str] | None,
    revision: str,
    *,
    sql: bool = False,
    tag: str | None = None,
    x_arg: str | t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
) -> RunResult | None:
    """The result of upgrading to ``revision`` if the database is provably
    there already (after saying so as the full run does); ``None`` when the
    full run must decide (it also reports any error met here, but failing
    to connect)."""
    try:
        found = _head_and_engine(directory, revision, sql, tag, x_arg, schemas)
    except Exception:  # no app state, no default database...: the full run says
        return None
    if found is None:
        return None
    head, engine, tool, location = found
    if not _at(engine, head):
        return None
    try:
        _log_as_env_py(tool, location, engine.dialect.name)
    except Exception:  # a broken logging setup in alembic.ini: env.py's error
        return None
    report(f"Nothing to upgrade: the database is at {head}.")
    target = TargetResult("<default>", before=(head,), after=(head,))
    return RunResult(initial=(head,), targets=[target])


def _head_and_engine(
    directory: str | os.PathLike[str] | None,
    revision: str,
    sql: bool,
    tag: str | None,
    x_arg: str | t.Sequence[str] | None,
    schemas: t.Sequence[str] | None,
) -> tuple[str, sa.Engine, str | None, str] | None:
    """The head, the engine env.py would migrate, the tool that wrote
    env.py and the migration folder, when the command and the scripts leave
    no doubt about them."""
    if not _plain_request(revision, sql, tag, x_arg, schemas):
        return None
    location = os.fspath(resolve_directory(get_state(), directory))
    graph = history_graph(location)
    if graph is None or graph.template not in _TEMPLATES or len(graph.heads) != 1:
        return None
    engine = get_engine(get_state(), "")
    if not isinstance(engine, sa.Engine) or engine.dialect.name not in IMPLS:
        return None
    return graph.heads[0], engine, graph.tool, location


def _plain_request(
    revision: str,
    sql: bool,
    tag: str | None,
    x_arg: str | t.Sequence[str] | None,
    schemas: t.Sequence[str] | None,
) -> bool:
    """Whether the command asks only "upgrade to the head", as env.py would
    see it: no options env.py or the runner would act on."""
    return (
        revision in TARGETS
        and not sql
        and tag is None
        and not x_arg
        and not run_state().group_x_args
        and not schemas
        and not current_settings().schemas
        and not selected_bind_names()
        and not get_state().migrate.configure_callbacks
    )


def _at(engine: sa.Engine, head: str) -> bool:
    """Whether the version table holds ``head`` alone and the ledger has no
    row that would stop, hold up or change the run. Any error reading them
    leaves the answer to the full run, except failing to connect: it would
    fail the same way, after as long a wait."""
    state = get_state()
    kwargs = state.context_kwargs
    version = sa.table(
        kwargs.get("version_table", "alembic_version"),
        sa.column("version_num"),
        schema=kwargs.get("version_table_schema"),
    )
    log_table = current_settings().log_table
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as e:
        # Named in the message as env.py's connection errors are.
        e.flask_migrate_ext_database = ("", engine.url)  # type: ignore[attr-defined]
        raise
    with connection:
        try:
            found = connection.execute(sa.select(version.c.version_num)).all()
            if [tuple(row) for row in found] != [(head,)]:
                return False
            return log_table is None or _settled(connection, log_table)
        except sa.exc.SQLAlchemyError:
            return False
        finally:
            connection.rollback()


def _settled(connection: sa.Connection, log_table: str) -> bool:
    """Whether the ledger has no row still running or partially applied
    (a missing ledger has none: the full run would not create it either)."""
    ledger = sa.table(log_table, sa.column("status"), sa.column("partial", sa.Boolean))
    c = ledger.c
    unsettled = sa.or_(
        c.status == "running", sa.and_(c.partial == sa.true(), c.status.in_(_PARTIAL))
    )
    query = sa.select(c.status).where(unsettled).limit(1)
    try:
        rows = connection.execute(query).all()
    except sa.exc.DBAPIError:
        connection.rollback()
        return not sa.inspect(connection).has_table(log_table)
    return not rows


def _log_as_env_py(tool: str | None, location: str, dialect: str) -> None:
    """Log Alembic's start-up lines through the logging setup env.py makes.

    Flask-Migrate's env.py always applies ``alembic.ini``'s logging
    sections (disabling the loggers that exist); this package's does in
    the ``flask db`` CLI only, keeping the app's loggers.
    """
    ini = os.path.join(location, "alembic.ini")
    if tool == "Flask-Migrate" or in_cli():
        from logging.config import fileConfig

        if tool == "Flask-Migrate":
            fileConfig(ini)
        else:
            fileConfig(ini, disable_existing_loggers=False)
    impl, transactional = IMPLS[dialect]
    given = get_state().context_kwargs.get("transactional_ddl")
    if given is not None:
        transactional = bool(given)
    _alembic_log.info("Context impl %s.", impl)
    _alembic_log.info(
        "Will assume %s DDL.", "transactional" if transactional else "non-transactional"
    )
