"""``flask db status`` and ``flask db verify``: where each database stands.

Added to the ``db`` group by :mod:`.commands`. Like every command, they
print what the API returned and leave the exit code to the error raised
(:func:`~flask_migrate_ext.cli.boundary.user_errors`).
"""

from __future__ import annotations

import click

from ..errors import VerifyFailedError
from . import output
from .boundary import migrate_command
from .options import bind_args
from .options import bind_option
from .options import directory_arg
from .options import directory_option
from .options import group_name
from .options import json_option
from .options import load_api
from .options import lock_args
from .options import schema_option
from .options import with_lock_options


@migrate_command("status")
@directory_option
@bind_option
@schema_option
@click.option(
    "-v", "--verbose", is_flag=True, help="List every revision and every finding."
)
@click.option(
    "--no-verify",
    is_flag=True,
    help="Don't compare applied scripts with their recorded checksums.",
)
@json_option
def status_command(
    directory: str | None,
    bind: tuple[str, ...],
    schemas: tuple[str, ...],
    verbose: bool,
    no_verify: bool,
    as_json: bool,
) -> None:
    """Show each database's revisions, applied and pending.

    Exits 0 when every database is at the heads, 4 when revisions are
    pending, 6 when one was left partially applied, 8 when a database is at
    a revision no script defines.
    """
    result = load_api().status(
        directory_arg(directory),
        schemas=schemas or None,
        verify=not no_verify,
        **bind_args(bind),
    )
    command = group_name()
    if as_json:
        output.echo(output.status_json(result))
    else:
        output.echo(output.status(result, verbose, command))
    result.raise_for_state(command)


@migrate_command("verify")
@directory_option
@bind_option
@schema_option
@click.option(
    "--accept",
    "accept",
    multiple=True,
    metavar="REV",
    help="Record the current script of REV as applied, after an intended edit"
    " (repeatable).",
)
@with_lock_options
@json_option
def verify_command(
    directory: str | None,
    bind: tuple[str, ...],
    schemas: tuple[str, ...],
    accept: tuple[str, ...],
    lock_timeout: float | None,
    no_lock: bool,
    as_json: bool,
) -> None:
    """Check that applied scripts were not edited, removed or bypassed.

    Exits 9 when an applied script changed since it ran, is gone, or a
    revision is in the database without the ledger having seen it applied.
    """
    command = group_name()
    try:
        result = load_api().verify(
            directory_arg(directory),
            schemas=schemas or None,
            accept=accept,
            **lock_args(no_lock, lock_timeout),
            **bind_args(bind),
        )
    except VerifyFailedError as e:
        if as_json:
            output.echo(output.verify_json(e.result))
        else:
            output.echo(output.verify(e.result, command))
        raise
    if as_json:
        output.echo(output.verify_json(result))
    else:
        output.echo(output.verify(result, command))
