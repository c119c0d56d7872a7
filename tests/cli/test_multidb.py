"""The ``flask-multidb`` template: each bind migrated, each table in its database."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask_migrate_ext import ExitCode
from helpers import invoke
from helpers import MultidbFactory
from helpers import table_names
from helpers import version_rows


def _versions(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "migrations" / "versions").glob("*.py"))


def _columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


server = pytest.mark.server


@pytest.mark.parametrize(
    ("default_backend", "users_backend"),
    [
        ("sqlite", "sqlite"),
        pytest.param("sqlite", "postgresql", marks=server),
        pytest.param("postgresql", "mariadb", marks=server),
    ],
)
def test_multidb_flow(
    make_multidb_app: MultidbFactory,
    make_database: t.Callable[[str], str],
    tmp_path: Path,
    default_backend: str,
    users_backend: str,
) -> None:
    main_url = make_database(default_backend)
    users_url = make_database(users_backend)
    app = make_multidb_app({"": main_url, "users": users_url})
    assert invoke(app, "init", "--multidb").exit_code == 0
    assert invoke(app, "migrate", "-m", "initial").exit_code == 0
    (script,) = _versions(tmp_path)
    source = script.read_text()
    assert "def upgrade_users() -> None:" in source
    assert "def upgrade_() -> None:" in source

    assert invoke(app, "upgrade").exit_code == 0
    assert table_names(main_url) == {"alembic_version", "group"}
    assert table_names(users_url) == {"alembic_version", "user"}
    rev = script.name.split("_")[0]
    assert version_rows(main_url) == version_rows(users_url) == [rev]
    assert invoke(app, "current").stdout == (
        f"Database <default>:\n{rev} (head)\nDatabase users:\n{rev} (head)\n"
    )

    # No change in either database: no file, and check agrees.
    assert invoke(app, "migrate", "-m", "nothing").exit_code == 0
    assert _versions(tmp_path) == [script]
    assert invoke(app, "check").exit_code == 0

    # A change on the users bind only: found by check, written to upgrade_users.
    app2 = make_multidb_app({"": main_url, "users": users_url}, user_email=True)
    result = invoke(app2, "check")
    assert result.exit_code == ExitCode.SCHEMA_DRIFT, result.output
    assert "+ column user.email VARCHAR(80)" in result.stderr
    assert invoke(app2, "migrate", "-m", "email").exit_code == 0
    (second,) = [p for p in _versions(tmp_path) if p != script]
    source = second.read_text()
    users_part = source.split("def upgrade_users() -> None:")[1].split("def ")[0]
    default_part = source.split("def upgrade_() -> None:")[1].split("def ")[0]
    assert "add_column" in users_part and "add_column" not in default_part
    assert invoke(app2, "upgrade").exit_code == 0
    assert _columns(users_url, "user") == {"id", "email"}
    assert invoke(app2, "check").exit_code == 0

    assert invoke(app2, "downgrade").exit_code == 0
    assert _columns(users_url, "user") == {"id"}
    assert version_rows(main_url) == version_rows(users_url) == [rev]
    assert invoke(app2, "downgrade", "base").exit_code == 0
    assert table_names(main_url) == {"alembic_version"}
    assert table_names(users_url) == {"alembic_version"}
    assert version_rows(main_url) == version_rows(users_url) == []


def test_offline_sql_per_database(
    make_multidb_app: MultidbFactory,
    make_database: t.Callable[[str], str],
    tmp_path: Path,
) -> None:
    main_url, users_url = make_database("sqlite"), make_database("sqlite")
    app = make_multidb_app({"": main_url, "users": users_url})
    assert invoke(app, "init", "--multidb").exit_code == 0
    assert invoke(app, "migrate", "-m", "initial").exit_code == 0
    rev = _versions(tmp_path)[0].name.split("_")[0]
    before = table_names(main_url), table_names(users_url)

    sql = invoke(app, "upgrade", "--sql", f"base:{rev}").stdout
    default_sql, users_sql = sql.split("-- Database: users")
    assert "-- Database: <default>" in default_sql
    assert 'CREATE TABLE "group"' in default_sql and "user" not in default_sql
    assert "CREATE TABLE user" in users_sql and '"group"' not in users_sql
    assert "INSERT INTO alembic_version" in users_sql
    # Nothing ran.
    assert (table_names(main_url), table_names(users_url)) == before

    sql = invoke(app, "downgrade", "--sql", f"{rev}:base").stdout
    assert 'DROP TABLE "group"' in sql and "DROP TABLE user" in sql


def test_bind_named_in_a_revision_but_not_configured(
    make_multidb_app: MultidbFactory,
    make_database: t.Callable[[str], str],
    tmp_path: Path,
) -> None:
    main_url, users_url = make_database("sqlite"), make_database("sqlite")
    app = make_multidb_app({"": main_url, "users": users_url})
    assert invoke(app, "init", "--multidb").exit_code == 0
    assert invoke(app, "migrate", "-m", "initial").exit_code == 0
    rev = _versions(tmp_path)[0].name.split("_")[0]

    # Deployed without the users bind: refuse, rather than skip its tables.
    lonely = make_multidb_app({"": main_url}, user_model=False)
    for command in (["upgrade"], ["upgrade", "--sql"], ["migrate"], ["check"]):
        result = invoke(lonely, *command)
        assert result.exit_code == ExitCode.ERROR, (command, result.output)
        (line,) = result.stderr.splitlines()
        assert line.startswith(
            f"Error: Database not configured: revision {rev} migrates database"
            " 'users' (upgrade_users()), which the app does not configure"
            " (configured: <default>)."
        )
    assert table_names(main_url) == {"alembic_version"}
    assert version_rows(main_url) == []


def test_bind_added_after_the_revisions(
    make_multidb_app: MultidbFactory,
    make_database: t.Callable[[str], str],
    tmp_path: Path,
) -> None:
    main_url, users_url = make_database("sqlite"), make_database("sqlite")
    app = make_multidb_app({"": main_url}, user_model=False)
    assert invoke(app, "init", "--multidb").exit_code == 0
    assert invoke(app, "migrate", "-m", "initial").exit_code == 0
    (first,) = _versions(tmp_path)
    assert "upgrade_users" not in first.read_text()
    # A Flask-Migrate revision file looks its functions up strictly.
    source = first.read_text().replace(
        'globals().get(f"upgrade_{engine_name}", _nothing_to_do)()',
        'globals()["upgrade_%s" % engine_name]()',
    )
    first.write_text(source)

    # The old revision has nothing to do on the new database, and runs there.
    app2 = make_multidb_app({"": main_url, "users": users_url})
    result = invoke(app2, "upgrade")
    assert result.exit_code == 0, result.output
    rev = first.name.split("_")[0]
    assert version_rows(users_url) == version_rows(main_url) == [rev]
    assert invoke(app2, "migrate", "-m", "users").exit_code == 0
    assert invoke(app2, "upgrade").exit_code == 0
    assert table_names(users_url) == {"alembic_version", "user"}
    assert table_names(main_url) == {"alembic_version", "group"}
    assert invoke(app2, "downgrade", "base").exit_code == 0
    assert table_names(users_url) == table_names(main_url) == {"alembic_version"}


def test_unreachable_bind_is_named_and_masked(
    make_multidb_app: MultidbFactory,
    make_database: t.Callable[[str], str],
) -> None:
    main_url = make_database("sqlite")
    # Nothing listens on port 1: the connection is refused at once.
    users_url = "postgresql+psycopg://scott:tiger@127.0.0.1:1/nowhere"
    app = make_multidb_app({"": main_url, "users": users_url})
    assert invoke(app, "init", "--multidb").exit_code == 0
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.DATABASE_UNREACHABLE, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "Error: Cannot connect to database 'users' at"
        " postgresql+psycopg://scott:***@127.0.0.1:1/nowhere: "
    )
    assert "tiger" not in result.output
    # All or nothing: the reachable database was not touched either.
    assert table_names(main_url) == set()


def test_migrate_verbose_names_each_database(
    make_multidb_app: MultidbFactory, make_database: t.Callable[[str], str]
) -> None:
    binds = {"": make_database("sqlite"), "users": make_database("sqlite")}
    app = make_multidb_app(binds)
    assert invoke(app, "init", "--multidb").exit_code == 0
    result = invoke(app, "migrate", "-v", "-m", "initial")
    assert result.exit_code == 0, result.output
    assert "Compared 1 table of database '<default>':\n  + table group\n" in (
        result.stderr
    )
    assert "Compared 1 table of database 'users':\n  + table user\n" in result.stderr
    assert invoke(app, "upgrade").exit_code == 0

    result = invoke(app, "migrate", "-v", "-m", "nothing")
    assert result.exit_code == 0, result.output
    assert "of database 'users':\n  user: in sync\n" in result.stderr
    assert "The models' 2 tables (group, user) match the database." in result.stderr
