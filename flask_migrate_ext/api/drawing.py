"""The revision graph as data, for ``flask db graph``: every revision, the
edges between them, and the revisions each database is at.

Drawing it is the CLI's business (:mod:`flask_migrate_ext.cli.drawing`).
A straight history is read from the revision cache, anything else through
Alembic; the databases are read as :func:`~flask_migrate_ext.api.current`
reads them. Alembic is imported only when one of those needs it.
"""

from __future__ import annotations

import dataclasses
import os
import typing as t

from ..scripts.quick import straight_history
from .boundary import user_facing

if t.TYPE_CHECKING:
    from ..scripts.revisions import Revision
    from .results import DatabaseState


@dataclasses.dataclass(frozen=True)
class HistoryGraph:
    """The revision graph, as returned by :func:`~flask_migrate_ext.api.graph`.

    .. versionadded:: 0.1
    """

    #: Every revision, newest first (``flask db history``'s order).
    revisions: tuple[Revision, ...]
    #: The branch labels each revision's file declares, by revision id
    #: (:attr:`Revision.branch_labels` also holds inherited ones); revisions
    #: declaring none are left out.
    labels: t.Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    #: Each revision's ``depends_on`` as revision ids (branch labels
    #: resolved), by revision id; revisions without are left out.
    dependencies: t.Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=dict
    )
    #: What each database is at; ``None`` when the databases were not read
    #: (``current=False``).
    databases: tuple[DatabaseState, ...] | None = None

    def edges(self) -> list[tuple[str, str]]:
        """``(down_revision, revision)`` pairs, oldest revisions' first."""
        return [
            (down, rev.id)
            for rev in reversed(self.revisions)
            for down in rev.down_revisions
        ]

    def dependency_edges(self) -> list[tuple[str, str]]:
        """``(depended-on revision, revision)`` pairs, oldest revisions' first."""
        return [
            (needed, rev.id)
            for rev in reversed(self.revisions)
            for needed in self.dependencies.get(rev.id, ())
        ]

    def databases_at(self, revision_id: str) -> tuple[DatabaseState, ...]:
        """The databases whose current revisions include ``revision_id``."""
        return tuple(
            state for state in self.databases or () if revision_id in state.ids
        )


@user_facing
def graph(
    directory: str | os.PathLike[str] | None = None,
    *,
    binds: t.Sequence[str] | None = None,
    current: bool = True,
) -> HistoryGraph:
    """Gather the revision graph: revisions, edges, labels, dependencies, and
    the revision(s) each database is at.

    :param binds: With several databases, read these only.
    :param current: Read the databases; ``False`` draws the scripts alone,
        without connecting to anything.
    :return: The graph, for the CLI (or anything else) to draw.

    .. versionadded:: 0.1
    """
    found = straight_history(None if directory is None else os.fspath(directory))
    if found is None:
        graph = _through_alembic(directory)
    else:  # no labels or dependencies, or the cache would not have answered
        graph = HistoryGraph(revisions=tuple(found))
    if not current:
        return graph
    from .inspect import read_current

    states = read_current(directory, None)
    return dataclasses.replace(graph, databases=tuple(states))


def _through_alembic(directory: str | os.PathLike[str] | None) -> HistoryGraph:
    from ..scripts.revisions import declared_labels
    from ..scripts.revisions import from_script
    from ..scripts.revisions import resolved_dependencies
    from .base import _config
    from .base import _scripts

    script = _scripts(_config(directory, needs_db=False))
    revisions = []
    labels = {}
    dependencies = {}
    for sc in script.walk_revisions():
        revisions.append(from_script(sc))
        if declared_labels(sc):
            labels[sc.revision] = declared_labels(sc)
        if resolved_dependencies(sc):
            dependencies[sc.revision] = resolved_dependencies(sc)
    return HistoryGraph(
        revisions=tuple(revisions), labels=labels, dependencies=dependencies
    )
