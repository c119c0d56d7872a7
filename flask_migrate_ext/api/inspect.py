"""API functions that report on scripts and databases through Alembic:
current, show, check, and the Alembic side of heads, history and branches
(:mod:`.listing` answers those from the revision cache when it can).

Nothing here prints: the results are :mod:`.results` dataclasses.
"""

from __future__ import annotations

import dataclasses
import os
import typing as t

from alembic import command as alembic_command
from alembic.util import asbool

from .. import errors
from ..apply.targets import TargetResult
from ..autogenerate import reflection
from ..autogenerate.diffs import describe_diffs
from ..scripts import graph
from ..scripts.revisions import BranchPoint
from ..scripts.revisions import from_script
from ..scripts.revisions import Revision
from ..state import database_names
from ..state import get_state
from . import targets
from .base import _check_ledgers
from .base import _config
from .base import _connected_to
from .base import _not_up_to_date
from .base import _run_read_only
from .base import _schema_names
from .base import _scripts
from .base import _target_plan
from .base import _user_facing
from .results import CheckResult
from .results import DatabaseState

if t.TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

# ``check`` reflects the database in batches (same data, fewer queries).
reflection.install()


@_user_facing
def current(
    directory: str | os.PathLike[str] | None = None,
    verbose: bool = False,
    *,
    binds: t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
    jobs: int = 1,
    continue_on_error: bool = False,
) -> list[DatabaseState]:
    """Read the revision(s) each database is at.

    :param verbose: Accepted for Flask-Migrate's signature; the result holds
        everything ``current -v`` shows.
    :param binds: See :func:`upgrade`.
    :param schemas: Tenant schemas to read; see :func:`upgrade`.
    :param jobs: Read this many targets at once; see :func:`upgrade`.
    :param continue_on_error: See :func:`upgrade`.
    :return: One :class:`DatabaseState` per database (per tenant schema with
        ``schemas``), in the order env.py visits them.
    :raises PartiallyAppliedError: When the ledger shows a revision left
        partially applied; its ``result`` holds the states read.
    :raises TargetsFailedError: Some of several targets failed; its
        ``result`` holds the states read.

    .. versionchanged:: 0.1
        Returns :class:`DatabaseState` objects instead of revision ids, and
        prints nothing. ``jobs``, ``continue_on_error``.
    """
    return read_current(directory, schemas, jobs, continue_on_error)


def read_current(
    directory: str | os.PathLike[str] | None,
    schemas: t.Sequence[str] | None,
    jobs: int = 1,
    continue_on_error: bool = False,
) -> list[DatabaseState]:
    """:func:`current` inside another API function's boundary (``graph``)."""
    targets.check_jobs(jobs)
    config = _config(directory)
    script = _scripts(config)
    state = get_state()
    work_plan = _target_plan(config, _schema_names(schemas), jobs, continue_on_error)
    work_plan.announce = False  # current prints the schema with its revisions
    found: list[DatabaseState] = []  # every target's, when run here

    def work(target: targets.Target) -> list[DatabaseState]:
        mine: list[DatabaseState] = []

        def read(heads: tuple[str, ...], context: MigrationContext) -> None:
            name, url = _connected_to(context)
            revisions = graph.current_revisions(script, heads)
            mine.append(
                DatabaseState(
                    name=name,
                    url=url,
                    schema=target.schema,
                    revisions=tuple(from_script(rev) for rev in revisions),
                )
            )

        _run_read_only(config, script, read)
        found.extend(mine)
        try:
            _check_ledgers(state, script)
        except errors.PartiallyAppliedError as e:
            e.result = found if not work_plan.several else mine
            raise
        return mine

    def fill(value: list[DatabaseState], result: TargetResult) -> None:
        result.after = tuple(sorted({id for each in value for id in each.ids}))

    results, values = targets.run(work_plan, work, fill)
    states = [each for value in values for each in value or ()]
    targets.raise_failed(results, states, state.command)
    return states


@_user_facing
def show(
    directory: str | os.PathLike[str] | None = None, revision: str = "head"
) -> list[Revision]:
    """Look up the revision(s) a symbol stands for (``head``, ``current``, an id).

    :return: The revisions, in Alembic's order.

    .. versionchanged:: 0.1
        Returns :class:`Revision` objects instead of ids, and prints nothing.
    """
    config = _config(directory, needs_db=revision == "current")
    script = _scripts(config)
    shown: list[Revision] = []

    def collect(revisions: t.Any) -> None:
        shown.extend(
            from_script(sc) for sc in script.get_revisions(revisions) if sc is not None
        )

    if revision == "current":
        _run_read_only(config, script, lambda heads, context: collect(heads))
    else:
        collect(revision)
    return shown


def history_through_alembic(
    directory: str | os.PathLike[str] | None,
    rev_range: str | None,
    indicate_current: bool,
) -> list[Revision]:
    """:func:`~flask_migrate_ext.api.history`, with Alembic walking the graph."""
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
    listed: list[Revision] = []

    def collect(base: t.Any, head: t.Any, currents: t.Collection[str] = ()) -> None:
        for sc in script.walk_revisions(base=base or "base", head=head or "heads"):
            is_current = sc.revision in currents if indicate_current else None
            listed.append(from_script(sc, is_current))

    env_wanted = indicate_current or asbool(
        config.get_main_option("revision_environment")
    )
    if "current" in (base, head) or env_wanted:

        def with_current(heads: tuple[str, ...], context: MigrationContext) -> None:
            if head == "current":
                collect(base, heads, heads)
            elif base == "current":
                collect(heads, head, heads)
            else:
                collect(base, head, heads)

        _run_read_only(config, script, with_current)
    else:
        collect(base, head)
    return listed


def heads_through_alembic(
    directory: str | os.PathLike[str] | None, resolve_dependencies: bool
) -> list[Revision]:
    """:func:`~flask_migrate_ext.api.heads`, with Alembic building the graph."""
    script = _scripts(_config(directory, needs_db=False))
    if resolve_dependencies:
        found = script.get_revisions("heads")
    else:
        found = script.get_revisions(script.get_heads())
    return [from_script(rev) for rev in found if rev is not None]


def branches_through_alembic(
    directory: str | os.PathLike[str] | None,
) -> list[BranchPoint]:
    """:func:`~flask_migrate_ext.api.branches`, with Alembic building the graph."""
    script = _scripts(_config(directory, needs_db=False))
    points = [sc for sc in script.walk_revisions() if sc.is_branch_point]
    return [_branch_point(script, sc) for sc in points]


def _branch_point(script: ScriptDirectory, sc: t.Any) -> BranchPoint:
    revision = from_script(sc)
    children = [script.get_revision(rev) for rev in revision.children]
    return BranchPoint(
        **{f.name: getattr(revision, f.name) for f in dataclasses.fields(revision)},
        branches=tuple(from_script(child) for child in children if child is not None),
    )


@_user_facing
def check(
    directory: str | os.PathLike[str] | None = None,
    *,
    binds: t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
    jobs: int = 1,
    continue_on_error: bool = False,
) -> CheckResult:
    """Check that the models match the database, as ``migrate`` would see them.

    :param binds: See :func:`upgrade`.
    :param schemas: Tenant schemas to check; see :func:`upgrade`.
    :param jobs: Check this many targets at once; see :func:`upgrade`.
    :param continue_on_error: See :func:`upgrade`.
    :return: The databases checked, and each target's result.
    :raises SchemaDriftError: The models differ from the database; the
        error lists each difference.
    :raises NotUpToDateError: The database is behind the head revision.
    :raises TargetsFailedError: Some of several targets failed (drift, not
        up to date...); its ``targets`` say which and why.

    .. versionchanged:: 0.1
        Returns a :class:`CheckResult` (``None`` before). ``schemas``,
        ``jobs``, ``continue_on_error``.
    """
    targets.check_jobs(jobs)
    # quiet: Alembic would print "No new upgrade operations detected."
    config = _config(directory, opts=["quiet"])
    script = _scripts(config)
    work_plan = _target_plan(config, _schema_names(schemas), jobs, continue_on_error)
    results, values = targets.run(work_plan, lambda target: _check_here(config, script))
    checked = tuple(name for value in values for name in value or ())
    result = CheckResult(databases=checked, targets=tuple(results))
    targets.raise_failed(results, result, get_state().command)
    return result


def _check_here(config: AlembicConfig, script: ScriptDirectory) -> tuple[str, ...]:
    """Check one target; the databases checked."""
    from alembic.util import AutogenerateDiffsDetected
    from alembic.util import CommandError

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
    except CommandError as e:
        if not str(e).startswith("Target database is not up to date"):
            raise
        raise _not_up_to_date(config, script, "check") from e
    return tuple(database_names())
