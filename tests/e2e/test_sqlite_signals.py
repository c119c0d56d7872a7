"""SIGINT and SIGTERM stop a real ``flask db upgrade`` on SQLite at once, in
the middle of a long statement, and the run is recorded as interrupted."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from flask_migrate_ext import ExitCode
from helpers import flask_process
from helpers import flask_with_url as flask
from helpers import LOCK_APP as APP
from helpers import version_rows
from helpers import write_revision

#: Minutes of work for SQLite: only an interrupt ends it in time.
ENDLESS = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
    " WHERE x < 1000000000) SELECT count(*) FROM c"
)


@pytest.fixture
def project(tmp_path: Path, sqlite_url: str) -> Path:
    """At r1; r2 inserts a row, then runs :data:`ENDLESS`."""
    (tmp_path / "app.py").write_text(APP)
    assert flask(tmp_path, sqlite_url, "db", "init").returncode == 0
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        'op.create_table("t1", sa.Column("n", sa.Integer))',
        'op.drop_table("t1")',
    )
    write_revision(
        versions,
        "r2",
        "r1",
        f"""
        op.execute("INSERT INTO t1 (n) VALUES (1)")
        open("r2-started", "w").close()
        op.execute("{ENDLESS}")
        """,
        "pass",
    )
    done = flask(tmp_path, sqlite_url, "db", "upgrade", "r1")
    assert done.returncode == 0, done.stderr
    return tmp_path


def _start_slow_upgrade(project: Path, url: str) -> subprocess.Popen[str]:
    process = flask_process(project, url, "db", "upgrade")
    deadline = time.monotonic() + 30
    while not (project / "r2-started").exists():
        assert time.monotonic() < deadline, "r2 never started"
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    time.sleep(0.2)  # well inside the statement
    return process


def _finish(process: subprocess.Popen[str]) -> str:
    try:
        _, stderr = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the statement was not interrupted")
    return stderr


def _ledger(project: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(project / "app.db") as conn:
        rows = conn.execute(
            "SELECT revision, status FROM flask_migrate_ext_log ORDER BY id"
        ).fetchall()
    conn.close()
    return rows


@pytest.mark.parametrize(
    ("signum", "code"),
    [
        (signal.SIGINT, ExitCode.INTERRUPTED),
        (signal.SIGTERM, ExitCode.TERMINATED),
    ],
    ids=["INT", "TERM"],
)
def test_signal_interrupts_the_running_statement(
    project: Path, sqlite_url: str, signum: int, code: int
) -> None:
    process = _start_slow_upgrade(project, sqlite_url)
    sent = time.monotonic()
    process.send_signal(signum)
    stderr = _finish(process)
    elapsed = time.monotonic() - sent
    assert process.returncode == code, stderr
    assert elapsed < 3, elapsed  # ~0.1 s; generous for a loaded machine
    assert "Stopped during the upgrade of r2" in stderr
    assert "Traceback" not in stderr
    assert _ledger(project) == [("r1", "applied"), ("r2", "interrupted")]
    assert version_rows(sqlite_url) == ["r1"]
    assert not (project / "app.db.migrate-lock").exists()


def test_second_ctrl_c_during_cleanup_still_exits_130(
    project: Path, sqlite_url: str
) -> None:
    process = _start_slow_upgrade(project, sqlite_url)
    for _ in range(3):
        process.send_signal(signal.SIGINT)
        time.sleep(0.03)
    stderr = _finish(process)
    assert process.returncode == ExitCode.INTERRUPTED, stderr
    assert "Traceback" not in stderr
    assert _ledger(project) == [("r1", "applied"), ("r2", "interrupted")]
    assert version_rows(sqlite_url) == ["r1"]
