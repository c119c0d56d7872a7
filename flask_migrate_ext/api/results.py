"""What the inspecting API functions return: frozen dataclasses, no text.

The ``flask db`` commands render these as Alembic's text or as JSON
(:mod:`flask_migrate_ext.cli.output`). :class:`Revision` is built next to
the revision graph (:mod:`flask_migrate_ext.scripts.revisions`), where the
fast path builds it too; it is exported from here with the others.
"""

from __future__ import annotations

import dataclasses

from ..apply.targets import TargetResult
from ..scripts.revisions import BranchPoint
from ..scripts.revisions import Revision


@dataclasses.dataclass(frozen=True)
class DatabaseState:
    """The revisions one database (or one tenant schema of it) is at, as
    returned by :func:`~flask_migrate_ext.api.current`.

    .. versionadded:: 0.1
    """

    #: The bind name; ``""`` for the default database.
    name: str
    #: The database's URL with the password hidden.
    url: str
    #: The tenant schema (``schemas=``/``--schema``), or ``None``.
    schema: str | None = None
    #: The revisions in its version table and their ancestors that no other
    #: of them revises, as ``flask db current`` lists them; empty for a
    #: database with no migration applied.
    revisions: tuple[Revision, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        """The ids of :attr:`revisions`."""
        return tuple(revision.id for revision in self.revisions)


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """A passed :func:`~flask_migrate_ext.api.check`: the models match each
    database checked, and each is at the head revision.

    .. versionadded:: 0.1
    """

    #: The databases checked (bind names; ``""`` for the default database).
    databases: tuple[str, ...]
    #: Each target's result (tenant schemas, binds); see
    #: :attr:`RunResult.targets <flask_migrate_ext.RunResult.targets>`.
    targets: tuple[TargetResult, ...] = dataclasses.field(default=(), compare=False)


@dataclasses.dataclass(frozen=True)
class Template:
    """A template :func:`~flask_migrate_ext.api.init` can use.

    .. versionadded:: 0.1
    """

    #: Its name, for ``init(template=...)`` / ``flask db init -t``.
    name: str
    #: One line saying what it is for.
    description: str


__all__ = ["BranchPoint", "CheckResult", "DatabaseState", "Revision", "Template"]
