"""Single revision steps, for walking a history one revision at a time in
either direction (``flask db test``).

Alembic plans a run from a target; the kit needs each revision's upgrade and
downgrade on its own, in an order that never runs a revision before its
parents. Alembic internals stay here.
"""

from __future__ import annotations

import typing as t

from alembic.runtime.migration import RevisionStep

if t.TYPE_CHECKING:
    from alembic.runtime.migration import MigrationStep
    from alembic.script import Script
    from alembic.script import ScriptDirectory


def in_order(script: ScriptDirectory) -> list[Script]:
    """Every revision, parents (and dependencies) before their children."""
    return list(reversed(list(script.walk_revisions("base", "heads"))))


def step(script: ScriptDirectory, revision: Script, upgrade: bool) -> MigrationStep:
    """The step that runs ``revision``'s ``upgrade()`` (or ``downgrade()``) alone."""
    return RevisionStep(script.revision_map, revision, upgrade)
