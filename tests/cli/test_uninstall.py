"""``flask db uninstall``: drop our own tables, to switch back to Flask-Migrate.

The last tests make the switch both ways with real ``flask db`` subprocesses
of Flask-Migrate 4.1.0 and of this package, on one migration folder.
"""

from __future__ import annotations

import os
import subprocess
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

import flask_migrate_ext.cli.options
from flask_migrate_ext import ExitCode
from flask_migrate_ext import Migrate
from flask_migrate_ext.api import DroppedTable
from flask_migrate_ext.api import uninstall
from flask_migrate_ext.api import UninstallResult
from flask_migrate_ext.apply.ledger_rows import ledger_table
from flask_migrate_ext.apply.ledger_rows import utcnow
from flask_migrate_ext.apply.lock import lock_table
from flask_migrate_ext.apply.lock import LockTarget
from flask_migrate_ext.apply.lock import migration_lock
from flask_migrate_ext.settings import LOCK_TABLE
from helpers import AppFactory
from helpers import invoke
from helpers import ok
from helpers import run_switch_app
from helpers import table_names
from helpers import version_rows
from helpers import write_revision
from helpers import write_switch_apps

LEDGER = "flask_migrate_ext_log"
DONE = "The database can now be used with Flask-Migrate."


def upgraded_app(make_app: AppFactory, url: str, **config: t.Any) -> Flask:
    """An app whose database is at its one revision, with ``config`` set."""
    app = make_app(url)
    app.config.update(config)
    for args in (["init"], ["migrate", "-m", "initial"], ["upgrade"]):
        result = invoke(app, *args)
        assert result.exit_code == 0, result.output
    return app


def execute(url: str, statement: t.Any) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(statement)
    finally:
        engine.dispose()


def count_rows(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the command think it runs on a terminal (CliRunner has none)."""
    monkeypatch.setattr(
        flask_migrate_ext.cli.options, "stdin_is_terminal", lambda: True
    )


# -- what is dropped, what is kept ---------------------------------------------


def test_uninstall_keeps_app_tables_and_version(
    make_app: AppFactory, database_url: str
) -> None:
    app = upgraded_app(make_app, database_url)
    execute(database_url, sa.text("INSERT INTO employee (id, name) VALUES (1, 'a')"))
    version = version_rows(database_url)
    assert LEDGER in table_names(database_url, own=True)

    result = invoke(app, "uninstall", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Dropped {LEDGER} (1 row) from the default database.",
        DONE,
    ]
    assert table_names(database_url, own=True) == {"alembic_version", "employee"}
    assert version_rows(database_url) == version
    assert count_rows(database_url, "employee") == 1
    # Our own commands still see a database at head, and recreate the ledger.
    assert invoke(app, "check").exit_code == 0
    # The downgrade drops employee, which holds a row: confirmed.
    assert invoke(app, "downgrade", "--yes").exit_code == 0
    assert LEDGER in table_names(database_url, own=True)


def test_api_returns_what_was_dropped(make_app: AppFactory, sqlite_url: str) -> None:
    app = upgraded_app(make_app, sqlite_url)
    with app.app_context():
        planned = uninstall(dry_run=True)
        assert LEDGER in table_names(sqlite_url, own=True)
        dropped = uninstall()
        assert uninstall() == [UninstallResult("")]
    assert planned == dropped == [UninstallResult("", (DroppedTable(LEDGER, 1),))]
    assert table_names(sqlite_url, own=True) == {"alembic_version", "employee"}


def test_custom_ledger_name(make_app: AppFactory, sqlite_url: str) -> None:
    app = upgraded_app(make_app, sqlite_url, MIGRATE_LOG_TABLE="migration_log")
    assert "migration_log" in table_names(sqlite_url, own=True)
    result = invoke(app, "uninstall", "--yes")
    assert result.exit_code == 0, result.output
    assert "Dropped migration_log (1 row) from the default database." in result.stdout
    assert table_names(sqlite_url, own=True) == {"alembic_version", "employee"}


def test_nothing_to_drop(make_app: AppFactory, database_url: str) -> None:
    app = upgraded_app(make_app, database_url)
    assert invoke(app, "uninstall", "--yes").exit_code == 0
    for args in (["--yes"], ["--yes", "--no-lock"]):
        result = invoke(app, "uninstall", *args)
        assert result.exit_code == 0, result.output
        assert result.stdout == (
            "Nothing to drop: the database has no flask_migrate_ext tables;"
            " it can be used with Flask-Migrate as it is.\n"
        )
    assert table_names(database_url, own=True) == {"alembic_version", "employee"}


def test_nothing_to_drop_without_a_ledger(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = upgraded_app(make_app, sqlite_url, MIGRATE_LOG_TABLE=None)
    assert table_names(sqlite_url, own=True) == {"alembic_version", "employee"}
    result = invoke(app, "uninstall", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Nothing to drop:")


# -- asking first ----------------------------------------------------------------


def test_refuses_without_yes_when_no_terminal(
    make_app: AppFactory, database_url: str
) -> None:
    app = upgraded_app(make_app, database_url)
    result = invoke(app, "uninstall")
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert result.stderr == (
        "Error: uninstall drops the ledger, whose record of past runs is lost;"
        " there is no terminal to confirm on, so pass --yes.\n"
    )
    assert LEDGER in table_names(database_url, own=True)


@pytest.mark.usefixtures("terminal")
def test_asks_first_on_a_terminal(make_app: AppFactory, database_url: str) -> None:
    app = upgraded_app(make_app, database_url)
    listing = [
        "This drops:",
        f"  {LEDGER} (1 row) from the default database",
    ]
    prompt = "Drop them? The ledger's record of past runs is lost. [y/N]: "
    for answer in ("n\n", "\n"):  # no, and the default: no
        result = invoke(app, "uninstall", input=answer)
        assert result.exit_code == ExitCode.ERROR, result.output
        echoed = prompt + answer.strip()  # CliRunner echoes the input
        assert result.stdout.splitlines() == [*listing, echoed]
        assert "Aborted!" in result.stderr
        assert LEDGER in table_names(database_url, own=True)

    result = invoke(app, "uninstall", input="y\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        *listing,
        prompt + "y",
        f"Dropped {LEDGER} (1 row) from the default database.",
        DONE,
    ]
    assert table_names(database_url, own=True) == {"alembic_version", "employee"}

    # Nothing left: nothing to ask.
    result = invoke(app, "uninstall")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Nothing to drop:")


# -- refusing while a revision needs repair ----------------------------------------


@pytest.mark.usefixtures("terminal")
def test_refuses_while_a_revision_is_partially_applied(
    make_app: AppFactory, database_url: str
) -> None:
    app = upgraded_app(make_app, database_url)
    (rev,) = version_rows(database_url)
    # What a revision that stopped half-way on MariaDB leaves in the ledger.
    execute(
        database_url,
        ledger_table()
        .insert()
        .values(
            revision=rev,
            action="upgrade",
            status="running",
            partial=True,
            statements=2,
            started_at=utcnow(),
        ),
    )
    for args in (["--yes"], []):  # on a terminal, before asking
        result = invoke(app, "uninstall", *args)
        assert result.exit_code == ExitCode.PARTIALLY_APPLIED, result.output
        assert result.stdout == ""
        (message,) = result.stderr.splitlines()
        assert message.startswith(
            f"Error: The upgrade of revision {rev} was cut off (a process stopped"
        )
        assert f"'flask db resolve {rev} --rolled-back'" in message
        assert message.endswith(
            "Not uninstalling: the ledger is the only record of this."
        )
        assert LEDGER in table_names(database_url, own=True)

    assert invoke(app, "resolve", rev, "--applied").exit_code == 0
    result = invoke(app, "uninstall", "--yes")
    assert result.exit_code == 0, result.output
    assert f"Dropped {LEDGER} (2 rows) from the default database." in result.stdout


@pytest.mark.server
@pytest.mark.parametrize("backend", ["mariadb"])
def test_refuses_after_a_real_partial_failure(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    app = upgraded_app(make_app, database_url)
    (rev,) = version_rows(database_url)
    write_revision(
        tmp_path / "migrations" / "versions",
        "r2",
        rev,
        """
        op.create_table("t_half", sa.Column("n", sa.Integer))
        op.execute("SELECT * FROM no_such_table")
        """,
        'op.drop_table("t_half")',
    )
    assert invoke(app, "upgrade").exit_code == ExitCode.ERROR
    result = invoke(app, "uninstall", "--yes")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED, result.output
    assert "'flask db resolve r2 --rolled-back'" in result.stderr
    assert LEDGER in table_names(database_url, own=True)


# -- the migration lock ----------------------------------------------------------


def test_table_lock_mode_drops_the_lock_table(
    make_app: AppFactory, database_url: str
) -> None:
    app = upgraded_app(make_app, database_url, MIGRATE_LOCK="table")
    assert {LEDGER, LOCK_TABLE} <= table_names(database_url, own=True)
    result = invoke(app, "uninstall", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Dropped {LEDGER} (1 row) from the default database.",
        f"Dropped {LOCK_TABLE} (0 rows) from the default database.",
        DONE,
    ]
    assert table_names(database_url, own=True) == {"alembic_version", "employee"}


def test_waits_for_the_lock_and_no_lock_clears_a_stale_one(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = upgraded_app(make_app, sqlite_url, MIGRATE_LOCK="table")
    # A process that crashed while it held the table lock left its row.
    execute(
        sqlite_url,
        lock_table.insert().values(
            name="alembic_version", holder="pid 1 on gone", acquired_at=utcnow()
        ),
    )
    result = invoke(app, "uninstall", "--yes", "--lock-timeout", "0")
    assert result.exit_code == ExitCode.LOCK_TIMEOUT, result.output
    assert "held by pid 1 on gone" in result.stderr
    assert {LEDGER, LOCK_TABLE} <= table_names(sqlite_url, own=True)

    result = invoke(app, "uninstall", "--yes", "--no-lock")
    assert result.exit_code == 0, result.output
    assert f"Dropped {LOCK_TABLE} (1 row) from the default database." in (result.stdout)
    assert table_names(sqlite_url, own=True) == {"alembic_version", "employee"}


def test_takes_the_migration_lock(make_app: AppFactory, database_url: str) -> None:
    app = upgraded_app(make_app, database_url)
    engine = sa.create_engine(database_url)
    try:
        with migration_lock([LockTarget("", engine)], timeout=0):
            result = invoke(app, "uninstall", "--yes", "--lock-timeout", "0")
    finally:
        engine.dispose()
    assert result.exit_code == ExitCode.LOCK_TIMEOUT, result.output
    assert LEDGER in table_names(database_url, own=True)


# -- several databases -------------------------------------------------------------


def multidb_app(tmp_path: Path, main_url: str, users_url: str) -> Flask:
    app = Flask("multidb", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = main_url
    app.config["SQLALCHEMY_BINDS"] = {"users": users_url}
    db = SQLAlchemy(app)

    class Group(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    class User(db.Model):  # type: ignore[name-defined,misc]
        __bind_key__ = "users"
        id = sa.Column(sa.Integer, primary_key=True)

    Migrate(app, db)
    return app


@pytest.mark.parametrize(
    ("main_backend", "users_backend"),
    [
        ("sqlite", "sqlite"),
        pytest.param("postgresql", "mariadb", marks=pytest.mark.server),
    ],
)
def test_several_databases(
    make_database: t.Callable[[str], str],
    tmp_path: Path,
    main_backend: str,
    users_backend: str,
) -> None:
    main_url = make_database(main_backend)
    users_url = make_database(users_backend)
    app = multidb_app(tmp_path, main_url, users_url)
    try:
        for args in (["init", "--multidb"], ["migrate", "-m", "initial"], ["upgrade"]):
            result = invoke(app, *args)
            assert result.exit_code == 0, result.output
        versions = version_rows(main_url), version_rows(users_url)
        assert LEDGER in table_names(main_url, own=True)
        assert LEDGER in table_names(users_url, own=True)

        result = invoke(app, "uninstall", "--yes", "--bind", "users")
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            f"Dropped {LEDGER} (1 row) from database 'users'.",
            DONE,
        ]
        assert LEDGER in table_names(main_url, own=True)
        assert table_names(users_url, own=True) == {"alembic_version", "user"}

        result = invoke(app, "uninstall", "--yes")
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            f"Dropped {LEDGER} (1 row) from the default database.",
            "The databases can now be used with Flask-Migrate.",
        ]
        assert table_names(main_url, own=True) == {"alembic_version", "group"}
        assert (version_rows(main_url), version_rows(users_url)) == versions

        result = invoke(app, "uninstall", "--yes")
        assert result.stdout.startswith("Nothing to drop: the databases have no")
    finally:
        with app.app_context():
            for engine in app.extensions["sqlalchemy"].engines.values():
                engine.dispose()


@pytest.mark.server
def test_tenant_schemas(make_app: AppFactory, make_database: t.Any) -> None:
    url = make_database("postgresql")
    for schema in ("tenant_a", "tenant_b"):
        execute(url, sa.text(f"CREATE SCHEMA {schema}"))
    app = upgraded_app(make_app, url, MIGRATE_SCHEMAS=["tenant_a", "tenant_b"])

    def tables(schema: str) -> set[str]:
        engine = sa.create_engine(url)
        try:
            return set(sa.inspect(engine).get_table_names(schema=schema))
        finally:
            engine.dispose()

    assert LEDGER in tables("tenant_a") and LEDGER in tables("tenant_b")
    result = invoke(app, "uninstall", "--yes", "--schema", "tenant_b")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Dropped {LEDGER} (1 row) from schema 'tenant_b' of the default database.",
        DONE,
    ]
    assert tables("tenant_b") == {"alembic_version", "employee"}
    assert LEDGER in tables("tenant_a")

    result = invoke(app, "uninstall", "--yes")  # MIGRATE_SCHEMAS
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Dropped {LEDGER} (1 row) from schema 'tenant_a' of the default database.",
        DONE,
    ]
    assert tables("tenant_a") == {"alembic_version", "employee"}


# -- the switch, both ways, with real Flask-Migrate 4.1.0 processes --------------

Run = t.Callable[..., subprocess.CompletedProcess[str]]


def switch_apps(tmp_path: Path, url: str) -> tuple[Run, Run]:
    """Runners for ``app_fm`` (Flask-Migrate) and ``app_ext`` (this package),
    two apps with the same models on the same database and folder."""
    write_switch_apps(tmp_path)

    def runner(module: str) -> Run:
        def run(
            *args: str, email: bool = False, ok: bool = True
        ) -> subprocess.CompletedProcess[str]:
            done = run_switch_app(tmp_path, module, url, *args, email=email)
            if ok:
                assert done.returncode == 0, (
                    f"{done.args}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
                )
            return done

        return run

    return runner("app_fm"), runner("app_ext")


def revision_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "migrations" / "versions").glob("*.py"))


switch_backends = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.server)]
)


@switch_backends
def test_switch_back_to_flask_migrate_and_return(
    database_url: str, tmp_path: Path
) -> None:
    url = database_url
    fm, ext = switch_apps(tmp_path, url)

    # A folder made by Flask-Migrate, upgraded by flask_migrate_ext.
    fm("init")
    fm("migrate", "-m", "initial")
    (first,) = revision_files(tmp_path)
    rev1 = first.name.split("_")[0]
    ext("upgrade")
    assert LEDGER in table_names(url, own=True)

    # Without uninstall, Flask-Migrate's env.py compares the models with every
    # table in the database: the ledger is not in the models, so its check
    # finds a table to drop, and its migrate would write that drop.
    refused = fm("check", ok=False)
    assert refused.returncode != 0
    assert "remove_table" in refused.stdout + refused.stderr
    assert LEDGER in refused.stdout + refused.stderr
    fm("migrate", "-m", "before uninstall")
    (unwanted,) = [path for path in revision_files(tmp_path) if path != first]
    assert f"op.drop_table('{LEDGER}')" in unwanted.read_text()
    unwanted.unlink()

    result = ext("uninstall", "--yes")
    assert result.stdout.splitlines() == [
        f"Dropped {LEDGER} (1 row) from the default database.",
        DONE,
    ]
    assert table_names(url, own=True) == {"alembic_version", "employee"}
    assert version_rows(url) == [rev1]

    # Flask-Migrate 4.1.0 takes over: nothing to migrate, and it works.
    assert "No new upgrade operations detected." in fm("check").stdout
    assert "No changes in schema detected." in fm("migrate", "-m", "none").stderr
    assert revision_files(tmp_path) == [first]
    fm("migrate", "-m", "add email", email=True)
    (second,) = [path for path in revision_files(tmp_path) if path != first]
    rev2 = second.name.split("_")[0]
    source = second.read_text()
    assert "add_column" in source and "drop_table" not in source
    fm("upgrade", email=True)
    assert version_rows(url) == [rev2]
    fm("downgrade", email=True)
    assert version_rows(url) == [rev1]
    fm("upgrade", email=True)
    assert version_rows(url) == [rev2]
    assert table_names(url, own=True) == {"alembic_version", "employee"}

    # And back to flask_migrate_ext: its ledger is created again on the next
    # run, which works as before.
    result = ext("downgrade", email=True)
    assert f"Running downgrade {rev2} -> {rev1}, add email" in result.stderr
    assert LEDGER in table_names(url, own=True)
    # The new ledger first records what was there (rev1, rev2) as a
    # baseline, then the downgrade.
    assert count_rows(url, LEDGER) == 3
    ext("upgrade", email=True)
    assert version_rows(url) == [rev2]
    assert count_rows(url, LEDGER) == 4
    ok(ext("verify", email=True))
    assert ext("current", email=True).stdout.strip() == f"{rev2} (head)"
    assert "No new upgrade operations detected." in ext("check", email=True).stdout
    result = ext("migrate", "-m", "none", email=True)
    assert "No changes in schema detected." in result.stderr
    assert revision_files(tmp_path) == sorted([first, second])
    result = ext("uninstall", "--yes", email=True)
    assert f"Dropped {LEDGER} (4 rows) from the default database." in result.stdout
    assert "No new upgrade operations detected." in fm("check", email=True).stdout
