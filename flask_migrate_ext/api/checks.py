"""Test the migrations themselves, on a disposable database: ``flask db test``
and the pytest plugin share these checks.

Every check runs on a database made for the run (a temporary SQLite file,
or a database created on the server a URL names) with the app built as
usual: its engine is replaced for the run, never its config. The revision
graph is loaded once, and each walk over the history is one run of env.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import typing as t

import sqlalchemy as sa

from .. import errors
from ..apply.runner import run
from ..apply.runner import RunResult
from ..apply.runner import RunSettings
from ..apply.walk import climb
from ..apply.walk import descend
from ..apply.walk import leftover_tables
from ..databases.disposable import DisposableDatabase
from ..databases.urls import masked
from ..state import database_names
from ..state import engines_are_replaced
from ..state import engines_replaced
from ..state import get_state
from .base import _config
from .base import _scripts
from .base import _user_facing
from .inspect import check

if t.TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

CheckName = t.Literal[
    "single_head", "upgrade", "stairway", "models_match", "downgrade_to_base"
]
#: Every check, in the order they run.
CHECKS: tuple[CheckName, ...] = t.get_args(CheckName)

Status = t.Literal["passed", "failed", "skipped"]


@dataclasses.dataclass(frozen=True)
class Check:
    """The outcome of one check.

    .. versionadded:: 0.2
    """

    #: One of :data:`CHECKS`.
    name: CheckName
    status: Status
    #: The revision concerned (the one that failed), if any.
    revision: str | None
    #: What was found: for a failure, what went wrong and where.
    message: str
    #: Seconds spent.
    duration: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclasses.dataclass(frozen=True)
class MigrationChecks:
    """What :func:`run_migration_checks` found.

    .. versionadded:: 0.2
    """

    checks: tuple[Check, ...]
    #: The disposable database, URL masked.
    database: str
    #: How many revisions the history has.
    revisions: int
    #: Seconds for the whole run, database creation included.
    duration: float

    @property
    def passed(self) -> bool:
        """No check failed (skipped ones do not count)."""
        return not self.failures

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.status == "failed")

    def __getitem__(self, name: str) -> Check:
        for found in self.checks:
            if found.name == name:
                return found
        raise KeyError(name)

    def raise_for_failures(self) -> None:
        """Raise :class:`~flask_migrate_ext.errors.MigrationChecksFailedError`
        if a check failed."""
        if not self.failures:
            return
        listed = ", ".join(
            f"{c.name} (at {c.revision})" if c.revision else c.name
            for c in self.failures
        )
        count = len(self.failures)
        raise errors.MigrationChecksFailedError(
            f"{count} migration check{'s' if count > 1 else ''} failed: {listed}.",
            result=self,
        )


@_user_facing
def run_migration_checks(
    directory: str | os.PathLike[str] | None = None,
    *,
    database_url: str | None = None,
    checks: t.Sequence[str] | None = None,
    binds: t.Sequence[str] | None = None,
) -> MigrationChecks:
    """Check the migrations on a disposable database.

    The checks: the history has a single head; every revision upgrades from
    base, one at a time; every revision's downgrade undoes its upgrade (the
    stairway: upgrade, downgrade, compare the tables and columns, upgrade
    again); the models match the migrations at the head (autogenerate finds
    nothing); downgrading to base leaves no table but the version table.

    :param database_url: A PostgreSQL or MariaDB server to create the
        disposable database on (and drop it from afterwards); a temporary
        SQLite file by default.
    :param checks: The checks to run, by name (:data:`CHECKS`); all by
        default.
    :param binds: With several databases, the one to check.
    :return: Each check's outcome; :meth:`MigrationChecks.raise_for_failures`
        turns failures into an error.

    .. versionadded:: 0.2
    """
    started = time.perf_counter()
    wanted = _wanted(checks)
    name = _one_database()
    config = _config(directory)
    script = _scripts(config)
    kit = _Kit(config, script, name, wanted)
    with DisposableDatabase(database_url) as disposable:
        kit.run(disposable)
        where = (
            masked(disposable.engine.url)
            if database_url
            else "a temporary SQLite database"
        )
    return MigrationChecks(
        checks=tuple(kit.found[check] for check in CHECKS if check in wanted),
        database=where,
        revisions=len(list(script.walk_revisions())),
        duration=time.perf_counter() - started,
    )


class _Kit:
    """One run of the checks; ``found`` fills up as they run."""

    def __init__(
        self,
        config: Config,
        script: ScriptDirectory,
        database: str,
        wanted: set[CheckName],
    ) -> None:
        self.config = config
        self.script = script
        self.database = database
        self.wanted = wanted
        self.found: dict[CheckName, Check] = {}
        self.created: dict[str, str] = {}

    def record(
        self,
        name: CheckName,
        status: Status,
        message: str,
        duration: float = 0.0,
        revision: str | None = None,
    ) -> None:
        if name in self.wanted and name not in self.found:
            self.found[name] = Check(name, status, revision, message, duration)

    def on(self, disposable: DisposableDatabase) -> t.ContextManager[t.Any]:
        from flask import current_app

        app = current_app._get_current_object()  # type: ignore[attr-defined]
        return engines_replaced(app, {self.database: disposable.engine})

    def run(self, disposable: DisposableDatabase) -> None:
        self.single_head()
        if not self.wanted - {"single_head"}:
            return
        at_head = self.climb(disposable)
        if not at_head:
            reason = "not run: the heads can't be reached (see upgrade)"
            self.record("models_match", "skipped", reason)
            self.record("downgrade_to_base", "skipped", reason)
            return
        if "models_match" in self.wanted:
            with self.on(disposable):
                self.models_match()
        if "downgrade_to_base" in self.wanted:
            with self.on(disposable):
                self.downgrade_to_base(disposable)

    def single_head(self) -> None:
        started = time.perf_counter()
        heads = self.script.get_heads()
        elapsed = time.perf_counter() - started
        if len(heads) == 1:
            self.record("single_head", "passed", f"One head: {heads[0]}.", elapsed)
        elif not heads:
            self.record("single_head", "passed", "No revisions yet.", elapsed)
        else:
            command = get_state().command
            self.record(
                "single_head",
                "failed",
                f"The history has {len(heads)} heads: {', '.join(sorted(heads))}."
                f" Run 'flask {command} merge heads' to join them.",
                elapsed,
                revision=", ".join(sorted(heads)),
            )

    def climb(self, disposable: DisposableDatabase) -> bool:
        """Run the upgrade and stairway checks; whether the heads were reached."""
        stairway = "stairway" in self.wanted
        with self.on(disposable):
            walk = climb(self.config, self.script, stairway=stairway)
        self.created = walk.created
        failure = walk.failure
        if stairway:
            seconds = walk.seconds["downgrade"] + walk.seconds["upgrade again"]
            if failure is None:
                self.record(
                    "stairway",
                    "passed",
                    f"Each of {_revisions(walk.revisions)} upgraded, downgraded"
                    " to the same tables and columns, and upgraded again.",
                    seconds,
                )
            elif failure.phase == "upgrade":
                self.record(
                    "stairway",
                    "skipped",
                    f"Not run past {failure.revision}: its upgrade failed.",
                    seconds,
                )
            else:
                self.record(
                    "stairway", "failed", failure.message, seconds, failure.revision
                )
                # The upgrade check on a fresh database, as the stairway
                # stopped part-way.
                disposable.renew()
                with self.on(disposable):
                    walk = climb(self.config, self.script, stairway=False)
                failure = walk.failure
        seconds = walk.seconds["upgrade"]
        if failure is None:
            self.record(
                "upgrade",
                "passed",
                f"Upgraded from base to the heads one revision at a time"
                f" ({_revisions(walk.revisions)}).",
                seconds,
            )
            return True
        self.record("upgrade", "failed", failure.message, seconds, failure.revision)
        return False

    def models_match(self) -> None:
        started = time.perf_counter()
        heads = ", ".join(sorted(self.script.get_heads())) or None
        try:
            check()
        except errors.SchemaDriftError as e:
            count = len(e.lines)
            summary = "\n".join(f"  {line}" for line in e.lines)
            command = get_state().command
            self.record(
                "models_match",
                "failed",
                f"The models differ from the migrations at the head ({count}"
                f" change{'s' if count != 1 else ''}); run 'flask {command} migrate'"
                f" to write a revision:\n{summary}",
                time.perf_counter() - started,
                heads,
            )
            return
        self.record(
            "models_match",
            "passed",
            "Autogenerate finds nothing to change at the head.",
            time.perf_counter() - started,
        )

    def downgrade_to_base(self, disposable: DisposableDatabase) -> None:
        started = time.perf_counter()
        walk = descend(self.config, self.script)
        if walk.failure is not None:
            self.record(
                "downgrade_to_base",
                "failed",
                walk.failure.message,
                time.perf_counter() - started,
                walk.failure.revision,
            )
            return
        version_table = get_state().context_kwargs.get(
            "version_table", "alembic_version"
        )
        with disposable.engine.connect() as connection:
            left = leftover_tables(connection, version_table)
        if not left:
            self.record(
                "downgrade_to_base",
                "passed",
                "Downgraded to base one revision at a time; only the version"
                " table is left.",
                time.perf_counter() - started,
            )
            return
        creators = sorted(
            {self.created[table] for table in left if table in self.created}
        )
        described = ", ".join(
            f"{table} (created by {self.created[table]})"
            if table in self.created
            else table
            for table in left
        )
        self.record(
            "downgrade_to_base",
            "failed",
            f"Tables left after downgrading to base: {described}.",
            time.perf_counter() - started,
            ", ".join(creators) or None,
        )


def _revisions(count: int) -> str:
    return f"{count} revision{'s' if count != 1 else ''}"


def _wanted(checks: t.Sequence[str] | None) -> set[CheckName]:
    if not checks:
        return set(CHECKS)
    unknown = [name for name in checks if name not in CHECKS]
    if unknown:
        raise ValueError(
            f"Unknown check {', '.join(map(repr, unknown))}; the checks are:"
            f" {', '.join(CHECKS)}."
        )
    return {t.cast(CheckName, name) for name in checks}


def _one_database() -> str:
    names = database_names()
    if len(names) != 1:
        listed = ", ".join(repr(name) or "''" for name in names)
        raise errors.UnknownBindError(
            f"The migrations of one database are tested at a time; this app"
            f" migrates {len(names)} ({listed}): choose one with --bind NAME."
        )
    return names[0]


@contextlib.contextmanager
def disposable_database(database_url: str | None = None) -> t.Iterator[sa.Engine]:
    """Point the current app's migrations at a new, empty database inside
    the block, and drop it afterwards.

    The app, its config and its own engines are left alone: only what
    env.py and this package's functions use is replaced. Used by the
    pytest plugin's fixtures.

    :param database_url: See :func:`run_migration_checks`.
    :return: The disposable database's engine.

    .. versionadded:: 0.2
    """
    from flask import current_app

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with app.app_context():
        name = _one_database()
    with (
        DisposableDatabase(database_url) as disposable,
        engines_replaced(app, {name: disposable.engine}),
    ):
        yield disposable.engine


@_user_facing
def migrate_disposable(
    action: t.Literal["upgrade", "downgrade"],
    revision: str,
    directory: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Upgrade or downgrade the database of :func:`disposable_database`,
    without the lock and the ledger (it is thrown away afterwards).

    :raises RuntimeError: Outside :func:`disposable_database`: the app's own
        databases are migrated with :func:`upgrade` and :func:`downgrade`.

    .. versionadded:: 0.2
    """
    if not engines_are_replaced():
        raise RuntimeError(
            "migrate_disposable() works on a disposable database only: call it"
            " inside disposable_database()."
        )
    config = _config(directory)
    settings = RunSettings(lock=False, ledger_table=None, command=get_state().command)
    return run(config, action, revision, settings=settings)
