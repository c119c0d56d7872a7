"""The ``flask db`` command group: thin commands over :mod:`flask_migrate_ext.api`.

Commands parse options, call one API function and hand its result to
:mod:`.output`, as Alembic's text or, with ``--json``, as JSON. Errors become
one line on stderr and an exit code from
:class:`~flask_migrate_ext.errors.ExitCode`, in :func:`user_errors` only.

This module is imported by ``flask --help`` (through the ``flask.commands``
entry point), so it must not import Alembic: the API is imported when a
command runs.
"""

from __future__ import annotations

import contextlib
import typing as t

import click

from ..errors import ExitCode
from ..errors import NotUpToDateError
from ..errors import PartiallyAppliedError
from ..errors import SchemaDriftError
from ..errors import TargetsFailedError
from . import options
from . import output
from . import targets
from .authoring_commands import edit_command
from .authoring_commands import merge_command
from .authoring_commands import migrate_command
from .authoring_commands import revision_command
from .boundary import MigrateGroup
from .graph_command import graph_command
from .lint_command import lint_command
from .options import bind_args
from .options import bind_option
from .options import directory_arg
from .options import directory_option
from .options import GROUP_BIND_KEY
from .options import GROUP_DIRECTORY_KEY
from .options import group_name
from .options import GROUP_VERBOSE_KEY
from .options import GROUP_X_ARG_KEY
from .options import json_option
from .options import load_api
from .options import lock_args
from .options import RevisionCommand
from .options import schema_option
from .options import sql_option
from .options import tag_option
from .options import verbose_option
from .options import with_lock_options
from .options import with_progress
from .options import x_arg_option
from .options import yes_option
from .status_commands import status_command
from .status_commands import verify_command
from .targets import with_target_options
from .test_command import test_command
from .uninstall_command import uninstall_command


@click.group(cls=MigrateGroup)
@directory_option
@x_arg_option
@bind_option
@click.option("-v", "--verbose", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def db(
    ctx: click.Context,
    directory: str | None,
    x_arg: tuple[str, ...],
    bind: tuple[str, ...],
    verbose: bool,
) -> None:
    """Perform database migrations."""
    ctx.meta[GROUP_BIND_KEY] = bind
    ctx.meta[GROUP_DIRECTORY_KEY] = directory
    ctx.meta[GROUP_X_ARG_KEY] = x_arg
    ctx.meta[GROUP_VERBOSE_KEY] = verbose


@db.command("list-templates", with_appcontext=False)
def list_templates_command() -> None:
    """List available templates."""
    output.echo(output.templates(load_api().list_templates()))


@db.command("init")
@directory_option
@click.option("--multidb", is_flag=True, help="Support multiple databases.")
@click.option(
    "-t",
    "--template",
    default=None,
    help='Repository template to use (default is "flask").',
)
@click.option(
    "--package",
    is_flag=True,
    help="Write empty __init__.py files to the environment and version locations.",
)
def init_command(
    directory: str | None, multidb: bool, template: str | None, package: bool
) -> None:
    """Create a new migration repository."""
    load_api().init(directory_arg(directory), multidb, template, package)
    # In place of Alembic's advice to edit alembic.ini, which is wrong here:
    # the database URL comes from the app's config.
    group = group_name()
    click.echo(
        "The database URL is read from the app's config, not alembic.ini."
        f" Next: flask {group} migrate -m 'initial'"
    )


@db.command("upgrade", cls=RevisionCommand)
@directory_option
@bind_option
@schema_option
@sql_option
@tag_option
@x_arg_option
@with_lock_options
@yes_option
@with_target_options
@with_progress
@click.argument("revision", default="head")
def upgrade_command(
    directory: str | None,
    bind: tuple[str, ...],
    schemas: tuple[str, ...],
    sql: bool,
    tag: str | None,
    x_arg: tuple[str, ...],
    lock_timeout: float | None,
    no_lock: bool,
    yes: bool,
    jobs: int,
    continue_on_error: bool,
    display: t.Any,
    revision: str,
) -> None:
    """Upgrade to a later version."""
    _run("upgrade", **locals())


@db.command("downgrade", cls=RevisionCommand)
@directory_option
@bind_option
@schema_option
@sql_option
@tag_option
@x_arg_option
@with_lock_options
@yes_option
@with_target_options
@with_progress
@click.argument("revision", default="-1")
def downgrade_command(
    directory: str | None,
    bind: tuple[str, ...],
    schemas: tuple[str, ...],
    sql: bool,
    tag: str | None,
    x_arg: tuple[str, ...],
    lock_timeout: float | None,
    no_lock: bool,
    yes: bool,
    jobs: int,
    continue_on_error: bool,
    display: t.Any,
    revision: str,
) -> None:
    """Revert to a previous version."""
    _run("downgrade", **locals())


def _run(action: t.Literal["upgrade", "downgrade"], **given: t.Any) -> None:
    """``upgrade`` or ``downgrade`` with the options the command was given."""
    targets.check_jobs(given["jobs"], given["sql"])
    with targets.reporting(action):
        getattr(load_api(), action)(
            directory_arg(given["directory"]),
            given["revision"],
            given["sql"],
            given["tag"],
            list(given["x_arg"]),
            **lock_args(given["no_lock"], given["lock_timeout"]),
            schemas=given["schemas"] or None,
            **bind_args(given["bind"]),
            confirm_data_loss=_confirm_data_loss(
                given["yes"], given["jobs"], given["display"]
            ),
            jobs=given["jobs"],
            continue_on_error=given["continue_on_error"],
            progress=given["display"],
        )


def _confirm_data_loss(yes: bool, jobs: int = 1, display: t.Any = None) -> t.Any:
    """``--yes``, else a question on the terminal, else refuse. Worker
    processes (``--jobs``) have no terminal to ask on."""
    if yes:
        return True
    if jobs > 1 or not options.stdin_is_terminal():
        return False

    def confirm(losses: t.Sequence[t.Any]) -> bool:
        with display.paused() if display is not None else contextlib.nullcontext():
            click.echo("This drops data:", err=True)
            for loss in losses:
                click.echo(f"  {loss.describe()}", err=True)
            return click.confirm("Go on? The data is lost.", default=False, err=True)

    return confirm


@db.command("show")
@directory_option
@json_option
@click.argument("revision", default="head")
def show_command(directory: str | None, as_json: bool, revision: str) -> None:
    """Show the revision denoted by the given symbol."""
    found = load_api().show(directory_arg(directory), revision)
    output.echo(output.revisions_json("show", found) if as_json else output.show(found))


@db.command("history")
@directory_option
@click.option(
    "-r",
    "--rev-range",
    default=None,
    help="Specify a revision range; format is [start]:[end].",
)
@verbose_option
@click.option(
    "-i",
    "--indicate-current",
    is_flag=True,
    help="Indicate current version.",
)
@json_option
def history_command(
    directory: str | None,
    rev_range: str | None,
    verbose: bool,
    indicate_current: bool,
    as_json: bool,
) -> None:
    """List changeset scripts in chronological order."""
    found = load_api().history(
        directory_arg(directory), rev_range, verbose, indicate_current
    )
    if as_json:
        output.echo(output.revisions_json("history", found))
    else:
        output.echo(output.history(found, verbose))


@db.command("heads")
@directory_option
@verbose_option
@click.option(
    "--resolve-dependencies",
    is_flag=True,
    help="Treat dependency versions as down revisions.",
)
@json_option
def heads_command(
    directory: str | None, verbose: bool, resolve_dependencies: bool, as_json: bool
) -> None:
    """Show current available heads in the script directory."""
    found = load_api().heads(directory_arg(directory), verbose, resolve_dependencies)
    if as_json:
        output.echo(output.revisions_json("heads", found))
    else:
        output.echo(output.heads(found, verbose))


@db.command("branches")
@directory_option
@verbose_option
@json_option
def branches_command(directory: str | None, verbose: bool, as_json: bool) -> None:
    """Show current branch points."""
    found = load_api().branches(directory_arg(directory), verbose)
    if as_json:
        output.echo(output.revisions_json("branches", found))
    else:
        output.echo(output.branches(found, verbose))


@db.command("current")
@directory_option
@bind_option
@schema_option
@verbose_option
@json_option
@with_target_options
def current_command(
    directory: str | None,
    bind: tuple[str, ...],
    schemas: tuple[str, ...],
    verbose: bool,
    as_json: bool,
    jobs: int,
    continue_on_error: bool,
) -> None:
    """Display the current revision for each database."""

    def render(states: t.Sequence[t.Any]) -> None:
        if as_json:
            output.echo(output.current_json(states))
        else:
            output.echo(output.current(states, verbose))

    try:
        with targets.reporting("current"):
            states = load_api().current(
                directory_arg(directory),
                verbose,
                schemas=schemas or None,
                **bind_args(bind),
                jobs=jobs,
                continue_on_error=continue_on_error,
            )
    except (PartiallyAppliedError, TargetsFailedError) as e:
        render(e.result or [])  # what was read, then the error
        raise
    render(states)


@db.command("stamp")
@directory_option
@bind_option
@sql_option
@tag_option
@click.option(
    "--purge",
    is_flag=True,
    help="Delete the version in the alembic_version table before stamping.",
)
@with_lock_options
@click.argument("revision", default="head")
def stamp_command(
    directory: str | None,
    bind: tuple[str, ...],
    sql: bool,
    tag: str | None,
    purge: bool,
    lock_timeout: float | None,
    no_lock: bool,
    revision: str,
) -> None:
    """'stamp' the revision table with the given revision; don't run any migrations."""
    load_api().stamp(
        directory_arg(directory),
        revision,
        sql,
        tag,
        purge,
        **lock_args(no_lock, lock_timeout),
        **bind_args(bind),
    )


@db.command("check")
@directory_option
@bind_option
@schema_option
@json_option
@with_target_options
def check_command(
    directory: str | None,
    bind: tuple[str, ...],
    schemas: tuple[str, ...],
    as_json: bool,
    jobs: int,
    continue_on_error: bool,
) -> None:
    """Check if there are any new operations to migrate."""
    try:
        with targets.reporting("check"):
            result = load_api().check(
                directory_arg(directory),
                **bind_args(bind),
                schemas=schemas or None,
                jobs=jobs,
                continue_on_error=continue_on_error,
            )
    except (SchemaDriftError, NotUpToDateError, TargetsFailedError) as e:
        if as_json:
            output.echo(output.check_json(e))
        raise
    output.echo(output.check_json(result) if as_json else output.check(result))


@db.command("resolve")
@directory_option
@click.option(
    "--applied",
    "outcome",
    flag_value="applied",
    help="You completed the revision's changes by hand: stamp it as applied.",
)
@click.option(
    "--rolled-back",
    "outcome",
    flag_value="rolled-back",
    help="You undid the revision's changes: the next upgrade runs it again.",
)
@with_lock_options
@click.argument("revision")
def resolve_command(
    directory: str | None,
    outcome: str | None,
    lock_timeout: float | None,
    no_lock: bool,
    revision: str,
) -> None:
    """Mark a partially applied revision as dealt with."""
    if outcome is None:
        raise click.UsageError("Say what you did: --applied or --rolled-back.")
    load_api().resolve(
        directory_arg(directory),
        revision,
        outcome == "applied",
        **lock_args(no_lock, lock_timeout),
    )


@db.command("upgrade-env")
@directory_option
@click.option(
    "--check",
    is_flag=True,
    help="Only say whether an upgrade is available (exit 1 if so); write nothing.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an env.py with local edits (the old one is kept as env.py.orig).",
)
@click.option(
    "-t",
    "--template",
    default=None,
    help="Template to upgrade to (default: the one env.py came from or looks like).",
)
def upgrade_env_command(
    directory: str | None, check: bool, force: bool, template: str | None
) -> None:
    """Bring env.py up to the current template, showing the diff."""
    result = load_api().upgrade_env(directory_arg(directory), force, check, template)
    if result.diff:
        click.echo(result.diff, nl=False)
    origin = result.origin or "local edits"
    name = f"the '{result.template}' template"
    if result.status == "up-to-date":
        click.echo(f"{result.path} is up to date with {name}.", err=True)
        return
    if result.status == "upgraded":
        kept = f"; the old file is kept as {result.backup}" if result.backup else ""
        click.echo(f"Upgraded {result.path} ({origin}) to {name}{kept}.", err=True)
        return
    if result.status == "available":
        needs = " (it has local edits: use --force)" if result.local_edits else ""
        click.echo(
            f"An upgrade of {result.path} ({origin}) to {name} is available{needs}.",
            err=True,
        )
    else:
        click.echo(
            f"Error: {result.path} has local edits, so it was not replaced."
            " Merge the diff above by hand, or run again with --force (the old"
            " file is kept as env.py.orig).",
            err=True,
        )
    raise click.exceptions.Exit(int(ExitCode.ERROR))


db.add_command(revision_command)
db.add_command(migrate_command)
db.add_command(edit_command)
db.add_command(merge_command)
db.add_command(status_command)
db.add_command(uninstall_command)
db.add_command(verify_command)
db.add_command(graph_command)
db.add_command(lint_command)
db.add_command(test_command)
