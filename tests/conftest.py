"""Shared fixtures: real databases (SQLite, PostgreSQL, MariaDB) and app factories.

Each test that asks for ``database_url`` gets a database of its own, created
for it and dropped afterwards (SQLite: a file in ``tmp_path``). Server tests
skip when the server is unreachable, unless ``FLASK_MIGRATE_EXT_REQUIRE_SERVERS``
is set (``.ci/run`` sets it), in which case they fail.
"""

from __future__ import annotations

import logging
import os
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import Migrate
from helpers import AppFactory
from helpers import BACKENDS
from helpers import create_database
from helpers import drop_database
from helpers import MultidbFactory
from helpers import SERVER_URLS
from servers import PgBouncer
from servers import pgbouncer


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: ``sqlite``, ``postgresql``, ``mariadb``."""
    return t.cast(str, request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> t.Iterator[str]:
    """A fresh, empty database on ``backend``; dropped after the test."""
    url = create_database(backend, tmp_path)
    yield url
    drop_database(backend, url)


@pytest.fixture
def make_database(tmp_path: Path) -> t.Iterator[t.Callable[[str], str]]:
    """Create more fresh databases: ``make_database("postgresql")`` returns a URL.

    SQLite databases are files in ``tmp_path``; all are dropped after the test.
    """
    made: list[tuple[str, str]] = []

    def factory(backend: str) -> str:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'db{len(made)}.db'}"
        else:
            url = create_database(backend, tmp_path)
        made.append((backend, url))
        return url

    yield factory
    for backend, url in made:
        drop_database(backend, url)


@pytest.fixture(scope="session")
def pgbouncer_server() -> t.Iterator[PgBouncer]:
    """A PgBouncer in transaction pooling mode (a pool of 3 server
    connections per database) in front of the test PostgreSQL server, for the
    session; skips without the ``pgbouncer`` program (fails in CI)."""
    with pgbouncer(SERVER_URLS["postgresql"], pool_size=3) as bouncer:
        yield bouncer


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "migrations" is relative to the working directory, as in Flask-Migrate.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def make_app(tmp_path: Path) -> t.Iterator[AppFactory]:
    """Build an app with one ``Employee`` model whose columns the test chooses.

    Call it again with other columns to simulate editing the models. Engines
    are disposed of after the test so its database can be dropped.
    """
    made: list[tuple[Flask, SQLAlchemy]] = []

    def factory(
        url: str, columns: dict[str, t.Any] | None = None, **migrate_kwargs: t.Any
    ) -> Flask:
        app = Flask("testapp", root_path=os.fspath(tmp_path))
        app.config["SQLALCHEMY_DATABASE_URI"] = url
        db = SQLAlchemy(app)
        if columns is None:
            columns = {"name": sa.Column(sa.String(50))}
        attrs = {
            "__tablename__": "employee",
            "id": sa.Column(sa.Integer, primary_key=True),
            **columns,
        }
        type("Employee", (db.Model,), attrs)
        Migrate(app, db, **migrate_kwargs)
        made.append((app, db))
        return app

    yield factory
    for app, db in made:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def new_app(tmp_path: Path) -> t.Iterator[t.Callable[[], Flask]]:
    """Make bare apps rooted in ``tmp_path``; the databases given to their
    extension as ``SQLAlchemyDatabases`` or through Flask-SQLAlchemy-Lite are
    disposed of after the test."""
    from flask_migrate_ext import SQLAlchemyDatabases

    made: list[Flask] = []

    def factory() -> Flask:
        app = Flask("plain", root_path=os.fspath(tmp_path))
        made.append(app)
        return app

    yield factory
    for app in made:
        with app.app_context():
            state = app.extensions.get("migrate")
            if state is not None and isinstance(state.db, SQLAlchemyDatabases):
                state.db.dispose()
            lite = app.extensions.get("sqlalchemy")
            engines = getattr(lite, "engines", None)
            if isinstance(engines, dict):
                for engine in engines.values():
                    engine.dispose()


@pytest.fixture
def restore_logging() -> t.Iterator[None]:
    """Undo what Flask-Migrate's env.py does to logging (``fileConfig``
    disables every existing logger and replaces the root handlers)."""
    manager = logging.Logger.manager
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    saved = {
        name: (logger.disabled, logger.level, list(logger.handlers), logger.propagate)
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for name, logger in list(manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        if name in saved:
            disabled, level, handlers, propagate = saved[name]
        else:
            disabled, level, handlers, propagate = False, logging.NOTSET, [], True
        logger.disabled = disabled
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@pytest.fixture
def make_multidb_app(tmp_path: Path) -> t.Iterator[MultidbFactory]:
    """An app with ``Group`` on the default database and ``User`` on ``users``.

    ``binds`` maps ``""`` to the default database's URL and every other name
    to a bind's URL.
    """
    made: list[tuple[Flask, SQLAlchemy]] = []

    def factory(
        binds: dict[str, str], user_email: bool = False, user_model: bool = True
    ) -> Flask:
        app = Flask("multidb", root_path=os.fspath(tmp_path))
        app.config["SQLALCHEMY_DATABASE_URI"] = binds[""]
        app.config["SQLALCHEMY_BINDS"] = {k: v for k, v in binds.items() if k}
        db = SQLAlchemy(app)

        class Group(db.Model):  # type: ignore[name-defined,misc]
            id = sa.Column(sa.Integer, primary_key=True)

        if user_model:
            attrs: dict[str, t.Any] = {
                "__bind_key__": "users",
                "__tablename__": "user",
                "id": sa.Column(sa.Integer, primary_key=True),
            }
            if user_email:
                attrs["email"] = sa.Column(sa.String(80))
            type("User", (db.Model,), attrs)
        Migrate(app, db)
        made.append((app, db))
        return app

    yield factory
    for app, db in made:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
