"""Commands that write revision files: ``revision``, ``migrate``, ``edit``
and ``merge``.

Added to the ``db`` group by :mod:`.commands`; like every command, they parse
options, call one API function and leave errors to
:func:`~flask_migrate_ext.cli.boundary.user_errors`.
"""

from __future__ import annotations

import typing as t

import click

from . import boundary
from . import options
from .options import bind_args
from .options import bind_option
from .options import branch_label_option
from .options import directory_arg
from .options import directory_option
from .options import load_api
from .options import message_option
from .options import rev_id_option
from .options import with_new_revision_options
from .options import x_arg_option


@boundary.migrate_command("revision")
@directory_option
@bind_option
@message_option
@click.option(
    "--autogenerate",
    is_flag=True,
    help="Populate revision script with candidate migration operations,"
    " based on comparison of database to model.",
)
@with_new_revision_options
def revision_command(
    directory: str | None,
    bind: tuple[str, ...],
    message: str | None,
    autogenerate: bool,
    sql: bool,
    head: str,
    splice: bool,
    branch_label: str | None,
    version_path: str | None,
    rev_id: str | None,
) -> None:
    """Create a new revision file."""
    load_api().revision(
        directory_arg(directory),
        message,
        autogenerate,
        sql,
        head,
        splice,
        branch_label,
        version_path,
        rev_id,
        **bind_args(bind),
    )


@boundary.migrate_command("migrate")
@directory_option
@bind_option
@message_option
@with_new_revision_options
@x_arg_option
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show what autogenerate compared, table by table.",
)
@click.option(
    "--rename",
    "renames",
    multiple=True,
    metavar="TABLE.OLD:NEW",
    help="Write this dropped + added column as a rename (repeatable).",
)
@click.option(
    "--rename-table",
    "table_renames",
    multiple=True,
    metavar="OLD:NEW",
    help="Write this dropped + created table as a rename (repeatable).",
)
@click.option(
    "--default",
    "defaults",
    multiple=True,
    metavar="TABLE.COLUMN=SQL",
    help="Fill a new NOT NULL column's existing rows with this SQL value (repeatable).",
)
def migrate_command(
    directory: str | None,
    bind: tuple[str, ...],
    message: str | None,
    sql: bool,
    head: str,
    splice: bool,
    branch_label: str | None,
    version_path: str | None,
    rev_id: str | None,
    x_arg: tuple[str, ...],
    verbose: bool,
    renames: tuple[str, ...],
    table_renames: tuple[str, ...],
    defaults: tuple[str, ...],
) -> None:
    """Autogenerate a new revision file (alias for 'revision --autogenerate')."""
    load_api().migrate(
        directory_arg(directory),
        message,
        sql,
        head,
        splice,
        branch_label,
        version_path,
        rev_id,
        list(x_arg),
        **bind_args(bind),
        verbose=verbose,
        renames=renames,
        table_renames=table_renames,
        defaults=defaults,
        ask=_ask_on_terminal if options.stdin_is_terminal() else None,
    )


def _ask_on_terminal(question: t.Any) -> bool | str | None:
    """``migrate``'s questions about renames and NOT NULL columns."""
    if question.kind == "value":
        answer = click.prompt(
            question.question, default="", show_default=False, err=True
        )
        return str(answer).strip() or None
    return click.confirm(question.question, default=False, err=True)


@boundary.migrate_command("edit")
@directory_option
@click.argument("revision", default="head")
def edit_command(directory: str | None, revision: str) -> None:
    """Edit a revision file in $EDITOR."""
    load_api().edit(directory_arg(directory), revision)


@boundary.migrate_command("merge")
@directory_option
@click.option("-m", "--message", default=None, help="Merge revision message.")
@branch_label_option
@rev_id_option
@click.argument("revisions", nargs=-1)
def merge_command(
    directory: str | None,
    message: str | None,
    branch_label: str | None,
    rev_id: str | None,
    revisions: tuple[str, ...],
) -> None:
    """Merge two revisions together, creating a new revision file."""
    load_api().merge(
        directory_arg(directory), list(revisions), message, branch_label, rev_id
    )
