"""``MIGRATE_GUARD``: an app that notices, once, that its database is behind.

``init_app`` arms one listener per migrated database on SQLAlchemy's pool
``connect`` event, which fires when the pool opens a new DBAPI connection,
not when a request checks one out. The first such connection is checked on
the spot, on that same connection: two queries (version table, ledger),
the revisions from the revision cache (Alembic only when the cache cannot
vouch for every file). Then:

- ``"warn"``: one warning through ``app.logger`` naming the pending
  revisions, and the listener stands down;
- ``"error"``: the connection attempt raises
  :class:`~flask_migrate_ext.errors.PendingMigrationsError`, and the next
  new connection is checked again, until the database is up to date.

A database at a revision no script defines (the code is older than the
database: a rolled-back deploy, or old instances during a rolling deploy)
gets a warning, never an error. ``flask db`` commands and the API functions
connect with the guard off; a check that cannot be made is logged and lets
the connection through, so the app's own error handling sees the database's
real errors.

Importing this module does not import Alembic nor the code the check runs.
"""

from __future__ import annotations

import threading
import typing as t
import weakref

import sqlalchemy as sa
from flask import current_app
from flask import Flask
from flask import has_app_context

from ..errors import PendingMigrationsError
from ..settings import GuardMode
from ..state import run_state

if t.TYPE_CHECKING:
    from .probe import Revisions

# SQLAlchemy 2.1 closes a new connection whose connect event raised; 2.0
# leaves it open, so the guard closes it itself there.
_POOL_CLOSES_REFUSED = tuple(int(p) for p in sa.__version__.split(".")[:2]) >= (2, 1)


def arm(app: Flask, mode: GuardMode, engines: t.Mapping[str, t.Any]) -> None:
    """Listen for the first connection of each database in ``engines``
    (bind name -> the app's engine, sync or async)."""
    for name, engine in engines.items():
        sync_engine = getattr(engine, "sync_engine", engine)
        sa.event.listen(sync_engine, "connect", _Guard(app, mode, name, engine))


class _Guard:
    """The ``connect`` listener of one database."""

    def __init__(self, app: Flask, mode: GuardMode, name: str, engine: t.Any) -> None:
        self.app = weakref.ref(app)
        self.mode = mode
        self.name = name
        self.url = engine.url
        self.engine: sa.Engine = getattr(engine, "sync_engine", engine)
        #: Checked and content (or told once): nothing left to do.
        self.done = False
        self.lock = threading.Lock()

    def __call__(self, dbapi_connection: t.Any, record: t.Any) -> None:
        if self.done:
            return
        run = run_state()
        if run.cli or run.active:
            return  # a flask db command or an API function is connecting
        app = self.app()
        if app is None:
            self.done = True
            return
        with self.lock:
            if self.done:
                return
            if has_app_context() and current_app._get_current_object() is app:  # type: ignore[attr-defined]
                error = self.check(app, dbapi_connection, record)
            else:
                with app.app_context():
                    error = self.check(app, dbapi_connection, record)
        if error is not None:
            if not _POOL_CLOSES_REFUSED:
                dbapi_connection.close()
            raise error

    def check(
        self, app: Flask, dbapi_connection: t.Any, record: t.Any
    ) -> PendingMigrationsError | None:
        """Judge the database on the connection being opened; the error to
        raise, if the app must not use it."""
        from ..state import get_state
        from .probe import database_standing
        from .standing import StatusResult

        state = get_state(app)
        where = f"database {self.name!r}" if self.name else "the database"
        try:
            scripts, multidb = _revisions()
            if self.name and not multidb:
                self.done = True  # env.py migrates the default database only
                return None
            connection = _adhoc_connection(self.engine, dbapi_connection, record)
            found = database_standing(
                state,
                connection,
                lambda: self.engine.dialect.do_rollback(connection.connection),
                self.name,
                self.url,
                scripts,
            )
        except Exception as e:  # the check must never hide the app's own errors
            app.logger.warning(
                "MIGRATE_GUARD: could not check %s for pending migrations: %s",
                where,
                e,
            )
            self.done = self.mode == "warn"
            return None
        result = StatusResult((found,))
        if found.state == "up-to-date":
            self.done = True
            return None
        if found.state == "unknown-revision":
            self.done = True
            for finding in found.findings:
                if finding.kind == "unknown-revision":
                    app.logger.warning("MIGRATE_GUARD: %s", finding.message)
            return None
        error = result.error(state.command)
        assert error is not None
        if self.mode == "warn":
            self.done = True
            app.logger.warning("MIGRATE_GUARD: %s", error)
            return None
        return PendingMigrationsError(
            f"{error} MIGRATE_GUARD = 'error' refuses to use {where} until then.",
            result,
        )


def _revisions() -> tuple[Revisions, bool]:
    """The scripts' revisions and heads, and whether env.py migrates every
    database (a multi-database template) or the default one only."""
    from ..scripts.envfile import guess_template
    from ..scripts.envfile import identify
    from ..scripts.envfile import read_env_py
    from ..scripts.quick import history_graph
    from ..state import get_state
    from ..state import resolve_directory
    from .probe import Revisions

    graph = history_graph(None)
    if graph is not None:
        template = graph.template
        scripts = Revisions(graph.revisions, graph.heads)
    else:
        scripts = _from_alembic()
        template = None
    if template is None:
        text = read_env_py(resolve_directory(get_state(), None)) or ""
        origin = identify(text)
        template = origin.template if origin is not None else guess_template(text)
    return scripts, template.endswith("-multidb")


def _from_alembic() -> Revisions:
    """The revisions through Alembic, when the cache cannot vouch (which
    also brings the cache up to date for the next check)."""
    from ..scripts.config import build_config
    from ..scripts.graph import scripts
    from ..scripts.revisions import from_script
    from ..state import get_state
    from .probe import Revisions

    script = scripts(build_config(get_state()))
    revisions = {sc.revision: from_script(sc) for sc in script.walk_revisions()}
    return Revisions(revisions, tuple(script.get_heads()))


def _adhoc_connection(
    engine: sa.Engine, dbapi_connection: t.Any, record: t.Any
) -> sa.Connection:
    """A :class:`~sqlalchemy.Connection` on a DBAPI connection the pool is
    still opening, as SQLAlchemy builds one for its own first-connect checks
    (no events, no reconnecting, no transaction of its own)."""
    from sqlalchemy.pool.base import _AdhocProxiedConnection

    return sa.Connection(
        engine,
        connection=_AdhocProxiedConnection(dbapi_connection, record),
        _has_events=False,
        _allow_revalidate=False,
        _allow_autobegin=False,
    )
