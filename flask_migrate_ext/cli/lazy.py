"""The two ``db`` groups Flask sees before anything runs, both loaded on demand.

Defining the ``db`` group's twenty commands and their options with Click
costs several milliseconds, which every web worker building the app (and
every ``flask --help``, through the entry point) would pay for commands it
never runs. The groups here answer what ``flask --help`` asks (name, short
help) from their own fields, and take their options, subcommands and
callback from the real group (:data:`flask_migrate_ext.cli.db`) the first
time anything else asks for them. So Click's introspection, ``--help``,
shell completion and ``get_command``/``list_commands`` see the real group.
"""

from __future__ import annotations

import contextlib
import os
import sysconfig
import traceback
import typing as t

import click
from flask.cli import AppGroup
from flask.cli import NoAppException
from flask.cli import ScriptInfo

from ..errors import ExitCode
from ..errors import first_line
from . import collector

if t.TYPE_CHECKING:
    from flask import Flask

_HELP = "Perform database migrations."

#: The fields Click reads to parse, run and describe a group, taken from the
#: real group. ``name``, ``short_help`` and ``hidden`` stay ours: they are
#: all ``flask --help`` reads.
_DELEGATED = (
    "params",
    "callback",
    "commands",
    "help",
    "epilog",
    "context_settings",
    "add_help_option",
    "no_args_is_help",
    "invoke_without_command",
    "chain",
    "subcommand_metavar",
    "options_metavar",
    "_result_callback",
)


def _delegated(name: str) -> t.Any:
    own = f"_own_{name}"

    def get(self: _DelegatingGroup) -> t.Any:
        # Click's __init__ reads some fields back: answer those from ours.
        target = self.target() if self.__dict__.get("_ready") else None
        return getattr(self, own) if target is None else getattr(target, name)

    def set_(self: _DelegatingGroup, value: t.Any) -> None:
        # Click's __init__ assigns every field; keep ours as the fallback.
        setattr(self, own, value)

    return property(get, set_)


class _DelegatingGroup(AppGroup):
    """A group whose fields are another group's, found when first needed."""

    def __init__(self, name: str, **attrs: t.Any) -> None:
        super().__init__(name, help=_HELP, short_help=_HELP, **attrs)
        self._ready = True

    def target(self) -> click.Group | None:
        """The group to act as; ``None`` to act as this one."""
        raise NotImplementedError

    def command(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        target = self.target()
        if target is None:
            return super().command(*args, **kwargs)
        return target.command(*args, **kwargs)

    def group(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        target = self.target()
        if target is None:
            return super().group(*args, **kwargs)
        return target.group(*args, **kwargs)


for _name in _DELEGATED:
    setattr(_DelegatingGroup, _name, _delegated(_name))


class LazyMigrateGroup(_DelegatingGroup):
    """What ``init_app`` registers on ``app.cli``: the ``db`` group, loaded
    when used. Anything else asked of it is the real group's too."""

    def target(self) -> click.Group:
        from .commands import db

        return db

    def __getattr__(self, name: str) -> t.Any:
        if name.startswith("__") or name.startswith("_own_"):
            raise AttributeError(name)
        return getattr(self.target(), name)


#: Where the dispatcher keeps, per command line, the group it acts as.
_TARGET_KEY = "flask_migrate_ext.dispatch_target"


class _Dispatcher(_DelegatingGroup):
    """``flask db`` as installed through the ``flask.commands`` entry point.

    Flask finds entry-point commands before it loads the app. This one acts
    as the app's own group of that name (which ``init_app`` registered), so
    an app-defined ``db`` group still wins. When the app cannot be loaded or
    does not use the extension, it takes any arguments and says so when run,
    instead of Flask's "No such command 'db'".
    """

    def __init__(self, name: str) -> None:
        super().__init__(
            name,
            add_help_option=False,
            no_args_is_help=False,
            invoke_without_command=True,
            context_settings={
                "ignore_unknown_options": True,
                "allow_extra_args": True,
                "allow_interspersed_args": False,
            },
        )

    def target(self) -> click.Group | None:
        ctx = click.get_current_context(silent=True)
        if ctx is None:
            return None
        root = ctx.find_root()
        if _TARGET_KEY not in root.meta:
            root.meta[_TARGET_KEY] = self._app_group(ctx)
        return t.cast("click.Group | None", root.meta[_TARGET_KEY])

    def _app_group(self, ctx: click.Context) -> click.Group | None:
        info = ctx.find_object(ScriptInfo)
        if info is None:
            return None
        try:
            with collector.fewer_collections():
                app = info.load_app()
        except Exception:  # reported by invoke(), where it can exit
            return None
        command = app.cli.get_command(ctx, self.name or "db")
        return command if isinstance(command, click.Group) else None

    # Click calls these with a context it has not pushed (shell completion,
    # introspection); push it, so target() finds the app's script info.
    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: t.Any,
    ) -> click.Context:
        with parent.scope(cleanup=False) if parent else contextlib.nullcontext():
            return super().make_context(info_name, args, parent, **extra)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        with ctx.scope(cleanup=False):
            return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        with ctx.scope(cleanup=False):
            return super().list_commands(ctx)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        with ctx.scope(cleanup=False):
            return super().get_params(ctx)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[t.Any]:
        with ctx.scope(cleanup=False):
            return super().shell_complete(ctx, incomplete)

    def to_info_dict(self, ctx: click.Context) -> dict[str, t.Any]:
        with ctx.scope(cleanup=False):
            return super().to_info_dict(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if self.target() is not None:
            return super().parse_args(ctx, args)
        # Acting as itself: keep every argument for the command it hands over to.
        return click.Command.parse_args(self, ctx, args)

    def invoke(self, ctx: click.Context) -> t.Any:
        if self.target() is not None:
            return super().invoke(ctx)
        name = ctx.info_name or "db"
        try:
            with collector.fewer_collections():
                app = ctx.ensure_object(ScriptInfo).load_app()
        except NoAppException as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            raise click.exceptions.Exit(ExitCode.USAGE) from None
        except Exception as e:
            # The app's own code raised while it loaded (a missing environment
            # variable, a bad config value): say where, not 40 lines of Click.
            if _verbose_asked(ctx.args):
                traceback.print_exc()
            click.echo(f"Error: {_app_error_message(e)}", err=True)
            if not _verbose_asked(ctx.args):
                click.echo(
                    f"Run 'flask {name} --verbose ...' to see the full traceback.",
                    err=True,
                )
            raise click.exceptions.Exit(ExitCode.USAGE) from None
        command = app.cli.get_command(ctx, name)
        if command is None:
            click.echo(f"Error: {_missing_extension_message(app, name)}", err=True)
            raise click.exceptions.Exit(ExitCode.USAGE)
        # The app's own ``db`` command, not a group: hand it the arguments.
        sub_ctx = command.make_context(name, list(ctx.args), parent=ctx.parent)
        with sub_ctx:
            return command.invoke(sub_ctx)


def _verbose_asked(args: t.Sequence[str]) -> bool:
    """Whether the group's own ``-v``/``--verbose`` comes before the command."""
    for arg in args:
        if not arg.startswith("-"):
            return False
        if arg in ("-v", "--verbose"):
            return True
    return False


def _app_error_message(error: BaseException) -> str:
    """One line for an exception raised while the app loaded: what, and
    the deepest frame outside the standard library and installed packages."""
    where = ""
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        path = frame.filename
        if path.startswith("<") or _installed(path):
            continue
        where = f" ({os.path.relpath(path)}, line {frame.lineno})"
        break
    summary = first_line(error)
    text = f"{type(error).__name__}: {summary}" if summary else type(error).__name__
    return f"The app failed to load{where}: {text}"


def _installed(path: str) -> bool:
    """Whether ``path`` belongs to Python itself or an installed package."""
    roots = {sysconfig.get_path("stdlib"), sysconfig.get_path("purelib")}
    roots |= {sysconfig.get_path("platlib")}
    return any(root and path.startswith(root) for root in roots)


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
