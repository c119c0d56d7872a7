"""The migration lock, with real processes racing on real databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask_migrate_ext import ExitCode
from flask_migrate_ext.apply.lock import LockTarget
from flask_migrate_ext.apply.lock import migration_lock
from helpers import flask_process
from helpers import flask_with_url as flask
from helpers import LOCK_APP as APP
from helpers import version_rows
from helpers import write_revision


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Path:
    """An app with r1 (a counter table) and r2 (sleeps 2 s, counts once)."""
    (tmp_path / "app.py").write_text(APP)
    done = flask(tmp_path, database_url, "db", "init")
    assert done.returncode == 0, done.stderr
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        'op.create_table("counter", sa.Column("n", sa.Integer))',
        'op.drop_table("counter")',
    )
    write_revision(
        versions,
        "r2",
        "r1",
        """
        time.sleep(2)
        op.execute("INSERT INTO counter (n) VALUES (1)")
        """,
        'op.execute("DELETE FROM counter")',
    )
    return tmp_path


def counter_rows(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT COUNT(*) FROM counter")).scalar())
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("backend", "lock_mode"),
    [
        ("sqlite", "on"),
        ("postgresql", "on"),
        ("mariadb", "on"),
        ("postgresql", "table"),
    ],
)
def test_concurrent_upgrades_apply_each_revision_once(
    project: Path, database_url: str, backend: str, lock_mode: str
) -> None:
    env = {"TEST_MIGRATE_LOCK": lock_mode}
    processes = [
        flask_process(project, database_url, "db", "upgrade", env=env) for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    codes = [p.returncode for p in processes]
    assert codes == [0, 0, 0, 0], outputs
    assert counter_rows(database_url) == 1
    assert version_rows(database_url) == ["r2"]
    stderr = "".join(err for _, err in outputs)
    assert stderr.count("Running upgrade r1 -> r2") == 1
    assert stderr.count("Nothing to upgrade: the database is at r2.") == 3
    assert "Waiting for the migration lock" in stderr


def _targets(url: str) -> tuple[sa.Engine, list[LockTarget]]:
    engine = sa.create_engine(url)
    return engine, [LockTarget("", engine)]


def test_lock_held_elsewhere_times_out(project: Path, database_url: str) -> None:
    engine, targets = _targets(database_url)
    try:
        with migration_lock(targets, timeout=0):
            started = time.monotonic()
            done = flask(project, database_url, "db", "upgrade", "--lock-timeout", "1")
            waited = time.monotonic() - started
    finally:
        engine.dispose()
    assert done.returncode == ExitCode.LOCK_TIMEOUT, done.stderr
    assert "Waiting for the migration lock" in done.stderr
    assert "Gave up after 1 s: the migration lock" in done.stderr
    assert "Traceback" not in done.stderr
    assert waited >= 1
    assert version_rows(database_url) == []


def test_no_lock_skips_the_lock(project: Path, database_url: str) -> None:
    engine, targets = _targets(database_url)
    try:
        with migration_lock(targets, timeout=0):
            done = flask(project, database_url, "db", "upgrade", "r1", "--no-lock")
    finally:
        engine.dispose()
    assert done.returncode == 0, done.stderr
    assert "Waiting" not in done.stderr
    assert version_rows(database_url) == ["r1"]


def test_lock_is_released_after_a_run(project: Path, database_url: str) -> None:
    assert flask(project, database_url, "db", "upgrade", "r1").returncode == 0
    engine, targets = _targets(database_url)
    try:
        with migration_lock(targets, timeout=0):
            pass  # would raise LockTimeoutError if the run had kept the lock
    finally:
        engine.dispose()


def test_autocommit_block_runs_under_the_lock(tmp_path: Path) -> None:
    from helpers import create_database
    from helpers import drop_database

    url = create_database("postgresql", tmp_path)
    try:
        (tmp_path / "app.py").write_text(APP)
        assert flask(tmp_path, url, "db", "init").returncode == 0
        write_revision(
            tmp_path / "migrations" / "versions",
            "r1",
            None,
            """
            op.create_table("t", sa.Column("n", sa.Integer))
            with op.get_context().autocommit_block():
                op.execute("CREATE INDEX CONCURRENTLY ix_t_n ON t (n)")
            """,
            'op.drop_table("t")',
        )
        done = flask(tmp_path, url, "db", "upgrade")
        assert done.returncode == 0, done.stderr
        engine = sa.create_engine(url)
        try:
            indexes = sa.inspect(engine).get_indexes("t")
        finally:
            engine.dispose()
        assert [index["name"] for index in indexes] == ["ix_t_n"]
    finally:
        drop_database("postgresql", url)


def _slow_second_revision(project: Path, backend: str) -> None:
    sleep = {
        "postgresql": "SELECT pg_sleep(30)",
        "mariadb": "SELECT SLEEP(30)",
    }[backend]
    write_revision(
        project / "migrations" / "versions",
        "r2",
        "r1",
        f"""
        op.execute("INSERT INTO counter (n) VALUES (1)")
        op.execute("{sleep}")
        """,
        'op.execute("DELETE FROM counter")',
    )


def _running_sleeps(url: str, backend: str) -> int:
    query = {
        "postgresql": "SELECT COUNT(*) FROM pg_stat_activity"
        " WHERE query LIKE 'SELECT pg_sleep(30)%' AND pid <> pg_backend_pid()",
        "mariadb": "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
        " WHERE INFO LIKE 'SELECT SLEEP(30)%'",
    }[backend]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(query)).scalar())
    finally:
        engine.dispose()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_signal_during_slow_upgrade(
    project: Path, database_url: str, backend: str, signum: int
) -> None:
    _slow_second_revision(project, backend)
    assert flask(project, database_url, "db", "upgrade", "r1").returncode == 0
    process = flask_process(project, database_url, "db", "upgrade")
    deadline = time.monotonic() + 20
    while _running_sleeps(database_url, backend) == 0:
        assert time.monotonic() < deadline, "the slow statement never started"
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=20)
    expected = ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED
    assert process.returncode == expected, stderr
    assert "Traceback" not in stderr
    time.sleep(1)
    assert _running_sleeps(database_url, backend) == 0
    assert version_rows(database_url) == ["r1"]
    engine, targets = _targets(database_url)
    try:
        with migration_lock(targets, timeout=0):
            pass
    finally:
        engine.dispose()


def test_async_engines_share_a_sync_twin_released_with_them(tmp_path: Path) -> None:
    # In a process of its own: what other tests left alive says nothing here.
    code = f"""
import gc, weakref
from sqlalchemy.ext.asyncio import create_async_engine
from flask_migrate_ext.apply import lock

engine = create_async_engine("sqlite+aiosqlite:///{tmp_path / "a.db"}")
twin = lock.control_engine(engine)
assert lock.control_engine(engine) is twin
assert twin.url.drivername == "sqlite+pysqlite"
assert twin.url.database == engine.url.database
gone = weakref.ref(engine)
del engine
gc.collect()
assert gone() is None
assert len(lock._sync_engines) == 0
print("released")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "released", done.stderr


def test_sqlite_lock_file_exists_only_while_held(
    sqlite_url: str, tmp_path: Path
) -> None:
    lock_file = tmp_path / "app.db.migrate-lock"
    engine, targets = _targets(sqlite_url)
    try:
        with migration_lock(targets, timeout=0):
            assert lock_file.read_text().startswith(f"pid {os.getpid()} on ")
        assert not lock_file.exists()
    finally:
        engine.dispose()


RACERS, ROUNDS = 6, 200
LOCK_RACER = """
import sys, time
import sqlalchemy as sa
from flask_migrate_ext.apply import lock_wait
from flask_migrate_ext.apply.lock import LockTarget, migration_lock

lock_wait.POLL_INTERVAL = 0  # race as hard as possible
lock_wait.report = lambda message: None
url, counter = sys.argv[1], sys.argv[2]
engine = sa.create_engine(url)
for _ in range(ROUNDS):
    with migration_lock([LockTarget("", engine)], timeout=60):
        with open(counter) as f:
            n = int(f.read())
        time.sleep(0.0005)  # widen the window a second holder would use
        with open(counter, "w") as f:
            f.write(str(n + 1))
"""


@pytest.mark.skipif(os.name == "nt", reason="the lock file stays on Windows")
def test_sqlite_lock_file_removal_keeps_the_lock_exclusive(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Processes taking and releasing the lock in a tight loop, each release
    deleting the file: never two holders at once (no lost increments)."""
    counter = tmp_path / "counter"
    counter.write_text("0")
    racer = LOCK_RACER.replace("ROUNDS", str(ROUNDS))
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", racer, sqlite_url, os.fspath(counter)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(RACERS)
    ]
    errors = [process.communicate(timeout=120)[1] for process in racers]
    assert [process.returncode for process in racers] == [0] * RACERS, errors
    assert counter.read_text() == str(RACERS * ROUNDS)
    assert not (tmp_path / "app.db.migrate-lock").exists()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_resolve_takes_the_lock_with_its_options(
    project: Path, database_url: str
) -> None:
    engine, targets = _targets(database_url)
    try:
        with migration_lock(targets, timeout=0):
            waited = flask(
                project, database_url, "db", "resolve", "r1", "--applied",
                "--lock-timeout", "0.5",
            )  # fmt: skip
            unlocked = flask(
                project, database_url, "db", "resolve", "r1", "--applied", "--no-lock"
            )
    finally:
        engine.dispose()
    assert waited.returncode == ExitCode.LOCK_TIMEOUT, waited.stderr
    assert "Gave up after 0.5 s: the migration lock" in waited.stderr
    # Without the lock it goes on, and finds nothing to resolve.
    assert unlocked.returncode == ExitCode.ERROR, unlocked.stderr
    assert "No failed run of revision 'r1' needs resolving" in unlocked.stderr
    assert "Waiting" not in unlocked.stderr


@pytest.mark.parametrize("backend", ["postgresql"])
def test_failure_after_another_process_applied_the_revision_says_so(
    project: Path, database_url: str
) -> None:
    """Without the lock, two runs apply r2 at once: the one that commits
    second fails, and does not claim "r2 was rolled back; the database is
    at r2"."""
    write_revision(
        project / "migrations" / "versions",
        "r2",
        "r1",
        """
        time.sleep(2)
        op.create_table("made_by_r2", sa.Column("n", sa.Integer))
        """,
        'op.drop_table("made_by_r2")',
    )
    ok = flask(project, database_url, "db", "upgrade", "r1")
    assert ok.returncode == 0, ok.stderr
    env = {"TEST_MIGRATE_LOCK": "off"}
    processes = [
        flask_process(project, database_url, "db", "upgrade", env=env) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    codes = sorted(p.returncode for p in processes)
    assert codes == [0, int(ExitCode.ERROR)], outputs
    stderr = "".join(err for _, err in outputs)
    assert "Revision r2 was rolled back; the database is at r2" not in stderr
    assert (
        "Revision r2 was rolled back here, but the database is now at r2, not r1:"
        " another process migrated it meanwhile" in stderr
    ), stderr
    assert version_rows(database_url) == ["r2"]
