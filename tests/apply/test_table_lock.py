"""``MIGRATE_LOCK = "table"``: a lease that its holder renews, taken over
once it expired; old lock tables upgraded; SQLite waiters that wait."""

from __future__ import annotations

import datetime
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask_migrate_ext import ExitCode
from flask_migrate_ext import LockLostError
from flask_migrate_ext.apply import table_lock
from flask_migrate_ext.apply.lock import LockTarget
from flask_migrate_ext.apply.lock import migration_lock
from flask_migrate_ext.databases.urls import masked
from helpers import flask_process
from helpers import flask_with_url as flask
from helpers import LOCK_APP as APP
from helpers import version_rows
from helpers import write_revision

TABLE = {"TEST_MIGRATE_LOCK": "table"}
LOCK_TABLE = "flask_migrate_ext_lock"


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Path:
    """An app using the table lock, with r1 (creates ``t1``) and r2 (quick)."""
    (tmp_path / "app.py").write_text(APP)
    done = flask(tmp_path, database_url, "db", "init")
    assert done.returncode == 0, done.stderr
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        'op.create_table("t1", sa.Column("n", sa.Integer))',
        'op.drop_table("t1")',
    )
    write_revision(versions, "r2", "r1", "pass", "pass")
    return tmp_path


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _lock_rows(url: str) -> list[t.Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(table_lock.lock_table)))
    finally:
        engine.dispose()


def _insert_lock_row(
    url: str, holder: str, expires_at: datetime.datetime | None
) -> None:
    """A row as a process that is gone would have left it (an earlier
    version's, without a lease, when ``expires_at`` is ``None``)."""
    values = {
        "name": "alembic_version",
        "holder": holder,
        "acquired_at": _utcnow() - datetime.timedelta(hours=2),
    }
    if expires_at is not None:
        values["expires_at"] = expires_at
    table = sa.table(LOCK_TABLE, *map(sa.column, values))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(table).values(values))
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_expired_lease_is_taken_over(project: Path, database_url: str) -> None:
    done = flask(project, database_url, "db", "upgrade", "r1", env=TABLE)
    assert done.returncode == 0, done.stderr
    gone = "pid 4242 on gone-host [deadbeef]"
    _insert_lock_row(database_url, gone, _utcnow() - datetime.timedelta(hours=1))
    done = flask(project, database_url, "db", "upgrade", env=TABLE)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Took over the migration lock") == 1
    assert f"from {gone} (its lease expired at " in done.stderr
    assert version_rows(database_url) == ["r2"]
    assert _lock_rows(database_url) == []  # released after the run


HOLD_AND_DIE = """
import os, signal, sys
import sqlalchemy as sa
from flask_migrate_ext.apply import lock, table_lock

table_lock.TABLE_LEASE = 1.5
engine = sa.create_engine(sys.argv[1])
with lock.migration_lock([lock.LockTarget("", engine)], 0, "table"):
    print("held", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("backend", ["postgresql"])
def test_killed_holder_is_taken_over_when_its_lease_ends(
    project: Path, database_url: str
) -> None:
    holder = subprocess.run(
        [sys.executable, "-c", HOLD_AND_DIE, database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert holder.returncode == -9, holder.stderr
    assert holder.stdout == "held\n"
    (row,) = _lock_rows(database_url)  # the dead process's row stayed
    started = time.monotonic()
    done = flask(
        project, database_url, "db", "upgrade", "--lock-timeout", "30", env=TABLE
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 20
    label = masked(sa.make_url(database_url))
    assert f"Took over the migration lock on {label}" in done.stderr
    assert f"from {row.holder} (its lease expired at" in done.stderr
    assert version_rows(database_url) == ["r2"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_live_holder_keeps_its_lease(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder's lease (0.6 s) is far shorter than the waiter's wait: the
    heartbeat renews it, so the waiter never takes over and times out."""
    monkeypatch.setattr(table_lock, "TABLE_LEASE", 0.6)
    engine = sa.create_engine(database_url)
    try:
        with migration_lock([LockTarget("", engine)], 0, "table") as handle:
            done = flask(
                project, database_url, "db", "upgrade", "--lock-timeout", "3", env=TABLE
            )
            handle.check()  # still ours
    finally:
        engine.dispose()
    assert done.returncode == ExitCode.LOCK_TIMEOUT, done.stderr
    assert "Waiting for the migration lock" in done.stderr
    assert "Took over" not in done.stderr
    assert "Gave up after 3 s" in done.stderr
    assert version_rows(database_url) == []


@pytest.mark.parametrize("backend", ["postgresql"])
def test_lost_table_lock_is_told_by_check(project: Path, database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with migration_lock([LockTarget("", engine)], 0, "table") as handle:
            with engine.begin() as conn:
                conn.execute(sa.text(f"UPDATE {LOCK_TABLE} SET holder = 'someone'"))
            with pytest.raises(LockLostError, match="now names someone"):
                handle.check()
        # Releasing left the other holder's row alone.
        assert [row.holder for row in _lock_rows(database_url)] == ["someone"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_lock_table_of_an_earlier_version_gets_a_lease_column(
    project: Path, database_url: str
) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            sa.Table(
                LOCK_TABLE,
                sa.MetaData(),
                sa.Column("name", sa.String(191), primary_key=True),
                sa.Column("holder", sa.String(255), nullable=False),
                sa.Column("acquired_at", sa.DateTime, nullable=False),
            ).create(conn)
    finally:
        engine.dispose()
    done = flask(project, database_url, "db", "upgrade", "r1", env=TABLE)
    assert done.returncode == 0, done.stderr
    engine = sa.create_engine(database_url)
    try:
        columns = [c["name"] for c in sa.inspect(engine).get_columns(LOCK_TABLE)]
    finally:
        engine.dispose()
    assert columns == ["name", "holder", "acquired_at", "expires_at"]
    # A row of an earlier version has no lease: never taken over.
    _insert_lock_row(database_url, "pid 7 on old-host", None)
    done = flask(
        project, database_url, "db", "upgrade", "--lock-timeout", "1", env=TABLE
    )
    assert done.returncode == ExitCode.LOCK_TIMEOUT, done.stderr
    assert "an earlier version's lock, without a lease" in done.stderr
    assert version_rows(database_url) == ["r1"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_waiter_waits_while_a_revision_writes(
    project: Path, database_url: str
) -> None:
    """The holder's revision keeps SQLite's write lock for seconds: the
    waiter waits and times out (exit 5), never "database is locked"."""
    write_revision(
        project / "migrations" / "versions",
        "r2",
        "r1",
        """
        op.execute("INSERT INTO t1 (n) VALUES (1)")
        time.sleep(6)
        """,
        "pass",
    )
    holder = flask_process(project, database_url, "db", "upgrade", env=TABLE)
    try:
        deadline = time.monotonic() + 30
        while version_rows(database_url) != ["r1"]:  # r2 is running
            assert time.monotonic() < deadline and holder.poll() is None
            time.sleep(0.05)
        time.sleep(0.3)
        started = time.monotonic()
        done = flask(
            project, database_url, "db", "upgrade", "--lock-timeout", "2", env=TABLE
        )
        waited = time.monotonic() - started
    finally:
        _, holder_stderr = holder.communicate(timeout=60)
    assert done.returncode == ExitCode.LOCK_TIMEOUT, done.stderr
    assert "Waiting for the migration lock" in done.stderr
    assert "database is locked" not in done.stderr
    assert 2 <= waited < 2 + 5  # the time to start a process aside
    assert holder.returncode == 0, holder_stderr
    assert version_rows(database_url) == ["r2"]


def test_uses_database_clock(tmp_path: Path) -> None:
    """Leases compare with the database's clock in UTC, not the client's."""
    url = f"sqlite:///{tmp_path / 'clock.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            now, later = conn.execute(
                sa.select(
                    table_lock._utc_now("sqlite"), table_lock._utc_now("sqlite", 30)
                )
            ).one()
    finally:
        engine.dispose()
    parsed = datetime.datetime.fromisoformat(now)
    assert abs((parsed - _utcnow()).total_seconds()) < 5
    assert datetime.datetime.fromisoformat(later) - parsed == datetime.timedelta(
        seconds=30
    )
