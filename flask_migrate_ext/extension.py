"""The :class:`Migrate` extension object and the per-app state env.py reads.

Nothing here imports Alembic: a web worker that builds the app pays only for
this module. Alembic is imported when a command runs.
"""

from __future__ import annotations

import contextlib
import os
import typing as t

from flask import current_app
from flask import Flask
from flask import has_app_context

from .errors import SettingsError
from .settings import guard_mode
from .settings import set_defaults
from .state import ConfigureCallback
from .state import get_engine
from .state import get_state
from .state import MigrateState

if t.TYPE_CHECKING:
    from alembic.config import Config

    from .apply.standing import StatusResult
    from .settings import GuardMode


class Migrate:
    """Manage an app's database schema with Alembic through ``flask db``.

    :param app: The Flask app, or ``None`` to call :meth:`init_app` later.
    :param db: The Flask-SQLAlchemy instance whose models are migrated.
    :param directory: Migration script directory, relative to the working
        directory unless absolute.
    :param command: Name of the command group, ``flask <command> ...``.
    :param compare_type: Let autogenerate detect column type changes;
        ``True`` unless given.
    :param render_as_batch: Render ``ALTER`` operations in batch mode, which
        SQLite needs; ``True`` unless given.
    :param kwargs: Passed on to Alembic's ``context.configure`` in env.py
        (``include_object``, ``version_table``, ``compare_server_default``, ...).

    These options reach ``context.configure`` whether or not env.py passes
    ``configure_args`` on; an option env.py passes itself wins.
    """

    def __init__(
        self,
        app: Flask | None = None,
        db: t.Any = None,
        directory: str | os.PathLike[str] = "migrations",
        command: str = "db",
        compare_type: bool | None = None,
        render_as_batch: bool | None = None,
        **kwargs: t.Any,
    ) -> None:
        self.configure_callbacks: list[ConfigureCallback] = []
        self.db = db
        self.command = command
        self.directory = str(directory)
        #: What the app passed for ``context.configure``; the defaults
        #: (``compare_type``, ``render_as_batch``) are added when it runs,
        #: so an env.py passing them itself does not collide with these.
        self.alembic_ctx_kwargs: dict[str, t.Any] = _given(
            kwargs, compare_type=compare_type, render_as_batch=render_as_batch
        )
        if app is not None:
            self.init_app(app, db, directory)

    def init_app(
        self,
        app: Flask,
        db: t.Any = None,
        directory: str | os.PathLike[str] | None = None,
        command: str | None = None,
        compare_type: bool | None = None,
        render_as_batch: bool | None = None,
        **kwargs: t.Any,
    ) -> None:
        """Register the extension and the ``flask db`` commands on ``app``.

        Arguments left out keep the values given to the constructor. Keyword
        arguments apply to this app only.
        """
        # Like Flask-Migrate, the last values given become the defaults for
        # apps initialised later with the same object.
        self.db = db or self.db
        self.command = command or self.command
        self.directory = str(directory or self.directory)
        context_kwargs = {
            **self.alembic_ctx_kwargs,
            **_given(
                kwargs, compare_type=compare_type, render_as_batch=render_as_batch
            ),
        }
        set_defaults(app.config)
        app.extensions["migrate"] = MigrateState(
            migrate=self,
            db=self.db,
            directory=self.directory,
            command=self.command,
            context_kwargs=context_kwargs,
        )
        from .cli.lazy import LazyMigrateGroup

        app.cli.add_command(LazyMigrateGroup(self.command))
        guard = guard_mode(app.config)
        if guard != "off":
            _arm_guard(app, guard)

    def status(self, app: Flask | None = None, *, verify: bool = False) -> StatusResult:
        """Where each of the app's databases stands, fast enough for a
        health check on every probe.

        The same answer as :func:`flask_migrate_ext.api.status` (``flask db
        status``), as the same dataclasses: check :attr:`~StatusResult.state`
        (``"up-to-date"``, ``"pending"``, ...) or ``jsonify`` it. Usually
        read without Alembic: the revisions from the revision cache, kept in
        memory while no revision file changes, and two queries per database
        (version table, ledger). When the cache cannot vouch for every file,
        or env.py has local edits, it takes the command's path (imports
        Alembic, runs env.py): slower, never wrong. Errors are the API's:
        an unreachable database raises
        :class:`~flask_migrate_ext.errors.DatabaseUnreachableError`.

        :param app: The app; the current app by default.
        :param verify: Also compare applied scripts with their recorded
            checksums (reads every applied script).

        .. versionadded:: 0.1
        """
        from .api.boundary import translate_errors
        from .apply.probe import fast_status
        from .state import running

        if app is None:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        with contextlib.ExitStack() as stack:
            if not (has_app_context() and current_app._get_current_object() is app):  # type: ignore[attr-defined]
                stack.enter_context(app.app_context())
            with translate_errors(), running(active=True):
                result = fast_status(verify=verify)
            if result is None:
                from .api.status import status

                result = status(verify=verify)
        return result

    def configure(self, f: ConfigureCallback) -> ConfigureCallback:
        """Register a callback that receives the Alembic config and returns it.

        Callbacks run in registration order, every time a command builds its
        config.
        """
        self.configure_callbacks.append(f)
        return f

    def call_configure_callbacks(self, config: Config) -> Config:
        """Pass ``config`` through every registered callback."""
        for callback in self.configure_callbacks:
            config = callback(config)
        return config

    def get_config(
        self,
        directory: str | os.PathLike[str] | None = None,
        x_arg: str | t.Sequence[str] | None = None,
        opts: t.Iterable[str] | None = None,
    ) -> Config:
        """Build the Alembic config for the current app.

        :param directory: Migration script directory; the app's by default.
        :param x_arg: Extra ``-x`` arguments for env.py, after those given to
            the command group.
        :param opts: Names of ``cmd_opts`` flags to set to ``True``.
        """
        from .scripts.config import build_config

        state = get_state()
        return build_config(state, directory, x_arg, opts)


def _arm_guard(app: Flask, mode: GuardMode) -> None:
    """Listen for the first connection of every migrated database (see
    :mod:`.apply.guard`)."""
    from .apply.guard import arm

    with app.app_context():
        state = get_state(app)
        try:
            engines = {
                name: get_engine(state, name) for name in state.all_database_names()
            }
        except Exception as e:
            raise SettingsError(
                "MIGRATE_GUARD needs the database's engines when init_app runs:"
                " call db.init_app(app) before migrate.init_app(app, db)."
            ) from e
    arm(app, mode, engines)


def _given(kwargs: dict[str, t.Any], **optional: t.Any) -> dict[str, t.Any]:
    """``kwargs`` plus those of ``optional`` that were given (not ``None``)."""
    return {**kwargs, **{k: v for k, v in optional.items() if v is not None}}
