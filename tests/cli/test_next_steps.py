"""Messages a new user meets name the next step, as a command to type."""

from __future__ import annotations

import typing as t
from pathlib import Path

from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import ExitCode
from helpers import AppFactory
from helpers import invoke
from helpers import MultidbFactory
from helpers import ok
from helpers import version_rows
from helpers import write_revision


def test_init_says_what_to_do_next(make_app: AppFactory, sqlite_url: str) -> None:
    result = ok(invoke(make_app(sqlite_url), "init"))
    assert "Please edit" not in result.output
    assert "alembic.ini before proceeding" not in result.output
    assert result.stdout.endswith(
        "The database URL is read from the app's config, not alembic.ini."
        " Next: flask db migrate -m 'initial'\n"
    )
    # The files are Flask-Migrate's, unchanged.
    assert (Path("migrations") / "alembic.ini").is_file()


def test_upgrade_with_two_heads_suggests_merge(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "revision", "-m", "a", "--rev-id", "aaa"))
    ok(invoke(app, "revision", "-m", "b", "--rev-id", "bbb", "--head", "base"))
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.ERROR
    assert result.stderr.strip().endswith(
        "The heads are aaa, bbb: run 'flask db merge heads' to join them into"
        " one revision, then 'flask db upgrade'."
    )
    assert version_rows(sqlite_url) == []
    # The advice works.
    ok(invoke(app, "merge", "heads", "-m", "merge"))
    ok(invoke(app, "upgrade"))


def test_behind_head_names_revisions_and_upgrade(
    make_app: AppFactory, database_url: str
) -> None:
    app = make_app(database_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "revision", "-m", "one", "--rev-id", "r1"))
    ok(invoke(app, "upgrade"))
    ok(invoke(app, "revision", "-m", "two", "--rev-id", "r2"))
    for command in ("check", "migrate"):
        result = invoke(app, command)
        assert result.exit_code == ExitCode.NOT_UP_TO_DATE, result.output
        assert result.stderr.strip().splitlines()[-1] == (
            "Error: Target database is not up to date: the database is at r1;"
            " the head is r2. Run 'flask db upgrade' first, then"
            f" 'flask db {command}' again."
        )
    assert len(list(Path("migrations/versions").glob("*.py"))) == 2  # none written
    assert version_rows(database_url) == ["r1"]


def test_multidb_behind_head_names_each_database(
    make_multidb_app: MultidbFactory, make_database: t.Callable[[str], str]
) -> None:
    app = make_multidb_app(
        {"": make_database("sqlite"), "users": make_database("sqlite")}
    )
    ok(invoke(app, "init", "--multidb"))
    ok(invoke(app, "migrate", "-m", "initial", "--rev-id", "r1"))
    ok(invoke(app, "upgrade", "--bind", "users"))
    result = invoke(app, "check")
    assert result.exit_code == ExitCode.NOT_UP_TO_DATE
    assert (
        "Error: Target database is not up to date: the default database is at"
        " base (empty); the head is r1. Run 'flask db upgrade' first, then"
        " 'flask db check' again."
    ) in result.stderr


def test_tables_from_create_all_suggest_stamp(
    make_app: AppFactory, database_url: str
) -> None:
    app = make_app(database_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial", "--rev-id", "r1"))
    with app.app_context():
        db: SQLAlchemy = app.extensions["sqlalchemy"]
        db.create_all()
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.ERROR
    assert result.stderr.strip().splitlines()[-1] == (
        "  Table 'employee' was there before any revision ran (made by"
        " db.create_all()?). If the database already matches the models,"
        " record that with 'flask db stamp head' instead of upgrading."
    )
    assert version_rows(database_url) == []
    ok(invoke(app, "stamp", "head"))
    assert version_rows(database_url) == ["r1"]


def test_no_stamp_advice_when_a_revision_recreates_its_own_table(
    make_app: AppFactory, sqlite_url: str
) -> None:
    """Past the first revision, an existing table is the history's own doing."""
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    versions = Path("migrations/versions")
    create = 'op.create_table("t", sa.Column("n", sa.Integer))'
    write_revision(versions, "r1", None, create, 'op.drop_table("t")')
    write_revision(versions, "r2", "r1", create, "pass")
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.ERROR
    assert "already exists" in result.stderr
    assert "stamp head" not in result.stderr
    assert version_rows(sqlite_url) == ["r1"]


def test_multidb_current_names_each_database(
    make_multidb_app: MultidbFactory, make_database: t.Callable[[str], str]
) -> None:
    app = make_multidb_app(
        {"": make_database("sqlite"), "users": make_database("sqlite")}
    )
    ok(invoke(app, "init", "--multidb"))
    ok(invoke(app, "migrate", "-m", "initial", "--rev-id", "r1"))
    ok(invoke(app, "upgrade", "--bind", "users"))
    assert ok(invoke(app, "current")).stdout == (
        "Database <default>:\n<base>\nDatabase users:\nr1 (head)\n"
    )


def test_downgrade_by_a_negative_relative_revision(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    for rev in ("r1", "r2", "r3"):
        ok(invoke(app, "revision", "-m", rev, "--rev-id", rev))
    ok(invoke(app, "upgrade"))
    ok(invoke(app, "downgrade", "-2"))
    assert version_rows(sqlite_url) == ["r1"]
    ok(invoke(app, "upgrade", "+1", "--no-lock"))
    ok(invoke(app, "downgrade", "-1", "--tag", "-5", "--no-lock"))  # a value stays
    assert version_rows(sqlite_url) == ["r1"]
    ok(invoke(app, "upgrade"))
    ok(invoke(app, "downgrade", "--sql", "r3:-2"))
    result = invoke(app, "downgrade", "-9")
    assert result.exit_code == ExitCode.ERROR
    assert "Relative revision -9 didn't produce 9 migrations" in result.stderr
    assert version_rows(sqlite_url) == ["r3"]
    assert invoke(app, "downgrade", "--nope").exit_code == ExitCode.USAGE
    assert "REVISION" in ok(invoke(app, "downgrade", "--help")).stdout
