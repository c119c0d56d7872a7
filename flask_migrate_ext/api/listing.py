"""API functions that list the migration scripts: heads, history, branches.

A straight history is answered from the revision cache without importing
Alembic (:func:`flask_migrate_ext.scripts.quick.straight_history` decides
when that holds); anything else goes through Alembic, imported then. So this
module imports Alembic only when a call needs it.
"""

from __future__ import annotations

import os
import typing as t

from ..scripts.quick import straight_history
from .boundary import user_facing

if t.TYPE_CHECKING:
    from ..scripts.revisions import BranchPoint
    from ..scripts.revisions import Revision


def _quick(directory: str | os.PathLike[str] | None) -> list[Revision] | None:
    return straight_history(None if directory is None else os.fspath(directory))


@user_facing
def heads(
    directory: str | os.PathLike[str] | None = None,
    verbose: bool = False,
    resolve_dependencies: bool = False,
) -> list[Revision]:
    """Find the head revisions of the migration history.

    :param verbose: Accepted for Flask-Migrate's signature; the result holds
        everything ``heads -v`` shows.
    :param resolve_dependencies: Treat ``depends_on`` revisions as down
        revisions.
    :return: The head revisions.

    .. versionchanged:: 0.1
        Returns :class:`Revision` objects instead of ids, prints nothing, and
        answers a straight history from the revision cache.
    """
    line = _quick(directory)
    if line is not None:
        return line[:1]
    from .inspect import heads_through_alembic

    return heads_through_alembic(directory, resolve_dependencies)


@user_facing
def history(
    directory: str | os.PathLike[str] | None = None,
    rev_range: str | None = None,
    verbose: bool = False,
    indicate_current: bool = False,
) -> list[Revision]:
    """List revisions, newest first.

    :param rev_range: ``[start]:[end]``; ``current`` may stand for either end.
    :param verbose: Accepted for Flask-Migrate's signature; the result holds
        everything ``history -v`` shows.
    :param indicate_current: Read the database, to set each revision's
        :attr:`~Revision.is_current`.
    :return: The revisions, in the order ``flask db history`` lists them.

    .. versionchanged:: 0.1
        Returns :class:`Revision` objects instead of ids, prints nothing, and
        answers a straight history from the revision cache.
    """
    if rev_range is None and not indicate_current:
        line = _quick(directory)
        if line is not None:
            return line
    from .inspect import history_through_alembic

    return history_through_alembic(directory, rev_range, indicate_current)


@user_facing
def branches(
    directory: str | os.PathLike[str] | None = None, verbose: bool = False
) -> list[BranchPoint]:
    """Find the branch points of the migration history.

    :param verbose: Accepted for Flask-Migrate's signature.
    :return: The revisions more than one revision revises, each with the
        revisions it branches into.

    .. versionchanged:: 0.1
        Returns :class:`BranchPoint` objects instead of ids, prints nothing,
        and answers a straight history (which has none) from the revision
        cache.
    """
    if _quick(directory) is not None:
        return []
    from .inspect import branches_through_alembic

    return branches_through_alembic(directory)
