"""Progress of upgrade and downgrade without a terminal (one line per finished
revision), ``-q``, ``--sql``, and the events the Python API gives a listener.

The line updated in place on a terminal is in ``e2e/test_progress_terminal.py``.
"""

from __future__ import annotations

import os
import pickle
import re
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import api
from flask_migrate_ext import Migrate
from flask_migrate_ext import MigrateError
from flask_migrate_ext import progress
from flask_migrate_ext.cli.progress_display import revision_line
from helpers import invoke
from helpers import ok
from helpers import write_revision

if t.TYPE_CHECKING:
    from helpers import AppFactory
    from helpers import MultidbFactory

pytestmark = pytest.mark.usefixtures("restore_logging")

#: ``[2/3] r1 -> r2 second (0.31 s)``
LINE = re.compile(r"^\[(\d+)/(\d+)\] (.*) \((\d+\.\d\d) s\)$")


def write_history(versions: Path, second: str = "time.sleep(0.3)") -> None:
    write_revision(
        versions,
        "r1",
        None,
        'op.create_table("item", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("item")',
        message="first",
    )
    write_revision(versions, "r2", "r1", second, "pass", message="second")
    write_revision(
        versions,
        "r3",
        "r2",
        'op.add_column("item", sa.Column("name", sa.String(20)))',
        'op.drop_column("item", "name")',
        message="third",
    )


@pytest.fixture
def app(make_app: AppFactory, sqlite_url: str, tmp_path: Path) -> Flask:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    write_history(tmp_path / "migrations" / "versions")
    return app


def progress_lines(text: str) -> list[tuple[int, int, str, float]]:
    found = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match:
            index, total, middle, seconds = match.groups()
            found.append((int(index), int(total), middle, float(seconds)))
    return found


def test_one_line_per_revision_after_alembics_own(app: Flask) -> None:
    result = ok(invoke(app, "upgrade"))
    lines = progress_lines(result.stderr)
    assert [line[:3] for line in lines] == [
        (1, 3, "base -> r1 first"),
        (2, 3, "r1 -> r2 second"),
        (3, 3, "r2 -> r3 third"),
    ]
    assert lines[1][3] >= 0.3  # the revision that sleeps
    assert progress_lines(result.stdout) == []
    # Alembic's line is kept, as Flask-Migrate prints it: it says a revision
    # starts; ours that it finished.
    stderr = result.stderr.splitlines()
    running = stderr.index(
        "INFO  [alembic.runtime.migration] Running upgrade r1 -> r2, second"
    )
    assert stderr[running + 1].startswith("[2/3] r1 -> r2 second (")

    result = ok(invoke(app, "downgrade", "r1"))
    assert [line[:3] for line in progress_lines(result.stderr)] == [
        (1, 2, "r3 -> r2 third"),
        (2, 2, "r2 -> r1 second"),
    ]


def test_quiet_silences_progress_only(app: Flask) -> None:
    for args in (["upgrade", "-q"], ["downgrade", "--quiet", "base"]):
        result = ok(invoke(app, *args))
        assert progress_lines(result.output) == []
        assert "INFO  [alembic.runtime.migration] Running " in result.stderr


def test_sql_output_is_the_same_with_and_without_progress(app: Flask) -> None:
    shown = ok(invoke(app, "upgrade", "--sql"))
    quiet = ok(invoke(app, "upgrade", "--sql", "-q"))
    assert "CREATE TABLE item" in shown.stdout
    assert shown.stdout_bytes == quiet.stdout_bytes
    assert progress_lines(shown.output) == []
    shown = ok(invoke(app, "downgrade", "--sql", "r3:base"))
    quiet = ok(invoke(app, "downgrade", "--sql", "-q", "r3:base"))
    assert "DROP TABLE item" in shown.stdout
    assert shown.stdout_bytes == quiet.stdout_bytes


def test_nothing_to_do_prints_no_progress(app: Flask) -> None:
    ok(invoke(app, "upgrade"))
    result = ok(invoke(app, "upgrade"))
    assert progress_lines(result.output) == []
    assert "Nothing to upgrade: the database is at r3." in result.stderr


def test_a_failed_revision_has_no_line(make_app: AppFactory, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    versions = Path("migrations", "versions")
    write_history(versions, second='raise RuntimeError("r2 fails")')
    result = invoke(app, "upgrade")
    assert result.exit_code != 0
    assert [line[:3] for line in progress_lines(result.stderr)] == [
        (1, 3, "base -> r1 first")
    ]
    assert "r2 fails" in result.stderr


# -- the Python API ------------------------------------------------------------


def test_api_is_silent_unless_given_a_listener(
    app: Flask, capfd: pytest.CaptureFixture[str]
) -> None:
    with app.app_context():
        api.upgrade(revision="r1")
        assert progress_lines(capfd.readouterr().err) == []
        events: list[progress.ProgressEvent] = []
        api.upgrade(progress=events.append)
    assert [type(event).__name__ for event in events] == [
        "RunStarted",
        *["RevisionStarted", "RevisionFinished"] * 2,
        "RunFinished",
    ]
    assert events[0] == progress.RunStarted("upgrade", "default", False, 2)
    started, finished = events[1], events[2]
    assert isinstance(started, progress.RevisionStarted)
    assert (started.index, started.total, started.revision) == (1, 2, "r2")
    assert (started.source, started.destination) == (("r1",), ("r2",))
    assert started.message == "second"
    assert isinstance(finished, progress.RevisionFinished)
    assert finished.seconds >= 0.3
    end = events[-1]
    assert isinstance(end, progress.RunFinished)
    assert (end.done, end.total, end.completed) == (2, 2, True)
    # Plain data, so another process can send them.
    assert [pickle.loads(pickle.dumps(event)) for event in events] == events


def test_listening_installs_a_listener_for_every_run(app: Flask) -> None:
    events: list[progress.ProgressEvent] = []
    with app.app_context(), progress.listening(events.append):
        api.upgrade()
        with progress.listening(None):
            api.downgrade(revision="r2")
        api.downgrade(revision="base")
    runs = [event for event in events if isinstance(event, progress.RunStarted)]
    assert [(run.action, run.total) for run in runs] == [
        ("upgrade", 3),
        ("downgrade", 2),
    ]


def test_sql_mode_emits_nothing(app: Flask, capfd: pytest.CaptureFixture[str]) -> None:
    events: list[progress.ProgressEvent] = []
    with app.app_context():
        api.upgrade(sql=True, progress=events.append)
    assert events == []
    assert "CREATE TABLE item" in capfd.readouterr().out


def test_a_failed_run_finishes_uncompleted(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    write_history(Path("migrations", "versions"), second='raise RuntimeError("no")')
    events: list[progress.ProgressEvent] = []
    with app.app_context(), pytest.raises(MigrateError):
        api.upgrade(progress=events.append)
    assert [type(event).__name__ for event in events] == [
        "RunStarted",
        "RevisionStarted",
        "RevisionFinished",
        "RevisionStarted",
        "RunFinished",
    ]
    end = events[-1]
    assert isinstance(end, progress.RunFinished)
    assert (end.done, end.total, end.completed) == (1, 3, False)


def test_a_listener_error_stops_the_run(app: Flask, sqlite_url: str) -> None:
    def refuse(event: progress.ProgressEvent) -> None:
        if isinstance(event, progress.RevisionStarted) and event.index == 2:
            raise ValueError("listener says no")

    with app.app_context(), pytest.raises(Exception, match="listener says no"):
        api.upgrade(progress=refuse)
    engine = sa.create_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            version = connection.execute(sa.text("SELECT * FROM alembic_version"))
            assert version.scalars().all() == ["r1"]
    finally:
        engine.dispose()


# -- several databases, tenant schemas -----------------------------------------


def test_several_databases_are_named(
    make_multidb_app: MultidbFactory, make_database: t.Callable[[str], str]
) -> None:
    app = make_multidb_app(
        {"": make_database("sqlite"), "users": make_database("sqlite")}
    )
    ok(invoke(app, "init", "--multidb"))
    ok(invoke(app, "migrate", "-m", "initial"))
    result = ok(invoke(app, "upgrade"))
    assert [line[2].split(":")[0] for line in progress_lines(result.stderr)] == [
        "default",
        "users",
    ]
    events: list[progress.ProgressEvent] = []
    with app.app_context():
        api.downgrade(revision="base", progress=events.append)
    runs = [event for event in events if isinstance(event, progress.RunStarted)]
    assert [(run.target, run.several, run.total) for run in runs] == [
        ("default", True, 1),
        ("users", True, 1),
    ]
    # One bind chosen: one database, not named.
    result = ok(invoke(app, "upgrade", "--bind", "users"))
    (line,) = progress_lines(result.stderr)
    assert line[2].startswith("base -> ")


@pytest.mark.server
def test_tenant_schemas_are_named(
    make_database: t.Callable[[str], str], tmp_path: Path
) -> None:
    url = make_database("postgresql")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for schema in ("tenant_a", "tenant_b"):
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    app = Flask("tenants", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    db = SQLAlchemy(app)
    Migrate(app, db)
    try:
        ok(invoke(app, "init"))
        write_history(tmp_path / "migrations" / "versions", second="pass")
        args = ["upgrade", "r2", "--schema", "tenant_a", "--schema", "tenant_b"]
        result = ok(invoke(app, *args))
        assert [line[2] for line in progress_lines(result.stderr)] == [
            "tenant_a: base -> r1 first",
            "tenant_a: r1 -> r2 second",
            "tenant_b: base -> r1 first",
            "tenant_b: r1 -> r2 second",
        ]
    finally:
        with app.app_context():
            db.engine.dispose()


# -- the line itself -----------------------------------------------------------


def test_revision_line_fits_the_terminal() -> None:
    event = progress.RevisionStarted(
        action="upgrade",
        target="users",
        several=True,
        index=12,
        total=300,
        revision="d4e5f6",
        source=("a1b2c3",),
        destination=("d4e5f6",),
        message="add the users table with a long message " * 3,
        started=0.0,
    )
    full = revision_line(event, 3.14159)
    assert full.startswith("[12/300] users: a1b2c3 -> d4e5f6 add the users table")
    assert full.endswith(" (3.14 s)")
    cut = revision_line(event, 75.0, width=60)
    assert len(cut) <= 60
    assert cut.startswith("[12/300] users: a1b2c3 -> d4e5f6 add")
    assert cut.endswith("... (1 min 15 s)")
    assert len(revision_line(event, 1.0, width=20)) == 20
    merge = revision_line(
        progress.RevisionStarted(
            "upgrade", "default", False, 1, 1, "m", ("a", "b"), ("m",), None, 0.0
        ),
        0.5,
    )
    assert merge == "[1/1] a, b -> m (0.50 s)"
