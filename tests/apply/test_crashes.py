"""Runs cut off without recording an end: how a ``running`` ledger row is
judged (the lock, the process), and what a cut-off revision left behind.

The rows are written by hand here, as a killed process leaves them;
tests/e2e/test_crash.py kills real processes and servers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import ExitCode
from flask_migrate_ext import Migrate
from flask_migrate_ext.apply.ledger_rows import ledger_table
from flask_migrate_ext.apply.ledger_rows import utcnow
from flask_migrate_ext.apply.lock import is_held
from flask_migrate_ext.apply.lock import LockTarget
from flask_migrate_ext.apply.lock import migration_lock
from helpers import invoke
from helpers import ok
from helpers import version_rows
from helpers import write_revision

#: r2 of the project: one change of each kind the inspection checks.
R2_UPGRADE = """
op.create_table("r2_things", sa.Column("n", sa.Integer))
op.add_column("t_one", sa.Column("y", sa.Integer))
op.create_index("ix_t_one_n", "t_one", ["n"])
op.drop_table("t_old")
with op.batch_alter_table("t_one") as batch_op:
    batch_op.drop_column("gone")
"""
R2_DOWNGRADE = """
op.create_table("t_old", sa.Column("n", sa.Integer))
op.drop_index("ix_t_one_n", table_name="t_one")
op.drop_column("t_one", "y")
op.drop_table("r2_things")
"""


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> t.Iterator[Flask]:
    """A project with r1 (``t_one``, ``t_old``) and r2 (:data:`R2_UPGRADE`),
    upgraded to r1."""
    app = Flask("crashes", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    Migrate(app, SQLAlchemy(app))
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        """
        op.create_table(
            "t_one", sa.Column("n", sa.Integer), sa.Column("gone", sa.Integer)
        )
        op.create_table("t_old", sa.Column("n", sa.Integer))
        """,
        'op.drop_table("t_old")\nop.drop_table("t_one")',
    )
    write_revision(versions, "r2", "r1", R2_UPGRADE, R2_DOWNGRADE)
    ok(invoke(app, "upgrade", "r1"))
    yield app
    with app.app_context():
        app.extensions["migrate"].db.engine.dispose()


def leave_running(
    url: str,
    revision: str,
    action: str = "upgrade",
    host: str = "elsewhere",
    pid: int = 4321,
) -> None:
    """Write the ``running`` row a killed process leaves behind."""
    table = ledger_table()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                table.insert().values(
                    revision=revision,
                    action=action,
                    status="running",
                    partial=False,
                    statements=0,
                    started_at=utcnow(),
                    host=host,
                    pid=pid,
                )
            )
    finally:
        engine.dispose()


def statuses(url: str) -> list[tuple[str, str]]:
    table = ledger_table()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.revision, table.c.status).order_by(table.c.id)
            )
            return [(row[0], row[1]) for row in rows]
    finally:
        engine.dispose()


def target(url: str) -> tuple[LockTarget, sa.Engine]:
    engine = sa.create_engine(url)
    return LockTarget("", engine), engine


@pytest.mark.parametrize("mode", ["session", "table"])
def test_is_held(database_url: str, mode: t.Literal["session", "table"]) -> None:
    lock_target, engine = target(database_url)
    other, other_engine = target(database_url)
    try:
        assert not is_held(lock_target, mode)
        with migration_lock([other], timeout=5, mode=mode):
            assert is_held(lock_target, mode)
        assert not is_held(lock_target, mode)
        # Asking does not take it.
        with migration_lock([other], timeout=0, mode=mode):
            pass
    finally:
        engine.dispose()
        other_engine.dispose()


@pytest.mark.parametrize("backend", ["mariadb"])
def test_a_run_holding_the_lock_is_alive(app: Flask, database_url: str) -> None:
    """``current`` does not take the lock: a ``running`` row is a run under
    way while someone holds it, a run cut off once nobody does."""
    leave_running(database_url, "r2")
    holder, engine = target(database_url)
    try:
        with migration_lock([holder], timeout=5):
            result = ok(invoke(app, "current"))
            assert "cut off" not in result.output
    finally:
        engine.dispose()
    result = invoke(app, "current")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED
    assert (
        "The upgrade of revision r2 was cut off (process 4321 on elsewhere stopped"
        " without recording an end) after its DDL started"
    ) in result.stderr


@pytest.mark.parametrize("backend", ["mariadb"])
def test_what_a_cut_off_upgrade_left_behind(app: Flask, database_url: str) -> None:
    # As if r2 was cut off after its first two changes.
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE r2_things (n INTEGER)"))
        conn.execute(sa.text("ALTER TABLE t_one ADD COLUMN y INTEGER"))
    engine.dispose()
    leave_running(database_url, "r2")
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED
    lines = result.stderr.splitlines()
    start = lines.index("What r2's upgrade() changes, as the database has it now:")
    assert lines[start + 1 : start + 6] == [
        "  table 'r2_things' exists (created by r2)",
        "  column 'y' of 't_one' exists (added by r2)",
        "  index 'ix_t_one_n' of 't_one' missing (not added yet)",
        "  table 't_old' still exists (dropped by r2)",
        "  column 'gone' of 't_one' still exists (dropped by r2)",
    ]
    assert lines[start + 6].startswith("Check the schema, then run")
    # Only read: the inspection changed nothing.
    assert version_rows(database_url) == ["r1"]
    assert statuses(database_url)[-1] == ("r2", "running")


@pytest.mark.parametrize("backend", ["mariadb"])
def test_what_a_cut_off_downgrade_left_behind(app: Flask, database_url: str) -> None:
    ok(invoke(app, "upgrade"))
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t_old (n INTEGER)"))
    engine.dispose()
    leave_running(database_url, "r2", action="downgrade")
    result = invoke(app, "downgrade")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED
    assert "The downgrade of revision r2 was cut off" in result.stderr
    assert "What r2's downgrade() changes" in result.stderr
    assert "  table 't_old' exists (created by r2)\n" in result.stderr
    assert "  index 'ix_t_one_n' of 't_one' still exists (dropped by r2)" in (
        result.stderr
    )
    ok(invoke(app, "resolve", "r2", "--applied"))
    assert version_rows(database_url) == ["r2"]
    assert statuses(database_url)[-1] == ("r2", "resolved")


@pytest.mark.parametrize("backend", ["mariadb"])
def test_a_revision_that_reads_the_database(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    """Revisions are run offline, never against the database: what they run
    through the connection is not executed (a query reads no rows), and
    what depends on the answer cannot be listed, which is said."""
    write_revision(
        tmp_path / "migrations" / "versions",
        "r2",
        "r1",
        """
        bind = op.get_bind()
        bind.execute(sa.text("DROP TABLE t_old"))
        if bind.execute(sa.text("SELECT count(*) FROM t_one")).scalar():
            op.drop_table("t_one")
        """,
        "pass",
    )
    leave_running(database_url, "r2")
    result = invoke(app, "current")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED
    assert (
        "  (its upgrade() makes no change that can be checked here: check the"
        " schema by hand)\n"
    ) in result.stderr
    engine = sa.create_engine(database_url)
    try:
        assert {"t_one", "t_old"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["mariadb"])
def test_raw_sql_and_missing_scripts(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions, "r2", "r1", 'op.execute("CREATE TABLE r2_raw (n INTEGER)")', "pass"
    )
    leave_running(database_url, "r2")
    result = invoke(app, "current")
    assert "makes no change that can be checked here" in result.stderr
    (versions / "r2.py").unlink()
    result = invoke(app, "current")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED
    assert "no script for r2 here" in result.stderr


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_rolled_back_runs_are_said_once(app: Flask, database_url: str) -> None:
    leave_running(database_url, "r2")
    said = "The upgrade of r2 by process 4321 on elsewhere was cut off"
    # current only reads: it says so, and leaves the row for the next run.
    for _ in range(2):
        assert said in ok(invoke(app, "current")).stderr
    assert said in ok(invoke(app, "upgrade")).stderr
    assert statuses(database_url)[-2:] == [("r2", "crashed"), ("r2", "applied")]
    assert said not in ok(invoke(app, "current")).stderr


@pytest.mark.parametrize("backend", ["mariadb"])
def test_without_the_lock_only_this_hosts_processes_can_be_checked(
    app: Flask, database_url: str
) -> None:
    app.config["MIGRATE_LOCK"] = False
    host = socket.gethostname()
    with subprocess.Popen(["sleep", "30"]) as alive:
        try:
            leave_running(database_url, "r2", host=host, pid=alive.pid)
            assert "cut off" not in ok(invoke(app, "current")).output
            alive.kill()
            alive.wait(timeout=10)
            result = invoke(app, "current")
            assert result.exit_code == ExitCode.PARTIALLY_APPLIED
            assert f"(process {alive.pid} on {host} stopped" in result.stderr
        finally:
            alive.kill()
    ok(invoke(app, "resolve", "r2", "--rolled-back"))
    # Another host's process cannot be asked: without the lock it counts as
    # cut off (the lock is what tells a live run).
    leave_running(database_url, "r2", host="elsewhere")
    assert invoke(app, "upgrade").exit_code == ExitCode.PARTIALLY_APPLIED


@pytest.mark.parametrize("backend", ["mariadb"])
def test_resolve_needs_a_cut_off_run(app: Flask, database_url: str) -> None:
    result = invoke(app, "resolve", "r2", "--rolled-back")
    assert result.exit_code == ExitCode.ERROR
    assert "No failed run of revision 'r2' needs resolving." in result.stderr
    leave_running(database_url, "r2")
    ok(invoke(app, "resolve", "r2", "--rolled-back"))
    assert statuses(database_url)[-1] == ("r2", "resolved")
    ok(invoke(app, "upgrade"))
    assert version_rows(database_url) == ["r2"]


@pytest.mark.parametrize("backend", ["mariadb"])
def test_uninstall_keeps_the_record_of_a_cut_off_run(
    app: Flask, database_url: str
) -> None:
    """uninstall holds the lock while it checks: the lock held is its own."""
    leave_running(database_url, "r2")
    result = invoke(app, "uninstall", "--yes")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED, result.output
    assert "The upgrade of revision r2 was cut off" in result.stderr
    assert statuses(database_url)[-1] == ("r2", "running")
