"""The two ``db`` commands Flask sees before anything runs: both stand-ins.

Defining the ``db`` group's twenty commands and their options with Click
costs several milliseconds, which every web worker building the app (and
every ``flask run``, through the entry point) would pay for commands it
never runs. These stand-ins load :mod:`flask_migrate_ext.cli` only when
``flask db ...`` runs, then hand it the arguments.
"""

from __future__ import annotations

import typing as t

import click
from flask.cli import NoAppException
from flask.cli import ScriptInfo

from . import collector
from .errors import ExitCode

if t.TYPE_CHECKING:
    from flask import Flask

    from .cli import MigrateGroup

#: Arguments are not parsed here but handed on, ``--help`` included.
_PASS_THROUGH = {
    "add_help_option": False,
    "context_settings": {
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "allow_interspersed_args": False,
    },
}
_HELP = "Perform database migrations."


class _PassThrough(click.Command):
    def __init__(self, name: str) -> None:
        super().__init__(name, help=_HELP, short_help=_HELP, **_PASS_THROUGH)  # type: ignore[arg-type]

    @staticmethod
    def hand_over(command: click.Command, ctx: click.Context) -> t.Any:
        sub_ctx = command.make_context(ctx.info_name, list(ctx.args), parent=ctx.parent)
        with sub_ctx:
            return command.invoke(sub_ctx)


class LazyMigrateGroup(_PassThrough):
    """What ``init_app`` registers on ``app.cli``: the ``db`` group, loaded
    when used. Anything else asked of it (``commands``, ``add_command``...)
    is the real group's."""

    @property
    def group(self) -> MigrateGroup:
        from .cli import db

        return db

    def invoke(self, ctx: click.Context) -> t.Any:
        return self.hand_over(self.group, ctx)

    def __getattr__(self, name: str) -> t.Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.group, name)


class _Dispatcher(_PassThrough):
    """``flask db`` as installed through the ``flask.commands`` entry point.

    Flask finds entry-point commands before it loads the app. This one loads
    the app and hands the arguments to the app's own command of that name,
    so an app-defined ``db`` command still wins, and an app without the
    extension gets a message saying so instead of "No such command 'db'".
    """

    def invoke(self, ctx: click.Context) -> t.Any:
        name = ctx.info_name or "db"
        try:
            with collector.fewer_collections():
                app = ctx.ensure_object(ScriptInfo).load_app()
        except NoAppException as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            raise click.exceptions.Exit(ExitCode.USAGE) from None
        command = app.cli.get_command(ctx, name)
        if command is None:
            click.echo(f"Error: {_missing_extension_message(app, name)}", err=True)
            raise click.exceptions.Exit(ExitCode.USAGE)
        return self.hand_over(command, ctx)


def _missing_extension_message(app: Flask, name: str) -> str:
    state = app.extensions.get("migrate")
    registered = getattr(state, "command", None)
    if registered and registered != name:
        return (
            f"This app registers its migration commands as 'flask {registered}',"
            f" not 'flask {name}'."
        )
    return (
        f"The app {app.name!r} does not use flask_migrate_ext: add"
        " 'Migrate(app, db)' (or 'migrate.init_app(app, db)' in your app"
        " factory), then run this command again."
    )


db_dispatcher = _Dispatcher("db")
