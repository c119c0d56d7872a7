"""``flask db uninstall``: drop the extension's own tables, to switch back to
Flask-Migrate. Added to the ``db`` group by :mod:`.commands`."""

from __future__ import annotations

import typing as t

import click

from ..errors import ExitCode
from . import options
from .boundary import migrate_command
from .options import bind_args
from .options import bind_option
from .options import directory_arg
from .options import load_api
from .options import lock_args
from .options import schema_option
from .options import with_lock_options


def _dropped_lines(results: t.Sequence[t.Any]) -> list[str]:
    """``flask_migrate_ext_log (12 rows) from the default database``, per table."""
    lines = []
    for result in results:
        where = f"database {result.database!r}" if result.database else None
        for table in result.tables:
            place = where or "the default database"
            if table.schema:
                place = f"schema {table.schema!r} of {place}"
            rows = f"{table.rows} row{'s' if table.rows != 1 else ''}"
            lines.append(f"{table.name} ({rows}) from {place}")
    return lines


@migrate_command("uninstall")
@bind_option
@schema_option
@with_lock_options
@click.option(
    "-y", "--yes", is_flag=True, help="Don't ask for confirmation (for scripts)."
)
def uninstall_command(
    bind: tuple[str, ...],
    schemas: tuple[str, ...],
    lock_timeout: float | None,
    no_lock: bool,
    yes: bool,
) -> None:
    """Drop the ledger and lock tables, to switch back to Flask-Migrate."""
    api = load_api()
    args = {
        "schemas": schemas or None,
        **lock_args(no_lock, lock_timeout),
        **bind_args(bind),
    }
    if not yes:
        if not options.stdin_is_terminal():
            click.echo(
                "Error: uninstall drops the ledger, whose record of past runs is"
                " lost; there is no terminal to confirm on, so pass --yes.",
                err=True,
            )
            raise click.exceptions.Exit(int(ExitCode.USAGE))
        planned = _dropped_lines(
            api.uninstall(directory_arg(None), dry_run=True, **args)
        )
        if planned:
            click.echo("This drops:")
            for line in planned:
                click.echo(f"  {line}")
            click.confirm(
                "Drop them? The ledger's record of past runs is lost.",
                default=False,
                abort=True,
            )
    results = api.uninstall(directory_arg(None), **args)
    several = len(results) > 1
    dropped = _dropped_lines(results)
    if not dropped:
        click.echo(
            "Nothing to drop: the databases have no flask_migrate_ext tables; they"
            " can be used with Flask-Migrate as they are."
            if several
            else "Nothing to drop: the database has no flask_migrate_ext tables;"
            " it can be used with Flask-Migrate as it is."
        )
        return
    for line in dropped:
        click.echo(f"Dropped {line}.")
    click.echo(
        f"The database{'s' if several else ''} can now be used with Flask-Migrate."
    )
