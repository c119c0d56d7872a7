"""Alembic's version-table UPDATE for each step, handed to the runner.

For every step of an online run, Alembic builds a new ``UPDATE
alembic_version`` with the revision ids as literal SQL, so SQLAlchemy compiles
it anew each time, and sends it on its own. The runner's steps (see
:class:`..apply.tracking.TrackedStep`) may carry a :class:`VersionWriter`:
then that one UPDATE goes through the writer, which sends it with bound
parameters (compiled once), and on PostgreSQL together with the ledger's
writes, in the one statement the revision sends anyway. Everything else of
Alembic's bookkeeping (the heads it tracks, branch inserts and deletes, the
row-count check and its message) stays as Alembic has it.

Steps without a writer, and ``--sql`` runs, are Alembic's own, unchanged.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from alembic.runtime.migration import HeadMaintainer
    from alembic.runtime.migration import MigrationContext


class VersionWriter(t.Protocol):
    def update_version(self, context: MigrationContext, from_: str, to_: str) -> int:
        """Move the version table's row ``from_`` to ``to_``.

        :return: The rows updated (1, unless the table is not where the run
            believes it is).
        """

    def after_version(self, context: MigrationContext) -> None:
        """The step's version-table writes are done (called in its
        transaction, before Alembic's ``on_version_apply`` callbacks)."""


_installed = False


def install() -> None:
    """Route steps that carry a writer through it (once per process; a step
    without one runs Alembic's code unchanged)."""
    global _installed
    if _installed:
        return
    from alembic import util
    from alembic.runtime.migration import HeadMaintainer

    update_to_step = HeadMaintainer.update_to_step
    update_version = HeadMaintainer._update_version

    def routed_update_to_step(self: HeadMaintainer, step: t.Any) -> None:
        writer: VersionWriter | None = getattr(step, "fmx_version_writer", None)
        if writer is None:
            update_to_step(self, step)
            return
        if not self.context.as_sql:  # with --sql, Alembic writes the SQL
            self._fmx_writer = writer  # type: ignore[attr-defined]
        try:
            update_to_step(self, step)
        finally:
            vars(self).pop("_fmx_writer", None)
        writer.after_version(self.context)

    def routed_update_version(self: HeadMaintainer, from_: str, to_: str) -> None:
        writer: VersionWriter | None = getattr(self, "_fmx_writer", None)
        if writer is None:
            update_version(self, from_, to_)
            return
        assert to_ not in self.heads
        self.heads.remove(from_)
        self.heads.add(to_)
        found = writer.update_version(self.context, from_, to_)
        if found != 1 and self.context.dialect.supports_sane_rowcount:
            raise util.CommandError(
                "Online migration expected to match one "
                f"row when updating '{from_}' to '{to_}' in "
                f"'{self.context.version_table}'; {found} found"
            )

    HeadMaintainer.update_to_step = routed_update_to_step  # type: ignore[method-assign]
    HeadMaintainer._update_version = routed_update_version  # type: ignore[method-assign]
    _installed = True
