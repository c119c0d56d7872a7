"""Every ``flask db`` command and the ``Migrate`` options, run in-process."""

from __future__ import annotations

import os
import re
import stat
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import ExitCode
from flask_migrate_ext import Migrate
from helpers import invoke
from helpers import ok
from helpers import table_names
from helpers import version_rows

if t.TYPE_CHECKING:
    from alembic.config import Config
    from click.testing import Result

    from helpers import AppFactory


def revision_files(directory: Path) -> list[Path]:
    return sorted((directory / "versions").glob("*.py"))


def new_files(directory: Path, before: list[Path]) -> list[Path]:
    return [p for p in revision_files(directory) if p not in before]


def rev_of(path: Path) -> str:
    match = re.search(r"^revision: str = '([^']+)'", path.read_text(), re.M)
    assert match, path
    return match.group(1)


def column_types(url: str, table: str = "employee") -> dict[str, t.Any]:
    engine = sa.create_engine(url)
    try:
        return {c["name"]: c["type"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def name_column(length: int) -> dict[str, t.Any]:
    return {"name": sa.Column(sa.String(length))}


# --- app factory, directory, command name ------------------------------------


def test_app_factory(database_url: str, tmp_path: Path) -> None:
    # What a user's package would hold at module level.
    db = SQLAlchemy()
    migrate = Migrate()

    class Employee(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "employee"
        id = sa.Column(sa.Integer, primary_key=True)
        name = sa.Column(sa.String(50))

    made: list[Flask] = []

    def create_app() -> Flask:
        app = Flask("factoryapp", root_path=os.fspath(tmp_path))
        app.config["SQLALCHEMY_DATABASE_URI"] = database_url
        db.init_app(app)
        migrate.init_app(app, db, directory="factory_migrations")
        made.append(app)
        return app

    try:
        # One app per command, as the flask CLI builds it for each run.
        ok(invoke(create_app(), "init"))
        directory = tmp_path / "factory_migrations"
        assert (directory / "env.py").is_file()
        assert not (tmp_path / "migrations").exists()

        ok(invoke(create_app(), "migrate", "-m", "initial"))
        (first,) = revision_files(directory)
        assert "op.create_table('employee'" in first.read_text()
        rev = rev_of(first)

        ok(invoke(create_app(), "upgrade"))
        assert "employee" in table_names(database_url)
        assert version_rows(database_url) == [rev]

        result = ok(invoke(create_app(), "current"))
        assert result.stdout.strip() == f"{rev} (head)"

        ok(invoke(create_app(), "downgrade"))
        assert version_rows(database_url) == []
        assert "employee" not in table_names(database_url)
        assert ok(invoke(create_app(), "current")).stdout.strip() == ""
    finally:
        for app in made:
            with app.app_context():
                db.engine.dispose()


@pytest.mark.parametrize("as_path", [False, True], ids=["str", "Path"])
def test_custom_directory(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path, as_path: bool
) -> None:
    directory: str | Path = Path("tmp/migs") if as_path else "tmp/migs"
    app = make_app(sqlite_url, directory=directory)
    assert app.extensions["migrate"].directory == os.path.join("tmp", "migs")

    result = ok(invoke(app, "init"))
    where = tmp_path / "tmp" / "migs"
    assert str(where) in result.stdout
    names = {p.name for p in where.iterdir()}
    assert names == {"README", "alembic.ini", "env.py", "script.py.mako", "versions"}
    assert not (tmp_path / "migrations").exists()

    ok(invoke(app, "migrate", "-m", "initial"))
    (first,) = revision_files(where)
    ok(invoke(app, "upgrade"))
    assert version_rows(sqlite_url) == [rev_of(first)]
    assert ok(invoke(app, "heads")).stdout.strip() == f"{rev_of(first)} (head)"
    assert not (tmp_path / "migrations").exists()


def test_directory_option_overrides_default(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init", "-d", "elsewhere"))
    assert (tmp_path / "elsewhere" / "env.py").is_file()
    assert not (tmp_path / "migrations").exists()
    # The group option works for every subcommand.
    ok(invoke(app, "-d", "elsewhere", "migrate", "-m", "one"))
    assert len(revision_files(tmp_path / "elsewhere")) == 1
    ok(invoke(app, "upgrade", "-d", "elsewhere"))
    assert "employee" in table_names(sqlite_url)


def test_custom_command_name(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url, command="database")
    runner = app.test_cli_runner()

    def run(*args: str) -> Result:
        return runner.invoke(args=["database", *args])

    ok(run("init"))
    assert (tmp_path / "migrations" / "env.py").is_file()
    ok(run("migrate", "-m", "initial"))
    (first,) = revision_files(tmp_path / "migrations")
    ok(run("upgrade"))
    assert ok(run("current")).stdout.strip() == f"{rev_of(first)} (head)"

    # No "db" group on this app.
    result = invoke(app, "current")
    assert result.exit_code == 2
    assert "No such command 'db'" in result.stderr


# --- configure callbacks -------------------------------------------------------


def test_configure_callback_changes_config(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    migrate: Migrate = app.extensions["migrate"].migrate
    seen: list[Config] = []

    @migrate.configure
    def custom_file_template(config: Config) -> Config:
        config.set_main_option("file_template", "%%(rev)s_custom_%%(slug)s")
        seen.append(config)
        return config

    assert custom_file_template is not None  # the decorator returns the function
    ok(invoke(app, "init"))
    ok(invoke(app, "revision", "-m", "hello world", "--rev-id", "r1"))
    (path,) = revision_files(tmp_path / "migrations")
    assert path.name == "r1_custom_hello_world.py"
    assert seen, "the callback was not called"
    assert seen[-1].get_main_option("script_location") == "migrations"


def test_configure_callbacks_run_in_order(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url)
    migrate: Migrate = app.extensions["migrate"].migrate
    calls: list[str] = []

    @migrate.configure
    def first(config: Config) -> Config:
        calls.append("first")
        config.set_main_option("seen_by", "first")
        return config

    @migrate.configure
    def second(config: Config) -> Config:
        # Gets what the first one returned.
        calls.append("second:" + config.get_main_option("seen_by", ""))
        return config

    ok(invoke(app, "init"))
    calls.clear()
    ok(invoke(app, "heads"))
    assert calls == ["first", "second:first"]
    calls.clear()
    ok(invoke(app, "upgrade"))
    assert calls == ["first", "second:first"]


# --- compare_type / render_as_batch ------------------------------------------


def test_compare_type_detects_length_change(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    app = make_app(database_url, columns=name_column(50))
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))
    assert ok(invoke(app, "check")).exit_code == 0

    app2 = make_app(database_url, columns=name_column(100))
    result = invoke(app2, "check")
    assert result.exit_code == 3, result.output
    assert "~ type employee.name" in result.stderr
    assert "100" in result.stderr

    before = revision_files(tmp_path / "migrations")
    ok(invoke(app2, "migrate", "-m", "longer name"))
    (change,) = new_files(tmp_path / "migrations", before)
    assert "type_=sa.String(length=100)" in change.read_text()
    # Migrated but not applied: not up to date, no longer drift.
    assert invoke(app2, "check").exit_code == 4
    ok(invoke(app2, "upgrade"))
    assert ok(invoke(app2, "check")).stdout.strip() == (
        "No new upgrade operations detected."
    )
    assert column_types(database_url)["name"].length == 100


def test_compare_type_false_ignores_type_change(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url, columns=name_column(50), compare_type=False)
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))

    app2 = make_app(sqlite_url, columns=name_column(100), compare_type=False)
    ok(invoke(app2, "check"))
    before = revision_files(tmp_path / "migrations")
    result = ok(invoke(app2, "migrate", "-m", "nothing"))
    assert "No changes in schema detected." in result.stderr
    assert revision_files(tmp_path / "migrations") == before


def test_render_as_batch_on_sqlite(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    app = make_app(
        sqlite_url,
        columns={"name": sa.Column(sa.String(50)), "email": sa.Column(sa.String(80))},
    )
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))

    # Change a type and drop a column: SQLite has no ALTER for either.
    app2 = make_app(sqlite_url, columns={"name": sa.Column(sa.String(120))})
    before = revision_files(directory)
    ok(invoke(app2, "migrate", "-m", "alter"))
    (path,) = new_files(directory, before)
    text = path.read_text()
    upgrade_body = text.split("def upgrade()")[1].split("def downgrade()")[0]
    assert "with op.batch_alter_table('employee'" in upgrade_body
    assert "batch_op.drop_column('email')" in upgrade_body
    assert "batch_op.alter_column('name'" in upgrade_body
    assert "op.drop_column('employee'" not in upgrade_body

    ok(invoke(app2, "upgrade"))
    columns = column_types(sqlite_url)
    assert set(columns) == {"id", "name"}
    assert columns["name"].length == 120
    ok(invoke(app2, "check"))

    # And back again.
    ok(invoke(app2, "downgrade"))
    assert set(column_types(sqlite_url)) == {"id", "name", "email"}


def test_render_as_batch_false(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    columns = {"name": sa.Column(sa.String(50)), "email": sa.Column(sa.String(80))}
    app = make_app(sqlite_url, columns=columns, render_as_batch=False)
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    ok(invoke(app, "upgrade"))
    app2 = make_app(sqlite_url, columns=name_column(50), render_as_batch=False)
    before = revision_files(directory)
    ok(invoke(app2, "migrate", "-m", "drop email"))
    (path,) = new_files(directory, before)
    assert "op.drop_column('employee', 'email')" in path.read_text()
    assert "batch_alter_table" not in path.read_text()


# --- branches and merge --------------------------------------------------------


def make_branches(app: Flask) -> None:
    """History ``aaa`` -> ``bbb`` and ``aaa`` -> ``ccc``: two heads."""
    ok(invoke(app, "init"))
    ok(invoke(app, "revision", "-m", "base", "--rev-id", "aaa"))
    ok(invoke(app, "revision", "-m", "left", "--rev-id", "bbb", "--head", "aaa"))
    ok(
        invoke(
            app,
            "revision",
            "-m",
            "right",
            "--rev-id",
            "ccc",
            "--head",
            "aaa",
            "--splice",
        )
    )


def test_merge_named_revisions(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    make_branches(app)
    directory = tmp_path / "migrations"

    result = ok(invoke(app, "heads"))
    assert sorted(result.stdout.split("\n")[:2]) == ["bbb (head)", "ccc (head)"]

    result = invoke(app, "upgrade")
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "Multiple head revisions" in result.stderr
    assert version_rows(sqlite_url) == []

    before = revision_files(directory)
    result = ok(invoke(app, "merge", "-m", "m", "--rev-id", "mmm", "bbb", "ccc"))
    (merge_file,) = new_files(directory, before)
    assert merge_file.name == "mmm_m.py"
    assert "down_revision: str | Sequence[str] | None = ('bbb', 'ccc')" in (
        merge_file.read_text()
    )
    assert ok(invoke(app, "heads")).stdout.strip() == "mmm (head)"

    ok(invoke(app, "upgrade"))
    assert version_rows(sqlite_url) == ["mmm"]
    result = ok(invoke(app, "current"))
    assert result.stdout.strip() == "mmm (head) (mergepoint)"


def test_merge_without_arguments_merges_all_heads(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    make_branches(app)
    directory = tmp_path / "migrations"

    before = revision_files(directory)
    ok(invoke(app, "merge", "-m", "merge all"))
    (merge_file,) = new_files(directory, before)
    text = merge_file.read_text()
    # Not a second base, as Flask-Migrate would create.
    assert "down_revision: str | Sequence[str] | None = ('bbb', 'ccc')" in text
    assert "down_revision: str | Sequence[str] | None = None" not in text
    rev = rev_of(merge_file)
    assert ok(invoke(app, "heads")).stdout.strip() == f"{rev} (head)"
    ok(invoke(app, "upgrade"))
    assert version_rows(sqlite_url) == [rev]

    # One head left: nothing to merge.
    before = revision_files(directory)
    result = invoke(app, "merge")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert "one head" in line
    assert revision_files(directory) == before


# --- stamp ------------------------------------------------------------------------


def test_stamp(make_app: AppFactory, database_url: str, tmp_path: Path) -> None:
    app = make_app(database_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    (first,) = revision_files(tmp_path / "migrations")
    rev = rev_of(first)

    # Sets the version, runs nothing.
    ok(invoke(app, "stamp", "head"))
    assert version_rows(database_url) == [rev]
    assert table_names(database_url) == {"alembic_version"}
    assert ok(invoke(app, "current")).stdout.strip() == f"{rev} (head)"

    ok(invoke(app, "stamp", "base"))
    assert version_rows(database_url) == []
    assert table_names(database_url) == {"alembic_version"}

    # A version that no longer exists: plain stamp fails, --purge repairs it.
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO alembic_version (version_num) VALUES ('gone')")
            )
    finally:
        engine.dispose()
    result = invoke(app, "stamp", "head")
    assert result.exit_code == ExitCode.UNKNOWN_REVISION
    assert "gone" in result.stderr
    assert version_rows(database_url) == ["gone"]
    ok(invoke(app, "stamp", "--purge", "head"))
    assert version_rows(database_url) == [rev]


def test_stamp_sql(make_app: AppFactory, sqlite_url: str, tmp_path: Path) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "initial"))
    rev = rev_of(revision_files(tmp_path / "migrations")[0])
    tables = table_names(sqlite_url)
    result = ok(invoke(app, "stamp", "--sql", "head"))
    assert "CREATE TABLE alembic_version" in result.stdout
    assert f"INSERT INTO alembic_version (version_num) VALUES ('{rev}')" in (
        result.stdout
    )
    # Nothing ran.
    assert table_names(sqlite_url) == tables
    assert "employee" not in tables
    assert version_rows(sqlite_url) == []


# --- show, heads, branches, history, current ----------------------------------------


def test_show(make_app: AppFactory, sqlite_url: str, tmp_path: Path) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "revision", "-m", "first rev", "--rev-id", "aaa"))
    ok(invoke(app, "revision", "-m", "second rev", "--rev-id", "bbb"))
    directory = tmp_path / "migrations"

    result = ok(invoke(app, "show"))
    assert result.stdout.startswith("Rev: bbb (head)\nParent: aaa\n")
    assert f"Path: {directory / 'versions' / 'bbb_second_rev.py'}" in result.stdout
    assert "    second rev" in result.stdout

    result = ok(invoke(app, "show", "aaa"))
    assert result.stdout.startswith("Rev: aaa\nParent: <base>\n")
    assert "    first rev" in result.stdout

    # "current" reads the database: nothing yet, then aaa.
    assert ok(invoke(app, "show", "current")).stdout.strip() == ""
    ok(invoke(app, "upgrade", "aaa"))
    result = ok(invoke(app, "show", "current"))
    assert result.stdout.startswith("Rev: aaa\n")


def test_heads_and_branches(make_app: AppFactory, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    make_branches(app)

    result = ok(invoke(app, "heads", "-v"))
    assert "Rev: bbb (head)\nParent: aaa\n" in result.stdout
    assert "Rev: ccc (head)\nParent: aaa\n" in result.stdout
    assert "    left" in result.stdout
    assert "    right" in result.stdout

    result = ok(invoke(app, "branches"))
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "aaa (branchpoint)"
    assert sorted(line.strip() for line in lines[1:]) == [
        "-> bbb (head)",
        "-> ccc (head)",
    ]

    result = ok(invoke(app, "branches", "-v"))
    assert "Rev: aaa (branchpoint)" in result.stdout
    # Alembic keeps the children in a set: either order.
    assert re.search(r"^Branches into: (bbb, ccc|ccc, bbb)$", result.stdout, re.M)
    assert "-> bbb (head), left" in result.stdout


def test_history(make_app: AppFactory, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    for rev, message in [("aaa", "one"), ("bbb", "two"), ("ccc", "three")]:
        ok(invoke(app, "revision", "-m", message, "--rev-id", rev))

    result = ok(invoke(app, "history"))
    assert result.stdout.strip().splitlines() == [
        "bbb -> ccc (head), three",
        "aaa -> bbb, two",
        "<base> -> aaa, one",
    ]

    result = ok(invoke(app, "history", "-r", "base:bbb"))
    assert result.stdout.strip().splitlines() == [
        "aaa -> bbb, two",
        "<base> -> aaa, one",
    ]

    ok(invoke(app, "upgrade", "bbb"))
    result = ok(invoke(app, "history", "-i"))
    assert result.stdout.strip().splitlines() == [
        "bbb -> ccc (head), three",
        "aaa -> bbb (current), two",
        "<base> -> aaa, one",
    ]
    result = ok(invoke(app, "history", "-r", "current:"))
    assert result.stdout.strip().splitlines()[0] == "bbb -> ccc (head), three"

    result = ok(invoke(app, "history", "-v"))
    assert "Rev: ccc (head)\nParent: bbb\n" in result.stdout
    assert "Rev: aaa\nParent: <base>\n" in result.stdout
    assert "Revision ID: bbb" in result.stdout


def test_current_verbose(make_app: AppFactory, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "revision", "-m", "only", "--rev-id", "aaa"))
    ok(invoke(app, "upgrade"))
    result = ok(invoke(app, "current", "-v"))
    assert result.stdout.startswith(f"Current revision(s) for {sqlite_url}:\n")
    assert "Rev: aaa (head)" in result.stdout
    assert "    only" in result.stdout


# --- edit, list-templates, revision ------------------------------------------------


def test_edit(
    make_app: AppFactory,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "edited.txt"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\necho "$1" >> {log}\n')
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", os.fspath(editor))

    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    ok(invoke(app, "revision", "-m", "one", "--rev-id", "aaa"))
    ok(invoke(app, "revision", "-m", "two", "--rev-id", "bbb"))
    versions = tmp_path / "migrations" / "versions"

    ok(invoke(app, "edit"))
    assert log.read_text().splitlines() == [str(versions / "bbb_two.py")]
    ok(invoke(app, "edit", "aaa"))
    assert log.read_text().splitlines()[-1] == str(versions / "aaa_one.py")


def test_list_templates(make_app: AppFactory, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    result = ok(invoke(app, "list-templates"))
    assert result.stdout.startswith("Available templates:\n")
    assert "flask - Single-database configuration for Flask." in (
        result.stdout.splitlines()
    )


def test_list_templates_without_extension() -> None:
    from flask_migrate_ext.cli import db as db_group

    app = Flask("plain")
    result = app.test_cli_runner().invoke(db_group, ["list-templates"])
    ok(result)
    assert "flask - Single-database configuration for Flask." in result.stdout


def test_revision_autogenerate(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    result = ok(invoke(app, "revision", "--autogenerate", "-m", "initial"))
    (first,) = revision_files(directory)
    assert first.name.endswith("_initial.py")
    assert f"Generating {first}" in result.stdout
    assert "op.create_table('employee'" in first.read_text()
    ok(invoke(app, "upgrade"))

    # No change, no file: like migrate.
    result = ok(invoke(app, "revision", "--autogenerate", "-m", "again"))
    assert "No changes in schema detected." in result.stderr
    assert revision_files(directory) == [first]

    # Without --autogenerate an empty revision is always written.
    ok(invoke(app, "revision", "-m", "empty"))
    assert len(revision_files(directory)) == 2


def test_revision_rev_id_and_branch_label(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))

    ok(invoke(app, "revision", "--rev-id", "abc123", "-m", "x"))
    (path,) = revision_files(directory)
    assert path.name == "abc123_x.py"
    assert rev_of(path) == "abc123"

    ok(
        invoke(
            app, "revision", "-m", "feature", "--rev-id", "f1", "--branch-label", "feat"
        )
    )
    text = (directory / "versions" / "f1_feature.py").read_text()
    assert "branch_labels: str | Sequence[str] | None = ('feat',)" in text
    assert "down_revision: str | Sequence[str] | None = 'abc123'" in text
    assert ok(invoke(app, "heads")).stdout.strip() == "f1 (feat) (head)"

    # The label names the branch's head.
    ok(invoke(app, "revision", "-m", "more", "--rev-id", "f2", "--head", "feat@head"))
    assert ok(invoke(app, "heads")).stdout.strip() == "f2 (feat) (head)"
    ok(invoke(app, "upgrade", "feat@head"))
    assert version_rows(sqlite_url) == ["f2"]
