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
import functools
import signal
import threading
import traceback
import typing as t

import click
from flask.cli import AppGroup

from ..errors import ExitCode
from ..errors import first_line
from ..errors import MigrateError
from ..errors import NotUpToDateError
from ..errors import PartiallyAppliedError
from ..errors import SchemaDriftError
from ..report import reporting_to
from ..state import running
from . import collector
from . import output

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

#: ``click.Context.meta`` keys under which the ``db`` group keeps its options.
GROUP_DIRECTORY_KEY = "flask_migrate_ext.directory"
GROUP_X_ARG_KEY = "flask_migrate_ext.x_arg"


def group_x_args() -> list[str]:
    """The ``-x`` values given to the ``db`` group of the running CLI command."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return []
    return list(ctx.meta.get(GROUP_X_ARG_KEY, ()))


GROUP_VERBOSE_KEY = "flask_migrate_ext.verbose"
GROUP_BIND_KEY = "flask_migrate_ext.bind"


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so it unwinds like Ctrl-C.

    A ``KeyboardInterrupt`` subclass, so database drivers that cancel the
    running statement on Ctrl-C (psycopg) do so on SIGTERM too.
    """


def _stop(signum: int, frame: object) -> None:
    # Stop the server's statement first: unwinding rolls back on the same
    # connection, which would otherwise wait for the statement to finish.
    # (Imported here: the runner has loaded it by the time a run is stopped,
    # and `flask --help` need not.)
    from ..apply.interrupt import cancel_running

    cancel_running()
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def _signals_unwind() -> t.Iterator[None]:
    """SIGINT and SIGTERM cancel server statements, then unwind as exceptions."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _verbose() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get(GROUP_VERBOSE_KEY))


@contextlib.contextmanager
def user_errors() -> t.Iterator[None]:
    """The CLI's one error boundary: a short message on stderr and an exit code.

    Errors raised by the API carry their exit code. Anything else is a bug
    or an environment problem: one line too, and the traceback with
    ``flask db --verbose``.
    """
    collector.skip_collections_at_exit()
    try:
        with (
            collector.frozen(),
            _signals_unwind(),
            reporting_to(_echo_err),
            running(cli=True, group_x_args=tuple(group_x_args())),
        ):
            yield
    except MigrateError as e:
        if _verbose():
            traceback.print_exc()
        click.echo(f"Error: {e}", err=True)
        raise click.exceptions.Exit(int(e.exit_code)) from None
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        click.echo("Stopped by SIGTERM." if terminated else "Interrupted.", err=True)
        code = ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED
        raise click.exceptions.Exit(int(code)) from None
    except (click.exceptions.Exit, click.ClickException, click.Abort):
        raise
    except Exception as e:
        if _verbose():
            raise
        summary = first_line(e) or "(no message)"
        click.echo(f"Error: {type(e).__name__}: {summary}", err=True)
        click.echo(
            "Run with 'flask db --verbose ...' to see the full traceback.", err=True
        )
        raise click.exceptions.Exit(int(ExitCode.ERROR)) from None


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def _api() -> t.Any:
    from .. import api

    return api


def _binds(bind: tuple[str, ...] = ()) -> dict[str, t.Any]:
    """``--bind`` values of the group and the subcommand, as API arguments."""
    ctx = click.get_current_context()
    names = [*ctx.meta.get(GROUP_BIND_KEY, ()), *bind]
    return {"binds": names or None}


def _directory(directory: str | None) -> str | None:
    """A subcommand's ``-d`` wins over the group's; ``None`` means the app's."""
    if directory is not None:
        return directory
    ctx = click.get_current_context()
    return t.cast("str | None", ctx.meta.get(GROUP_DIRECTORY_KEY))


class MigrateGroup(AppGroup):
    """An :class:`~flask.cli.AppGroup` whose commands report :class:`MigrateError`
    as a one-line message and its exit code."""

    def command(self, *args: t.Any, **kwargs: t.Any) -> t.Callable[[F], click.Command]:  # type: ignore[override]
        decorator = super().command(*args, **kwargs)

        def wrap(f: F) -> click.Command:
            @functools.wraps(f)
            def callback(*f_args: t.Any, **f_kwargs: t.Any) -> t.Any:
                with user_errors():
                    return f(*f_args, **f_kwargs)

            return decorator(callback)

        return wrap


directory_option = click.option(
    "-d",
    "--directory",
    default=None,
    help='Migration script directory (default is "migrations").',
)
x_arg_option = click.option(
    "-x",
    "--x-arg",
    multiple=True,
    help="Additional arguments consumed by custom env.py scripts.",
)
sql_option = click.option(
    "--sql",
    is_flag=True,
    help="Don't emit SQL to database - dump to standard output instead.",
)
tag_option = click.option(
    "--tag",
    default=None,
    help='Arbitrary "tag" name - can be used by custom env.py scripts.',
)
bind_option = click.option(
    "--bind",
    multiple=True,
    metavar="NAME",
    help="With several databases, work on this one only (repeatable).",
)
schema_option = click.option(
    "--schema",
    "schemas",
    multiple=True,
    metavar="NAME",
    help="PostgreSQL tenant schema to work in, each with its own version"
    " table (repeatable; default MIGRATE_SCHEMAS).",
)
verbose_option = click.option(
    "-v", "--verbose", is_flag=True, help="Use more verbose output."
)
json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result as JSON (schema in the docs' JSON output page).",
)
message_option = click.option("-m", "--message", default=None, help="Revision message.")
head_option = click.option(
    "--head",
    default="head",
    help="Specify head revision or <branchname>@head to base new revision on.",
)
splice_option = click.option(
    "--splice",
    is_flag=True,
    help='Allow a non-head revision as the "head" to splice onto.',
)
branch_label_option = click.option(
    "--branch-label",
    default=None,
    help="Specify a branch label to apply to the new revision.",
)
version_path_option = click.option(
    "--version-path",
    default=None,
    help="Specify specific path from config for version file.",
)
rev_id_option = click.option(
    "--rev-id",
    default=None,
    help="Specify a hardcoded revision id instead of generating one.",
)


def _new_revision_options(f: F) -> F:
    """Options shared by ``revision`` and ``migrate``, in Flask-Migrate's order."""
    for option in reversed(
        [
            sql_option,
            head_option,
            splice_option,
            branch_label_option,
            version_path_option,
            rev_id_option,
        ]
    ):
        f = option(f)
    return f


lock_options = [
    click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=None,
        help="Seconds to wait for another process's migration lock"
        " (default MIGRATE_LOCK_TIMEOUT or 600).",
    ),
    click.option(
        "--no-lock",
        is_flag=True,
        help="Don't take the migration lock.",
    ),
]


def _lock_options(f: F) -> F:
    for option in reversed(lock_options):
        f = option(f)
    return f


def _lock_args(no_lock: bool, lock_timeout: float | None) -> dict[str, t.Any]:
    return {"lock": False if no_lock else None, "lock_timeout": lock_timeout}


@click.group(cls=MigrateGroup)
@directory_option
@x_arg_option
@bind_option
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show full tracebacks for errors.",
)
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
    output.echo(output.templates(_api().list_templates()))


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
    _api().init(_directory(directory), multidb, template, package)


@db.command("revision")
@directory_option
@bind_option
@message_option
@click.option(
    "--autogenerate",
    is_flag=True,
    help="Populate revision script with candidate migration operations,"
    " based on comparison of database to model.",
)
@_new_revision_options
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
    _api().revision(
        _directory(directory),
        message,
        autogenerate,
        sql,
        head,
        splice,
        branch_label,
        version_path,
        rev_id,
        **_binds(bind),
    )


@db.command("migrate")
@directory_option
@bind_option
@message_option
@_new_revision_options
@x_arg_option
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show what autogenerate compared, table by table.",
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
) -> None:
    """Autogenerate a new revision file (alias for 'revision --autogenerate')."""
    _api().migrate(
        _directory(directory),
        message,
        sql,
        head,
        splice,
        branch_label,
        version_path,
        rev_id,
        list(x_arg),
        **_binds(bind),
        verbose=verbose,
    )


@db.command("edit")
@directory_option
@click.argument("revision", default="head")
def edit_command(directory: str | None, revision: str) -> None:
    """Edit a revision file in $EDITOR."""
    _api().edit(_directory(directory), revision)


@db.command("merge")
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
    _api().merge(_directory(directory), list(revisions), message, branch_label, rev_id)


@db.command("upgrade")
@directory_option
@bind_option
@schema_option
@sql_option
@tag_option
@x_arg_option
@_lock_options
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
    revision: str,
) -> None:
    """Upgrade to a later version."""
    _api().upgrade(
        _directory(directory),
        revision,
        sql,
        tag,
        list(x_arg),
        **_lock_args(no_lock, lock_timeout),
        schemas=schemas or None,
        **_binds(bind),
    )


@db.command("downgrade")
@directory_option
@bind_option
@schema_option
@sql_option
@tag_option
@x_arg_option
@_lock_options
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
    revision: str,
) -> None:
    """Revert to a previous version."""
    _api().downgrade(
        _directory(directory),
        revision,
        sql,
        tag,
        list(x_arg),
        **_lock_args(no_lock, lock_timeout),
        schemas=schemas or None,
        **_binds(bind),
    )


@db.command("show")
@directory_option
@json_option
@click.argument("revision", default="head")
def show_command(directory: str | None, as_json: bool, revision: str) -> None:
    """Show the revision denoted by the given symbol."""
    found = _api().show(_directory(directory), revision)
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
    found = _api().history(_directory(directory), rev_range, verbose, indicate_current)
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
    found = _api().heads(_directory(directory), verbose, resolve_dependencies)
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
    found = _api().branches(_directory(directory), verbose)
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
def current_command(
    directory: str | None,
    bind: tuple[str, ...],
    schemas: tuple[str, ...],
    verbose: bool,
    as_json: bool,
) -> None:
    """Display the current revision for each database."""

    def render(states: t.Sequence[t.Any]) -> None:
        if as_json:
            output.echo(output.current_json(states))
        else:
            output.echo(output.current(states, verbose))

    try:
        states = _api().current(
            _directory(directory), verbose, schemas=schemas or None, **_binds(bind)
        )
    except PartiallyAppliedError as e:
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
@_lock_options
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
    _api().stamp(
        _directory(directory),
        revision,
        sql,
        tag,
        purge,
        **_lock_args(no_lock, lock_timeout),
        **_binds(bind),
    )


@db.command("check")
@directory_option
@bind_option
@json_option
def check_command(directory: str | None, bind: tuple[str, ...], as_json: bool) -> None:
    """Check if there are any new operations to migrate."""
    try:
        result = _api().check(_directory(directory), **_binds(bind))
    except (SchemaDriftError, NotUpToDateError) as e:
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
@click.argument("revision")
def resolve_command(directory: str | None, outcome: str | None, revision: str) -> None:
    """Mark a partially applied revision as dealt with."""
    if outcome is None:
        raise click.UsageError("Say what you did: --applied or --rolled-back.")
    _api().resolve(_directory(directory), revision, outcome == "applied")


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
    result = _api().upgrade_env(_directory(directory), force, check, template)
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


def _stdin_is_terminal() -> bool:
    """Whether a question can be asked: pipes and CliRunner give no terminal."""
    return click.get_text_stream("stdin").isatty()


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


@db.command("uninstall")
@bind_option
@schema_option
@_lock_options
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
    api = _api()
    args = {
        "schemas": schemas or None,
        **_lock_args(no_lock, lock_timeout),
        **_binds(bind),
    }
    if not yes:
        if not _stdin_is_terminal():
            click.echo(
                "Error: uninstall drops the ledger, whose record of past runs is"
                " lost; there is no terminal to confirm on, so pass --yes.",
                err=True,
            )
            raise click.exceptions.Exit(int(ExitCode.USAGE))
        planned = _dropped_lines(api.uninstall(_directory(None), dry_run=True, **args))
        if planned:
            click.echo("This drops:")
            for line in planned:
                click.echo(f"  {line}")
            click.confirm(
                "Drop them? The ledger's record of past runs is lost.",
                default=False,
                abort=True,
            )
    results = api.uninstall(_directory(None), **args)
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
