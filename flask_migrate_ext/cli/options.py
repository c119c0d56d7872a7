"""Options shared by the ``db`` commands, declared once, and how a command
reads the group's options (``flask db -d DIR -x ARG --bind NAME ...``)."""

from __future__ import annotations

import functools
import typing as t

import click

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


def with_new_revision_options(f: F) -> F:
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


yes_option = click.option(
    "-y",
    "--yes",
    is_flag=True,
    help="Go on when the run drops tables or columns holding rows (for scripts).",
)


quiet_option = click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Don't show which revision of how many runs (errors still print).",
)


def with_progress(f: F) -> F:
    """``-q/--quiet``, and the progress display around the command, given to
    it as ``display`` (``None`` with ``-q`` or ``--sql``)."""

    @functools.wraps(f)
    def command(*args: t.Any, quiet: bool, **kwargs: t.Any) -> t.Any:
        # Imported when the command runs, with the API, not at `flask --help`.
        from .progress_display import progress_display

        parallel = int(kwargs.get("jobs") or 1) > 1
        with progress_display(quiet, bool(kwargs.get("sql")), parallel) as display:
            return f(*args, display=display, **kwargs)

    return quiet_option(command)  # type: ignore[return-value]


def with_lock_options(f: F) -> F:
    for option in reversed(lock_options):
        f = option(f)
    return f


def lock_args(no_lock: bool, lock_timeout: float | None) -> dict[str, t.Any]:
    return {"lock": False if no_lock else None, "lock_timeout": lock_timeout}


def bind_args(bind: tuple[str, ...] = ()) -> dict[str, t.Any]:
    """``--bind`` values of the group and the subcommand, as API arguments."""
    ctx = click.get_current_context()
    names = [*ctx.meta.get(GROUP_BIND_KEY, ()), *bind]
    return {"binds": names or None}


def directory_arg(directory: str | None) -> str | None:
    """A subcommand's ``-d`` wins over the group's; ``None`` means the app's."""
    if directory is not None:
        return directory
    ctx = click.get_current_context()
    return t.cast("str | None", ctx.meta.get(GROUP_DIRECTORY_KEY))


def _is_relative_step(arg: str) -> bool:
    """``-2``: a negative relative revision, as users type it."""
    return len(arg) > 1 and arg[0] == "-" and arg[1:].isdigit()


class RevisionCommand(click.Command):
    """A command whose ``REVISION`` argument may be a negative relative
    revision typed as it is (``flask db downgrade -2``).

    Click reads ``-2`` as an unknown option; here it is taken as the
    argument instead, moved after ``--`` so options after it still parse.
    Values of options that take one (``--tag -2``) are left alone.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" not in args:
            takes_value = {
                name
                for param in self.params
                if isinstance(param, click.Option)
                and not param.is_flag
                and not param.count
                for name in param.opts
            }
            steps = []
            kept: list[str] = []
            for arg in args:
                value_of_option = bool(kept) and kept[-1] in takes_value
                if _is_relative_step(arg) and not value_of_option:
                    steps.append(arg)
                else:
                    kept.append(arg)
            if steps:
                args = [*kept, "--", *steps]
        return super().parse_args(ctx, args)


def load_api() -> t.Any:
    """:mod:`flask_migrate_ext.api`, imported when a command runs (it imports
    Alembic, which ``flask --help`` must not pay for)."""
    from .. import api

    return api


def group_name() -> str:
    """The name the ``db`` group was invoked under, for the next command."""
    ctx = click.get_current_context()
    return (ctx.parent.info_name if ctx.parent else None) or "db"


def stdin_is_terminal() -> bool:
    """Whether a question can be asked: pipes and CliRunner give no terminal."""
    return click.get_text_stream("stdin").isatty()
