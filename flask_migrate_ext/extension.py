"""The :class:`Migrate` extension object and the per-app state env.py reads.

Nothing here imports Alembic: a web worker that builds the app pays only for
this module. Alembic is imported when a command runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
import typing as t

from flask import current_app
from flask import Flask

from .errors import NotInitializedError
from .errors import UnknownBindError

if t.TYPE_CHECKING:
    import sqlalchemy as sa
    from alembic.config import Config
    from alembic.operations import ops
    from alembic.runtime.migration import MigrationContext

ConfigureCallback = t.Callable[["Config"], "Config"]
ProcessRevisionDirectives = t.Callable[
    ["MigrationContext", t.Any, "list[ops.MigrationScript]"], None
]

#: Options a running command adds to ``configure_args`` for the length of the
#: run (for example ``transaction_per_migration``), without touching the
#: options the user gave to :class:`Migrate`.
_run_options: contextvars.ContextVar[dict[str, t.Any]] = contextvars.ContextVar(
    "flask_migrate_ext_run_options"
)

_env_logger = logging.getLogger("alembic.env")


@contextlib.contextmanager
def run_options(**options: t.Any) -> t.Iterator[None]:
    """Add ``options`` to every ``configure_args`` read inside the block."""
    token = _run_options.set({**_run_options.get({}), **options})
    try:
        yield
    finally:
        _run_options.reset(token)


def selected_bind_names() -> tuple[str, ...]:
    """The databases chosen with ``--bind``; empty when none were."""
    return tuple(_run_options.get({}).get("_binds", ()))


def in_cli() -> bool:
    """Whether the ``flask db`` CLI is running the current command."""
    return bool(_run_options.get({}).get("_cli"))


@dataclasses.dataclass(eq=False)
class MigrateState:
    """Per-app state, stored as ``app.extensions["migrate"]``.

    ``env.py`` files written by Flask-Migrate read ``db``, ``directory``,
    ``configure_args``, ``metadata`` and ``migrate`` from it, so those names
    are part of the compatibility promise.
    """

    migrate: Migrate
    db: t.Any
    directory: str
    command: str
    context_kwargs: dict[str, t.Any]

    @property
    def configure_args(self) -> dict[str, t.Any]:
        """Keyword arguments for Alembic's ``context.configure``.

        A new dict on every access: Flask-Migrate's env.py stores its own
        ``process_revision_directives`` in the dict it gets, and a shared dict
        would carry that closure (bound to an old config) into later runs.
        """
        args = dict(self.context_kwargs)
        args.update(
            (key, value)
            for key, value in _run_options.get({}).items()
            if not key.startswith("_")
        )
        args["process_revision_directives"] = _skip_empty_autogenerate(
            args.get("process_revision_directives")
        )
        args["include_name"] = _skip_own_tables(args.get("include_name"))
        return args

    def all_database_names(self) -> list[str]:
        """Every database to migrate: ``""`` (the default database, when the
        app has one) and each bind, less ``MIGRATE_EXCLUDE_BINDS``."""
        excluded = set(current_app.config.get("MIGRATE_EXCLUDE_BINDS") or ())
        return [name for name in self.known_database_names() if name not in excluded]

    def known_database_names(self) -> list[str]:
        """Every database the app configures, migrated or not."""
        binds = current_app.config.get("SQLALCHEMY_BINDS")
        if binds is not None:
            names = list(binds)
        else:
            bind_names = getattr(self.db, "bind_names", None)
            names = list(bind_names() if bind_names is not None else ())
        engines = getattr(self.db, "engines", None)
        has_default = not isinstance(engines, t.Mapping) or None in engines
        return ["", *names] if has_default else names

    def database_names(self) -> list[str]:
        """The databases this command works on: all of them, or those chosen
        with ``--bind``. The multi-database env.py templates call this."""
        names = self.all_database_names()
        selected = _run_options.get({}).get("_binds")
        return [name for name in names if name in selected] if selected else names

    @property
    def metadata(self) -> sa.MetaData:
        """The default metadata; very old env.py files read it from here."""
        if self.db is None:
            raise NotInitializedError(_NO_DB_MESSAGE)
        metadatas = getattr(self.db, "metadatas", None)
        if metadatas is not None:
            return t.cast("sa.MetaData", metadatas[None])
        return t.cast("sa.MetaData", self.db.metadata)


#: Flask-Migrate's name for the same object, for code that refers to it.
_MigrateConfig = MigrateState

_NO_DB_MESSAGE = (
    "Migrate was not given a database: use Migrate(app, db) or"
    " migrate.init_app(app, db)."
)


def _skip_empty_autogenerate(
    user_hook: ProcessRevisionDirectives | None,
) -> ProcessRevisionDirectives:
    """Chain the user's hook with the "no changes, no file" rule.

    Flask-Migrate drops that rule as soon as the user passes a hook of their
    own; here the user's hook runs first and the rule still applies after it.
    """
    if getattr(user_hook, "_flask_migrate_ext_skip", False):
        return t.cast(ProcessRevisionDirectives, user_hook)

    def process_revision_directives(
        context: MigrationContext, revision: t.Any, directives: list[t.Any]
    ) -> None:
        if user_hook is not None:
            user_hook(context, revision, directives)
        cmd_opts = context.config.cmd_opts if context.config else None
        if not getattr(cmd_opts, "autogenerate", False) or not directives:
            return
        ops_list = directives[0].upgrade_ops_list
        if any(ops.upgrade_token != "upgrades" for ops in ops_list):
            # A multi-database env.py calls this once per database: judge
            # only after the last one, or Alembic has no script to add to.
            if len(ops_list) < len(database_names()):
                return
        if all(ops.is_empty() for ops in ops_list):
            directives[:] = []
            _env_logger.info("No changes in schema detected.")

    process_revision_directives._flask_migrate_ext_skip = True  # type: ignore[attr-defined]
    return process_revision_directives


def ledger_table_name() -> str | None:
    """The ledger table of the current app (``MIGRATE_LOG_TABLE``), or ``None``."""
    from .ledger import DEFAULT_TABLE  # read at command time, not at app start

    name = current_app.config.get("MIGRATE_LOG_TABLE", DEFAULT_TABLE)
    return str(name) if name else None


def revision_cache_enabled() -> bool:
    """Whether the current app keeps the revision-graph cache
    (``MIGRATE_REVISION_CACHE``, on by default)."""
    return bool(current_app.config.get("MIGRATE_REVISION_CACHE", True))


def _own_tables() -> set[str]:
    from .lock import LOCK_TABLE

    tables = {LOCK_TABLE}
    name = ledger_table_name()
    if name:
        tables.add(name)
    return tables


def _skip_own_tables(user_hook: t.Callable[..., bool] | None) -> t.Callable[..., bool]:
    """Chain the user's ``include_name`` with one that hides our own tables
    (the ledger and the lock table) from autogenerate, as Alembic hides its
    version table."""
    own = _own_tables()

    def include_name(name: str | None, type_: str, parent_names: t.Any) -> bool:
        if type_ == "table" and name in own:
            return False
        return user_hook(name, type_, parent_names) if user_hook else True

    return include_name


def database_names() -> list[str]:
    """The current app's databases that this command works on."""
    return get_state().database_names()


@contextlib.contextmanager
def selected_binds(names: t.Sequence[str] | None) -> t.Iterator[None]:
    """Work on the databases named in ``names`` only (``--bind``)."""
    if not names:
        yield
        return
    state = get_state()
    known = state.all_database_names()
    unknown = [name for name in names if name not in known]
    if unknown:
        listed = ", ".join(repr(name) for name in known if name) or "none"
        raise UnknownBindError(
            f"No database named {', '.join(map(repr, unknown))} to migrate;"
            f" the app's binds are: {listed}."
        )
    with run_options(_binds=tuple(names)):
        yield


class Migrate:
    """Manage an app's database schema with Alembic through ``flask db``.

    :param app: The Flask app, or ``None`` to call :meth:`init_app` later.
    :param db: The Flask-SQLAlchemy instance whose models are migrated.
    :param directory: Migration script directory, relative to the working
        directory unless absolute.
    :param command: Name of the command group, ``flask <command> ...``.
    :param compare_type: Let autogenerate detect column type changes.
    :param render_as_batch: Render ``ALTER`` operations in batch mode, which
        SQLite needs.
    :param kwargs: Passed on to Alembic's ``context.configure`` in env.py
        (``include_object``, ``version_table``, ``compare_server_default``, ...).
    """

    def __init__(
        self,
        app: Flask | None = None,
        db: t.Any = None,
        directory: str | os.PathLike[str] = "migrations",
        command: str = "db",
        compare_type: bool = True,
        render_as_batch: bool = True,
        **kwargs: t.Any,
    ) -> None:
        self.configure_callbacks: list[ConfigureCallback] = []
        self.db = db
        self.command = command
        self.directory = str(directory)
        self.alembic_ctx_kwargs: dict[str, t.Any] = {
            **kwargs,
            "compare_type": compare_type,
            "render_as_batch": render_as_batch,
        }
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
        context_kwargs = {**self.alembic_ctx_kwargs, **kwargs}
        if compare_type is not None:
            context_kwargs["compare_type"] = compare_type
        if render_as_batch is not None:
            context_kwargs["render_as_batch"] = render_as_batch
        app.extensions["migrate"] = MigrateState(
            migrate=self,
            db=self.db,
            directory=self.directory,
            command=self.command,
            context_kwargs=context_kwargs,
        )
        from .lazy_cli import LazyMigrateGroup

        app.cli.add_command(LazyMigrateGroup(self.command))

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
        from .config import build_config

        state = get_state()
        return build_config(state, directory, x_arg, opts)


def get_state(app: Flask | None = None) -> MigrateState:
    """Return the extension state of ``app`` (the current app by default)."""
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.get("migrate")
    if not isinstance(state, MigrateState):
        raise NotInitializedError(
            "flask_migrate_ext is not initialised on this app: call"
            " Migrate(app, db) or migrate.init_app(app, db)."
        )
    return state


def get_engine(state: MigrateState, name: str = "") -> sa.Engine:
    """The engine of database ``name`` (``""`` is the default database)."""
    db = get_db(state)
    engines = getattr(db, "engines", None)
    if engines is not None:
        return t.cast("sa.Engine", engines[name or None])
    if name:
        return t.cast("sa.Engine", db.get_engine(bind=name))
    return t.cast("sa.Engine", db.engine)


def get_db(state: MigrateState) -> t.Any:
    """Return the state's database object, or explain how to give one."""
    if state.db is None:
        raise NotInitializedError(_NO_DB_MESSAGE)
    return state.db


def resolve_directory(
    state: MigrateState, directory: str | os.PathLike[str] | None
) -> str:
    """The migration directory: the one given (``-d``, ``FLASK_DB_DIRECTORY``),
    else ``MIGRATE_DIRECTORY`` from the app config (relative to the app's root
    path, so commands work from any folder), else ``Migrate(directory=...)``
    (relative to the working directory, as with Flask-Migrate)."""
    if directory is not None:
        return os.fspath(directory)
    configured = current_app.config.get("MIGRATE_DIRECTORY")
    if configured:
        return os.path.join(current_app.root_path, os.fspath(configured))
    return state.directory
