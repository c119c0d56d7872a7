"""Flask-Migrate's module-level names that have no place in this package's design.

``flask_migrate`` exposes a few helpers besides the extension and the command
functions; code written against it imports them, so they exist here under the
same names. New code should not need them.

Flask-Migrate's inspecting functions (``current``, ``heads``, ``history``,
``show``, ``branches``, ``check``, ``list_templates``) print Alembic's output. Under
those names, ``flask_migrate_ext`` exports the wrappers below: each calls the
function of the same name in :mod:`flask_migrate_ext.api`, which prints
nothing, prints its result as ``flask db`` does (which is Alembic's text),
and returns it.
"""

from __future__ import annotations

import functools
import logging
import sys
import typing as t
from importlib.metadata import version

from . import api
from .cli import output
from .errors import ExitCode
from .errors import MigrateError
from .errors import PartiallyAppliedError
from .errors import TargetsFailedError

if t.TYPE_CHECKING:
    import os

    from .api.results import BranchPoint
    from .api.results import CheckResult
    from .api.results import DatabaseState
    from .api.results import Revision
    from .api.results import Template

    PathArg = str | os.PathLike[str] | None

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

#: The package's logger (Flask-Migrate's ``flask_migrate.log``).
log = logging.getLogger("flask_migrate_ext")


def alembic_version() -> tuple[int, int, int]:
    """The installed Alembic's version as three integers, read without
    importing Alembic (``flask_migrate.alembic_version``)."""
    parts = [int(part) for part in version("alembic").split(".")[:3] if part.isdigit()]
    return (*parts, 0, 0, 0)[:3]  # type: ignore[return-value]


def catch_errors(f: F) -> F:
    """Log an error raised by ``f`` and exit the process, as Flask-Migrate's
    API functions do.

    This package's API raises :class:`~flask_migrate_ext.MigrateError` instead
    of exiting; wrap a call site in this to get Flask-Migrate's behaviour
    back. The exit code is the error's (see the exit-code table), 1 for an
    Alembic or runtime error without one.
    """

    @functools.wraps(f)
    def wrapped(*args: t.Any, **kwargs: t.Any) -> None:
        from alembic.util import CommandError

        try:
            f(*args, **kwargs)
        except (MigrateError, CommandError, RuntimeError) as exc:
            log.error("Error: %s", exc)
            code = exc.exit_code if isinstance(exc, MigrateError) else ExitCode.ERROR
            sys.exit(int(code))

    return t.cast(F, wrapped)


def current(
    directory: PathArg = None,
    verbose: bool = False,
    *,
    binds: t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
    jobs: int = 1,
    continue_on_error: bool = False,
) -> list[DatabaseState]:
    """Print the revision(s) each database is at, as Flask-Migrate does, and
    return them: :func:`flask_migrate_ext.api.current` and ``flask db current``.
    """
    try:
        states = api.current(
            directory,
            verbose,
            binds=binds,
            schemas=schemas,
            jobs=jobs,
            continue_on_error=continue_on_error,
        )
    except (PartiallyAppliedError, TargetsFailedError) as e:
        output.echo(output.current(e.result or [], verbose))
        raise
    output.echo(output.current(states, verbose))
    return states


def heads(
    directory: PathArg = None,
    verbose: bool = False,
    resolve_dependencies: bool = False,
) -> list[Revision]:
    """Print the head revisions, as Flask-Migrate does, and return them:
    :func:`flask_migrate_ext.api.heads` and ``flask db heads``."""
    found = api.heads(directory, verbose, resolve_dependencies)
    output.echo(output.heads(found, verbose))
    return found


def history(
    directory: PathArg = None,
    rev_range: str | None = None,
    verbose: bool = False,
    indicate_current: bool = False,
) -> list[Revision]:
    """Print the revisions newest first, as Flask-Migrate does, and return
    them: :func:`flask_migrate_ext.api.history` and ``flask db history``."""
    found = api.history(directory, rev_range, verbose, indicate_current)
    output.echo(output.history(found, verbose))
    return found


def show(directory: PathArg = None, revision: str = "head") -> list[Revision]:
    """Print the revision(s) a symbol stands for, as Flask-Migrate does, and
    return them: :func:`flask_migrate_ext.api.show` and ``flask db show``."""
    found = api.show(directory, revision)
    output.echo(output.show(found))
    return found


def branches(directory: PathArg = None, verbose: bool = False) -> list[BranchPoint]:
    """Print the branch points, as Flask-Migrate does, and return them:
    :func:`flask_migrate_ext.api.branches` and ``flask db branches``."""
    found = api.branches(directory, verbose)
    output.echo(output.branches(found, verbose))
    return found


def check(
    directory: PathArg = None,
    *,
    binds: t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
    jobs: int = 1,
    continue_on_error: bool = False,
) -> CheckResult:
    """Check the models against the database, printing Alembic's "No new
    upgrade operations detected." when they match, as Flask-Migrate does:
    :func:`flask_migrate_ext.api.check` and ``flask db check``."""
    result = api.check(
        directory,
        binds=binds,
        schemas=schemas,
        jobs=jobs,
        continue_on_error=continue_on_error,
    )
    output.echo(output.check(result))
    return result


def list_templates() -> list[Template]:
    """Print the templates, as Flask-Migrate does, and return them:
    :func:`flask_migrate_ext.api.list_templates` and ``flask db
    list-templates``."""
    found = api.list_templates()
    output.echo(output.templates(found))
    return found
