"""``flask db test``: check the migrations on a disposable database.

Added to the ``db`` group by :mod:`.commands`; like it, this module must not
import Alembic (``flask --help`` imports it). The checks are the API's
(:func:`flask_migrate_ext.api.run_migration_checks`), shared with the pytest
plugin; this prints them, and failures exit 13 through the error boundary.
"""

from __future__ import annotations

import textwrap
import typing as t

import click

from ..errors import ExitCode
from . import output
from .boundary import migrate_command
from .options import bind_args
from .options import bind_option
from .options import directory_arg
from .options import directory_option
from .options import json_option
from .options import load_api

if t.TYPE_CHECKING:
    from ..api.checks import Check
    from ..api.checks import MigrationChecks

_LABELS = {"passed": "ok", "failed": "FAILED", "skipped": "skipped"}


@migrate_command("test")
@directory_option
@bind_option
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    default=None,
    help="PostgreSQL or MariaDB server to create the disposable database on"
    " (dropped afterwards); a temporary SQLite file by default.",
)
@json_option
def test_command(
    directory: str | None,
    bind: tuple[str, ...],
    database_url: str | None,
    as_json: bool,
) -> None:
    """Test the migrations on a disposable database.

    Checks a single head; upgrades from base one revision at a time; the
    stairway (each revision upgraded, downgraded to the same tables and
    columns, upgraded again); the models match the head; downgrading to base
    leaves only the version table. Exits 13 when a check fails.
    """
    result = load_api().run_migration_checks(
        directory_arg(directory), database_url=database_url, **bind_args(bind)
    )
    if as_json:
        output.echo(checks_json(result))
    else:
        output.echo(checks_text(result))
    result.raise_for_failures()


def checks_text(result: MigrationChecks) -> str:
    """One line per check, the details of failures under it, a summary."""
    width = max((len(check.name) for check in result.checks), default=0)
    lines = []
    for check in result.checks:
        label = _LABELS[check.status]
        line = f"{label:<8} {check.name:<{width}}  {check.duration:.2f} s"
        if check.status == "failed":
            if check.revision:
                line += f"  at {check.revision}"
            lines.append(line)
            lines.append(textwrap.indent(check.message, "  "))
        else:
            lines.append(f"{line}  {check.message}")
    counts = {
        status: sum(check.status == status for check in result.checks)
        for status in _LABELS
    }
    tally = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    plural = "s" if result.revisions != 1 else ""
    lines.append(
        f"{result.revisions} revision{plural} tested on {result.database}"
        f" in {result.duration:.2f} s: {tally}."
    )
    return "\n".join(lines) + "\n"


def checks_json(result: MigrationChecks) -> str:
    """``test --json``."""
    return output.to_json(
        "test",
        ok=result.passed,
        exit_code=int(ExitCode.OK if result.passed else ExitCode.CHECKS_FAILED),
        database=result.database,
        revisions=result.revisions,
        duration=round(result.duration, 3),
        checks=[_check_json(check) for check in result.checks],
    )


def _check_json(check: Check) -> dict[str, t.Any]:
    return {
        "name": check.name,
        "status": check.status,
        "passed": check.passed,
        "revision": check.revision,
        "message": check.message,
        "duration": round(check.duration, 3),
    }
