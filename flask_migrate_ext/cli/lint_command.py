"""``flask db lint``: check revision scripts for dangerous operations.

Added to the ``db`` group by :mod:`.commands`. It prints what
:func:`~flask_migrate_ext.api.lint` found, as text or ``--json``, also when
the findings fail the command (exit 12); the exit code comes from the error
raised (:func:`~flask_migrate_ext.cli.boundary.user_errors`).
"""

from __future__ import annotations

import os
import typing as t

import click

from ..errors import ExitCode
from ..errors import LintFailedError
from . import output
from .boundary import migrate_command
from .options import bind_args
from .options import directory_arg
from .options import directory_option
from .options import json_option
from .options import load_api

if t.TYPE_CHECKING:
    from ..linting.findings import LintFinding
    from ..linting.findings import LintResult

#: Kept here so ``flask --help`` need not import the API for the choices.
_DIALECTS = ("mariadb", "mssql", "mysql", "oracle", "postgresql", "sqlite")


@migrate_command("lint")
@directory_option
@click.option(
    "--since",
    metavar="REV",
    default=None,
    help="Check only the revisions after REV (for CI: the new ones).",
)
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option(
    "--dialect",
    type=click.Choice(_DIALECTS),
    default=None,
    help="Judge for this database (default: the dialect of the app's URL).",
)
@json_option
@click.argument("revisions", nargs=-1)
def lint_command(
    directory: str | None,
    since: str | None,
    strict: bool,
    dialect: str | None,
    as_json: bool,
    revisions: tuple[str, ...],
) -> None:
    """Check revision scripts for operations that lose data or lock tables.

    Checks every revision, the REVISIONS given, or those after --since REV.
    Exits 12 when an error is found (or a warning, with --strict), 0 when
    only warnings are. Nothing connects to the database.
    """
    if revisions and since is not None:
        raise click.UsageError("Give REVISIONS or --since, not both.")
    try:
        result = load_api().lint(
            directory_arg(directory),
            list(revisions) or None,
            since,
            strict=strict,
            dialect=dialect,
            **bind_args(),
        )
    except LintFailedError as e:
        _show(e.result, as_json)
        raise
    _show(result, as_json)


def _show(result: LintResult, as_json: bool) -> None:
    output.echo(lint_json(result) if as_json else lint_text(result))


def _where(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def lint_text(result: LintResult) -> str:
    """The findings grouped by revision file, then a summary line."""
    lines: list[str] = []
    current = None
    for finding in result.findings:
        if finding.path != current:
            current = finding.path
            lines.append(f"{finding.revision} {_where(finding.path)}")
        database = ""
        if finding.database is not None:  # a multiple-database script
            database = f" [{finding.database or 'default'}]"
        line = f"line {finding.line}" if finding.line is not None else "line ?"
        lines.append(
            f"  {line}: {finding.code} {finding.severity}{database}: {finding.message}."
        )
        lines.append(f"    {finding.hint}")
    lines.append(_summary(result))
    return "\n".join(lines) + "\n"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary(result: LintResult) -> str:
    summary = (
        f"Checked {_count(len(result.revisions), 'revision')}:"
        f" {_count(len(result.errors), 'error')},"
        f" {_count(len(result.warnings), 'warning')}"
    )
    if result.suppressed:
        summary += f" ({len(result.suppressed)} suppressed by '# fmx: allow')"
    return summary + "."


def finding_json(finding: LintFinding) -> dict[str, t.Any]:
    """One finding, as ``lint --json`` shows it."""
    return {
        "code": finding.code,
        "severity": finding.severity,
        "title": finding.title,
        "revision": finding.revision,
        "database": finding.database,
        "path": finding.path,
        "line": finding.line,
        "message": finding.message,
        "hint": finding.hint,
        "anchor": finding.anchor,
    }


def lint_json(result: LintResult) -> str:
    """``lint --json``: the findings, the suppressed ones apart."""
    return output.to_json(
        "lint",
        ok=not result.failed,
        exit_code=int(ExitCode.LINT_FAILED if result.failed else ExitCode.OK),
        strict=result.strict,
        revisions=list(result.revisions),
        errors=len(result.errors),
        warnings=len(result.warnings),
        findings=[finding_json(f) for f in result.findings],
        suppressed=[finding_json(f) for f in result.suppressed],
    )
