"""Walk a history one revision at a time on a disposable database, in one
run of env.py: the engine of ``flask db test``.

The runner (:mod:`.runner`) applies revisions to the app's databases, with
the lock and the ledger; a disposable database needs neither. What the kit
needs is to run every revision's upgrade and downgrade on its own, and to
know which one failed, without paying for env.py (and a new connection)
hundreds of times: Alembic runs whatever steps the work function hands it,
in any direction, so one run of env.py does the whole walk.
"""

from __future__ import annotations

import dataclasses
import time
import typing as t

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext

from ..databases.disposable import Outline
from ..databases.disposable import outline
from ..databases.disposable import tables
from ..errors import first_line
from ..errors import short_statement
from ..scripts import context_rules
from ..scripts import stairs
from ..state import running
from .statements import failure_location

if t.TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.runtime.migration import MigrationStep
    from alembic.script import Script
    from alembic.script import ScriptDirectory

#: What was running: the first upgrade of a revision, its downgrade, or its
#: upgrade after that downgrade.
Phase = t.Literal["upgrade", "downgrade", "upgrade again"]


@dataclasses.dataclass(frozen=True)
class WalkFailure:
    """The step that failed, and why."""

    phase: Phase
    revision: str
    #: A few lines: what failed, where in the revision file, the statement.
    message: str


@dataclasses.dataclass
class Walk:
    """What a walk did."""

    #: Steps run to the end.
    steps: int = 0
    #: The first failure; the walk stops there.
    failure: WalkFailure | None = None
    #: Each table an upgrade created, with that revision (stairway walks only).
    created: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Seconds spent in each phase.
    seconds: dict[Phase, float] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(t.get_args(Phase), 0.0)
    )
    #: The step running now.
    current: tuple[Phase, Script] | None = None

    @property
    def revisions(self) -> int:
        """Revisions upgraded."""
        return len(self.upgraded)

    upgraded: set[str] = dataclasses.field(default_factory=set)


class _Residue(Exception):
    """A downgrade did not bring the schema back to where its upgrade began."""


class _Hooked:
    """A step as Alembic sees it, with code run before and after the revision
    function, inside the step's transaction."""

    def __init__(
        self,
        step: MigrationStep,
        before: t.Callable[[], None] | None = None,
        after: t.Callable[[], None] | None = None,
    ) -> None:
        self._step = step
        self._before = before
        self._after = after

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._step, name)

    def __str__(self) -> str:
        return str(self._step)

    @property
    def migration_fn(self) -> t.Callable[..., None]:
        fn: t.Callable[..., None] = self._step.migration_fn

        def run(**kw: t.Any) -> None:
            if self._before is not None:
                self._before()
            fn(**kw)
            if self._after is not None:
                self._after()

        return run


def climb(config: Config, script: ScriptDirectory, stairway: bool) -> Walk:
    """Upgrade an empty database from base to the heads, one revision at a
    time; with ``stairway``, downgrade each revision right after its upgrade
    (checking that the schema is back where it was) and upgrade it again."""
    walk = Walk()

    def plan(context: MigrationContext) -> t.Iterator[t.Any]:
        connection = _connection(context)
        ignore = {*context_rules.own_tables(), context.version_table}
        for revision in stairs.in_order(script):
            if not stairway:
                yield from _one(
                    walk, "upgrade", revision, stairs.step(script, revision, True)
                )
                continue
            found: dict[str, Outline] = {}

            def before(found: dict[str, Outline] = found) -> None:
                found["before"] = outline(connection, ignore)

            def after(
                found: dict[str, Outline] = found, revision: Script = revision
            ) -> None:
                now = outline(connection, ignore)
                for table in tables(now) - tables(found["before"]):
                    walk.created.setdefault(table, revision.revision)

            def undone(found: dict[str, Outline] = found) -> None:
                left = _difference(found["before"], outline(connection, ignore))
                if left:
                    raise _Residue(left)

            up = stairs.step(script, revision, True)
            yield from _one(walk, "upgrade", revision, _Hooked(up, before, after))
            down = stairs.step(script, revision, False)
            yield from _one(walk, "downgrade", revision, _Hooked(down, after=undone))
            again = stairs.step(script, revision, True)
            yield from _one(walk, "upgrade again", revision, again)

    return _run(config, script, walk, plan)


def descend(config: Config, script: ScriptDirectory) -> Walk:
    """Downgrade a database at the heads to base, one revision at a time."""
    walk = Walk()

    def plan(context: MigrationContext) -> t.Iterator[t.Any]:
        for revision in reversed(stairs.in_order(script)):
            step = stairs.step(script, revision, False)
            yield from _one(walk, "downgrade", revision, step)

    return _run(config, script, walk, plan)


def leftover_tables(connection: sa.Connection, version_table: str) -> list[str]:
    """The tables in the database besides the version table and ours."""
    ignore = {*context_rules.own_tables(), version_table}
    return sorted(tables(outline(connection, ignore)))


def _one(walk: Walk, phase: Phase, revision: Script, step: t.Any) -> t.Iterator[t.Any]:
    walk.current = (phase, revision)
    started = time.perf_counter()
    yield step
    # Asked for the next step: this one is done.
    walk.seconds[phase] += time.perf_counter() - started
    walk.current = None
    walk.steps += 1
    if phase == "upgrade":
        walk.upgraded.add(revision.revision)


def _run(
    config: Config,
    script: ScriptDirectory,
    walk: Walk,
    plan: t.Callable[[MigrationContext], t.Iterator[t.Any]],
) -> Walk:
    def work(heads: t.Any, context: MigrationContext) -> t.Iterable[t.Any]:
        return plan(context)

    environment = EnvironmentContext(config, script, fn=work)
    try:
        with (
            running(fallbacks={"transaction_per_migration": True}),
            environment,
        ):
            script.run_env()
    except Exception as error:
        if walk.current is None:
            raise
        phase, revision = walk.current
        walk.failure = WalkFailure(phase, revision.revision, _describe(walk, error))
    walk.current = None
    return walk


def _describe(walk: Walk, error: Exception) -> str:
    assert walk.current is not None
    phase, revision = walk.current
    if isinstance(error, _Residue):
        return (
            f"Downgrading {revision.revision} did not undo its upgrade:"
            f" {error}. Complete downgrade() in {revision.path}."
        )
    if isinstance(error, sa.exc.DBAPIError):
        reason = first_line(error.orig) or type(error.orig).__name__
    else:
        reason = f"{type(error).__name__}: {first_line(error)}".rstrip(": ")
    what = {
        "upgrade": "upgrade",
        "downgrade": "downgrade",
        "upgrade again": "upgrade after its downgrade",
    }[phase]
    lines = [f"The {what} of {revision.revision} failed: {reason}"]
    location = failure_location(error, revision.path)
    if location:
        lines.append(f"  at {location}")
    statement = getattr(error, "statement", None)
    if statement:
        lines.append(f"  while running: {short_statement(statement)}")
    return "\n".join(lines)


def _difference(before: Outline, after: Outline) -> str:
    """What differs between two outlines, in words."""
    said = []
    before_tables, after_tables = tables(before), tables(after)
    for table in sorted(after_tables - before_tables):
        said.append(f"table {table!r} is still there")
    for table in sorted(before_tables - after_tables):
        said.append(f"table {table!r} is gone")
    common = before_tables & after_tables
    for table, column in sorted(after - before):
        if table in common:
            said.append(f"column {table}.{column} is still there")
    for table, column in sorted(before - after):
        if table in common:
            said.append(f"column {table}.{column} is gone")
    return "; ".join(said)


def _connection(context: MigrationContext) -> sa.Connection:
    connection = context.connection
    assert connection is not None, "the kit never runs in --sql mode"
    return connection
