"""Commands over several targets: each tenant schema, and each bind, on its own.

A target is one run of env.py (see :mod:`flask_migrate_ext.apply.targets`).
With ``jobs=1`` they run one after another in this process; with more, in
worker processes (:mod:`.pool`), each target under its own lock and
transactions as when run alone. A failed target stops new ones from
starting (``continue_on_error`` goes on); those never started are
``skipped``. A command over one target behaves, and prints, as it always did.

Progress events (:mod:`flask_migrate_ext.progress`) of targets run in
workers are sent to this process and given to the listener here, which
also hears when the targets start and as each ends; a worker displays
nothing of its own.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import io
import signal
import sys
import time
import traceback
import typing as t

import sqlalchemy as sa

from .. import errors
from .. import progress
from ..apply.lock import control_engine
from ..apply.targets import TargetResult
from ..databases.tenants import in_schema
from ..report import report
from ..report import reporting_to
from ..settings import schema_names
from ..state import current_settings
from ..state import database_names
from ..state import get_engine
from ..state import get_state
from ..state import running
from .boundary import translate_errors

T = t.TypeVar("T")

#: Told each target's result as it finishes, when there are several (the
#: CLI prints a line for each).
_listener: contextvars.ContextVar[t.Callable[[TargetResult], None] | None] = (
    contextvars.ContextVar("flask_migrate_ext_target_listener", default=None)
)


@contextlib.contextmanager
def listening(listener: t.Callable[[TargetResult], None]) -> t.Iterator[None]:
    """Call ``listener`` with each target's result as it finishes, inside the
    block, when a command runs over several targets."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


@dataclasses.dataclass(frozen=True)
class Target:
    """One run of env.py: in a tenant schema, on one bind, or as env.py likes."""

    label: str
    #: Select this bind only (``--bind``); ``None``: as the command says.
    bind: str | None = None
    schema: str | None = None


@dataclasses.dataclass
class Plan:
    """The targets of one command, and how to run them."""

    targets: list[Target]
    jobs: int = 1
    continue_on_error: bool = False
    #: The engine whose connections a tenant schema's run switches.
    schema_engine: sa.Engine | None = None
    #: Say ``Schema NAME:`` as each tenant schema's run starts.
    announce: bool = True

    @property
    def several(self) -> bool:
        return len(self.targets) > 1


def check_jobs(jobs: int, sql: bool = False) -> None:
    """Refuse a ``jobs`` value that cannot work."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number, 1 or more, not {jobs!r}.")
    if sql and jobs > 1:
        raise ValueError(
            "jobs above 1 run targets against their databases; sql=True writes"
            " the SQL instead: choose one."
        )


def schema_list(schemas: t.Sequence[str] | None) -> list[str]:
    """The tenant schemas to work in: ``schemas`` (``--schema``) if given,
    else ``MIGRATE_SCHEMAS`` (calling it when it is a function)."""
    if schemas:
        return list(schemas)
    configured = current_settings().schemas
    if not callable(configured):
        return list(configured)
    try:
        returned = configured()
    except Exception as e:
        raise errors.SettingsError(
            f"MIGRATE_SCHEMAS's function failed: {type(e).__name__}:"
            f" {errors.first_line(e) or '(no message)'}"
        ) from e
    return list(schema_names("MIGRATE_SCHEMAS", returned))


def plan(
    schemas: list[str],
    schema_engine: t.Callable[[list[str]], sa.Engine],
    env_chooses_binds: bool,
    *,
    jobs: int = 1,
    continue_on_error: bool = False,
) -> Plan:
    """The command's targets: each tenant schema; else each bind when
    targets were asked for (``jobs`` above 1 or ``continue_on_error``) and
    env.py can choose binds; else one target, every database in one run of
    env.py (whose transactions commit together, as they always did)."""
    if schemas:
        engine = schema_engine(schemas)
        targets = [Target(f"schema {name}", schema=name) for name in schemas]
        return Plan(targets, jobs, continue_on_error, engine)
    names = database_names()
    if env_chooses_binds and len(names) > 1 and (jobs > 1 or continue_on_error):
        targets = [Target(_bind_label(name), bind=name) for name in names]
        return Plan(targets, jobs, continue_on_error)
    label = _bind_label(names[0]) if len(names) == 1 else "all databases"
    return Plan([Target(label)], jobs, continue_on_error)


def _bind_label(name: str) -> str:
    return name or "<default>"


@contextlib.contextmanager
def entered(
    target: Target, schema_engine: sa.Engine | None, announce: bool = True
) -> t.Iterator[None]:
    """Work on ``target`` inside the block."""
    if target.schema is not None:
        assert schema_engine is not None
        if announce:
            report(f"Schema {target.schema}:")
        with in_schema(schema_engine, target.schema):
            yield
    elif target.bind is not None:
        with running(binds=(target.bind,)):
            yield
    else:
        yield


def run(
    work_plan: Plan,
    work: t.Callable[[Target], T],
    fill: t.Callable[[T, TargetResult], None] | None = None,
) -> tuple[list[TargetResult], list[T | None]]:
    """Run ``work`` on each target of the plan.

    :param fill: Completes a target's result from what ``work`` returned.
    :return: Each target's result and what ``work`` returned there (``None``
        where it failed, or a failed command's partial result), in the
        plan's order.
    :raises TargetsFailedError: Some target did not finish (``result`` is
        for the caller to set).
    :raises KeyboardInterrupt: The command was stopped; the targets'
        results are its ``targets`` attribute.
    """
    if not work_plan.several:
        (target,) = work_plan.targets
        result = TargetResult(target.label, target.bind, target.schema)
        started = time.perf_counter()
        with entered(target, work_plan.schema_engine, work_plan.announce):
            value = work(target)
        result.seconds = time.perf_counter() - started
        if fill is not None:
            fill(value, result)
        return [result], [value]
    if work_plan.jobs > 1 and not _can_fork():
        report(
            "Running targets one at a time: --jobs needs os.fork, which this"
            " platform does not have."
        )
        work_plan = dataclasses.replace(work_plan, jobs=1)
    one = _Runner(work_plan, work, fill)
    one.tell_progress(progress.TargetsStarted(len(work_plan.targets), work_plan.jobs))
    if work_plan.jobs == 1:
        return one.in_process()
    return one.in_workers()


def _can_fork() -> bool:
    # The worker pool (and multiprocessing) is imported for --jobs only.
    from . import pool

    return pool.can_fork()


class _Runner(t.Generic[T]):
    def __init__(
        self,
        work_plan: Plan,
        work: t.Callable[[Target], T],
        fill: t.Callable[[T, TargetResult], None] | None,
    ) -> None:
        self.plan = work_plan
        self.work = work
        self.fill = fill
        n = len(work_plan.targets)
        self.results: list[TargetResult | None] = [None] * n
        self.values: list[T | None] = [None] * n
        self.listener = _listener.get()
        #: Told the progress of runs in workers, and of the targets.
        self.progress = progress.current_listener()
        #: What the progress listener raised (it is told no more).
        self.progress_error: Exception | None = None
        self.ended = 0

    def in_process(self) -> tuple[list[TargetResult], list[T | None]]:
        stopped: BaseException | None = None
        for index, target in enumerate(self.plan.targets):
            if stopped is not None or not self._going_on():
                break
            result, value, interrupt = self.one(target)
            stopped = interrupt
            self._done(index, result, value)
        return self._finish(stopped)

    def in_workers(self) -> tuple[list[TargetResult], list[T | None]]:
        from . import pool

        # The worker's progress events go to this process, as they happen.
        forward = _Forward() if self.progress is not None else None

        def run_captured(target: Target) -> tuple[TargetResult, T | None]:
            output = io.StringIO()
            saved = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = output
            try:
                with (
                    reporting_to(lambda message: print(message, file=output)),
                    progress.listening(forward),
                ):
                    result, value, interrupt = self.one(target)
                if forward is not None:
                    forward.flush()
            finally:
                sys.stdout, sys.stderr = saved
            if interrupt is not None and pool.received_signal() == signal.SIGTERM:
                result.exit_code = errors.ExitCode.TERMINATED
            result.log = output.getvalue()
            return result, value

        def done(index: int, outcome: t.Any) -> bool:
            if isinstance(outcome, pool.Died):
                target = self.plan.targets[index]
                result = TargetResult(target.label, target.bind, target.schema)
                result.status = "failed"
                result.error = f"Stopped: {outcome}."
                result.exit_code = errors.ExitCode.ERROR
                self._done(index, result, None)
            else:
                self._done(index, *outcome)
            return self._going_on()

        _, stopped = pool.run_parallel(
            self.plan.jobs,
            self.plan.targets,
            run_captured,
            child_setup=_forget_connections,
            done=done,
            message=self._forwarded,
        )
        return self._finish(stopped)

    def one(
        self, target: Target
    ) -> tuple[TargetResult, T | None, BaseException | None]:
        """Run one target, whatever happens: errors go in its result."""
        result = TargetResult(target.label, target.bind, target.schema)
        value: T | None = None
        interrupt: BaseException | None = None
        started = time.perf_counter()
        try:
            with (
                translate_errors(),
                _named(target),
                entered(target, self.plan.schema_engine, self.plan.announce),
            ):
                value = self.work(target)
                if self.fill is not None:
                    self.fill(value, result)
        except KeyboardInterrupt as e:
            interrupt = e
            result.status = "interrupted"
            result.error = "Interrupted."
            result.exit_code = getattr(e, "exit_code", errors.ExitCode.INTERRUPTED)
        except Exception as e:
            result.status = "failed"
            result.exit_code = getattr(e, "exit_code", errors.ExitCode.ERROR)
            if isinstance(e, errors.MigrateError):
                result.error = str(e)
            else:
                result.error = f"{type(e).__name__}: {errors.first_line(e)}"
            result.traceback = traceback.format_exc()
            value = getattr(e, "result", None)
        if not result.ok:
            result.after = read_versions(target, self.plan.schema_engine)
        result.seconds = time.perf_counter() - started
        return result, value, interrupt

    def tell_progress(self, event: progress.ProgressEvent) -> None:
        """Give the progress listener an event, here; if it raises, it is
        told no more, no new target starts, and :meth:`_finish` raises."""
        listener = self.progress
        if listener is None:
            return
        try:
            listener(event)
        except Exception as e:
            self.progress = None
            self.progress_error = e

    def _forwarded(
        self, index: int, events: tuple[progress.ProgressEvent, ...]
    ) -> None:
        for event in events:
            self.tell_progress(event)

    def _going_on(self) -> bool:
        if self.progress_error is not None:
            return False
        if self.plan.continue_on_error:
            return True
        return all(r is None or r.ok for r in self.results)

    def _done(self, index: int, result: TargetResult, value: T | None) -> None:
        self.results[index] = result
        self.values[index] = value
        self._ended(self.plan.targets[index], result.status)
        self._tell(result)

    def _ended(self, target: Target, status: str) -> None:
        self.ended += 1
        total = len(self.plan.targets)
        self.tell_progress(
            progress.TargetFinished(run_name(target), status, self.ended, total)
        )

    def _tell(self, result: TargetResult) -> None:
        if self.listener is not None:
            self.listener(result)
        elif result.log:
            for line in result.log.splitlines():
                report(line)

    def _finish(
        self, stopped: BaseException | None
    ) -> tuple[list[TargetResult], list[T | None]]:
        for index, target in enumerate(self.plan.targets):
            if self.results[index] is None:
                skipped = TargetResult(
                    target.label, target.bind, target.schema, status="skipped"
                )
                self.results[index] = skipped
                self._ended(target, skipped.status)
                self._tell(skipped)
        results = [r for r in self.results if r is not None]
        if stopped is not None:
            stopped.targets = results  # type: ignore[attr-defined]
            raise stopped
        if self.progress_error is not None:
            raise self.progress_error
        return results, self.values


class _Forward:
    """In a worker: send the progress events to the parent, a run's start
    and each revision's end with the event that follows them at once (a
    revision starting, the run's end): one message per revision, not two,
    as each message wakes the parent up."""

    def __init__(self) -> None:
        self._held: list[progress.ProgressEvent] = []

    def __call__(self, event: progress.ProgressEvent) -> None:
        self._held.append(event)
        if not isinstance(event, (progress.RunStarted, progress.RevisionFinished)):
            self.flush()

    def flush(self) -> None:
        if self._held:
            from . import pool  # runs in a worker: imported there already

            events = tuple(self._held)
            self._held.clear()
            pool.send(events)


def run_name(target: Target) -> str:
    """The target as the progress events of its runs name it."""
    if target.schema is not None:
        return target.schema
    if target.bind is not None:
        return target.bind or "default"
    return target.label


_RUN_EVENTS = (
    progress.RunStarted,
    progress.RevisionStarted,
    progress.RevisionFinished,
    progress.RunFinished,
)


@contextlib.contextmanager
def _named(target: Target) -> t.Iterator[None]:
    """The runs on one bind of several name it in their progress events (the
    runner sees one database)."""
    listener = progress.current_listener()
    if target.bind is None or listener is None:
        yield
        return

    def named(event: progress.ProgressEvent) -> None:
        if isinstance(event, _RUN_EVENTS) and not event.several:
            event = dataclasses.replace(event, several=True)
        listener(event)

    with progress.listening(named):
        yield


def _forget_connections() -> None:
    """In a worker: drop the pooled connections inherited from the parent,
    without closing them (the parent still uses them)."""
    state = get_state()
    for name in state.known_database_names():
        with contextlib.suppress(Exception):
            engine = get_engine(state, name)
            for each in {engine, getattr(engine, "sync_engine", engine)}:
                each.dispose(close=False)


def read_versions(
    target: Target, schema_engine: sa.Engine | None
) -> tuple[str, ...] | None:
    """The target's version table now (``None``: several databases, or it
    could not be read)."""
    state = get_state()
    with contextlib.ExitStack() as stack:
        if target.bind is not None:
            stack.enter_context(running(binds=(target.bind,)))
        names = database_names()
    if len(names) != 1:
        return None
    kwargs = state.context_kwargs
    table = sa.table(
        kwargs.get("version_table", "alembic_version"),
        sa.column("version_num"),
        schema=target.schema or kwargs.get("version_table_schema"),
    )
    try:
        engine = control_engine(get_engine(state, names[0]))
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(table.name, table.schema):
                return ()
            rows = connection.execute(sa.select(table.c.version_num)).scalars()
            return tuple(sorted(rows))
    except sa.exc.SQLAlchemyError:
        return None


def raise_failed(
    results: t.Sequence[TargetResult], result: t.Any, command: str
) -> None:
    """Raise :class:`TargetsFailedError` if some target did not finish."""
    bad = [r for r in results if r.status in ("failed", "interrupted")]
    if not bad:
        return
    labels = ", ".join(r.label for r in bad[:5]) + (", ..." if len(bad) > 5 else "")
    skipped = sum(1 for r in results if r.status == "skipped")
    message = f"{len(bad)} of {len(results)} targets failed: {labels}."
    if skipped:
        message += (
            f" {skipped} not started ('flask {command} ... --continue-on-error'"
            " goes on past a failed target)."
        )
    raise errors.TargetsFailedError(
        message,
        results,
        result,
        errors.worst(r.exit_code for r in bad),
    )
