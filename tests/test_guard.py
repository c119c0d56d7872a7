"""``MIGRATE_GUARD``: the app checks once, on its first connection to each
database, that no migration is pending; ``"warn"`` logs, ``"error"``
refuses the connection until ``flask db upgrade`` has run."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import ExitCode
from flask_migrate_ext import Migrate
from flask_migrate_ext import PendingMigrationsError
from flask_migrate_ext.errors import SettingsError
from helpers import create_database
from helpers import drop_database
from helpers import invoke
from helpers import ok
from helpers import write_revision


def add(versions: Path, revision: str, down: str | None) -> None:
    write_revision(
        versions,
        revision,
        down,
        f'op.create_table("t_{revision}", sa.Column("n", sa.Integer))',
        f'op.drop_table("t_{revision}")',
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[str]:
    url = create_database(request.param, tmp_path)
    yield url
    drop_database(request.param, url)


@pytest.fixture
def make_guarded(tmp_path: Path) -> t.Iterator[t.Callable[..., Flask]]:
    """An app whose ``/`` runs one query; migrations r1, r2 written, none applied."""
    made: list[tuple[Flask, SQLAlchemy]] = []

    def factory(url: str, mode: str, init: bool = True) -> Flask:
        app = Flask("guarded", root_path=os.fspath(tmp_path))
        app.config.update(SQLALCHEMY_DATABASE_URI=url, MIGRATE_GUARD=mode, TESTING=True)
        db = SQLAlchemy(app)
        Migrate(app, db)

        @app.get("/")
        def index() -> str:
            return str(db.session.execute(sa.text("SELECT 1")).scalar())

        # Its own handler: env.py's logging setup replaces the root's (caplog's).
        app.logger.addHandler(Recorder())
        made.append((app, db))
        if init:
            ok(invoke(app, "init"))
            versions = tmp_path / "migrations" / "versions"
            add(versions, "r1", None)
            add(versions, "r2", "r1")
        return app

    yield factory
    for app, db in made:
        with app.app_context():
            db.engine.dispose()
        for handler in [h for h in app.logger.handlers if isinstance(h, Recorder)]:
            app.logger.removeHandler(handler)


def new_connections(app: Flask) -> None:
    """Empty the pool: the next query opens a new connection."""
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def guard_warnings(app: Flask) -> list[str]:
    recorder = [h for h in app.logger.handlers if isinstance(h, Recorder)][-1]
    return [m for m in recorder.messages if "MIGRATE_GUARD" in m]


def test_warn_logs_once(make_guarded: t.Callable[..., Flask], url: str) -> None:
    app = make_guarded(url, "warn")
    client = app.test_client()
    assert client.get("/").text == "1"
    assert guard_warnings(app) == [
        "MIGRATE_GUARD: The database is behind: 2 revisions pending (r1, r2)."
        " Run 'flask db upgrade'."
    ]
    new_connections(app)
    assert client.get("/").text == "1"
    assert len(guard_warnings(app)) == 1  # checked once, never per request


def test_error_refuses_until_upgraded(
    make_guarded: t.Callable[..., Flask], url: str, tmp_path: Path
) -> None:
    app = make_guarded(url, "error")
    client = app.test_client()
    with pytest.raises(PendingMigrationsError) as caught:
        client.get("/")
    assert "2 revisions pending (r1, r2)" in str(caught.value)
    assert "flask db upgrade" in str(caught.value)
    assert caught.value.exit_code == ExitCode.NOT_UP_TO_DATE
    assert caught.value.result.state == "pending"
    with pytest.raises(PendingMigrationsError):  # checked again
        client.get("/")
    # The commands use the same engine; the guard stays out of their way.
    ok(invoke(app, "upgrade", "r1"))
    new_connections(app)
    with pytest.raises(PendingMigrationsError, match=r"1 revision pending \(r2\)"):
        client.get("/")
    ok(invoke(app, "upgrade"))
    new_connections(app)
    assert client.get("/").text == "1"
    # Up to date once: never checked again.
    add(tmp_path / "migrations" / "versions", "r3", "r2")
    new_connections(app)
    assert client.get("/").text == "1"


def test_error_mode_lets_a_newer_database_through(
    make_guarded: t.Callable[..., Flask], url: str
) -> None:
    """A database ahead of the code (old instances during a rolling deploy)
    is worth a warning, not an outage."""
    app = make_guarded(url, "error")
    ok(invoke(app, "upgrade"))
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'r9'"))
    engine.dispose()
    new_connections(app)
    assert app.test_client().get("/").text == "1"
    [warning] = guard_warnings(app)
    assert "revision 'r9', which no script defines" in warning


def test_a_failed_check_lets_the_connection_through(
    make_guarded: t.Callable[..., Flask],
    sqlite_url: str,
) -> None:
    app = make_guarded(sqlite_url, "error")
    app.config["MIGRATE_LOG_TABLE"] = "someone_elses"
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE someone_elses (x INTEGER)"))
    engine.dispose()
    assert app.test_client().get("/").text == "1"
    [warning] = guard_warnings(app)
    assert "could not check the database" in warning
    assert "is not flask-migrate-ext's ledger" in warning


def test_unreachable_database_gives_the_normal_error(
    make_guarded: t.Callable[..., Flask],
) -> None:
    app = make_guarded("postgresql+psycopg://nobody@127.0.0.1:1/nothing", "error")
    with pytest.raises(sa.exc.OperationalError):
        app.test_client().get("/")


def test_off_registers_nothing(
    make_guarded: t.Callable[..., Flask], sqlite_url: str
) -> None:
    def listeners(app: Flask) -> int:
        with app.app_context():
            pool = app.extensions["sqlalchemy"].engine.pool
            return len(list(pool.dispatch.connect))

    assert listeners(make_guarded(sqlite_url, "warn", init=False)) == (
        listeners(make_guarded(sqlite_url, "off", init=False)) + 1
    )


def test_bad_value(tmp_path: Path, sqlite_url: str) -> None:
    app = Flask("guarded", root_path=os.fspath(tmp_path))
    app.config.update(SQLALCHEMY_DATABASE_URI=sqlite_url, MIGRATE_GUARD="on")
    db = SQLAlchemy(app)
    with pytest.raises(SettingsError, match="MIGRATE_GUARD must be 'off', 'warn'"):
        Migrate(app, db)
    with app.app_context():
        db.engine.dispose()


def test_engines_needed_at_init_app(tmp_path: Path, sqlite_url: str) -> None:
    app = Flask("guarded", root_path=os.fspath(tmp_path))
    app.config.update(SQLALCHEMY_DATABASE_URI=sqlite_url, MIGRATE_GUARD="warn")
    db = SQLAlchemy()
    with pytest.raises(SettingsError, match=r"call db.init_app\(app\) before"):
        Migrate(app, db)


APP = """\
import os, sys

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["GUARD_URL"]
app.config["MIGRATE_GUARD"] = os.environ.get("GUARD_MODE", "error")
db = SQLAlchemy(app)
migrate = Migrate(app, db)
"""

QUERY = """\
import sys
import sqlalchemy as sa
import guarded_app
print("alembic after import:", "alembic" in sys.modules)
with guarded_app.app.app_context():
    try:
        print("answer:", guarded_app.db.session.execute(sa.text("SELECT 1")).scalar())
    except Exception as e:
        print("refused:", type(e).__name__, e)
print("alembic after query:", "alembic" in sys.modules)
"""


def test_in_a_process_of_its_own(url: str, tmp_path: Path) -> None:
    """The app imported as a worker would: no Alembic at import, nor for the
    check while the revision cache vouches; refused until upgraded."""
    (tmp_path / "guarded_app.py").write_text(APP)
    env = {
        **os.environ,
        "GUARD_URL": url,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    flask = ["-m", "flask", "--app", "guarded_app", "db"]
    ok(run(*flask, "init"))
    add(tmp_path / "migrations" / "versions", "r1", None)
    ok(run(*flask, "heads"))  # the revision cache
    done = ok(run("-c", QUERY))
    assert done.stdout.splitlines() == [
        "alembic after import: False",
        "refused: PendingMigrationsError The database is behind: 1 revision pending"
        " (r1). Run 'flask db upgrade'. MIGRATE_GUARD = 'error' refuses to use the"
        " database until then.",
        "alembic after query: False",
    ]
    ok(run(*flask, "upgrade"))  # the guard is on in this process too
    assert ok(run("-c", QUERY)).stdout.splitlines()[1] == "answer: 1"
    env["GUARD_MODE"] = "warn"
    add(tmp_path / "migrations" / "versions", "r2", "r1")
    done = ok(run("-c", QUERY))
    assert done.stdout.splitlines()[1] == "answer: 1"
    assert "1 revision pending (r2)" in done.stderr
