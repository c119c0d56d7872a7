"""``kill -9`` of ``flask db upgrade`` in the middle of a revision, and server
crashes in the middle of a run: what the next commands say and do.

The killed process is a real ``flask`` subprocess; the commands after it run
in-process on the same database and migration directory.
"""

from __future__ import annotations

import os
import signal
import socket
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
from helpers import invoke
from helpers import ledger_rows
from helpers import ok
from helpers import table_names
from helpers import version_rows
from helpers import write_revision
from servers import Server
from servers import throwaway_server
from servers import wait_until

URL_VAR = "FMX_CRASH_URL"
#: When set, revisions that can stop write this file and sleep, waiting
#: to be killed.
MARK_VAR = "FMX_CRASH_MARK"

APP = f"""\
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["{URL_VAR}"]
Migrate(app, SQLAlchemy(app))
"""

#: r2 creates a table, stops there when asked (to be killed), then adds a
#: column to r1's table.
R2 = f"""
import os
op.create_table("r2_things", sa.Column("n", sa.Integer))
if os.environ.get("{MARK_VAR}"):
    open(os.environ["{MARK_VAR}"], "w").close()
    time.sleep(60)
op.add_column("t_one", sa.Column("x", sa.Integer))
"""


def columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def execute(url: str, statement: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def project(tmp_path: Path) -> t.Iterator[t.Callable[[str], Flask]]:
    """``project(url)``: app.py and a migration directory with r1 (a table)
    and r2 (:data:`R2`) in ``tmp_path``; returns the same app, in-process."""
    made: list[Flask] = []

    def factory(url: str) -> Flask:
        (tmp_path / "app.py").write_text(APP)
        app = Flask("crash", root_path=os.fspath(tmp_path))
        app.config["SQLALCHEMY_DATABASE_URI"] = url
        Migrate(app, SQLAlchemy(app))
        made.append(app)
        if not (tmp_path / "migrations").exists():
            ok(invoke(app, "init"))
            versions = tmp_path / "migrations" / "versions"
            write_revision(
                versions,
                "r1",
                None,
                'op.create_table("t_one", sa.Column("n", sa.Integer))',
                'op.drop_table("t_one")',
            )
            write_revision(
                versions,
                "r2",
                "r1",
                R2,
                'op.drop_column("t_one", "x")\nop.drop_table("r2_things")',
            )
        return app

    yield factory
    for app in made:
        with app.app_context():
            app.extensions["migrate"].db.engine.dispose()


def flask_process(
    cwd: Path, url: str, *args: str, mark: Path | None = None
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env[URL_VAR] = url
    if mark is not None:
        env[MARK_VAR] = os.fspath(mark)
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_during_r2(tmp_path: Path, url: str) -> int:
    """Run ``flask db upgrade``, SIGKILL it once r2's DDL ran; its pid."""
    mark = tmp_path / "r2-ddl-ran"
    process = flask_process(tmp_path, url, "db", "upgrade", mark=mark)
    try:
        wait_until(lambda: mark.exists() or process.poll() is not None, 30, "r2's DDL")
        assert process.poll() is None, process.communicate(timeout=5)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)  # reaped: the pid no longer exists
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL
    return process.pid


@pytest.mark.parametrize("backend", ["mariadb"])
@pytest.mark.parametrize("outcome", ["rolled-back", "applied"])
def test_kill_after_ddl_without_transactional_ddl(
    project: t.Callable[[str], Flask],
    database_url: str,
    tmp_path: Path,
    outcome: str,
) -> None:
    app = project(database_url)
    pid = kill_during_r2(tmp_path, database_url)
    assert version_rows(database_url) == ["r1"]
    assert "r2_things" in table_names(database_url)  # MariaDB committed it
    assert ledger_rows(database_url)[-1] == ("r2", "upgrade", "running")

    cut_off = (
        f"upgrade of revision r2 was cut off (process {pid} on"
        f" {socket.gethostname()} stopped without recording an end) after its"
        " DDL started"
    )
    findings = [
        "table 'r2_things' exists (created by r2)",
        "column 'x' of 't_one' missing (not added yet)",
    ]
    result = invoke(app, "current")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED, result.output
    assert result.stdout.strip() == "r1"
    assert cut_off in result.stderr
    for finding in findings:
        assert f"  {finding}\n" in result.stderr
    assert "MariaDB cannot roll back DDL" in result.stderr

    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED, result.output
    assert cut_off in result.stderr
    assert "already exists" not in result.output
    assert "flask db resolve r2 --rolled-back" in result.stderr
    assert version_rows(database_url) == ["r1"]

    if outcome == "rolled-back":
        execute(database_url, "DROP TABLE r2_things")
        result = ok(invoke(app, "resolve", "r2", "--rolled-back"))
        assert "Resolved r2: marked rolled back." in result.stdout
        ok(invoke(app, "upgrade"))
        expected = [
            ("r1", "upgrade", "applied"),
            ("r2", "upgrade", "resolved"),
            ("r2", "upgrade", "applied"),
        ]
    else:
        execute(database_url, "ALTER TABLE t_one ADD COLUMN x INTEGER")
        ok(invoke(app, "resolve", "r2", "--applied"))
        expected = [
            ("r1", "upgrade", "applied"),
            ("r2", "upgrade", "resolved"),
            ("r2", "stamp", "stamped"),  # what --applied does to the version table
        ]
    assert version_rows(database_url) == ["r2"]
    assert "x" in columns(database_url, "t_one")
    assert ledger_rows(database_url) == expected
    result = ok(invoke(app, "current"))
    assert "cut off" not in result.output


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_kill_with_transactional_ddl(
    project: t.Callable[[str], Flask],
    database_url: str,
    tmp_path: Path,
    backend: str,
) -> None:
    app = project(database_url)
    pid = kill_during_r2(tmp_path, database_url)
    name = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}[backend]
    said = (
        f"The upgrade of r2 by process {pid} on {socket.gethostname()} was cut"
        f" off; {name} rolled it back."
    )
    # Rolled back with its transaction: the schema, the version table and
    # the ledger agree on r1; the row written before r2 started remains.
    assert version_rows(database_url) == ["r1"]
    assert "r2_things" not in table_names(database_url)
    assert ledger_rows(database_url)[-1] == ("r2", "upgrade", "running")

    result = ok(invoke(app, "current"))
    assert result.stdout.strip() == "r1"
    assert said in result.stderr

    result = ok(invoke(app, "upgrade"))
    assert said in result.stderr
    assert version_rows(database_url) == ["r2"]
    assert ledger_rows(database_url) == [
        ("r1", "upgrade", "applied"),
        ("r2", "upgrade", "crashed"),
        ("r2", "upgrade", "applied"),
    ]
    # Said once.
    for command in ("current", "upgrade"):
        assert "cut off" not in ok(invoke(app, command)).output


#: The chain the server crash tests upgrade through.
CHAIN = 50
#: The revision that signals the test to crash the server (it goes on).
SIGNAL_AT = 20

CHAIN_REVISION = f"""
import os
mark = os.environ.get("{MARK_VAR}")
if mark and int(revision[1:]) == {SIGNAL_AT}:
    open(mark, "w").close()
time.sleep(0.05)
op.create_table(f"t_{{revision}}", sa.Column("n", sa.Integer))
op.execute(f"INSERT INTO t_{{revision}} (n) VALUES (1)")
"""


def write_chain(app: Flask, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    for n in range(1, CHAIN + 1):
        down = f"r{n - 1}" if n > 1 else None
        write_revision(
            versions, f"r{n}", down, CHAIN_REVISION, 'op.drop_table(f"t_{revision}")'
        )


def state(url: str) -> tuple[int, set[str], list[tuple[str, str, str]]]:
    """The version table's revision number, the chain's tables, the ledger."""
    versions = version_rows(url)
    assert len(versions) <= 1
    at = int(versions[0][1:]) if versions else 0
    tables = {name for name in table_names(url) if name.startswith("t_r")}
    return at, tables, ledger_rows(url)


def assert_consistent(url: str, partial_ddl: bool, cut: str | None = None) -> int:
    """The version table, the schema and the ledger tell one story; the
    revision number the database is at.

    :param partial_ddl: The database commits DDL at once (MariaDB): the
        revision after the last applied one may have its table already.
    :param cut: The revision a crash cut off; the one after the last applied
        revision by default.
    """
    at, tables, ledger = state(url)
    applied = [f"t_r{n}" for n in range(1, at + 1)]
    assert set(applied) <= tables
    extra = tables - set(applied)
    assert not extra or (partial_ddl and extra == {f"t_r{at + 1}"}), extra
    assert [rev for rev, _, status in ledger if status == "applied"] == [
        f"r{n}" for n in range(1, at + 1)
    ]
    # Anything else in the ledger is about the one revision that was cut.
    cut = cut or f"r{at + 1}"
    assert {rev for rev, _, status in ledger if status != "applied"} <= {cut}
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            for table in applied:  # every revision's data went in once
                count = conn.execute(sa.text(f"SELECT count(*) FROM {table}"))
                assert count.scalar() == 1, table
    finally:
        engine.dispose()
    return at


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_server_crash_during_a_long_upgrade(
    project: t.Callable[[str], Flask], tmp_path: Path, backend: str
) -> None:
    with throwaway_server(backend) as server:
        app = Flask("chain", root_path=os.fspath(tmp_path))
        app.config["SQLALCHEMY_DATABASE_URI"] = server.url
        db = SQLAlchemy(app)
        Migrate(app, db)
        try:
            write_chain(app, tmp_path)
            crash_during_upgrade(server, tmp_path)
            at = assert_consistent(server.url, partial_ddl=backend == "mariadb")
            # Stopped mid-way. On PostgreSQL the last revisions before the
            # crash may be lost whole: they commit without waiting for the
            # disk, which only the run's last commit does.
            assert at < CHAIN

            result = invoke(app, "upgrade")
            if result.exit_code == ExitCode.PARTIALLY_APPLIED:
                # MariaDB, crashed between a revision's DDL and its commit.
                assert backend == "mariadb"
                assert f"upgrade of revision r{at + 1} was cut off" in result.stderr
                cut = f"r{at + 1}"
                assert f"table 't_{cut}' exists (created by {cut})" in result.stderr
                with db.engine.begin() as conn:
                    conn.execute(sa.text(f"DROP TABLE t_{cut}"))
                ok(invoke(app, "resolve", cut, "--rolled-back"))
                result = invoke(app, "upgrade")
            ok(result)
            cut = f"r{at + 1}"
            assert assert_consistent(server.url, False, cut) == CHAIN
            _, _, ledger = state(server.url)
            assert all(status != "running" for _, _, status in ledger)
        finally:
            with app.app_context():
                db.engine.dispose()


def crash_during_upgrade(server: Server, tmp_path: Path) -> None:
    """Crash the server while ``flask db upgrade`` runs the chain; restart it."""
    mark = tmp_path / "halfway"
    process = flask_process(tmp_path, server.url, "db", "upgrade", mark=mark)
    try:
        wait_until(lambda: mark.exists() or process.poll() is not None, 30, "halfway")
        server.crash()
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        out, err = process.communicate(timeout=10)
    assert process.returncode not in (0, None), (out, err)
    assert "Traceback" not in err, err
    server.start()
