"""Exceptions raised by the Python API, and the exit codes the CLI maps them to.

The API never calls :func:`sys.exit`; it raises one of these. The CLI turns
them into a one-line message and :attr:`MigrateError.exit_code`, in one place
(:func:`flask_migrate_ext.cli.user_errors`). The table of exit codes is part
of the public interface and documented in ``docs/exit-codes``.
"""

from __future__ import annotations

import enum
import typing as t


class ExitCode(enum.IntEnum):
    """Exit codes of every ``flask db`` command. Stable: scripts rely on them."""

    #: The command did what was asked, or there was nothing to do.
    OK = 0
    #: Any error without a more specific code below.
    ERROR = 1
    #: Bad usage, or the Flask app could not be found or has no extension.
    USAGE = 2
    #: ``check``: the models differ from the database.
    SCHEMA_DRIFT = 3
    #: The database is not at the head revision(s) where the command needs it.
    NOT_UP_TO_DATE = 4
    #: Another process held the migration lock for longer than the timeout.
    LOCK_TIMEOUT = 5
    #: A revision was left partially applied and needs attention.
    PARTIALLY_APPLIED = 6
    #: The database could not be reached or refused the login.
    DATABASE_UNREACHABLE = 7
    #: The database is at a revision that no script in the migration
    #: directory defines (code older than the database?).
    UNKNOWN_REVISION = 8
    #: ``verify``: scripts were edited after they were applied, are missing,
    #: or revisions were applied without the ledger seeing them.
    VERIFY_FAILED = 9
    #: The migration lock was lost while the run held it (a dropped
    #: connection); the run stopped before its next revision.
    LOCK_LOST = 10
    #: The run would drop tables or columns holding rows, and that was not
    #: confirmed (``--yes``); nothing was run.
    DATA_LOSS_REFUSED = 11
    #: ``lint``: a revision script has an operation that loses data, fails on
    #: a table with rows or locks it (or, with ``--strict``, a warning).
    LINT_FAILED = 12
    #: ``test``: a check of the migrations failed (a downgrade that does not
    #: undo its upgrade, models not migrated, several heads...).
    CHECKS_FAILED = 13
    #: Stopped by Ctrl-C (SIGINT).
    INTERRUPTED = 130
    #: Stopped by SIGTERM.
    TERMINATED = 143


#: Exit codes from the most severe to the least, for a command over several
#: targets (``--jobs``, tenant schemas), which exits with the most severe of
#: its targets' codes: a run cut short by a signal first, then what needs a
#: person to repair a database, then failed revisions, then what stopped a
#: target before it changed anything, then findings. Documented in
#: ``docs/exit-codes``.
SEVERITY: tuple[ExitCode, ...] = (
    ExitCode.TERMINATED,
    ExitCode.INTERRUPTED,
    ExitCode.PARTIALLY_APPLIED,
    ExitCode.LOCK_LOST,
    ExitCode.ERROR,
    ExitCode.UNKNOWN_REVISION,
    ExitCode.DATABASE_UNREACHABLE,
    ExitCode.LOCK_TIMEOUT,
    ExitCode.DATA_LOSS_REFUSED,
    ExitCode.USAGE,
    ExitCode.VERIFY_FAILED,
    ExitCode.CHECKS_FAILED,
    ExitCode.LINT_FAILED,
    ExitCode.SCHEMA_DRIFT,
    ExitCode.NOT_UP_TO_DATE,
    ExitCode.OK,
)


def worst(codes: t.Iterable[int]) -> ExitCode:
    """The most severe of ``codes`` by :data:`SEVERITY` (``OK`` for none); a
    code not in the table counts as ``ERROR``."""
    ranks = {code: rank for rank, code in enumerate(SEVERITY)}
    found = [ExitCode(c) if c in ranks else ExitCode.ERROR for c in codes]
    return min(found, key=ranks.__getitem__, default=ExitCode.OK)


def first_line(text: object) -> str:
    """The first non-blank line of ``text`` (a message, an exception), stripped."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def short_statement(statement: object, limit: int = 200) -> str:
    """A SQL statement on one line, cut to ``limit`` characters."""
    text = " ".join(str(statement).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class MigrateError(Exception):
    """Base class of the errors raised by :mod:`flask_migrate_ext`.

    ``str(error)`` is a short message fit to show a user as it is.
    """

    exit_code: t.ClassVar[ExitCode] = ExitCode.ERROR


class SettingsError(MigrateError):
    """A ``MIGRATE_*`` setting has a value of the wrong type or out of range."""

    exit_code = ExitCode.USAGE


class NotInitializedError(MigrateError):
    """The current app has no :class:`~flask_migrate_ext.Migrate` extension,
    or it was given no database."""

    exit_code = ExitCode.USAGE


class DirectoryNotFoundError(MigrateError):
    """The migration directory does not exist yet."""


class DirectoryExistsError(MigrateError):
    """``init`` was asked to create a directory that is already in use."""


class TemplateNotFoundError(MigrateError):
    """``init`` was given a template that does not exist."""


class DatabaseNotConfiguredError(MigrateError):
    """A database (bind) that a revision or the command names is not configured."""


class RevisionGraphError(MigrateError):
    """The revision files do not form a valid history (a duplicated id, a
    ``down_revision`` that points nowhere); the message names the files."""


class RevisionNotFoundError(MigrateError):
    """A revision identifier or symbol does not name a known revision."""


class UnknownBindError(MigrateError):
    """``--bind`` named a database the app does not migrate."""

    exit_code = ExitCode.USAGE


class NotUpToDateError(MigrateError):
    """The database is not at the head revision(s), but the command needs it."""

    exit_code = ExitCode.NOT_UP_TO_DATE


class PendingMigrationsError(NotUpToDateError):
    """``MIGRATE_GUARD = "error"``: the app's database is behind its
    migration scripts (or a revision was left partially applied), so the
    app refuses to connect to it until ``flask db upgrade`` has run.

    :attr:`result` holds the :class:`~flask_migrate_ext.StatusResult` the
    guard read.
    """

    exit_code = ExitCode.NOT_UP_TO_DATE

    def __init__(self, message: str, result: t.Any = None) -> None:
        super().__init__(message)
        self.result = result


class SchemaDriftError(MigrateError):
    """``check`` found differences between the models and the database.

    :attr:`diffs` holds Alembic's raw diff tuples; :attr:`lines` one
    readable line per difference.
    """

    exit_code = ExitCode.SCHEMA_DRIFT

    def __init__(self, message: str, diffs: list[t.Any], lines: list[str]) -> None:
        super().__init__(message)
        self.diffs = diffs
        self.lines = lines


class DatabaseUnreachableError(MigrateError):
    """The database could not be connected to (the URL in the message is masked)."""

    exit_code = ExitCode.DATABASE_UNREACHABLE


class MigrationFailedError(MigrateError):
    """A revision script or a statement it ran failed."""


class LockTimeoutError(MigrateError):
    """Another process held the migration lock for longer than the timeout."""

    exit_code = ExitCode.LOCK_TIMEOUT


class PartiallyAppliedError(MigrateError):
    """A revision failed or was stopped part-way on a database that cannot
    roll back DDL; someone has to look before migrations go on.

    :attr:`entries` holds the ledger rows concerned. Raised by ``current``,
    :attr:`result` holds what it read first (its list of
    :class:`~flask_migrate_ext.api.results.DatabaseState`), so the CLI can
    show it before the error.
    """

    exit_code = ExitCode.PARTIALLY_APPLIED

    def __init__(self, message: str, entries: t.Sequence[t.Any] = ()) -> None:
        super().__init__(message)
        self.entries = list(entries)
        self.result: t.Any = None


class UnknownRevisionError(MigrateError):
    """A database's version table names a revision no script defines: the
    code is probably older than the database (a rollback of the app, a
    branch switch), or a revision file was deleted."""

    exit_code = ExitCode.UNKNOWN_REVISION


class FindingsError(MigrateError):
    """A command ran to its end and found problems: :attr:`result` holds its
    full result (what it printed before the error)."""

    def __init__(self, message: str, result: t.Any = None) -> None:
        super().__init__(message)
        self.result = result


class VerifyFailedError(FindingsError):
    """``verify`` found applied scripts that were edited or are missing, or
    revisions applied without the ledger seeing them.

    :attr:`result` holds the full report.
    """

    exit_code = ExitCode.VERIFY_FAILED


class LockLostError(MigrateError):
    """The migration lock was lost while a run held it (the server or a proxy
    dropped its connection). The run stopped before its next revision."""

    exit_code = ExitCode.LOCK_LOST


class DataLossRefusedError(MigrateError):
    """The run would drop tables or columns that hold rows, and that was not
    confirmed. Nothing was run.

    :attr:`losses` holds what would be lost (see
    :class:`~flask_migrate_ext.apply.dataloss.DataLoss`).
    """

    exit_code = ExitCode.DATA_LOSS_REFUSED

    def __init__(self, message: str, losses: t.Sequence[t.Any] = ()) -> None:
        super().__init__(message)
        self.losses = list(losses)


class RewriteRequestError(MigrateError):
    """``migrate`` was asked for a rename or a default (``--rename``,
    ``--rename-table``, ``--default``) that matches no change autogenerate
    found, or that is written wrongly. Nothing was written."""

    exit_code = ExitCode.USAGE


class LintFailedError(FindingsError):
    """``lint`` found errors in revision scripts (or warnings, when strict).

    :attr:`result` holds the :class:`~flask_migrate_ext.api.LintResult`.
    """

    exit_code = ExitCode.LINT_FAILED


class MigrationChecksFailedError(FindingsError):
    """``test`` found a problem in the migrations; :attr:`result` holds every
    check's outcome (a :class:`~flask_migrate_ext.api.MigrationChecks`)."""

    exit_code = ExitCode.CHECKS_FAILED


class GraphvizNotFoundError(MigrateError):
    """``flask db graph --format svg`` needs Graphviz's ``dot`` program,
    which is not on ``PATH``."""


class TargetsFailedError(MigrateError):
    """A command over several targets (binds, tenant schemas) failed on some
    of them.

    :attr:`targets` holds every target's
    :class:`~flask_migrate_ext.TargetResult`, the failed,
    interrupted and skipped ones included; :attr:`result` what the command
    would have returned (a :class:`~flask_migrate_ext.RunResult` for
    ``upgrade`` and ``downgrade``, the states read for ``current``).
    :attr:`exit_code` is the most severe of the failed targets' codes (see
    ``SEVERITY`` in this module, and the exit codes page).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        message: str,
        targets: t.Sequence[t.Any],
        result: t.Any = None,
        exit_code: ExitCode = ExitCode.ERROR,
    ) -> None:
        super().__init__(message)
        self.targets = list(targets)
        self.result = result
        # Per instance: the code is the worst of this run's targets'.
        self.exit_code = exit_code  # type: ignore[misc]


class CommandFailedError(MigrateError):
    """Alembic refused the command; the message is Alembic's."""
