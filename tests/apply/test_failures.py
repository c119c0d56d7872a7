"""Failing revisions: what is reported, what is recorded, and the way out."""

from __future__ import annotations

import os
import threading
import time
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
from helpers import table_names
from helpers import version_rows
from helpers import write_revision

FAILING_R2 = """
op.create_table("t_half", sa.Column("n", sa.Integer))
op.execute("INSERT INTO t_half (n) VALUES (1)")
op.execute("SELECT * FROM no_such_table")
"""


def make_project(url: str, tmp_path: Path, **config: object) -> Flask:
    app = Flask("failures", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config.update(config)
    Migrate(app, SQLAlchemy(app))
    assert invoke(app, "init").exit_code == 0
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        'op.create_table("t_one", sa.Column("n", sa.Integer))',
        'op.drop_table("t_one")',
    )
    write_revision(versions, "r2", "r1", FAILING_R2, 'op.drop_table("t_half")')
    return app


def ledger(url: str) -> list[tuple[str, str, str, bool, int]]:
    columns = "revision, action, status, partial, statements"
    return [(r[0], r[1], r[2], bool(r[3]), r[4]) for r in ledger_rows(url, columns)]


@pytest.fixture
def app(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    app = make_project(database_url, tmp_path)
    yield app
    with app.app_context():
        app.extensions["migrate"].db.engine.dispose()


def test_failure_report(app: Flask, database_url: str, backend: str) -> None:
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.ERROR
    lines = result.stderr.strip().splitlines()
    error = lines.index(next(line for line in lines if line.startswith("Error:")))
    report = lines[error:]
    assert report[0].startswith("Error: Revision r2 failed: ")
    assert "no_such_table" in report[0]
    assert report[1].startswith("  at ") and "r2.py, line " in report[1]
    assert 'op.execute("SELECT * FROM no_such_table")' in report[1]
    assert report[2] == "  while running: SELECT * FROM no_such_table"
    assert len(report) == 4, report
    assert "Traceback" not in result.output
    # r1 ran in a transaction of its own and stays.
    assert version_rows(database_url) == ["r1"]
    assert "t_one" in table_names(database_url)
    if backend == "mariadb":
        assert report[3].startswith(
            "  The database cannot roll back DDL: r2's CREATE TABLE stayed applied;"
            " its INSERT was rolled back. It is recorded at r1;"
        ), report[3]
        assert "t_half" in table_names(database_url)
    else:
        assert report[3] == "  Revision r2 was rolled back; the database is at r1."
        assert "t_half" not in table_names(database_url)


def test_ledger_records_runs(app: Flask, database_url: str, tmp_path: Path) -> None:
    write_revision(
        tmp_path / "migrations" / "versions",
        "r2",
        "r1",
        'op.create_table("t_two", sa.Column("n", sa.Integer))',
        'op.drop_table("t_two")',
    )
    assert invoke(app, "upgrade").exit_code == 0
    assert invoke(app, "downgrade").exit_code == 0
    assert ledger(database_url) == [
        ("r1", "upgrade", "applied", False, 1),
        ("r2", "upgrade", "applied", False, 1),
        ("r2", "downgrade", "applied", False, 1),
    ]
    # The ledger is not part of the app's schema.
    assert "flask_migrate_ext_log" in table_names(database_url, own=True)
    assert invoke(app, "upgrade").exit_code == 0
    result = invoke(app, "migrate", "-m", "nothing")
    assert result.exit_code == 0
    assert "flask_migrate_ext_log" not in result.output


def test_partial_failure_blocks_until_resolved(app: Flask, tmp_path: Path) -> None:
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("mysql"):
        # Transactional DDL: nothing is left half-done, nothing blocks.
        assert invoke(app, "upgrade").exit_code == ExitCode.ERROR
        assert invoke(app, "current").exit_code == 0
        assert ledger(url)[-1][:4] == ("r2", "upgrade", "failed", False)
        return
    assert invoke(app, "upgrade").exit_code == ExitCode.ERROR
    assert ledger(url)[-1] == ("r2", "upgrade", "failed", True, 2)

    result = invoke(app, "current")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED
    assert result.stdout.strip() == "r1"
    assert "upgrade of revision r2 failed after 2 statements" in result.stderr

    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED
    assert "flask db resolve r2 --rolled-back" in result.stderr
    assert version_rows(url) == ["r1"]

    # The way out: undo by hand, say so, fix the revision, upgrade again.
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE t_half"))
    engine.dispose()
    result = invoke(app, "resolve", "r2", "--rolled-back")
    assert result.exit_code == 0, result.output
    assert "Resolved r2: marked rolled back." in result.stdout
    write_revision(
        tmp_path / "migrations" / "versions",
        "r2",
        "r1",
        'op.create_table("t_half", sa.Column("n", sa.Integer))',
        'op.drop_table("t_half")',
    )
    assert invoke(app, "upgrade").exit_code == 0
    assert version_rows(url) == ["r2"]
    assert invoke(app, "current").exit_code == 0


@pytest.mark.parametrize("backend", ["mariadb"])
def test_resolve_applied_stamps(app: Flask, database_url: str) -> None:
    assert invoke(app, "upgrade").exit_code == ExitCode.ERROR
    statements: list[str] = []

    def record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        statements.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    try:
        result = invoke(app, "resolve", "r2", "--applied")
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", record)
    assert result.exit_code == 0, result.output
    assert version_rows(database_url) == ["r2"]
    # Marked and stamped under one hold of the lock: nobody slips in between.
    taken = [s for s in statements if "GET_LOCK(" in s and "IS_USED" not in s]
    released = [i for i, s in enumerate(statements) if "RELEASE_LOCK(" in s]
    stamped = max(
        i
        for i, s in enumerate(statements)
        if "alembic_version" in s
        and s.lstrip().upper().startswith(("INSERT", "UPDATE"))
    )
    assert (len(taken), len(released)) == (1, 1)
    assert released[0] > stamped
    assert invoke(app, "current").exit_code == 0
    # Nothing left to resolve.
    result = invoke(app, "resolve", "r2", "--applied")
    assert result.exit_code == ExitCode.ERROR
    assert "No failed run of revision 'r2' needs resolving." in result.stderr


def test_resolve_needs_an_outcome(app: Flask) -> None:
    result = invoke(app, "resolve", "r2")
    assert result.exit_code == ExitCode.USAGE
    assert "--applied or --rolled-back" in result.output


@pytest.mark.parametrize("backend", ["postgresql"])
def test_all_or_nothing_mode(database_url: str, tmp_path: Path) -> None:
    app = make_project(database_url, tmp_path, MIGRATE_TRANSACTION_MODE="all")
    try:
        result = invoke(app, "upgrade")
        assert "Running upgrade with one transaction for all revisions." in (
            result.stderr
        )
        assert result.exit_code == ExitCode.ERROR
        assert "  r1 and r2 were rolled back; the database is at base." in (
            result.stderr
        )
        assert version_rows(database_url) == []
        assert "t_one" not in table_names(database_url)
    finally:
        with app.app_context():
            app.extensions["migrate"].db.engine.dispose()


def test_bad_transaction_mode(sqlite_url: str, tmp_path: Path) -> None:
    app = make_project(sqlite_url, tmp_path)
    app.config["MIGRATE_TRANSACTION_MODE"] = "sometimes"
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.USAGE
    assert "MIGRATE_TRANSACTION_MODE must be None, 'per-revision' or 'all'" in (
        result.stderr
    )
    assert version_rows(sqlite_url) == []


def test_ledger_can_be_disabled(sqlite_url: str, tmp_path: Path) -> None:
    app = make_project(sqlite_url, tmp_path, MIGRATE_LOG_TABLE=None)
    invoke(app, "upgrade", "r1")
    assert "flask_migrate_ext_log" not in table_names(sqlite_url, own=True)


@pytest.mark.parametrize("backend", ["sqlite", "mariadb", "postgresql"])
def test_without_the_ledger_a_failure_claims_only_what_it_knows(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    """Without transactional DDL and without the ledger's row in the
    revision's transaction, the DDL that ran may stay: the report says so
    instead of "rolled back"."""
    app = make_project(database_url, tmp_path, MIGRATE_LOG_TABLE=None)
    try:
        result = invoke(app, "upgrade")
    finally:
        with app.app_context():
            app.extensions["migrate"].db.engine.dispose()
    assert result.exit_code == ExitCode.ERROR
    assert version_rows(database_url) == ["r1"]
    kept = "t_half" in table_names(database_url)
    if backend == "postgresql":
        assert not kept
        assert "Revision r2 was rolled back; the database is at r1." in result.stderr
    else:
        assert kept  # what the message warns about
        assert "Revision r2 was rolled back" not in result.stderr
        if backend == "sqlite":
            assert "statement(s) of r2 may have stayed applied" in result.stderr
        else:
            assert (
                "cannot roll back DDL: r2's CREATE TABLE stayed applied; its INSERT"
                " was rolled back. With the ledger off"
            ) in result.stderr


ADD_COLUMN = 'op.add_column("t_one", sa.Column("m", sa.Integer))'


def hold_table(url: str, release_after: float | None) -> tuple[sa.Connection, t.Any]:
    """A second session that read ``t_one`` in a transaction left open (as a
    long report or a forgotten session does): it holds the table's lock
    until it ends, after ``release_after`` seconds if given."""
    engine = sa.create_engine(url, connect_args=_app_name(url))
    reader = engine.connect()
    reader.execute(sa.text("SELECT * FROM t_one"))
    timer = None
    if release_after is not None:
        timer = threading.Timer(release_after, reader.rollback)
        timer.start()
    return reader, timer


def _app_name(url: str) -> dict[str, str]:
    return {"application_name": "long_reader"} if url.startswith("postgresql") else {}


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_server_lock_timeout_names_the_blocker(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    """A revision waiting on a table lock fails after MIGRATE_DB_LOCK_TIMEOUT,
    each retry saying who holds it, then the failure naming the session."""
    app = make_project(
        database_url, tmp_path, MIGRATE_DB_LOCK_TIMEOUT=1, MIGRATE_DB_LOCK_RETRIES=1
    )
    write_revision(tmp_path / "migrations" / "versions", "r2", "r1", ADD_COLUMN, "pass")
    try:
        assert invoke(app, "upgrade", "r1").exit_code == 0
        reader, _ = hold_table(database_url, None)
        try:
            started = time.monotonic()
            result = invoke(app, "upgrade")
            waited = time.monotonic() - started
        finally:
            reader.rollback()
            reader.close()
            reader.engine.dispose()
    finally:
        with app.app_context():
            app.extensions["migrate"].db.engine.dispose()
    assert result.exit_code == ExitCode.ERROR, result.output
    who = "pid " if backend == "postgresql" else "id "
    holder = "long_reader, " if backend == "postgresql" else "root@"
    retry = next(
        line for line in result.stderr.splitlines() if line.startswith("Revision r2 ")
    )
    assert retry.startswith(f"Revision r2 waited 1 s for a lock held by {who}"), retry
    assert holder in retry and "retrying in " in retry and "(1 of 1)." in retry
    assert "Revision r2 failed: " in result.stderr
    blocked = next(
        line for line in result.stderr.splitlines() if line.startswith("  It waited")
    )
    assert blocked.startswith(f"  It waited 1 s for a lock held by {who}"), blocked
    assert "idle" in blocked and ", 2 times (MIGRATE_DB_LOCK_TIMEOUT" in blocked
    assert "Revision r2 was rolled back; the database is at r1." in result.stderr
    assert waited < 10
    assert version_rows(database_url) == ["r1"]
    # Both tries recorded; nothing left needing attention.
    assert [row[:4] for row in ledger(database_url)[-2:]] == [
        ("r2", "upgrade", "failed", False),
        ("r2", "upgrade", "failed", False),
    ]
    try:
        assert invoke(app, "upgrade").exit_code == 0  # once the reader is gone
    finally:
        with app.app_context():
            app.extensions["migrate"].db.engine.dispose()
    assert version_rows(database_url) == ["r2"]


@pytest.mark.parametrize("mode", ["per-revision", "all"])
@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_lock_timeout_retry_succeeds_once_the_reader_is_gone(
    database_url: str, backend: str, tmp_path: Path, mode: str
) -> None:
    app = make_project(
        database_url,
        tmp_path,
        MIGRATE_DB_LOCK_TIMEOUT=1,
        MIGRATE_TRANSACTION_MODE=mode,
    )
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r2",
        "r1",
        'op.create_table("t_two", sa.Column("n", sa.Integer))',
        'op.drop_table("t_two")',
    )
    write_revision(versions, "r3", "r2", ADD_COLUMN, 'op.drop_column("t_one", "m")')
    try:
        assert invoke(app, "upgrade", "r1").exit_code == 0
        reader, timer = hold_table(database_url, release_after=1.5)
        try:
            result = invoke(app, "upgrade")
        finally:
            timer.join()
            reader.close()
            reader.engine.dispose()
    finally:
        with app.app_context():
            app.extensions["migrate"].db.engine.dispose()
    assert result.exit_code == 0, result.output
    assert "Revision r3 waited 1 s for a lock held by " in result.stderr
    assert version_rows(database_url) == ["r3"]
    assert {"t_one", "t_two"} <= table_names(database_url)
    runs = [row[:3] for row in ledger(database_url)]
    assert runs[-1] == ("r3", "upgrade", "applied")
    assert ("r3", "upgrade", "failed") in runs
    # r2 ran once per committed try: twice only if its try was rolled back.
    applied_r2 = runs.count(("r2", "upgrade", "applied"))
    assert applied_r2 == 1


@pytest.mark.parametrize("backend", ["mariadb"])
def test_no_retry_when_part_of_the_revision_stayed(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    """MariaDB: a revision whose CREATE TABLE committed before its ALTER
    timed out is not run again (it would fail on the table, or run twice)."""
    app = make_project(database_url, tmp_path, MIGRATE_DB_LOCK_TIMEOUT=1)
    write_revision(
        tmp_path / "migrations" / "versions",
        "r2",
        "r1",
        f'op.create_table("t_two", sa.Column("n", sa.Integer))\n{ADD_COLUMN}',
        "pass",
    )
    try:
        assert invoke(app, "upgrade", "r1").exit_code == 0
        reader, _ = hold_table(database_url, None)
        try:
            result = invoke(app, "upgrade")
        finally:
            reader.rollback()
            reader.close()
            reader.engine.dispose()
    finally:
        with app.app_context():
            app.extensions["migrate"].db.engine.dispose()
    assert result.exit_code == ExitCode.ERROR
    assert "retrying" not in result.stderr
    assert "r2's CREATE TABLE stayed applied" in result.stderr
    assert ledger(database_url)[-1] == ("r2", "upgrade", "failed", True, 1)


def test_lock_timeout_settings(sqlite_url: str, tmp_path: Path) -> None:
    from flask_migrate_ext.settings import Settings

    assert Settings.from_config({}).db_lock_timeout == 5
    assert Settings.from_config({}).db_lock_retries == 3
    for off in (None, False, 0, 0.0):
        config = {"MIGRATE_DB_LOCK_TIMEOUT": off}
        assert Settings.from_config(config).db_lock_timeout is None
    app = make_project(sqlite_url, tmp_path)
    for bad in ("soon", -1, True):
        app.config["MIGRATE_DB_LOCK_TIMEOUT"] = bad
        result = invoke(app, "upgrade")
        assert result.exit_code == ExitCode.USAGE
        assert "MIGRATE_DB_LOCK_TIMEOUT must be a number of seconds" in result.stderr
    app.config.update(MIGRATE_DB_LOCK_TIMEOUT=5, MIGRATE_DB_LOCK_RETRIES=-1)
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.USAGE
    assert "MIGRATE_DB_LOCK_RETRIES must be a whole number" in result.stderr
    assert version_rows(sqlite_url) == []


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_statement_timeout(database_url: str, backend: str, tmp_path: Path) -> None:
    app = make_project(database_url, tmp_path, MIGRATE_STATEMENT_TIMEOUT=0.5)
    sleep = "SELECT pg_sleep(5)" if backend == "postgresql" else "SELECT SLEEP(5)"
    write_revision(
        tmp_path / "migrations" / "versions",
        "r2",
        "r1",
        f'op.execute("{sleep}")',
        "pass",
    )
    try:
        started = time.monotonic()
        result = invoke(app, "upgrade")
        waited = time.monotonic() - started
    finally:
        with app.app_context():
            app.extensions["migrate"].db.engine.dispose()
    assert result.exit_code == ExitCode.ERROR, result.output
    expected = "statement timeout" if backend == "postgresql" else "max_statement_time"
    assert expected in result.stderr
    assert version_rows(database_url) == ["r1"]
    assert waited < 4


@pytest.mark.parametrize("mode", ["per-revision", "all"])
def test_only_the_last_commit_waits_for_the_disk(
    make_database: t.Callable[[str], str], tmp_path: Path, mode: str
) -> None:
    """PostgreSQL, one transaction per revision: earlier revisions commit
    without waiting for the WAL flush, the last one waits (and flushes them
    all). In one transaction for all, nothing changes."""
    url = make_database("postgresql")
    app = Flask("durability", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["MIGRATE_TRANSACTION_MODE"] = mode
    db = SQLAlchemy(app)
    Migrate(app, db)
    assert invoke(app, "init").exit_code == 0
    versions = tmp_path / "migrations" / "versions"
    record = (
        "op.execute(\"INSERT INTO seen SELECT current_setting('synchronous_commit')\")"
    )
    write_revision(
        versions,
        "r1",
        None,
        f'op.create_table("seen", sa.Column("v", sa.Text))\n{record}',
        "pass",
    )
    write_revision(versions, "r2", "r1", record, "pass")
    write_revision(versions, "r3", "r2", record, "pass")
    assert invoke(app, "upgrade").exit_code == 0
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            seen = [row[0] for row in conn.execute(sa.text("SELECT v FROM seen"))]
    finally:
        engine.dispose()
        with app.app_context():
            db.engine.dispose()
    expected = ["off", "off", "on"] if mode == "per-revision" else ["on"] * 3
    assert seen == expected


@pytest.mark.parametrize(
    ("default_backend", "users_backend"),
    [("sqlite", "sqlite"), ("postgresql", "mariadb")],
)
def test_multidb_failure_says_what_became_of_each_database(
    make_multidb_app: t.Any,
    make_database: t.Callable[[str], str],
    tmp_path: Path,
    default_backend: str,
    users_backend: str,
) -> None:
    """The multi-database templates commit every database or none: a revision
    failing on one database takes the others' revisions of the run back too."""
    main_url = make_database(default_backend)
    users_url = make_database(users_backend)
    app = make_multidb_app({"": main_url, "users": users_url})
    assert invoke(app, "init", "--multidb").exit_code == 0
    assert invoke(app, "revision", "-m", "r1", "--rev-id", "r1").exit_code == 0
    script = tmp_path / "migrations" / "versions" / "r1_r1.py"
    source = script.read_text()
    source = source.replace(
        "def upgrade_() -> None:\n    pass",
        "def upgrade_() -> None:\n"
        '    op.create_table("t_main", sa.Column("n", sa.Integer))',
    ).replace(
        "def upgrade_users() -> None:\n    pass",
        "def upgrade_users() -> None:\n"
        '    op.create_table("t_users", sa.Column("n", sa.Integer))\n'
        '    op.execute("SELECT * FROM no_such_table")',
    )
    script.write_text(source)
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.ERROR
    last = result.stderr.strip().splitlines()[-1]
    if users_backend == "mariadb":
        assert last.startswith(
            "  Database 'users' cannot roll back DDL: r1's CREATE TABLE stayed applied."
        ), last
        assert "t_users" in table_names(users_url)
    else:
        assert last.startswith(
            "  Revision r1 was rolled back; database 'users' is at base."
        ), last
        assert "t_users" not in table_names(users_url)
    assert last.endswith(
        " The default database's r1 of this run was rolled back too; it is at base."
    ), last
    assert version_rows(main_url) == version_rows(users_url) == []
    assert "t_main" not in table_names(main_url)


@pytest.mark.parametrize("backend", ["mariadb"])
def test_report_says_which_statements_stayed(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    """MySQL/MariaDB commit at each DDL statement: what ran before the last
    DDL stayed, the data changes after it were rolled back."""
    app = make_project(database_url, tmp_path)
    write_revision(
        tmp_path / "migrations" / "versions",
        "r2",
        "r1",
        """
        op.execute("INSERT INTO t_one (n) VALUES (1)")
        op.create_table("t_half", sa.Column("n", sa.Integer))
        op.execute("INSERT INTO t_half (n) VALUES (1)")
        op.execute("UPDATE t_one SET n = 2")
        op.execute("SELECT * FROM no_such_table")
        """,
        'op.drop_table("t_half")',
    )
    try:
        result = invoke(app, "upgrade")
    finally:
        with app.app_context():
            app.extensions["migrate"].db.engine.dispose()
    assert result.exit_code == ExitCode.ERROR
    assert (
        "  The database cannot roll back DDL: r2's INSERT, CREATE TABLE stayed"
        " applied; its INSERT, UPDATE were rolled back. It is recorded at r1;"
    ) in result.stderr
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT n FROM t_one")).all() == [(1,)]
            assert conn.execute(sa.text("SELECT n FROM t_half")).all() == []
    finally:
        engine.dispose()
    assert version_rows(database_url) == ["r1"]
    assert ledger(database_url)[-1] == ("r2", "upgrade", "failed", True, 4)
