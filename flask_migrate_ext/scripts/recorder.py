"""The operations a migration script runs, recorded instead of executed: the one
way the package learns what a revision does without running it (the lint,
the data-loss guard, and what a revision cut off by a crash left behind).

A script's ``upgrade()`` runs with Alembic's ``op`` proxy bound to a
:class:`Recorder`: an :class:`~alembic.operations.Operations` whose
:meth:`~Recorder.invoke` keeps each operation object (``AddColumnOp``,
``DropTableOp``, ...) with the line of the script that called it, and runs
nothing. No database is connected to: the migration context is Alembic's
offline one, for the dialect the caller names, so dialect-specific code in
scripts (``if op.get_context().dialect.name == ...``) takes the right branch.

``batch_alter_table`` yields a recording :class:`~alembic.operations.BatchOperations`
(Alembic's would reflect or copy the table when the block ends), and
``op.get_bind()`` returns a connection to an empty database
(:class:`NoDatabase`): a data migration reads no rows, and the schema
operations after it are still recorded. A script that still fails (it needs
rows, reads ``context.get_x_argument()``, ...) is recorded up to the failure,
which :attr:`Recording.stopped` describes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import os
import sys
import typing as t

import sqlalchemy as sa
from alembic.operations import BatchOperations
from alembic.operations import Operations
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext

if t.TYPE_CHECKING:
    import types


@dataclasses.dataclass(frozen=True)
class RecordedOp:
    """One operation a script ran, and where."""

    #: Alembic's operation object.
    operation: ops.MigrateOperation
    #: First and last line of the call in the script (``None``: not found).
    line: int | None
    end_line: int | None
    #: Called on a ``batch_alter_table`` block's ``batch_op``.
    batch: bool = False
    #: Called inside ``op.get_context().autocommit_block()``.
    autocommit: bool = False


@dataclasses.dataclass
class Recording:
    """What running one script function recorded."""

    #: The dialect the script ran for (``postgresql``, ``sqlite``, ...).
    dialect: str
    ops: list[RecordedOp] = dataclasses.field(default_factory=list)
    #: Why the script stopped before its end (``None``: it ran to the end).
    stopped: str | None = None
    #: The script's line where it stopped.
    stopped_line: int | None = None


class _Positions:
    """Finds the line of the revision file that called an operation."""

    def __init__(self, path: str) -> None:
        self.path = os.path.normcase(os.path.realpath(path))
        self._seen: dict[str, bool] = {}

    def _is_script(self, filename: str) -> bool:
        known = self._seen.get(filename)
        if known is None:  # realpath per frame would dominate the lint's time
            known = os.path.normcase(os.path.realpath(filename)) == self.path
            self._seen[filename] = known
        return known

    def find(self) -> tuple[int | None, int | None]:
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None:
            if self._is_script(frame.f_code.co_filename):
                return _call_lines(frame)
            frame = frame.f_back
        return None, None

    def of_traceback(self, tb: types.TracebackType | None) -> int | None:
        line = None
        while tb is not None:
            if self._is_script(tb.tb_frame.f_code.co_filename):
                line = tb.tb_lineno
            tb = tb.tb_next
        return line


def _call_lines(frame: types.FrameType) -> tuple[int | None, int | None]:
    """The lines a multi-line call spans (Python 3.11+), else its line."""
    positions = _code_positions(frame.f_code)
    index = frame.f_lasti // 2
    if index < len(positions):
        start, end = positions[index]
        if start is not None:
            return start, end if end is not None else start
    return frame.f_lineno, frame.f_lineno


@functools.lru_cache(maxsize=64)
def _code_positions(
    code: types.CodeType,
) -> tuple[tuple[int | None, int | None], ...]:
    """Each instruction's start and end line, read once per function: a
    revision with many operations would otherwise scan its code per call."""
    positions = getattr(code, "co_positions", None)
    if positions is None:
        return ()
    return tuple((start, end) for start, end, _, _ in positions())


class _Log:
    """The recording shared by the recorder and its batch recorders."""

    def __init__(self, recording: Recording, positions: _Positions) -> None:
        self.recording = recording
        self.positions = positions
        self.autocommit = False

    def add(self, operation: ops.MigrateOperation, batch: bool) -> None:
        line, end_line = self.positions.find()
        self.recording.ops.append(
            RecordedOp(operation, line, end_line, batch, self.autocommit)
        )


class NoRows:
    """The result of a statement run on :class:`NoDatabase`: no rows."""

    rowcount = 0
    inserted_primary_key = None

    def __iter__(self) -> t.Iterator[t.Any]:
        return iter(())

    def all(self) -> list[t.Any]:
        return []

    fetchall = all

    def fetchone(self) -> None:
        return None

    first = scalar = scalar_one_or_none = one_or_none = fetchone

    def scalars(self, *args: t.Any) -> NoRows:
        return self

    mappings = tuples = unique = scalars

    def close(self) -> None:
        pass


class NoDatabase:
    """What ``op.get_bind()`` returns while recording: a connection to an
    empty database. Statements are recorded as ``ExecuteSQLOp`` and read
    no rows."""

    def __init__(self, log: _Log, context: MigrationContext) -> None:
        self._log = log
        self.dialect = context.dialect

    def execute(self, statement: t.Any, *args: t.Any, **kwargs: t.Any) -> NoRows:
        self._log.add(ops.ExecuteSQLOp(statement), batch=False)
        return NoRows()

    exec_driver_sql = execute

    def scalar(self, statement: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        self.execute(statement)
        return None

    def scalars(self, statement: t.Any, *args: t.Any, **kwargs: t.Any) -> NoRows:
        return self.execute(statement)

    @contextlib.contextmanager
    def begin_nested(self) -> t.Iterator[None]:
        yield

    begin = begin_nested


class Recorder(Operations):
    """An :class:`~alembic.operations.Operations` that records what it is asked."""

    def __init__(self, context: MigrationContext, log: _Log) -> None:
        super().__init__(context)
        self._log = log

    def invoke(self, operation: ops.MigrateOperation) -> t.Any:
        self._log.add(operation, batch=False)
        if isinstance(operation, ops.CreateTableOp):
            # Scripts keep the table create_table returns, for bulk_insert.
            return operation.to_table(self.migration_context)
        return None

    def get_bind(self) -> t.Any:
        return NoDatabase(self._log, self.migration_context)

    @contextlib.contextmanager
    def batch_alter_table(  # type: ignore[override]
        self, table_name: str, schema: str | None = None, **kwargs: t.Any
    ) -> t.Iterator[BatchOperations]:
        yield _BatchRecorder(self, table_name, schema, self._log)


class _BatchTarget:
    """What batch operations read from their ``impl``: the table they alter."""

    def __init__(self, recorder: Recorder, table_name: str, schema: str | None):
        self.table_name = table_name
        self.schema = schema
        self.operations = recorder
        self.dialect = recorder.migration_context.dialect


class _BatchRecorder(BatchOperations):
    """A ``batch_op`` that records, so no table is reflected or copied."""

    def __init__(
        self, recorder: Recorder, table_name: str, schema: str | None, log: _Log
    ) -> None:
        target = _BatchTarget(recorder, table_name, schema)
        super().__init__(recorder.migration_context, impl=target)  # type: ignore[arg-type]
        self._log = log

    def invoke(self, operation: ops.MigrateOperation) -> t.Any:
        self._log.add(operation, batch=True)
        return None

    def get_bind(self) -> t.Any:
        return NoDatabase(self._log, self.migration_context)


def offline_context(dialect: str) -> MigrationContext:
    """Alembic's offline migration context for ``dialect``: SQL goes to a
    buffer nobody reads, and nothing connects."""
    # Its "Context impl ..." and "Generating static SQL" lines would read as
    # if a migration ran.
    logger = logging.getLogger("alembic.runtime.migration")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return MigrationContext.configure(
            dialect=_dialect(dialect),
            opts={"as_sql": True, "output_buffer": io.StringIO()},
        )
    finally:
        logger.setLevel(level)


@functools.cache
def _dialect(name: str) -> sa.Dialect:
    """One dialect object per name: making one is most of a context's cost."""
    return sa.make_url(f"{name}://").get_dialect()()


def record(
    function: t.Callable[..., t.Any],
    path: str,
    dialect: str,
    args: t.Sequence[t.Any] = (),
    kwargs: t.Mapping[str, t.Any] | None = None,
) -> Recording:
    """Run ``function`` (a script's ``upgrade`` or ``downgrade``) with ``op``
    recording.

    :param path: The script's file, to find the line of each operation.
    :param dialect: The database dialect the script is meant for.
    :param kwargs: Keyword arguments (``engine_name`` for a multi-database
        script).
    """
    recording = Recording(dialect)
    positions = _Positions(path)
    log = _Log(recording, positions)
    context = offline_context(dialect)
    _watch_autocommit(context, log)
    recorder = Recorder(context, log)
    with _serving_op(recorder):
        try:
            function(*args, **(kwargs or {}))
        except Exception as e:  # the script's own code: anything can fail
            recording.stopped = f"{type(e).__name__}: {e}".strip()
            recording.stopped_line = positions.of_traceback(e.__traceback__)
    return recording


@contextlib.contextmanager
def _serving_op(recorder: Recorder) -> t.Iterator[None]:
    """Bind ``alembic.op`` to ``recorder``, then put back what was there.

    ``Operations.context()`` binds a new plain ``Operations``, and
    ``_install_proxy`` looks up the names to bind by the instance's class,
    which a subclass has none of: bind ``Operations``'s names (Alembic keeps
    them in ``_setups``) to the recorder's methods. What was bound before (a
    migration running in this thread, or nothing) is restored after.
    """
    names, modules = Operations._setups[Operations]
    saved = []
    for globals_, _ in modules:
        saved.append({name: globals_.get(name) for name in (*names, "_proxy")})
        globals_["_proxy"] = recorder
        for name in names:
            globals_[name] = getattr(recorder, name)
    try:
        yield
    finally:
        for (globals_, _), before in zip(modules, saved, strict=True):
            globals_.update(before)


def _watch_autocommit(context: MigrationContext, log: _Log) -> None:
    """Note the operations called inside ``autocommit_block()``."""

    @contextlib.contextmanager
    def autocommit_block() -> t.Iterator[None]:
        log.autocommit = True
        try:
            yield
        finally:
            log.autocommit = False

    context.autocommit_block = autocommit_block  # type: ignore[method-assign]


def dialect_of(url: str | sa.URL) -> str:
    """The dialect name of a database URL (``postgresql+psycopg://`` ->
    ``postgresql``), without connecting."""
    return sa.make_url(url).get_backend_name()
