"""Losing the migration lock mid-run, and keeping it: real servers, real
processes, connections killed or timed out by the server."""

from __future__ import annotations

import json
import time
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask_migrate_ext import ExitCode
from helpers import flask_process
from helpers import flask_with_url as flask
from helpers import ledger_rows
from helpers import table_names
from helpers import version_rows
from helpers import write_revision

APP = """
import json, os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["TEST_DATABASE_URL"]
app.config["SQLALCHEMY_ENGINE_OPTIONS"] = json.loads(
    os.environ.get("TEST_ENGINE_OPTIONS", "{}")
)
app.config["MIGRATE_TRANSACTION_MODE"] = os.environ.get("TEST_TRANSACTION_MODE")
db = SQLAlchemy(app)
Migrate(app, db)
"""

SLEEP = {"postgresql": "SELECT pg_sleep({})", "mariadb": "SELECT SLEEP({})"}


@pytest.fixture(params=["postgresql", "mariadb"])
def backend(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.param)


def _project(tmp_path: Path, url: str, backend: str, sleeps: list[float]) -> Path:
    """An app with one revision per sleep: ``rN`` creates table ``tN``, then
    sleeps on the server."""
    (tmp_path / "app.py").write_text(APP)
    done = flask(tmp_path, url, "db", "init")
    assert done.returncode == 0, done.stderr
    down = None
    for n, seconds in enumerate(sleeps, 1):
        write_revision(
            tmp_path / "migrations" / "versions",
            f"r{n}",
            down,
            f"""
            op.create_table("t{n}", sa.Column("n", sa.Integer))
            op.execute("{SLEEP[backend].format(seconds)}")
            """,
            f'op.drop_table("t{n}")',
        )
        down = f"r{n}"
    return tmp_path


def _lock_holder(admin: sa.Connection, backend: str, database: str) -> int | None:
    """The connection (PostgreSQL pid, MariaDB id) holding the migration lock."""
    if backend == "postgresql":
        query = (
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = :db"
        )
        return admin.execute(sa.text(query), {"db": database}).scalar()
    name = f"fmx:{database}:alembic_version"
    return admin.execute(sa.text("SELECT IS_USED_LOCK(:n)"), {"n": name}).scalar()


def _sleeping(admin: sa.Connection, backend: str, database: str) -> bool:
    if backend == "postgresql":
        query = (
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = :db"
            " AND query LIKE 'SELECT pg_sleep%' AND state = 'active'"
        )
    else:
        query = (
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
            " WHERE DB = :db AND INFO LIKE 'SELECT SLEEP%'"
        )
    return bool(admin.execute(sa.text(query), {"db": database}).scalar())


def _ledger(url: str) -> list[tuple[str, str, str | None]]:
    return ledger_rows(url, "revision, status, error")


def _kill_lock_connection_during_r1(
    project: Path, url: str, backend: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run ``upgrade``; kill the lock's connection while r1 sleeps."""
    database = sa.make_url(url).database
    assert database is not None
    admin_engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    process = flask_process(project, url, "db", "upgrade", env=env)
    try:
        with admin_engine.connect() as admin:
            deadline = time.monotonic() + 30
            while not _sleeping(admin, backend, database):
                assert time.monotonic() < deadline, process.communicate()
                assert process.poll() is None, process.communicate()
                time.sleep(0.05)
            holder = _lock_holder(admin, backend, database)
            assert holder is not None
            if backend == "postgresql":
                admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": holder})
            else:
                admin.execute(sa.text(f"KILL {int(holder)}"))
        _, stderr = process.communicate(timeout=60)
    finally:
        admin_engine.dispose()
    return process.returncode, stderr


def test_killed_lock_connection_stops_the_run(
    tmp_path: Path, database_url: str, backend: str
) -> None:
    """The lock connection is killed while r1 of 3 runs: r1 finishes, r2 and
    r3 are not applied, the run exits 10 and the ledger says why."""
    project = _project(tmp_path, database_url, backend, [2, 0, 0])
    code, stderr = _kill_lock_connection_during_r1(project, database_url, backend)
    assert code == ExitCode.LOCK_LOST, stderr
    assert "Error: Stopped before the upgrade of r2. Lost the migration lock" in stderr
    assert "flask db current" in stderr
    assert "Traceback" not in stderr
    assert version_rows(database_url) == ["r1"]
    assert table_names(database_url) == {"alembic_version", "t1"}
    ledger = _ledger(database_url)
    assert [row[:2] for row in ledger] == [("r1", "applied"), ("r2", "interrupted")]
    assert "Lost the migration lock" in (ledger[1][2] or "")
    # Nothing is left stuck: the next run applies the rest.
    done = flask(project, database_url, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert version_rows(database_url) == ["r3"]


def test_lock_lost_in_one_transaction_for_all_revisions(
    tmp_path: Path, make_database: t.Callable[[str], str]
) -> None:
    """All revisions in one transaction, on a fresh database: the ledger
    table itself is still uncommitted when the loss is found; recording it
    waits for the rollback instead of for that transaction (a hang)."""
    url = make_database("postgresql")
    project = _project(tmp_path, url, "postgresql", [2, 0])
    env = {"TEST_TRANSACTION_MODE": "all"}
    code, stderr = _kill_lock_connection_during_r1(project, url, "postgresql", env)
    assert code == ExitCode.LOCK_LOST, stderr
    assert version_rows(url) == []  # r1 rolled back with the rest
    assert [row[:2] for row in _ledger(url)] == [("r2", "interrupted")]


IDLE_TIMEOUT = {
    # Set per session by the app's engine: the servers' global settings stay.
    "postgresql": {"connect_args": {"options": "-c idle_session_timeout=2000"}},
    "mariadb": {"connect_args": {"init_command": "SET SESSION wait_timeout=2"}},
}


def test_heartbeat_outlives_idle_session_timeout(
    tmp_path: Path, database_url: str, backend: str
) -> None:
    """The server closes sessions idle for 2 s; r1 runs 5 s while the lock
    connection has nothing to do: the heartbeat keeps it, the run succeeds."""
    project = _project(tmp_path, database_url, backend, [5, 0])
    options = {"pool_pre_ping": True, **IDLE_TIMEOUT[backend]}
    env = {"TEST_ENGINE_OPTIONS": json.dumps(options)}
    done = flask(project, database_url, "db", "upgrade", env=env)
    assert done.returncode == 0, done.stderr
    assert version_rows(database_url) == ["r2"]
    assert [row[:2] for row in _ledger(database_url)] == [
        ("r1", "applied"),
        ("r2", "applied"),
    ]
