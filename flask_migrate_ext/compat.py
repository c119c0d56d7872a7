"""Flask-Migrate's module-level names that have no place in this package's design.

``flask_migrate`` exposes a few helpers besides the extension and the command
functions; code written against it imports them, so they exist here under the
same names. New code should not need them.
"""

from __future__ import annotations

import functools
import logging
import sys
import typing as t
from importlib.metadata import version

from .errors import ExitCode
from .errors import MigrateError

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
