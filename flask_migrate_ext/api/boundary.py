"""The boundary every API function runs in: settings read once, the host's
logging kept, Alembic's and the database's errors turned into typed ones.

Importing this module does not import Alembic, so the functions that can
answer without it (``heads``, ``history``, ``branches`` on a straight
history) stay fast.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
import typing as t

from flask import current_app

from .. import errors
from ..databases.urls import masked
from ..report import report
from ..settings import misspelled_keys
from ..settings import Settings
from ..state import database_names
from ..state import get_db
from ..state import get_engine
from ..state import get_state
from ..state import in_cli
from ..state import resolve_directory
from ..state import running
from ..state import selected_binds

if t.TYPE_CHECKING:
    from alembic.util import CommandError

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def user_facing(f: F) -> F:
    """Turn Alembic and database errors raised by ``f`` into typed errors."""

    @functools.wraps(f)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        with (
            translate_errors(),
            _host_logging_kept(),
            contextlib.ExitStack() as resources,
            running(active=True, settings=_read_settings(), resources=resources),
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
    Alembic's "setting up autogenerate plugin" lines are kept out.
    """
    if in_cli():
        yield
        return
    # Alembic announces its autogenerate plugins at INFO on every run: noise
    # in an app that logs at INFO, unless the app asked for that logger.
    plugins = logging.getLogger("alembic.runtime.plugins")
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
    if plugins.level == logging.NOTSET:
        plugins.setLevel(logging.WARNING)
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
    except sa_exc.DBAPIError as e:
        raise _from_dbapi_error(e) from e
    except TypeError as e:
        if "asynchronous context manager" not in str(e):
            raise
        # An async env.py (aioflask templates) handed a synchronous engine.
        raise errors.CommandFailedError(
            "env.py expects an async engine, but the database has a synchronous"
            " one: use an async driver in the URL (sqlite+aiosqlite://,"
            " postgresql+psycopg_async://, mysql+aiomysql://) or a sync template"
            " ('flask db upgrade-env -t flask')."
        ) from e
    except Exception as e:
        typed = _from_alembic_error(e)
        if typed is None:
            raise
        raise typed from e


def _from_alembic_error(e: Exception) -> errors.MigrateError | None:
    """``e`` as a typed error if it is Alembic's ``CommandError``."""
    # Not imported here: the functions that answer without Alembic (the fast
    # path) must not load it, and an Alembic that is not loaded raised nothing.
    alembic_util = sys.modules.get("alembic.util")
    if alembic_util is None:
        return None
    revision = sys.modules.get("alembic.script.revision")
    if revision is not None and isinstance(e, revision.ResolutionError):
        # Raised as it is where Alembic does not wrap it in a CommandError.
        return _from_command_error(e)
    if not isinstance(e, alembic_util.CommandError):
        return None
    return _from_command_error(e)


_COMMAND_ERRORS: list[tuple[str, type[errors.MigrateError]]] = [
    ("Can't locate revision", errors.RevisionNotFoundError),
    ("No such revision", errors.RevisionNotFoundError),
    ("Target database is not up to date", errors.NotUpToDateError),
    ("Path doesn't exist", errors.DirectoryNotFoundError),
    # Raised by the multi-database env.py files, which cannot import this package.
    ("Database not configured", errors.DatabaseNotConfiguredError),
]


_NOT_FOUND = re.compile(
    r"(?:Can't locate revision identified by|No such revision or branch) '([^']+)'"
)


def _from_command_error(e: CommandError | Exception) -> errors.MigrateError:
    message = str(e)
    if message.startswith("Multiple head"):
        message = message.rstrip(".") + _merge_hint(e)
    not_found = _NOT_FOUND.match(message)
    if not_found:
        unknown = _unknown_database_revision(not_found.group(1))
        if unknown is not None:
            return unknown
    for prefix, error_class in _COMMAND_ERRORS:
        if message.startswith(prefix):
            return error_class(message)
    return errors.CommandFailedError(message)


def _unknown_database_revision(revision: str) -> errors.UnknownRevisionError | None:
    """An error saying the database is at ``revision``, if a version table
    holds it: Alembic reports the database's revision as it reports a typo
    in the command's argument ("Can't locate revision")."""
    import sqlalchemy as sa

    from ..scripts.graph import unknown_revision_message

    try:
        state = get_state()
        kwargs = state.context_kwargs
        table = sa.table(
            kwargs.get("version_table", "alembic_version"),
            sa.column("version_num"),
            schema=kwargs.get("version_table_schema"),
        )
        for name in database_names():
            engine = get_engine(state, name)
            engine = getattr(engine, "sync_engine", engine)
            with engine.connect() as connection:
                if not sa.inspect(connection).has_table(table.name, table.schema):
                    continue
                query = sa.select(table.c.version_num).where(
                    table.c.version_num == revision
                )
                if connection.execute(query).first() is None:
                    continue
            folder = os.path.join(resolve_directory(state, None), "versions")
            return errors.UnknownRevisionError(
                unknown_revision_message(folder, revision, name, state.command)
            )
    except Exception:  # only a better message was at stake
        return None
    return None


def _merge_hint(e: Exception) -> str:
    """The next step after Alembic's "Multiple head revisions are present"."""
    heads = getattr(e.__cause__, "heads", None)
    listed = f"The heads are {', '.join(heads)}: r" if heads else "R"
    try:
        command = get_state().command
    except (errors.MigrateError, RuntimeError):  # no app
        command = "db"
    return (
        f". {listed}un 'flask {command} merge heads' to join them into one"
        f" revision, then 'flask {command} upgrade'."
    )


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
