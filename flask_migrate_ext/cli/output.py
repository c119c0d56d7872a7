"""Render the API's results: as Alembic's text, or as JSON.

The text is byte for byte what Alembic prints for the same command
(``Script.cmd_format`` and ``Script.log_entry``), so ``flask db heads`` and
the rest read as they did with Flask-Migrate. The JSON is documented, with
its versioned schema, in ``docs/json.md``; a change that could break a
reader bumps :data:`JSON_SCHEMA`.

Importing this module does not import Alembic.
"""

from __future__ import annotations

import json
import sys
import typing as t

from ..errors import ExitCode
from ..errors import MigrateError
from ..errors import NotUpToDateError
from ..errors import SchemaDriftError
from ..errors import TargetsFailedError

if t.TYPE_CHECKING:
    import datetime

    from ..api.results import BranchPoint
    from ..api.results import CheckResult
    from ..api.results import DatabaseState
    from ..api.results import Revision
    from ..api.results import Template
    from ..api.status import VerifyResult
    from ..apply.standing import DatabaseStatus
    from ..apply.standing import Finding
    from ..apply.standing import RevisionStatus
    from ..apply.standing import StatusResult

#: The version of the JSON documents ``--json`` prints.
JSON_SCHEMA = 1


def echo(text: str, stream: t.TextIO | None = None) -> None:
    """Write ``text`` to stdout as Alembic does: a character the stream's
    encoding cannot show is replaced, not an error."""
    stream = stream if stream is not None else sys.stdout
    encoding = getattr(stream, "encoding", None) or "ascii"
    stream.write(text.encode(encoding, "replace").decode(encoding))


# -- text, as Alembic prints it -------------------------------------------------


def heads(revisions: t.Sequence[Revision], verbose: bool = False) -> str:
    """``flask db heads``."""
    return _lines(
        _format(rev, verbose, include_branches=True, tree_indicators=False)
        for rev in revisions
    )


def history(revisions: t.Sequence[Revision], verbose: bool = False) -> str:
    """``flask db history``, with or without ``-i`` and a range."""
    return _lines(
        _format(
            rev, verbose, include_branches=True, include_doc=True, include_parents=True
        )
        for rev in revisions
    )


def branches(points: t.Sequence[BranchPoint], verbose: bool = False) -> str:
    """``flask db branches``: each branch point, then what it branches into."""
    blocks = []
    for point in points:
        indent = " " * len(point.id)
        children = "\n".join(
            f"{indent} -> "
            + _format(child, False, include_branches=True, include_doc=verbose)
            for child in point.branches
        )
        blocks.append(f"{_format(point, verbose, include_branches=True)}\n{children}\n")
    return _lines(blocks)


def show(revisions: t.Sequence[Revision]) -> str:
    """``flask db show``."""
    return _lines(_log_entry(rev) for rev in revisions)


def current(states: t.Sequence[DatabaseState], verbose: bool = False) -> str:
    """``flask db current``: each database's revisions (``Schema <name>:``
    first, for a tenant schema).

    With one database, Alembic's text as it is. With several, each one's
    revisions follow a ``Database <name>:`` line, and one at no revision
    shows ``<base>`` (Alembic shows nothing, which would leave the reader
    guessing which lines are whose).
    """
    several = any(state.name for state in states)  # a bind: several databases
    lines = []
    for state in states:
        if several:
            lines.append(f"Database {state.name or '<default>'}:")
        if state.schema is not None:
            lines.append(f"Schema {state.schema}:")
        if verbose:
            lines.append(f"Current revision(s) for {state.url}:")
        lines.extend(_format(rev, verbose) for rev in state.revisions)
        if several and not state.revisions:
            lines.append("<base>")
    return _lines(lines)


def check(result: CheckResult) -> str:
    """``flask db check`` when it passes."""
    return "No new upgrade operations detected.\n"


#: ``status`` lists every revision up to this many; beyond, the last
#: :data:`STATUS_TAIL` applied ones and every pending one (``-v``: all).
STATUS_ALL = 20
STATUS_TAIL = 10
_STATE_LINES = {
    "up-to-date": "Up to date.",
    "partial": "A revision needs attention (see above).",
    "unknown-revision": "The database is at a revision no script defines (see above).",
}


def status(result: StatusResult, verbose: bool = False, command: str = "db") -> str:
    """``flask db status``: per database, its revisions marked ``[X]`` applied
    or ``[ ]`` pending, what the ledger knows of each, then findings."""
    blocks = [_database_status(db, verbose, command) for db in result.databases]
    return "\n".join(blocks)


def _database_status(database: DatabaseStatus, verbose: bool, command: str) -> str:
    where = f"Database {database.name!r}" if database.name else "Database"
    lines = [f"{where}: {database.url}"]
    if database.schema is not None:
        lines.append(f"Schema: {database.schema}")
    lines.append(f"  Current: {', '.join(database.current) or '<base> (none applied)'}")
    lines.append(f"  Heads:   {', '.join(database.heads) or '<none>'}")
    revisions = list(database.revisions)
    applied = [rev for rev in revisions if rev.applied]
    if not verbose and len(revisions) > STATUS_ALL and len(applied) > STATUS_TAIL:
        hidden = len(applied) - STATUS_TAIL
        lines.append(
            f"  ... {hidden} earlier revisions applied ('flask {command} status -v'"
            " lists them)"
        )
        shown = set(id(rev) for rev in applied[:hidden])
        revisions = [rev for rev in revisions if id(rev) not in shown]
    width = max((len(rev.id) for rev in revisions), default=0)
    lines.extend(_revision_line(rev, width) for rev in revisions)
    if not database.revisions:
        lines.append("  (no revisions yet)")
    for finding in database.findings:
        if finding.kind != "no-checksum" or verbose:
            lines.append(f"  ! {finding.message}")
    unchecked = sum(1 for f in database.findings if f.kind == "no-checksum")
    if unchecked and not verbose:
        lines.append(
            f"  {unchecked} applied revision{'s' if unchecked != 1 else ''} have no"
            " checksum (applied before checksums were recorded)."
        )
    pending = database.pending
    if database.state == "pending":
        count = len(pending)
        lines.append(
            f"{count} revision{'s' if count != 1 else ''} pending."
            if pending
            else "Not at the heads."
        )
    else:
        lines.append(_STATE_LINES[database.state])
    return _lines(lines)


def _revision_line(rev: RevisionStatus, width: int) -> str:
    mark = "[X]" if rev.applied else "[ ]"
    text = f"  {mark} {rev.id:<{width}}"
    if rev.message:
        text += f"  {rev.message}"
    if rev.branch_labels:
        text += f" ({', '.join(rev.branch_labels)})"
    details = []
    if rev.applied_at is not None:
        details.append(f"{rev.recorded_as or 'applied'} {_when(rev.applied_at)}")
    if rev.duration is not None:
        details.append(f"{rev.duration:.2f} s")
    if rev.applied_by:
        details.append(f"on {rev.applied_by}")
    if rev.checksum == "edited":
        details.append("EDITED since")
    elif rev.checksum == "missing":
        details.append("FILE MISSING")
    if details:
        text += f"  [{', '.join(details)}]"
    return text


def _when(moment: datetime.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def verify(result: VerifyResult, command: str = "db") -> str:
    """``flask db verify``: what was accepted, then what was checked."""
    lines = [
        f"Accepted {a.revision}'s current script in {_where(a.database, a.schema)}"
        f" (checksum {_short(a.old)} -> {_short(a.new)})."
        for a in result.accepted
    ]
    for database in result.status.databases:
        where = _where(database.name, database.schema)
        problems = [f for f in database.findings if f.fails_verify]
        checked = sum(1 for rev in database.revisions if rev.checksum == "matches")
        for finding in problems:
            lines.append(f"! {finding.message}")
        unchecked = [
            f for f in database.findings if f.kind in ("no-checksum", "unrecorded")
        ]
        note = ""
        if unchecked:
            note = (
                f"; {len(unchecked)} applied before checksums were recorded,"
                " not checked"
            )
        where = where[0].upper() + where[1:]
        if problems:
            lines.append(f"{where}: {len(problems)} problem(s){note}.")
        else:
            lines.append(
                f"{where}: {checked} applied script{'s' if checked != 1 else ''}"
                f" unchanged{note}."
            )
    return _lines(lines)


def _where(name: str, schema: str | None) -> str:
    where = f"database {name!r}" if name else "the database"
    return f"{where} (schema {schema})" if schema else where


def _short(checksum: str | None) -> str:
    if checksum is None:
        return "none"
    return checksum.split(":", 1)[-1][:8]


def templates(found: t.Sequence[Template]) -> str:
    """``flask db list-templates``."""
    return _lines(
        ["Available templates:\n", *(f"{tm.name} - {tm.description}" for tm in found)]
    )


def _lines(lines: t.Iterable[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def _down(rev: Revision) -> str:
    return ", ".join(rev.down_revisions) if rev.down_revisions else "<base>"


def _format(
    rev: Revision,
    verbose: bool,
    include_branches: bool = False,
    include_doc: bool = False,
    include_parents: bool = False,
    tree_indicators: bool = True,
) -> str:
    """Alembic's ``Script.cmd_format``."""
    if verbose:
        return _log_entry(rev)
    text = rev.id
    if include_parents:
        if rev.depends_on:
            text = f"{_down(rev)} ({', '.join(rev.depends_on)}) -> {text}"
        else:
            text = f"{_down(rev)} -> {text}"
    if include_branches and rev.branch_labels:
        text += f" ({', '.join(rev.branch_labels)})"
    if rev.is_head:
        text += " (effective head)" if rev.depended_on else " (head)"
    if rev.is_current:
        text += " (current)"
    if tree_indicators:
        text += " (branchpoint)" if rev.is_branch_point else ""
        text += " (mergepoint)" if rev.is_merge_point else ""
    if include_doc:
        text += f", {rev.summary}"
    return text


def _log_entry(rev: Revision) -> str:
    """Alembic's ``Script.log_entry``."""
    entry = (
        f"Rev: {rev.id}"
        + (" (head)" if rev.is_head else "")
        + (" (branchpoint)" if rev.is_branch_point else "")
        + (" (mergepoint)" if rev.is_merge_point else "")
        + (" (current)" if rev.is_current else "")
        + "\n"
    )
    entry += f"{'Merges' if rev.is_merge_point else 'Parent'}: {_down(rev)}\n"
    if rev.depends_on:
        entry += f"Also depends on: {', '.join(rev.depends_on)}\n"
    if rev.is_branch_point:
        entry += f"Branches into: {', '.join(rev.children)}\n"
    if rev.branch_labels:
        entry += f"Branch names: {', '.join(rev.branch_labels)}\n"
    entry += f"Path: {rev.path}\n"
    body = "\n".join(f"    {para}" for para in rev.doc.splitlines())
    return f"{entry}\n{body}\n"


# -- JSON ----------------------------------------------------------------------


def to_json(command: str, **fields: t.Any) -> str:
    """A JSON document: ``schema``, ``command``, then ``fields``."""
    document = {"schema": JSON_SCHEMA, "command": command, **fields}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def revision_json(rev: Revision) -> dict[str, t.Any]:
    """One revision, as every command's JSON shows it."""
    return {
        "id": rev.id,
        "message": rev.message,
        "doc": rev.doc,
        "path": rev.path,
        "down_revisions": list(rev.down_revisions),
        "branch_labels": list(rev.branch_labels),
        "depends_on": list(rev.depends_on),
        "children": list(rev.children),
        "is_head": rev.is_head,
        "is_base": rev.is_base,
        "is_branch_point": rev.is_branch_point,
        "is_merge_point": rev.is_merge_point,
        "is_current": rev.is_current,
    }


def revisions_json(command: str, revisions: t.Sequence[Revision]) -> str:
    """``heads``, ``history``, ``show`` and ``branches`` with ``--json``."""
    return to_json(command, revisions=[revision_json(rev) for rev in revisions])


def current_json(states: t.Sequence[DatabaseState]) -> str:
    """``current --json``: one entry per database (or tenant schema)."""
    databases = [
        {
            "name": state.name,
            "url": state.url,
            "schema": state.schema,
            "revisions": [revision_json(rev) for rev in state.revisions],
        }
        for state in states
    ]
    return to_json("current", databases=databases)


def finding_json(finding: Finding) -> dict[str, t.Any]:
    return {
        "kind": finding.kind,
        "revision": finding.revision,
        "message": finding.message,
        "fails_verify": finding.fails_verify,
    }


def database_status_json(database: DatabaseStatus) -> dict[str, t.Any]:
    return {
        "name": database.name,
        "url": database.url,
        "schema": database.schema,
        "state": database.state,
        "exit_code": int(database.exit_code),
        "current": list(database.current),
        "heads": list(database.heads),
        "pending": list(database.pending),
        "revisions": [
            {
                "id": rev.id,
                "message": rev.message,
                "branch_labels": list(rev.branch_labels),
                "applied": rev.applied,
                "applied_at": _iso(rev.applied_at),
                "applied_by": rev.applied_by,
                "duration": rev.duration,
                "recorded_as": rev.recorded_as,
                "checksum": rev.checksum,
            }
            for rev in database.revisions
        ],
        "findings": [finding_json(f) for f in database.findings],
    }


def _iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def status_json(result: StatusResult) -> str:
    """``status --json``."""
    return to_json(
        "status",
        state=result.state,
        exit_code=int(result.exit_code),
        databases=[database_status_json(db) for db in result.databases],
    )


def verify_json(result: VerifyResult) -> str:
    """``verify --json``."""
    failures = result.status.verify_failures
    return to_json(
        "verify",
        ok=not failures,
        exit_code=int(ExitCode.VERIFY_FAILED if failures else ExitCode.OK),
        accepted=[
            {
                "revision": a.revision,
                "database": a.database,
                "schema": a.schema,
                "old": a.old,
                "new": a.new,
            }
            for a in result.accepted
        ],
        databases=[
            {
                "name": db.name,
                "url": db.url,
                "schema": db.schema,
                "findings": [finding_json(f) for f in db.findings],
            }
            for db in result.status.databases
        ],
    )


#: ``check --json``'s ``error`` for each failure it reports as JSON.
CHECK_ERRORS: dict[type[MigrateError], str] = {
    SchemaDriftError: "drift",
    NotUpToDateError: "not-up-to-date",
}


def check_json(outcome: CheckResult | MigrateError) -> str:
    """``check --json``: passed, or why not (a :data:`CHECK_ERRORS` error;
    ``targets`` over several targets)."""
    if not isinstance(outcome, MigrateError):
        return to_json("check", ok=True, databases=list(outcome.databases))
    if isinstance(outcome, TargetsFailedError):
        return to_json(
            "check",
            ok=False,
            error="targets",
            exit_code=int(outcome.exit_code),
            message=str(outcome).split("\n", 1)[0],
            changes=[],
        )
    return to_json(
        "check",
        ok=False,
        error=next(
            name for cls, name in CHECK_ERRORS.items() if isinstance(outcome, cls)
        ),
        exit_code=int(outcome.exit_code),
        message=str(outcome).split("\n", 1)[0],
        changes=list(getattr(outcome, "lines", [])),
    )
