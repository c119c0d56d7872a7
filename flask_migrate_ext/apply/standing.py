"""Where a database stands: its revisions applied and pending, what the ledger
knows of each, and what looks wrong.

:func:`database_status` is pure: it takes what was read (the scripts'
revisions, the version table, the ledger's rows) and returns data. ``flask
db status`` and ``verify`` read through env.py; ``Migrate.status()`` and the
pending-migration guard read directly and from the revision cache, without
Alembic. Both get their answer here, so they cannot disagree.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import os
import typing as t

from ..errors import ExitCode
from ..errors import MigrateError
from ..errors import NotUpToDateError
from ..errors import PartiallyAppliedError
from ..errors import UnknownRevisionError
from ..scripts.checksum import script_checksum
from ..scripts.revisions import ancestry
from ..scripts.revisions import Revision
from .ledger_rows import applied_rows
from .ledger_rows import Entry

State = t.Literal["up-to-date", "pending", "partial", "unknown-revision"]
FindingKind = t.Literal[
    "several-heads",
    "unknown-revision",
    "partial",
    "edited",
    "missing-file",
    "out-of-band",
    "unrecorded",
    "no-checksum",
]
#: Findings that make ``verify`` fail.
VERIFY_FAILURES: frozenset[str] = frozenset(
    {"edited", "missing-file", "out-of-band", "unknown-revision"}
)
#: Which state wins when several databases differ, worst first.
_SEVERITY: tuple[State, ...] = ("partial", "unknown-revision", "pending", "up-to-date")
EXIT_CODES: dict[State, ExitCode] = {
    "up-to-date": ExitCode.OK,
    "pending": ExitCode.NOT_UP_TO_DATE,
    "partial": ExitCode.PARTIALLY_APPLIED,
    "unknown-revision": ExitCode.UNKNOWN_REVISION,
}
LedgerState = t.Literal["current", "old", "missing", "off"]


@dataclasses.dataclass(frozen=True)
class Finding:
    """Something about a database worth a look.

    .. versionadded:: 0.1
    """

    #: What kind: ``several-heads``, ``unknown-revision``, ``partial``,
    #: ``edited``, ``missing-file``, ``out-of-band`` (applied without the
    #: ledger seeing it), ``unrecorded`` (applied before the ledger existed),
    #: ``no-checksum`` (applied before checksums were recorded).
    kind: FindingKind
    #: The revision concerned, if one.
    revision: str | None
    #: One line saying what and what to do.
    message: str

    @property
    def fails_verify(self) -> bool:
        return self.kind in VERIFY_FAILURES


@dataclasses.dataclass(frozen=True)
class RevisionStatus:
    """One revision of the history, applied to a database or pending.

    .. versionadded:: 0.1
    """

    id: str
    #: First line of its docstring.
    message: str
    branch_labels: tuple[str, ...]
    #: In the database: the version table holds it or a revision after it.
    applied: bool
    #: When the ledger recorded it applied (UTC, naive), if it knows.
    applied_at: datetime.datetime | None = None
    #: The host that applied it, if the ledger knows.
    applied_by: str | None = None
    #: Seconds the revision took, if the ledger knows.
    duration: float | None = None
    #: How the ledger knows: ``upgrade``, ``stamp``, ``baseline`` (there
    #: before the ledger), ``accept`` (checksum re-recorded); ``None``: it
    #: has no row.
    recorded_as: str | None = None
    #: ``matches``, ``edited``, ``missing`` (no file), ``none`` (no checksum
    #: recorded); ``None`` when not checked.
    checksum: str | None = None


@dataclasses.dataclass(frozen=True)
class DatabaseStatus:
    """Where one database (or tenant schema) stands.

    .. versionadded:: 0.1
    """

    #: The bind name; ``""`` for the default database.
    name: str
    #: Its URL, password hidden.
    url: str
    schema: str | None
    #: ``up-to-date``, ``pending``, ``partial`` or ``unknown-revision``.
    state: State
    #: The version table's revisions.
    current: tuple[str, ...]
    #: The scripts' heads.
    heads: tuple[str, ...]
    #: Every revision of the history, base first.
    revisions: tuple[RevisionStatus, ...]
    findings: tuple[Finding, ...] = ()

    @property
    def pending(self) -> tuple[str, ...]:
        return tuple(rev.id for rev in self.revisions if not rev.applied)

    @property
    def exit_code(self) -> ExitCode:
        return EXIT_CODES[self.state]

    @property
    def label(self) -> str:
        where = f"database {self.name!r}" if self.name else "the database"
        return f"{where} (schema {self.schema})" if self.schema else where


@dataclasses.dataclass(frozen=True)
class StatusResult:
    """What :func:`~flask_migrate_ext.api.status` found, per database.

    .. versionadded:: 0.1
    """

    databases: tuple[DatabaseStatus, ...]

    @property
    def state(self) -> State:
        """The worst state among the databases."""
        states = {database.state for database in self.databases}
        return next((s for s in _SEVERITY if s in states), "up-to-date")

    @property
    def exit_code(self) -> ExitCode:
        return EXIT_CODES[self.state]

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for database in self.databases for f in database.findings)

    @property
    def verify_failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.fails_verify)

    def error(self, command: str = "db") -> MigrateError | None:
        """The error matching :attr:`state` (``None`` when up to date), with a
        one-line message; ``flask db status`` raises it after printing."""
        state = self.state
        worst = [database for database in self.databases if database.state == state]
        if state == "up-to-date" or not worst:
            return None
        first = worst[0]
        label = first.label[0].upper() + first.label[1:]
        if state == "partial":
            finding = next(f for f in first.findings if f.kind == "partial")
            return PartiallyAppliedError(finding.message)
        if state == "unknown-revision":
            finding = next(f for f in first.findings if f.kind == "unknown-revision")
            return UnknownRevisionError(finding.message)
        pending = first.pending
        shown = ", ".join(pending[:3]) + (", ..." if len(pending) > 3 else "")
        more = f" ({len(worst) - 1} more database(s) too)" if len(worst) > 1 else ""
        what = (
            f"{len(pending)} revision{'s' if len(pending) != 1 else ''} pending"
            f" ({shown})"
            if pending
            else f"at {', '.join(first.current)}, not at the heads"
        )
        return NotUpToDateError(
            f"{label} is behind: {what}{more}. Run 'flask {command} upgrade'."
        )

    def raise_for_state(self, command: str = "db") -> None:
        """Raise :meth:`error` unless every database is up to date."""
        error = self.error(command)
        if error is not None:
            raise error


def in_order(revisions: t.Mapping[str, Revision]) -> list[Revision]:
    """The revisions base first, each after everything it revises or depends
    on (ties in file order: the same however ``revisions`` is ordered, so
    Alembic's walk and the revision cache's list give the same answer)."""
    revisions = {
        rev.id: rev for rev in sorted(revisions.values(), key=lambda rev: rev.path)
    }
    waiting: dict[str, int] = {}
    dependents: dict[str, list[str]] = {rid: [] for rid in revisions}
    for rev in revisions.values():
        parents = {p for p in (*rev.down_revisions, *rev.depends_on) if p in revisions}
        waiting[rev.id] = len(parents)
        for parent in parents:
            dependents[parent].append(rev.id)
    ready = collections.deque(rid for rid, count in waiting.items() if not count)
    ordered: list[Revision] = []
    while ready:
        current = ready.popleft()
        ordered.append(revisions[current])
        for child in dependents[current]:
            waiting[child] -= 1
            if not waiting[child]:
                ready.append(child)
    # A loop (Alembic refuses those) would leave some out: keep them, last.
    placed = {rev.id for rev in ordered}
    ordered.extend(rev for rid, rev in revisions.items() if rid not in placed)
    return ordered


def database_status(
    *,
    name: str,
    url: str,
    schema: str | None,
    revisions: t.Mapping[str, Revision],
    heads: t.Sequence[str],
    current: t.Sequence[str],
    entries: t.Sequence[Entry],
    ledger: LedgerState,
    command: str = "db",
    verify: bool = False,
) -> DatabaseStatus:
    """Work out where a database stands from what was read.

    :param ledger: ``current`` (the ledger as this version writes it),
        ``old`` (made by a version without checksums), ``missing`` (no table
        yet) or ``off`` (``MIGRATE_LOG_TABLE = None``).
    :param verify: Compare applied scripts with their recorded checksums
        (reads every applied script).
    """
    applied = ancestry(revisions, current)
    recorded = applied_rows(entries)
    stuck = [entry for entry in entries if entry.needs_attention]
    unknown = [rev for rev in current if rev not in revisions]
    findings: list[Finding] = []
    if len(heads) > 1:
        findings.append(
            Finding(
                "several-heads",
                None,
                f"The scripts have {len(heads)} heads ({', '.join(heads)}): run"
                f" 'flask {command} merge heads' to join them.",
            )
        )
    for revision in unknown:
        findings.append(
            Finding(
                "unknown-revision",
                revision,
                f"The database is at revision {revision!r}, which no script"
                " defines: is the code older than the database (a rolled-back"
                " deploy, another branch), or was its file deleted?",
            )
        )
    for entry in stuck:
        findings.append(
            Finding(
                "partial",
                entry.revision,
                f"The {entry.describe()} and may be partially applied: check the"
                f" schema, then 'flask {command} resolve {entry.revision}"
                " --applied' or '--rolled-back'.",
            )
        )
    statuses = []
    for rev in in_order(revisions):
        row = recorded.get(rev.id) if rev.id in applied else None
        checksum = None
        if verify and rev.id in applied and ledger != "off":
            checksum, finding = _check(rev, row, ledger, command)
            if finding is not None:
                findings.append(finding)
        statuses.append(_revision_status(rev, rev.id in applied, row, checksum))
    if verify:
        for revision, row in recorded.items():
            if revision not in revisions and revision not in unknown:
                findings.append(
                    Finding(
                        "missing-file",
                        revision,
                        f"Revision {revision} was {_how(row)} but its script is"
                        " gone: restore the file, or downgrade past it first"
                        " with the code that has it.",
                    )
                )
    if stuck:
        state: State = "partial"
    elif unknown:
        state = "unknown-revision"
    elif set(current) == set(heads):
        state = "up-to-date"
    else:
        state = "pending"
    return DatabaseStatus(
        name=name,
        url=url,
        schema=schema,
        state=state,
        current=tuple(current),
        heads=tuple(heads),
        revisions=tuple(statuses),
        findings=tuple(findings),
    )


def _revision_status(
    rev: Revision, applied: bool, row: Entry | None, checksum: str | None
) -> RevisionStatus:
    duration = None
    if row is not None and row.finished_at is not None and row.action == "upgrade":
        duration = (row.finished_at - row.started_at).total_seconds()
    return RevisionStatus(
        id=rev.id,
        message=rev.message,
        branch_labels=rev.branch_labels,
        applied=applied,
        applied_at=(row.finished_at or row.started_at) if row is not None else None,
        applied_by=row.host if row is not None else None,
        duration=duration,
        recorded_as=row.action if row is not None else None,
        checksum=checksum,
    )


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it is below it (as
    the commands are run from the project), else as it is."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _how(row: Entry) -> str:
    return {
        "stamp": "stamped",
        "baseline": "there when the ledger started",
        "accept": "applied",
    }.get(row.action, "applied")


def _check(
    rev: Revision, row: Entry | None, ledger: LedgerState, command: str
) -> tuple[str | None, Finding | None]:
    """Compare an applied revision's script with what the ledger recorded."""
    if row is None:
        if ledger == "current":
            return None, Finding(
                "out-of-band",
                rev.id,
                f"Revision {rev.id} is in the database but the ledger never saw"
                " it applied (by hand, by plain Alembic, or by another tool):"
                f" check its changes are there, then 'flask {command} verify"
                f" --accept {rev.id}'.",
            )
        return None, Finding(
            "unrecorded",
            rev.id,
            f"Revision {rev.id} was applied before the ledger kept checksums;"
            " the next upgrade records it.",
        )
    found = script_checksum(rev.path)
    if found is None:
        return "missing", Finding(
            "missing-file",
            rev.id,
            f"Revision {rev.id}'s script {_shown(rev.path)} is gone.",
        )
    if row.checksum is None:
        return "none", Finding(
            "no-checksum",
            rev.id,
            f"Revision {rev.id} was {_how(row)} without a checksum; nothing to"
            " compare.",
        )
    if found != row.checksum:
        when = f"{row.finished_at or row.started_at:%Y-%m-%d %H:%M}"
        return "edited", Finding(
            "edited",
            rev.id,
            f"Revision {rev.id}'s script {_shown(rev.path)} was edited after it was"
            f" {_how(row)} ({when} UTC): the database has the old version. If the"
            f" edit is intended, 'flask {command} verify --accept {rev.id}'.",
        )
    return "matches", None
