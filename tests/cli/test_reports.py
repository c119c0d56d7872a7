"""Errors that name what is wrong: a database revision the code does not
know, a revision file that cannot be loaded, an app that fails to load."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_ext import ExitCode
from helpers import invoke
from helpers import run_flask
from helpers import table_names
from helpers import version_rows
from helpers import write_revision

if t.TYPE_CHECKING:
    from helpers import AppFactory


def error_line(result: t.Any) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def set_version(url: str, revision: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE alembic_version SET version_num = :v"), {"v": revision}
            )
    finally:
        engine.dispose()


@pytest.fixture
def app(make_app: AppFactory, sqlite_url: str, tmp_path: Path) -> Flask:
    app = make_app(sqlite_url)
    assert invoke(app, "init").exit_code == 0
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        'op.create_table("t_one", sa.Column("n", sa.Integer))',
        'op.drop_table("t_one")',
    )
    return app


# -- the database is at a revision the code does not define -------------------

UNKNOWN_COMMANDS = [
    ("upgrade",),
    ("downgrade",),
    ("current",),
    ("check",),
    ("migrate", "-m", "x"),
    ("stamp", "head"),
    ("history", "-i"),
    ("show", "current"),
]


@pytest.mark.parametrize("args", UNKNOWN_COMMANDS, ids=lambda args: args[0])
def test_database_revision_unknown_to_the_code(
    app: Flask, sqlite_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    assert invoke(app, "upgrade").exit_code == 0
    set_version(sqlite_url, "deadbeef")
    before = table_names(sqlite_url, own=True)
    files = sorted((tmp_path / "migrations" / "versions").glob("*.py"))
    result = invoke(app, *args)
    assert result.exit_code == ExitCode.UNKNOWN_REVISION, result.output
    line = error_line(result)
    assert line.startswith(
        "Error: The database is at revision 'deadbeef', which no script in"
        " migrations/versions defines: is the code older than the database"
    ), line
    assert "'flask db stamp --purge <revision>'" in line
    # Nothing touched: version, tables, no revision file written.
    assert version_rows(sqlite_url) == ["deadbeef"]
    assert table_names(sqlite_url, own=True) == before
    assert sorted((tmp_path / "migrations" / "versions").glob("*.py")) == files


def test_a_typo_in_the_argument_is_not_blamed_on_the_database(
    app: Flask, sqlite_url: str
) -> None:
    assert invoke(app, "upgrade").exit_code == 0
    result = invoke(app, "upgrade", "nosuchrev")
    assert result.exit_code == ExitCode.ERROR
    assert "Can't locate revision identified by 'nosuchrev'" in error_line(result)


def test_stamp_purge_is_the_way_out(app: Flask, sqlite_url: str) -> None:
    assert invoke(app, "upgrade").exit_code == 0
    set_version(sqlite_url, "deadbeef")
    assert invoke(app, "stamp", "--purge", "r1").exit_code == 0
    assert version_rows(sqlite_url) == ["r1"]
    assert invoke(app, "current").exit_code == 0


@pytest.mark.parametrize("backend", ["postgresql"])
def test_unknown_revision_names_the_bind(
    make_multidb_app: t.Any,
    make_database: t.Callable[[str], str],
    backend: str,
) -> None:
    main_url = make_database("sqlite")
    users_url = make_database(backend)
    app = make_multidb_app({"": main_url, "users": users_url})
    assert invoke(app, "init", "--multidb").exit_code == 0
    assert invoke(app, "revision", "-m", "r1", "--rev-id", "r1").exit_code == 0
    assert invoke(app, "upgrade").exit_code == 0
    set_version(users_url, "deadbeef")
    for args in (("upgrade",), ("current",), ("check",)):
        result = invoke(app, *args)
        assert result.exit_code == ExitCode.UNKNOWN_REVISION, result.output
        assert "Database 'users' is at revision 'deadbeef'" in error_line(result)
    assert version_rows(main_url) == ["r1"]


# -- revision files that cannot be loaded -------------------------------------

BROKEN_FILES = {
    "name-error": (
        '"""r2"""\nrevision = "r2"\ndown_revision = "r1"\nx = undefined_name\n',
        ", line 4: cannot be loaded: NameError: name 'undefined_name' is not defined",
    ),
    "revision-none": (
        '"""r2"""\nrevision = None\ndown_revision = "r1"\n',
        ": cannot be loaded: its revision id is not set (revision = None)",
    ),
    "nul-bytes": (
        '"""r2"""\nrevision = "r2"\ndown_revision = "r1"\n\0\n',
        ": cannot be loaded: SyntaxError: source code string cannot contain null bytes",
    ),
    "import-error": (
        '"""r2"""\nimport no_such_module_for_fmx\nrevision = "r2"\n',
        ", line 2: cannot be loaded: ModuleNotFoundError: No module named"
        " 'no_such_module_for_fmx'",
    ),
}


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("kind", sorted(BROKEN_FILES))
@pytest.mark.parametrize("command", ["upgrade", "heads", "history", "current"])
def test_broken_revision_file_is_named(
    app: Flask,
    sqlite_url: str,
    tmp_path: Path,
    kind: str,
    cache: bool,
    command: str,
) -> None:
    app.config["MIGRATE_REVISION_CACHE"] = cache
    assert invoke(app, "upgrade").exit_code == 0  # the cache knows r1
    source, expected = BROKEN_FILES[kind]
    path = tmp_path / "migrations" / "versions" / "r2.py"
    path.write_text(source)
    result = invoke(app, command)
    assert result.exit_code == ExitCode.ERROR, result.output
    assert error_line(result) == f"Error: {path}{expected}"
    assert version_rows(sqlite_url) == ["r1"]


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_revision_without_upgrade_function(
    app: Flask, sqlite_url: str, tmp_path: Path, cache: bool
) -> None:
    app.config["MIGRATE_REVISION_CACHE"] = cache
    path = tmp_path / "migrations" / "versions" / "r2.py"
    path.write_text('"""r2"""\nrevision = "r2"\ndown_revision = "r1"\n')
    assert invoke(app, "heads").exit_code == 0  # declared well enough to list
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.ERROR, result.output
    line = error_line(result)
    assert line == (
        f"Error: Revision r2 cannot run: {path} has no upgrade() function."
    ), line
    # Found while planning: nothing ran, r1 included.
    assert version_rows(sqlite_url) == []
    assert "t_one" not in table_names(sqlite_url)


# -- the app fails to load ------------------------------------------------------

APP_RAISES = """\
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["FMX_NO_SUCH_VARIABLE"]
    Migrate(app, SQLAlchemy(app))
    return app
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_app_raising_while_it_loads(tmp_path: Path, verbose: bool) -> None:
    (tmp_path / "app.py").write_text(APP_RAISES)
    args = ["db", "--verbose", "upgrade"] if verbose else ["db", "upgrade"]
    result = run_flask(tmp_path, "--app", "app:create_app", *args)
    assert result.returncode == ExitCode.USAGE, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert (
        "Error: The app failed to load (app.py, line 9): KeyError:"
        " 'FMX_NO_SUCH_VARIABLE'"
    ) in lines
    assert "No such command" not in result.stderr
    if verbose:
        assert "Traceback (most recent call last)" in result.stderr
    else:
        assert lines[-1] == "Run 'flask db --verbose ...' to see the full traceback."
        assert len(lines) == 2, lines
