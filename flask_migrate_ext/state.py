"""Per-app state (what env.py reads) and the state of the command running now.

The lowest layer most of the package builds on: it reads the current app and
its settings, and imports neither Alembic nor the rest of the package.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import types
import typing as t

from flask import current_app
from flask import Flask

from .errors import NotInitializedError
from .errors import UnknownBindError
from .settings import Settings

if t.TYPE_CHECKING:
    import sqlalchemy as sa
    from alembic.config import Config
    from alembic.operations import ops
    from alembic.runtime.migration import MigrationContext

    from .extension import Migrate

ConfigureCallback = t.Callable[["Config"], "Config"]
ProcessRevisionDirectives = t.Callable[
    ["MigrationContext", t.Any, "list[ops.MigrationScript]"], None
]


_NOTHING: t.Mapping[str, t.Any] = types.MappingProxyType({})


# A NamedTuple, not a dataclass: this module loads with the app, and a
# dataclass costs about half a millisecond to define.
class RunState(t.NamedTuple):
    """What the command running now asks of env.py, beyond ``Migrate()``'s options.

    env.py files written by Flask-Migrate are not ours to edit, so a command
    does not hand them its options through ``configure_args``: they are
    applied where env.py calls Alembic's ``context.configure`` (see
    :mod:`flask_migrate_ext.context_rules`).
    """

    #: The ``flask db`` CLI runs the command (not an app calling the API).
    cli: bool = False
    #: Databases chosen with ``--bind``; empty for all of them.
    binds: tuple[str, ...] = ()
    #: ``-x`` values given to the command group (``flask db -x a=1 ...``),
    #: passed to env.py before the command's own.
    group_x_args: tuple[str, ...] = ()
    #: ``context.configure`` options that win over what env.py passes
    #: (a tenant schema's version table, an explicit transaction mode).
    overrides: t.Mapping[str, t.Any] = _NOTHING
    #: ``context.configure`` options used when neither env.py nor
    #: ``Migrate()`` gives one.
    fallbacks: t.Mapping[str, t.Any] = _NOTHING
    #: Shown each autogenerate result before env.py's
    #: ``process_revision_directives`` (which may empty it).
    revision_watchers: tuple[ProcessRevisionDirectives, ...] = ()
    #: An API function is running: the rules apply to ``context.configure``.
    active: bool = False
    #: The app's ``MIGRATE_*`` settings, read when the command started.
    settings: Settings | None = None
    #: Resources held for the rest of the command (closed when it ends).
    resources: contextlib.ExitStack[bool | None] | None = None


_NO_RUN = RunState()
_run_state: contextvars.ContextVar[RunState | None] = contextvars.ContextVar(
    "flask_migrate_ext_run_state", default=None
)


def run_state() -> RunState:
    """The state of the command running now (defaults outside any command)."""
    return _run_state.get() or _NO_RUN


@contextlib.contextmanager
def running(
    *,
    overrides: t.Mapping[str, t.Any] | None = None,
    fallbacks: t.Mapping[str, t.Any] | None = None,
    revision_watcher: ProcessRevisionDirectives | None = None,
    **changes: t.Any,
) -> t.Iterator[RunState]:
    """Change the run state inside the block; options add to the outer ones."""
    current = run_state()
    if overrides:
        changes["overrides"] = {**current.overrides, **overrides}
    if fallbacks:
        changes["fallbacks"] = {**current.fallbacks, **fallbacks}
    if revision_watcher is not None:
        changes["revision_watchers"] = (*current.revision_watchers, revision_watcher)
    state = current._replace(**changes)
    token = _run_state.set(state)
    try:
        yield state
    finally:
        _run_state.reset(token)


def current_settings() -> Settings:
    """The current app's settings: those the running command read when it
    started, else read now."""
    return run_state().settings or Settings.from_config(current_app.config)


def selected_bind_names() -> tuple[str, ...]:
    """The databases chosen with ``--bind``; empty when none were."""
    return run_state().binds


def in_cli() -> bool:
    """Whether the ``flask db`` CLI is running the current command."""
    return run_state().cli


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
        """The keyword arguments given to ``Migrate()`` and ``init_app()`` for
        Alembic's ``context.configure``, as Flask-Migrate's env.py reads them.

        Exactly what the app passed; the extension's own rules are applied
        inside ``context.configure`` instead, so they never collide with the
        arguments an env.py passes itself. A new dict on every access: an env.py
        that stores a hook in it must not leak that hook into later runs.
        """
        return dict(self.context_kwargs)

    def all_database_names(self) -> list[str]:
        """Every database to migrate: ``""`` (the default database, when the
        app has one) and each bind, less ``MIGRATE_EXCLUDE_BINDS``."""
        excluded = set(current_settings().exclude_binds)
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
        selected = run_state().binds
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


def ledger_table_name() -> str | None:
    """The ledger table of the current app (``MIGRATE_LOG_TABLE``), or ``None``."""
    return current_settings().log_table


def revision_cache_enabled() -> bool:
    """Whether the current app keeps the revision-graph cache
    (``MIGRATE_REVISION_CACHE``, on by default)."""
    return current_settings().revision_cache


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
    with running(binds=tuple(names)):
        yield


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


class _EnginesReplaced:
    """The app's database object, with other engines: what env.py sees while
    :func:`engines_replaced` is in effect. Everything else (metadata, bind
    names) is the real object's."""

    def __init__(self, db: t.Any, engines: t.Mapping[str, sa.Engine]) -> None:
        self._db = db
        self._engines = dict(engines)

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._db, name)

    @property
    def engine(self) -> sa.Engine:
        return self.get_engine()

    @property
    def engines(self) -> dict[str | None, sa.Engine]:
        return {name or None: engine for name, engine in self._engines.items()}

    def get_engine(self, bind: str | None = None, **kwargs: t.Any) -> sa.Engine:
        engine = self._engines.get(bind or "")
        if engine is None:
            raise UnknownBindError(f"No database named {bind!r} in this run.")
        return engine


@contextlib.contextmanager
def engines_replaced(
    app: Flask, engines: t.Mapping[str, sa.Engine]
) -> t.Iterator[MigrateState]:
    """Run commands on ``engines`` (bind name to engine, ``""`` the default
    database) instead of the app's, inside the block.

    env.py files read the engine from ``current_app.extensions["migrate"].db``
    whatever their shape, so that is what is replaced; the app's own engines
    and its config are left alone (they may be in use).
    """
    state = get_state(app)
    replaced = dataclasses.replace(state, db=_EnginesReplaced(get_db(state), engines))
    app.extensions["migrate"] = replaced
    try:
        yield replaced
    finally:
        app.extensions["migrate"] = state


def engines_are_replaced(app: Flask | None = None) -> bool:
    """Whether :func:`engines_replaced` is in effect for ``app`` (the current app)."""
    return isinstance(get_state(app).db, _EnginesReplaced)


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
    configured = current_settings().directory
    if configured:
        return os.path.join(current_app.root_path, os.fspath(configured))
    return state.directory
