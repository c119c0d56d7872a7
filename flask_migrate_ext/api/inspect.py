"""API functions that report on scripts and databases: current, show,
history, heads, branches, check."""

from __future__ import annotations

import os
import typing as t

from alembic import command as alembic_command
from alembic.util import asbool

from .. import errors
from ..autogenerate.diffs import describe_diffs
from ..databases.tenants import in_schema
from ..databases.urls import masked
from ..history import graph
from ..state import get_state

if t.TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
from .base import _check_ledgers
from .base import _config
from .base import _run_read_only
from .base import _schema_engine
from .base import _schema_names
from .base import _scripts
from .base import _user_facing


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
