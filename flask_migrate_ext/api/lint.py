"""``lint``: the operations of revision scripts, judged by the lint rules.

Nothing connects to a database: each script's ``upgrade()`` runs against a
recording ``op`` (:mod:`flask_migrate_ext.scripts.recorder`) for the dialect of
the app's database URL, so PostgreSQL-only rules apply when the app's
database is PostgreSQL.
"""

from __future__ import annotations

import os
import typing as t

from alembic.util import CommandError

from .. import errors
from ..linting.findings import LintFinding
from ..linting.findings import LintResult
from ..linting.linter import databases
from ..linting.linter import lint_scripts
from .base import _config
from .base import _scripts
from .base import _user_facing

if t.TYPE_CHECKING:
    from alembic.script import Script
    from alembic.script import ScriptDirectory


@_user_facing
def lint(
    directory: str | os.PathLike[str] | None = None,
    revisions: t.Sequence[str] | None = None,
    since: str | None = None,
    *,
    strict: bool = False,
    dialect: str | None = None,
    binds: t.Sequence[str] | None = None,
) -> LintResult:
    """Check revision scripts for operations that lose data, fail on tables
    with rows, or lock busy tables (see the docs' lint page for the rules).

    :param revisions: Revision ids (or paths of revision files) to check.
    :param since: Check the revisions after this one (its descendants): the
        new revisions of a branch, in CI. By default every revision is checked.
    :param strict: Fail on warnings too.
    :param dialect: The database dialect to judge for; by default the
        dialect of each database's URL (nothing connects to it).
    :return: The findings; also when they are only warnings.
    :raise LintFailedError: Errors were found, or warnings with ``strict``;
        its ``result`` holds the :class:`LintResult`.

    .. versionadded:: 0.1
    """
    if revisions and since is not None:
        raise errors.CommandFailedError("Give revisions or since, not both.")
    config = _config(directory, needs_db=False)
    script = _scripts(config)
    selected = _select(script, revisions, since)
    result = lint_scripts(selected, databases(dialect), strict=strict)
    if result.failed:
        raise errors.LintFailedError(_failure(result), result)
    return result


def _failure(result: LintResult) -> str:
    errors_, warnings = len(result.errors), len(result.warnings)
    found = [f"{errors_} error{'s' if errors_ != 1 else ''}"]
    if warnings:
        found.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    count = len(result.revisions)
    return (
        f"Lint found {' and '.join(found)} in {count}"
        f" revision{'s' if count != 1 else ''}. Fix them, or mark an intended"
        " operation '# fmx: allow CODE' in its script."
    )


def _select(
    script: ScriptDirectory, revisions: t.Sequence[str] | None, since: str | None
) -> list[Script]:
    """The scripts to check, oldest first."""
    every = list(reversed(list(script.walk_revisions())))
    if revisions:
        wanted = [_find(script, every, given) for given in revisions]
        chosen = {sc.revision for sc in wanted}
        return [sc for sc in every if sc.revision in chosen]
    if since is not None:
        base = _find(script, every, since)
        after = {base.revision}
        for sc in every:  # oldest first: parents are seen before children
            if set(_parents(sc)) & after:
                after.add(sc.revision)
        return [sc for sc in every if sc.revision in after - {base.revision}]
    return every


def _parents(sc: Script) -> tuple[str, ...]:
    down = sc.down_revision
    if down is None:
        return ()
    return (down,) if isinstance(down, str) else tuple(down)


def _find(script: ScriptDirectory, every: list[Script], given: str) -> Script:
    """The script a revision id (or a unique prefix, or a file path) names."""
    if given.endswith(".py") and os.path.isfile(given):
        for sc in every:
            if os.path.samefile(sc.path, given):
                return sc
        raise errors.RevisionNotFoundError(
            f"{given} is not a revision file of this migration directory."
        )
    try:
        found = script.get_revision(given)
    except CommandError as e:
        raise errors.RevisionNotFoundError(f"Can't lint {given!r}: {e}") from None
    if found is None:
        raise errors.RevisionNotFoundError(f"Can't lint {given!r}: no such revision.")
    return found


__all__ = ["lint", "LintFinding", "LintResult"]
