"""Follow each revision step while Alembic runs it: ledger rows, statement counts,
and what to say when a step fails.

Alembic calls ``step.migration_fn(**kw)`` inside the step's transaction. The
runner hands Alembic :class:`TrackedStep` proxies whose ``migration_fn``
wraps the revision's function, so the ledger row is written in the same
transaction as the revision's own statements and the version table update.
"""

from __future__ import annotations

import contextlib
import typing as t

import sqlalchemy as sa

from ..errors import LockLostError
from ..scripts.checksum import script_checksum
from .ledger_rows import RunningStep
from .statements import is_ddl
from .timeouts import Timeouts

if t.TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.runtime.migration import MigrationStep

    from .ledger import Ledger
    from .lock import LockCondition
    from .lock import LockHandle


class StepTracker:
    """Tracks the steps run on one database (one ``MigrationContext``)."""

    def __init__(
        self,
        database: str,
        context: MigrationContext,
        ledger: Ledger | None,
        engine: sa.Engine,
        timeouts: Timeouts | None = None,
        defer_flush: bool = False,
        applied: t.Callable[[], t.Collection[str]] | None = None,
        per_revision: bool = False,
        lock: LockHandle | None = None,
    ) -> None:
        #: What the database had applied when the run started, for the
        #: ledger's baseline (see :meth:`Ledger.ensure`).
        self.applied = applied
        self.timeouts = timeouts or Timeouts()
        on_postgresql = context.dialect.name == "postgresql"
        #: Where the revision's transaction rolls its DDL back, its "running"
        #: row is committed before it starts: the row alone outlives a crash
        #: (``kill -9``, a lost node), telling the next run that the revision
        #: was cut off and rolled back. The run's first row is committed on a
        #: connection of its own; each later one with the revision before it
        #: (see :meth:`end`), which costs no commit. Only with one transaction per
        #: revision: when several revisions share one, a revision that ended
        #: could still be rolled back with a later one, leaving its committed
        #: row claiming it runs (and SQLite allows a second writer only
        #: between transactions).
        self.rows_outside = (
            ledger is not None
            and per_revision
            and context.dialect.name in ("postgresql", "sqlite")
        )
        self._outside: sa.Connection | None = None
        self._outside_ready = False
        #: The next revision's "running" row, written in the transaction of
        #: the revision before it (so it costs no commit of its own), by
        #: ``(revision, action)``.
        self._prewritten: dict[tuple[str, str], int] = {}
        #: Each revision commits on its own on PostgreSQL: all but the last
        #: may skip waiting for their commit to reach the disk (see
        #: :meth:`begin`).
        self.defer_flush = defer_flush and on_postgresql
        self.database = database
        self.context = context
        self.ledger = ledger
        #: A synchronous engine on this database, usable after the run ends.
        self.engine = engine
        self.current: RunningStep | None = None
        self._lock_lost: tuple[RunningStep, str] | None = None
        #: The statements the current revision ran, for the failure report.
        self.ran: list[str] = []
        self._ledger_ready = False
        self._counting = False
        self._listening = False
        #: The migration lock, checked before each revision. Where the
        #: database can tell from this connection whether the lock is still
        #: ours (:meth:`LockHandle.condition`), the check rides on the
        #: ledger statement sent anyway: the next revision's "running" row
        #: is written only if the lock is still ours.
        self.lock = lock
        self._condition: LockCondition | None = None
        self._condition_asked = False
        #: The ledger's writes at the end of the current step, left to the
        #: version table's UPDATE to carry (see :meth:`update_version`).
        self._pending: tuple[RunningStep, str | None, tuple[str, str]] | None = None
        #: Alembic's version UPDATE, with bound parameters (built once).
        self._version_update: sa.Update | None = None
        #: The lock's check, for the first statement begin() sends.
        self._check_in_begin: LockCondition | None = None
        #: The statements that set the limits and check the lock, by SQL.
        self._settings_statements: dict[str, sa.TextClause] = {}
        #: end() turns synchronous_commit off (see :meth:`begin`).
        self._flush_in_end = False

    @property
    def connection(self) -> sa.Connection:
        assert self.context.connection is not None
        return self.context.connection

    def wrap(
        self,
        step: MigrationStep,
        last: bool = True,
        following: MigrationStep | None = None,
    ) -> TrackedStep:
        return TrackedStep(step, self, last, following)

    def _count(self, conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        if self._counting and self.current is not None:
            self.current.statements += 1
            self.ran.append(statement)

    def split_by_commit(self, failed_statement: object) -> tuple[list[str], list[str]]:
        """The statements of the failed revision that stayed, and those rolled
        back, where each DDL statement commits (MySQL, MariaDB).

        A DDL statement commits the transaction before it runs and itself, so
        everything up to the last DDL that ran stayed (up to the failed
        statement, when it is DDL); the data changes after it were rolled back.
        """
        ran = self.ran
        if is_ddl(str(failed_statement or "")):
            return list(ran), []
        last = max((i for i, sql in enumerate(ran) if is_ddl(sql)), default=-1)
        return ran[: last + 1], ran[last + 1 :]

    def begin(self, step: MigrationStep, last: bool = True) -> None:
        """Start tracking ``step``, inside its transaction.

        On PostgreSQL, with one transaction per revision, every revision but
        the run's last commits without waiting for the WAL to reach the disk
        (``synchronous_commit = off``, for that transaction only). The last
        commit waits, and flushes the WAL of all earlier ones with it, as
        does the failure record written after an error; so when the command
        reports, everything it reports is durable, and a server crash in
        between can only lose whole revisions (the schema and the version
        table stay consistent). It saves one disk flush per revision.
        """
        script = step.revision  # type: ignore[attr-defined]
        self.ran = []
        self.current = RunningStep(
            revision=script.revision,
            action="upgrade" if step.is_upgrade else "downgrade",
            path=script.path,
        )
        if not self._listening:
            # Once per run: adding and removing an event listener for every
            # revision costs more than checking a flag.
            sa.event.listen(self.connection, "after_cursor_execute", self._count)
            self._listening = True
        check = None
        if self._checks_in_settings():
            check, self._check_in_begin = self._check_in_begin, None
        deferred = self.defer_flush and not last
        # The commit's setting goes with the limits and the lock's check when
        # a statement is sent for them anyway; else, with rows committed
        # apart, in the statement end() sends anyway (it counts at commit).
        self._flush_in_end = (
            deferred
            and self._folds_end()
            and check is None
            and not self.timeouts.sets_any()
        )
        deferred = deferred and not self._flush_in_end
        also = [("synchronous_commit", "off")] if deferred else []
        if check is not None:
            if not self._set_and_check(check, also):
                raise self._lost_before(self.current)
        else:
            self.timeouts.apply(self.connection, *also)
        if self.ledger is not None and self.rows_outside:
            key = (self.current.revision, self.current.action)
            entry_id = self._prewritten.pop(key, None)
            if entry_id is None:  # the run's first revision
                entry_id = self._start_outside(self.ledger, self.current)
            self.current.entry_id = entry_id
            if self.context.dialect.name == "sqlite":
                self._open_sqlite_transaction(self.ledger, self.current.entry_id)
        elif self.ledger is not None:
            if not self._ledger_ready:
                self.ledger.ensure(self.connection, self.applied)
                self._ledger_ready = True
            self.current.entry_id = self._start_inside(self.ledger, self.current)
        self._counting = True

    def _checks_in_settings(self) -> bool:
        """Whether the lock's check rides on the statement begin() sends to
        set the revision's limits (PostgreSQL, unless the step's own row
        carries it): sent before the revision's DDL, it is planned and run
        cheaply, where after DDL every statement is planned anew."""
        return self.context.dialect.name == "postgresql" and (
            self.ledger is None or self.rows_outside
        )

    def _set_and_check(
        self, condition: LockCondition, also: list[tuple[str, str]]
    ) -> bool:
        """Set the revision's limits and ``also`` (``SET LOCAL``, as
        ``set_config(..., true)``) and tell whether the lock is still ours,
        in one statement. :return: Whether the lock is still ours."""
        settings = self.timeouts.postgresql_settings(also)
        sql = f"SELECT {condition.sql}" + "".join(
            f", set_config('{name}', '{value}', true)" for name, value in settings
        )
        statement = self._settings_statements.get(sql)
        if statement is None:
            statement = self._settings_statements[sql] = sa.text(sql)
        return bool(self.connection.execute(statement, condition.params).scalar())

    def _open_sqlite_transaction(self, ledger: Ledger, entry_id: int) -> None:
        """Open the revision's transaction now, so the DDL after it is rolled
        back too: pysqlite begins one only at the first write (INSERT,
        UPDATE, DELETE), never before DDL. ``BEGIN IMMEDIATE`` takes the
        write lock as that write would, without writing; a driver that does
        not say whether a transaction is open gets a write to the step's row.
        """
        raw = self.connection.connection.dbapi_connection
        opened = getattr(raw, "in_transaction", None)
        if opened is False:
            self.connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif opened is None:
            ledger.hold(self.connection, entry_id)

    def _start_inside(self, ledger: Ledger, step: RunningStep) -> int:
        """Write the step's row in its transaction, with the lock's check
        when :meth:`check_lock` left it to this statement."""
        condition, self._check_in_begin = self._check_in_begin, None
        if condition is None:
            return ledger.start(self.connection, step.revision, step.action)
        entry_id = ledger.start_if(
            self.connection, step.revision, step.action, condition
        )
        if entry_id is None:
            raise self._lost_before(step)
        return entry_id

    def _folds_end(self) -> bool:
        """Whether :meth:`end` writes the next "running" row, the lock's
        check and the commit's setting in one statement (PostgreSQL)."""
        return (
            self.ledger is not None
            and self.rows_outside
            and self.context.dialect.name == "postgresql"
        )

    def _lock_condition(self) -> LockCondition | None:
        """The lock's check as SQL for this database (asked once)."""
        if self.lock is None:
            return None
        if not self._condition_asked:
            self._condition = self.lock.condition(self.database)
            self._condition_asked = True
        return self._condition

    def _start_outside(self, ledger: Ledger, step: RunningStep) -> int:
        """Commit the step's "running" row on a connection of its own.

        The connection sits idle while each revision runs: if the server or
        a proxy dropped it meanwhile (an idle timeout), a new one is taken.
        """
        for attempt in range(2):
            try:
                if self._outside is None:
                    self._outside = self.engine.connect()
                with self._outside.begin():
                    if self.context.dialect.name == "postgresql":
                        # Lost in a server crash only with the revision it
                        # announces: the revision's own commit flushes the
                        # WAL written before it. SET LOCAL: the session (a
                        # pooled one, maybe another client's) keeps nothing.
                        self._outside.exec_driver_sql(
                            "SET LOCAL synchronous_commit = off"
                        )
                    if not self._outside_ready:
                        ledger.ensure(self._outside, self.applied)
                        self._outside_ready = True
                    return ledger.start(self._outside, step.revision, step.action)
            except sa.exc.DBAPIError as error:
                if not error.connection_invalidated or attempt:
                    raise
                self.close()
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Give back the connection the "running" rows were written on."""
        if self._outside is not None:
            self._outside.close()
            self._outside = None

    def check_lock(self, check: t.Callable[[], None], step: MigrationStep) -> None:
        """Make sure the migration lock is still ours before ``step`` starts.

        If it was lost, the run stops here with :class:`LockLostError`;
        :meth:`record_lock_loss` records ``step`` as interrupted once the
        run has unwound.
        """
        script = getattr(step, "revision", None)
        if script is None or getattr(step, "is_stamp", False):
            check()
            return
        action = "upgrade" if step.is_upgrade else "downgrade"
        try:
            # Asked now, while the lock is known to be ours: the statements
            # after this one check it.
            condition = self._lock_condition()
            if condition is not None and (
                self._checks_in_settings()
                or (self.ledger is not None and not self.rows_outside)
            ):
                # Checked in begin(), by the first statement it sends anyway.
                self._check_in_begin = condition
                return
            check()
        except LockLostError as error:
            step_ = RunningStep(script.revision, action, script.path)
            raise self._stopped(step_, error) from None

    def _lost_before(self, step: RunningStep) -> LockLostError:
        """The lock's check in :meth:`begin` found it lost: ``step`` is not
        run (see :meth:`_stopped`)."""
        assert self.lock is not None
        self.current = None
        self._counting = False
        return self._stopped(step, self.lock.lost())

    def _stopped(self, step: RunningStep, error: LockLostError) -> LockLostError:
        """The run stops before ``step``: kept for :meth:`record_lock_loss`."""
        revision, action = step.revision, step.action
        stopped = f"Stopped before the {action} of {revision}. {error}"
        running = RunningStep(revision, action, step.path)
        running.entry_id = self._prewritten.pop((revision, action), None)
        self._lock_lost = (running, stopped)
        return LockLostError(stopped)

    def record_lock_loss(self) -> None:
        """Record in the ledger the step a lost lock stopped, if any, and
        the "running" row of a next revision that never started.

        Called after the run has unwound, between revisions: with the
        migration's transaction still open, a write from another connection
        could wait on it.
        """
        if self.ledger is None:
            return
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            if self._lock_lost is not None:
                step, message = self._lock_lost
                self.ledger.record_failure(self.engine, step, "interrupted", message)
            for entry_id in self._prewritten.values():
                with self.engine.begin() as connection:
                    self.ledger.finish(
                        connection,
                        entry_id,
                        "interrupted",
                        0,
                        error="The run stopped before this revision started.",
                    )
            self._prewritten.clear()

    def end(self, following: MigrationStep | None = None) -> None:
        """The step ran: record it, in its transaction; with rows committed
        apart, also write ``following``'s "running" row there, so that it
        commits with this revision instead of on its own."""
        self._counting = False
        current = self.current
        if current is not None and self.ledger is not None:
            assert current.entry_id is not None  # written in begin()
            checksum = script_checksum(current.path)
            script = getattr(following, "revision", None)
            if not (self.rows_outside and following is not None and script):
                self.ledger.finish(
                    self.connection,
                    current.entry_id,
                    "applied",
                    current.statements,
                    checksum=checksum,
                )
            else:
                assert following is not None
                action = "upgrade" if following.is_upgrade else "downgrade"
                key = (script.revision, action)
                if self._folds_end():
                    # Sent with the version table's UPDATE, which comes next.
                    self._pending = (current, checksum, key)
                else:
                    self._write_following(current, checksum, key)
        # The step stays current until its version rows are written
        # (after_version): a failure there is the step's.

    def update_version(self, context: MigrationContext, from_: str, to_: str) -> int:
        """Alembic's version UPDATE for the step that just ran (see
        :mod:`..scripts.version_writes`): with bound parameters, and on
        PostgreSQL with the ledger's writes :meth:`end` left to it, in one
        statement. :return: The version rows updated."""
        pending, self._pending = self._pending, None
        if pending is not None and self.connection.get_execution_options().get(
            "schema_translate_map"
        ):
            # The map moves Alembic's version table (a Table); it would not
            # move it in the SQL text the ledger's statement is made of.
            self._write_following(*pending)
            pending = None
        if pending is None:
            if self._version_update is None:
                version = context._version
                self._version_update = (
                    version.update()
                    .values(version_num=sa.bindparam("fmx_to"))
                    .where(version.c.version_num == sa.bindparam("fmx_from"))
                )
            result = self.connection.execute(
                self._version_update, {"fmx_from": from_, "fmx_to": to_}
            )
            return int(result.rowcount)
        assert self.ledger is not None
        current, checksum, key = pending
        assert current.entry_id is not None
        found, entry_id = self.ledger.finish_start_and_move(
            self.connection,
            current.entry_id,
            current.statements,
            checksum,
            key,
            self._flush_in_end,
            context._version,
            (from_, to_),
        )
        if found == 1:
            assert entry_id is not None
            self._prewritten[key] = entry_id
        return found

    def after_version(self, context: MigrationContext) -> None:
        """The step's version rows are written: the ledger's writes that no
        version UPDATE carried (a step that only adds or removes a branch's
        row) are sent now, still in the step's transaction."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self._write_following(*pending)
        self.current = None

    def _write_following(
        self, current: RunningStep, checksum: str | None, key: tuple[str, str]
    ) -> None:
        """Record ``current`` as applied and write the next step's "running"
        row, in its transaction; on PostgreSQL in one statement that also
        checks the lock (see :meth:`Ledger.finish_and_start`)."""
        assert self.ledger is not None and current.entry_id is not None
        if not self._folds_end():
            self.ledger.finish(
                self.connection,
                current.entry_id,
                "applied",
                current.statements,
                checksum=checksum,
            )
            self._prewritten[key] = self.ledger.start(self.connection, *key)
            return
        entry_id = self.ledger.finish_and_start(
            self.connection,
            current.entry_id,
            current.statements,
            checksum,
            key,
            self._flush_in_end,
        )
        self._prewritten[key] = entry_id

    def stop_counting(self) -> None:
        self._counting = False


class TrackedStep:
    """A step as Alembic sees it, with the revision function wrapped."""

    def __init__(
        self,
        step: MigrationStep,
        tracker: StepTracker,
        last: bool = True,
        following: MigrationStep | None = None,
    ) -> None:
        self._step = step
        self._tracker = tracker
        self._last = last
        self._following = following

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._step, name)

    def should_delete_branch(self, heads: set[str]) -> bool:
        """Alembic's answer, without its walk of every ancestor in the
        common case: a downgrade step of a revision with one parent, from
        that revision as the only head, never deletes a branch's row (its
        parent becomes the head). Alembic works that out by listing the
        parent's ancestors on every step, which makes a long downgrade
        quadratic (300 revisions: 45,000 calls)."""
        step = self._step
        revision = getattr(step, "revision", None)
        if (
            getattr(step, "is_downgrade", False)
            and not getattr(step, "is_stamp", False)
            and revision is not None
            and heads == {revision.revision}
            and len(revision._normalized_down_revisions) == 1
        ):
            return False
        return bool(step.should_delete_branch(heads))  # type: ignore[attr-defined]

    @property
    def fmx_version_writer(self) -> StepTracker:
        """Who writes this step's version row (see
        :mod:`..scripts.version_writes`)."""
        return self._tracker

    def __str__(self) -> str:
        return str(self._step)

    def __repr__(self) -> str:
        return repr(self._step)

    @property
    def migration_fn(self) -> t.Callable[..., None]:
        fn: t.Callable[..., None] = self._step.migration_fn
        if getattr(self._step, "is_stamp", False) or not hasattr(
            self._step, "revision"
        ):
            return fn

        def run(**kw: t.Any) -> None:
            self._tracker.begin(self._step, self._last)
            try:
                fn(**kw)
            except BaseException:
                self._tracker.stop_counting()
                raise
            self._tracker.end(self._following)

        return run
