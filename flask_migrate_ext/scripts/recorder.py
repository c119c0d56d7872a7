"""The operations a revision function would run, recorded without a database.

A revision's ``upgrade()``/``downgrade()`` calls ``op.drop_table(...)`` and
the like; each builds an operation object (``alembic.operations.ops``) and
hands it to ``Operations.invoke``, which runs it. Here ``op`` is a recorder
whose ``invoke`` keeps the object instead, batch blocks included, so a
caller can see what a revision does before anything runs. Nothing here
judges the operations.
"""

from __future__ import annotations

import contextlib
import io
import types
import typing as t

from alembic.operations import BatchOperations
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

if t.TYPE_CHECKING:
    import sqlalchemy as sa
    from alembic.operations import ops


class _Recorder(Operations):
    """``op`` while a revision function is recorded."""

    def __init__(self, context: MigrationContext, found: list[ops.MigrateOperation]):
        super().__init__(context)
        self._found = found

    def invoke(self, operation: ops.MigrateOperation) -> None:  # type: ignore[override]
        self._found.append(operation)

    @contextlib.contextmanager
    def batch_alter_table(
        self, table_name: str, schema: str | None = None, *args: t.Any, **kw: t.Any
    ) -> t.Iterator[BatchOperations]:
        yield _BatchRecorder(self.migration_context, table_name, schema, self._found)

    def get_bind(self) -> t.Any:
        # Scripts look at the dialect to choose what to do; anything else
        # (a query) fails, and the caller learns the revision is unknowable.
        return types.SimpleNamespace(dialect=self.migration_context.dialect)


class _BatchRecorder(BatchOperations):
    """``batch_op`` in a recorded ``with op.batch_alter_table(...)`` block:
    the operations it builds name the table and schema."""

    def __init__(
        self,
        context: MigrationContext,
        table_name: str,
        schema: str | None,
        found: list[ops.MigrateOperation],
    ) -> None:
        impl = types.SimpleNamespace(table_name=table_name, schema=schema)
        super().__init__(context, impl=impl)  # type: ignore[arg-type]
        self._found = found

    def invoke(self, operation: ops.MigrateOperation) -> None:  # type: ignore[override]
        self._found.append(operation)


# ``op.<name>`` resolves through the proxy Alembic installs for
# ``Operations``; the recorder shares that setup, so ``op`` can be it.
_Recorder._setups[_Recorder] = Operations._setups[Operations]


def recorded_ops(
    fn: t.Callable[..., t.Any], dialect: sa.Dialect, **kwargs: t.Any
) -> list[ops.MigrateOperation]:
    """The operations ``fn`` (a revision's ``upgrade`` or ``downgrade``)
    builds when called with ``kwargs``, in order; batch operations are
    listed one by one, naming their table.

    :raises Exception: Whatever ``fn`` raises (a revision that queries the
        database cannot be recorded).
    """
    context = MigrationContext.configure(
        dialect=dialect, opts={"as_sql": True, "output_buffer": io.StringIO()}
    )
    found: list[ops.MigrateOperation] = []
    recorder = _Recorder(context, found)
    recorder._install_proxy()
    try:
        fn(**kwargs)
    finally:
        recorder._remove_proxy()
    return found
