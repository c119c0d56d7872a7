"""User errors: one ``Error:`` line on stderr, the documented exit code, no
traceback, and nothing changed on disk or in the database."""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.cli import FlaskGroup
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import ExitCode
from flask_migrate_ext import Migrate
from flask_migrate_ext.cli import db as db_group
from helpers import invoke
from helpers import ok
from helpers import table_names
from helpers import version_rows

if t.TYPE_CHECKING:
    from click.testing import Result

    from helpers import AppFactory


def assert_user_error(result: Result, code: int, *fragments: str) -> str:
    """Check the shape of a user error and return its ``Error:`` line."""
    assert result.exit_code == code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    error_lines = [
        line for line in result.stderr.splitlines() if line.startswith("Error:")
    ]
    assert len(error_lines) == 1, result.stderr
    assert "Error:" not in result.stdout
    (line,) = error_lines
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def files_under(path: Path) -> dict[str, bytes]:
    """Contents of every file below ``path`` (bytecode and revision-graph
    caches left out)."""
    if not path.exists():
        return {}
    return {
        os.fspath(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
        and "__pycache__" not in p.parts
        and ".flask_migrate_ext" not in p.parts
    }


def db_state(url: str) -> tuple[set[str], list[str], dict[str, list[str]]]:
    """Tables, version rows and the columns of each table."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        columns = {
            name: sorted(
                f"{c['name']} {c['type']}" for c in inspector.get_columns(name)
            )
            for name in inspector.get_table_names()
        }
    finally:
        engine.dispose()
    return table_names(url), version_rows(url), columns


class Snapshot:
    """The migration folder and the database, to show an error changed neither."""

    def __init__(self, directory: Path, url: str | None) -> None:
        self.directory = directory
        self.url = url
        self.files = files_under(directory)
        self.db = db_state(url) if url else None

    def assert_unchanged(self) -> None:
        assert files_under(self.directory) == self.files
        if self.url:
            assert db_state(self.url) == self.db


def migrated_app(make_app: AppFactory, url: str) -> Flask:
    """An app with one revision, applied."""
    app = make_app(url)
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))
    return app


# --- revisions ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["upgrade", "downgrade", "stamp", "show", "edit"])
def test_unknown_revision(
    make_app: AppFactory, database_url: str, tmp_path: Path, command: str
) -> None:
    app = migrated_app(make_app, database_url)
    snapshot = Snapshot(tmp_path / "migrations", database_url)
    result = invoke(app, command, "zzz")
    assert_user_error(result, ExitCode.ERROR, "'zzz'")
    snapshot.assert_unchanged()


@pytest.mark.parametrize("command", ["upgrade", "stamp"])
def test_unknown_revision_leaves_fresh_database_empty(
    make_app: AppFactory, database_url: str, command: str
) -> None:
    app = make_app(database_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "revision", "-m", "first"))
    assert_user_error(invoke(app, command, "zzz"), ExitCode.ERROR, "'zzz'")
    assert "alembic_version" not in table_names(database_url)


def test_downgrade_at_base(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    snapshot = Snapshot(tmp_path / "migrations", sqlite_url)
    assert_user_error(invoke(app, "downgrade"), ExitCode.ERROR)
    snapshot.assert_unchanged()


def test_upgrade_with_two_heads(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "revision", "-m", "a", "--rev-id", "aaa"))
    ok(invoke(app, "revision", "-m", "b", "--rev-id", "bbb"))
    ok(
        invoke(
            app, "revision", "-m", "c", "--rev-id", "ccc", "--head", "aaa", "--splice"
        )
    )
    ok(invoke(app, "upgrade", "aaa"))
    snapshot = Snapshot(tmp_path / "migrations", sqlite_url)
    assert_user_error(invoke(app, "upgrade"), ExitCode.ERROR, "Multiple head revisions")
    snapshot.assert_unchanged()
    assert version_rows(sqlite_url) == ["aaa"]


def test_merge_with_one_head(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = migrated_app(make_app, sqlite_url)
    snapshot = Snapshot(tmp_path / "migrations", sqlite_url)
    assert_user_error(invoke(app, "merge"), ExitCode.ERROR, "one head")
    snapshot.assert_unchanged()


# --- database behind head / drift -------------------------------------------------


def test_migrate_when_not_up_to_date(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    app = make_app(database_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    app2 = make_app(
        database_url,
        columns={"name": sa.Column(sa.String(50)), "email": sa.Column(sa.String(80))},
    )
    snapshot = Snapshot(tmp_path / "migrations", database_url)
    result = invoke(app2, "migrate", "-m", "second")
    assert_user_error(
        result, ExitCode.NOT_UP_TO_DATE, "Target database is not up to date"
    )
    snapshot.assert_unchanged()

    result = invoke(app2, "check")
    assert_user_error(
        result, ExitCode.NOT_UP_TO_DATE, "Target database is not up to date"
    )
    snapshot.assert_unchanged()


def test_check_finds_drift(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    migrated_app(make_app, database_url)
    app2 = make_app(
        database_url,
        columns={"name": sa.Column(sa.String(50)), "email": sa.Column(sa.String(80))},
    )
    snapshot = Snapshot(tmp_path / "migrations", database_url)
    result = invoke(app2, "check")
    assert_user_error(result, ExitCode.SCHEMA_DRIFT, "flask db migrate")
    assert "+ column employee.email VARCHAR(80)" in result.stderr.splitlines()[-1]
    assert result.stdout == ""
    snapshot.assert_unchanged()


# --- the migration folder -----------------------------------------------------------


def test_init_over_existing_folder(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    env = tmp_path / "migrations" / "env.py"
    env.write_text("# edited by hand\n")
    snapshot = Snapshot(tmp_path / "migrations", None)
    result = invoke(app, "init")
    assert_user_error(result, ExitCode.ERROR, "'migrations'", "not empty")
    snapshot.assert_unchanged()
    assert env.read_text() == "# edited by hand\n"


def test_init_over_unrelated_files(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "notes.txt").write_text("mine")
    snapshot = Snapshot(tmp_path / "migrations", None)
    assert_user_error(invoke(app, "init"), ExitCode.ERROR, "not empty")
    snapshot.assert_unchanged()


def test_init_into_empty_folder_is_fine(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    (tmp_path / "migrations").mkdir()
    ok(invoke(app, "init"))
    assert (tmp_path / "migrations" / "env.py").is_file()


NEEDS_FOLDER = [
    ("upgrade",),
    ("downgrade",),
    ("migrate", "-m", "x"),
    ("revision", "-m", "x"),
    ("current",),
    ("check",),
    ("stamp", "head"),
    ("show",),
    ("history",),
    ("heads",),
    ("branches",),
    ("merge", "a", "b"),
    ("edit",),
]


@pytest.mark.parametrize("args", NEEDS_FOLDER, ids=lambda args: args[0])
def test_no_migration_folder(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    app = make_app(sqlite_url)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke(app, *args)
    assert_user_error(result, ExitCode.ERROR, "flask db init")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "migrations").exists()


@pytest.mark.parametrize("args", [("upgrade",), ("migrate",), ("heads",)])
def test_no_migration_folder_custom_command(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    app = make_app(sqlite_url, command="database", directory="migs")
    result = app.test_cli_runner().invoke(args=["database", *args])
    line = assert_user_error(result, ExitCode.ERROR, "flask database init")
    assert "flask db " not in line
    assert "'migs'" in line
    assert not (tmp_path / "migs").exists()


def test_init_unknown_template(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    result = invoke(app, "init", "-t", "nosuch")
    line = assert_user_error(result, ExitCode.ERROR, "'nosuch'")
    assert line.endswith(
        "Available templates: aioflask, aioflask-multidb, flask, flask-multidb."
    )
    assert not (tmp_path / "migrations").exists()


# --- the extension is missing or half set up ----------------------------------------


@pytest.mark.parametrize("command", ["init", "upgrade", "current", "check"])
def test_app_without_extension(tmp_path: Path, command: str) -> None:
    app = Flask("plain", root_path=os.fspath(tmp_path))
    result = app.test_cli_runner().invoke(db_group, [command])
    assert_user_error(result, ExitCode.USAGE, "Migrate(app, db)")
    assert list(tmp_path.iterdir()) == []


def test_app_without_extension_through_flask_command(tmp_path: Path) -> None:
    # "flask db" comes from the entry point; the app never called Migrate().
    app = Flask("plain", root_path=os.fspath(tmp_path))
    cli = FlaskGroup(create_app=lambda: app)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert_user_error(result, ExitCode.USAGE, "'plain'", "Migrate(app, db)")
    assert list(tmp_path.iterdir()) == []


def test_wrong_command_name_through_flask_command(tmp_path: Path) -> None:
    app = Flask("plain", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    Migrate(app, SQLAlchemy(app), command="database")
    cli = FlaskGroup(create_app=lambda: app)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert_user_error(result, ExitCode.USAGE, "flask database")


@pytest.mark.parametrize(
    "args",
    [
        ("upgrade",),
        ("downgrade",),
        ("migrate", "-m", "x"),
        ("current",),
        ("check",),
        ("stamp", "head"),
        ("upgrade", "--sql"),
    ],
    ids=lambda args: " ".join(args),
)
def test_migrate_without_db(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    # A working folder with one revision, made by a correctly set up app.
    ok(invoke(make_app(sqlite_url), "init"))
    ok(invoke(make_app(sqlite_url), "revision", "-m", "one"))

    app = Flask("nodb", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = sqlite_url
    Migrate(app)  # forgot the db
    snapshot = Snapshot(tmp_path / "migrations", sqlite_url)
    result = invoke(app, *args)
    assert_user_error(result, ExitCode.USAGE, "Migrate(app, db)")
    snapshot.assert_unchanged()


# --- option misuse --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [("migrate", "--sql"), ("revision", "--autogenerate", "--sql")]
)
def test_sql_with_autogenerate(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    app = migrated_app(make_app, sqlite_url)
    snapshot = Snapshot(tmp_path / "migrations", sqlite_url)
    result = invoke(app, *args)
    assert_user_error(
        result,
        ExitCode.ERROR,
        "Using --sql with --autogenerate does not make any sense",
    )
    assert result.stdout == ""
    snapshot.assert_unchanged()


# --- unreachable database -------------------------------------------------------------

UNREACHABLE = {
    "postgresql": "postgresql+psycopg://root:s3cretpw@127.0.0.1:1/test",
    "mariadb": "mysql+pymysql://root:s3cretpw@127.0.0.1:1/test",
}


@pytest.mark.parametrize("server", sorted(UNREACHABLE))
@pytest.mark.parametrize(
    "args",
    [
        ("upgrade",),
        ("downgrade",),
        ("migrate", "-m", "x"),
        ("current",),
        ("check",),
        ("stamp", "head"),
        ("history", "-i"),
    ],
    ids=lambda args: " ".join(args),
)
def test_unreachable_database(
    make_app: AppFactory, tmp_path: Path, server: str, args: tuple[str, ...]
) -> None:
    app = make_app(UNREACHABLE[server])
    ok(invoke(app, "init"))  # needs no connection
    ok(invoke(app, "revision", "-m", "one"))
    snapshot = Snapshot(tmp_path / "migrations", None)
    result = invoke(app, *args)
    line = assert_user_error(result, ExitCode.DATABASE_UNREACHABLE, "127.0.0.1:1")
    assert "s3cretpw" not in result.output
    assert "root:***@" in line
    snapshot.assert_unchanged()
