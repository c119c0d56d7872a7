"""``flask db ...`` run as a user runs it: ``python -m flask --app app db ...``
in a subprocess, against a small ``app.py`` written into ``tmp_path``.

These tests check what only a real process shows: which stream output goes
to, exit codes, environment variables read by Click, ``-x``/``--tag`` values
reaching env.py, and errors raised while Flask loads the app.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import typing as t
from pathlib import Path

import pytest

from helpers import invoke
from helpers import ok
from helpers import run_flask
from helpers import table_names
from helpers import version_rows

TIMEOUT = 30

APP_SOURCE = """\
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
db = SQLAlchemy(app)


class Employee(db.Model):
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(50))


Migrate(app, db{migrate_args})
"""

#: Appended to migrations/env.py: records what env.py received, one JSON
#: line per run, in the working directory.
RECORD_ENV_ARGS = """

import json as _json

with open("env_args.jsonl", "a") as _record:
    _record.write(
        _json.dumps(
            {
                "x": context.get_x_argument(),
                "x_dict": context.get_x_argument(as_dictionary=True),
                "tag": context.get_tag_argument(),
            }
        )
        + "\\n"
    )
"""

#: Revision id of the one revision in the prepared migration directory.
REV = "aaaa0001"

ALL_COMMANDS_FM = {
    "branches",
    "check",
    "current",
    "downgrade",
    "edit",
    "heads",
    "history",
    "init",
    "list-templates",
    "merge",
    "migrate",
    "revision",
    "show",
    "stamp",
    "upgrade",
}
#: Ours alone: mark a partially applied revision as dealt with, bring env.py
#: up to date, drop our own tables to switch back to Flask-Migrate, draw the
#: revision graph, say where each database stands, check applied scripts,
#: lint revision scripts, test the migrations.
ALL_COMMANDS = ALL_COMMANDS_FM | {
    "resolve",
    "upgrade-env",
    "uninstall",
    "graph",
    "status",
    "verify",
    "lint",
    "test",
}

D = {"-d", "--directory"}
X = {"-x", "--x-arg"}
V = {"-v", "--verbose"}
M = {"-m", "--message"}
NEW_REVISION = {"--sql", "--head", "--splice", "--branch-label", "--version-path"}
NEW_REVISION |= {"--rev-id"}

#: Option names of each subcommand in Flask-Migrate 4.1 (``--help`` aside),
#: and the usage line's arguments.
FLASK_MIGRATE_OPTIONS: dict[str, tuple[set[str], str]] = {
    "branches": (D | V, ""),
    "check": (D, ""),
    "current": (D | V, ""),
    "downgrade": (D | X | {"--sql", "--tag"}, " [REVISION]"),
    "edit": (D, " [REVISION]"),
    "heads": (D | V | {"--resolve-dependencies"}, ""),
    "history": (
        D | V | {"-r", "--rev-range", "-i", "--indicate-current"},
        "",
    ),
    "init": (D | {"--multidb", "-t", "--template", "--package"}, ""),
    "list-templates": (set(), ""),
    "merge": (D | M | {"--branch-label", "--rev-id"}, " [REVISIONS]..."),
    "migrate": (D | M | NEW_REVISION | X, ""),
    "revision": (D | M | NEW_REVISION | {"--autogenerate"}, ""),
    "show": (D, " [REVISION]"),
    "stamp": (D | {"--sql", "--tag", "--purge"}, " [REVISION]"),
    "upgrade": (D | X | {"--sql", "--tag"}, " [REVISION]"),
}


def write_app(directory: Path, url: str | None = None, migrate_args: str = "") -> Path:
    """Write ``app.py`` with one ``Employee`` model; SQLite in ``directory``
    unless ``url`` is given."""
    if url is None:
        url = sqlite_url(directory)
    path = directory / "app.py"
    path.write_text(APP_SOURCE.format(url=url, migrate_args=migrate_args))
    return path


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'app.db'}"


def flask(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m flask --app app <args>`` in ``cwd``."""
    return run_flask(cwd, "--app", "app", *args, env=env, timeout=TIMEOUT)


def env_runs(directory: Path) -> list[dict[str, t.Any]]:
    """What env.py recorded since the last call (the record is then reset)."""
    path = directory / "env_args.jsonl"
    if not path.exists():
        return []
    runs = [json.loads(line) for line in path.read_text().splitlines()]
    path.unlink()
    return runs


def options_in_help(text: str) -> set[str]:
    """Option names listed in the ``Options:`` section of a ``--help`` text."""
    names: set[str] = set()
    in_options = False
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            in_options = line.strip() == "Options:"
            continue
        spec = line.strip()
        if in_options and spec.startswith("-"):
            names.update(re.findall(r"--?[\w-]+", spec.split("  ")[0]))
    return names


def commands_in_help(text: str) -> set[str]:
    """Command names listed in the ``Commands:`` section of a ``--help`` text."""
    section = text.split("\nCommands:\n", 1)[1]
    return {line.split()[0] for line in section.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def prepared_migrations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migration directory made by ``init`` and ``migrate``, with one
    revision ``REV`` creating ``employee``; tests copy it."""
    directory = tmp_path_factory.mktemp("prepared")
    write_app(directory)
    ok(flask(directory, "db", "init"))
    ok(flask(directory, "db", "migrate", "-m", "initial", "--rev-id", REV))
    migrations = directory / "migrations"
    assert (migrations / "versions" / f"{REV}_initial.py").is_file()
    return migrations


def copy_migrations(
    prepared: Path, tmp_path: Path, name: str = "migrations", record: bool = False
) -> Path:
    target = tmp_path / name
    shutil.copytree(prepared, target, ignore=shutil.ignore_patterns("__pycache__"))
    if record:
        with open(target / "env.py", "a") as f:
            f.write(RECORD_ENV_ARGS)
    return target


# -- 1. The whole flow ---------------------------------------------------------


def test_flow_on_sqlite_and_output_streams(tmp_path: Path) -> None:
    write_app(tmp_path)
    url = sqlite_url(tmp_path)

    result = ok(flask(tmp_path, "db", "init"))
    assert f"Generating {tmp_path / 'migrations' / 'env.py'} ...  done" in (
        result.stdout
    )
    assert result.stderr == ""
    assert (tmp_path / "migrations" / "alembic.ini").is_file()

    result = ok(flask(tmp_path, "db", "migrate", "-m", "create employee"))
    (script,) = (tmp_path / "migrations" / "versions").glob("*.py")
    rev = script.name.split("_")[0]
    assert script.name == f"{rev}_create_employee.py"
    # The result on stdout, Alembic's INFO logs on stderr.
    assert result.stdout.strip() == f"Generating {script} ...  done"
    assert "Detected added table 'employee'" in result.stderr
    assert "Generating" not in result.stderr
    assert "INFO" not in result.stdout

    result = ok(flask(tmp_path, "db", "upgrade"))
    assert result.stdout == ""
    assert f"INFO  [alembic.runtime.migration] Running upgrade  -> {rev}" in (
        result.stderr
    )
    assert "employee" in table_names(url)
    assert version_rows(url) == [rev]

    result = ok(flask(tmp_path, "db", "current"))
    assert result.stdout == f"{rev} (head)\n"
    assert rev not in result.stderr
    assert all(line.startswith("INFO") for line in result.stderr.splitlines()), (
        result.stderr
    )

    result = ok(flask(tmp_path, "db", "history"))
    assert result.stdout == f"<base> -> {rev} (head), create employee\n"
    assert rev not in result.stderr

    result = ok(flask(tmp_path, "db", "downgrade", "base"))
    assert result.stdout == ""
    assert f"Running downgrade {rev} -> , create employee" in result.stderr
    assert "employee" not in table_names(url)
    assert version_rows(url) == []

    result = ok(flask(tmp_path, "db", "current"))
    assert result.stdout == ""


# -- 2. Help -------------------------------------------------------------------


def test_group_help_lists_all_commands(tmp_path: Path) -> None:
    write_app(tmp_path)
    result = ok(flask(tmp_path, "db", "--help"))
    assert result.stderr == ""
    assert "Perform database migrations." in result.stdout
    assert commands_in_help(result.stdout) == ALL_COMMANDS
    # Flask-Migrate's group options, plus our -v/--verbose for tracebacks and
    # --bind to choose databases.
    ours = {"-v", "--verbose", "--bind"}
    assert options_in_help(result.stdout) == D | X | ours | {"--help"}


#: Options Flask-Migrate lacks: the migration lock (see docs/deploying), and
#: the table-by-table comparison of ``migrate`` (docs/autogenerate).
OUR_EXTRA_OPTIONS = {
    **{
        command: {"--lock-timeout", "--no-lock", "--bind"}
        for command in ("upgrade", "downgrade", "stamp")
    },
    **{command: {"--bind"} for command in ("revision", "migrate", "current", "check")},
}
for command in ("upgrade", "downgrade", "current"):
    OUR_EXTRA_OPTIONS[command] = OUR_EXTRA_OPTIONS[command] | {"--schema"}
OUR_EXTRA_OPTIONS["migrate"] = OUR_EXTRA_OPTIONS["migrate"] | V
for command in ("current", "heads", "branches", "history", "show", "check"):
    OUR_EXTRA_OPTIONS[command] = OUR_EXTRA_OPTIONS.get(command, set()) | {"--json"}
# The data-loss guard's confirmation (docs/deploying) and the rename and NOT
# NULL assistants (docs/autogenerate).
for command in ("upgrade", "downgrade"):
    OUR_EXTRA_OPTIONS[command] = OUR_EXTRA_OPTIONS[command] | {"-y", "--yes"}
# The progress display (docs/deploying), silenced.
for command in ("upgrade", "downgrade"):
    OUR_EXTRA_OPTIONS[command] = OUR_EXTRA_OPTIONS[command] | {"-q", "--quiet"}
# Many targets at once (docs/deploying).
for command in ("upgrade", "downgrade", "current", "check"):
    OUR_EXTRA_OPTIONS[command] = OUR_EXTRA_OPTIONS[command] | {
        "-j",
        "--jobs",
        "--continue-on-error",
        "--schema",
    }
OUR_EXTRA_OPTIONS["migrate"] = OUR_EXTRA_OPTIONS["migrate"] | {
    "--rename",
    "--rename-table",
    "--default",
}


@pytest.mark.parametrize("command", sorted(FLASK_MIGRATE_OPTIONS))
def test_subcommand_help_has_flask_migrate_options(
    make_app: t.Any, sqlite_url: str, command: str
) -> None:
    app = make_app(sqlite_url)
    result = invoke(app, command, "--help")
    assert result.exit_code == 0, result.output
    options, arguments = FLASK_MIGRATE_OPTIONS[command]
    ours = OUR_EXTRA_OPTIONS.get(command, set())
    assert options_in_help(result.output) == options | ours | {"--help"}
    usage = result.output.splitlines()[0]
    assert usage.endswith(f" db {command} [OPTIONS]{arguments}"), usage


# -- 3. Environment variables --------------------------------------------------


def test_directory_from_environment(prepared_migrations: Path, tmp_path: Path) -> None:
    write_app(tmp_path)
    url = sqlite_url(tmp_path)
    env = {"FLASK_DB_DIRECTORY": "other"}

    result = ok(flask(tmp_path, "db", "init", env=env))
    assert (tmp_path / "other" / "env.py").is_file()
    assert not (tmp_path / "migrations").exists()
    assert str(tmp_path / "other" / "versions") in result.stdout

    revision = prepared_migrations / "versions" / f"{REV}_initial.py"
    shutil.copy(revision, tmp_path / "other" / "versions")
    ok(flask(tmp_path, "db", "upgrade", env=env))
    assert version_rows(url) == [REV]
    assert "employee" in table_names(url)

    # Without the variable, the default "migrations" is used (and missing).
    result = flask(tmp_path, "db", "current")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "migrations" in result.stderr
    assert "Traceback" not in result.stderr


def test_upgrade_x_arg_from_environment(
    prepared_migrations: Path, tmp_path: Path
) -> None:
    write_app(tmp_path)
    copy_migrations(prepared_migrations, tmp_path, record=True)

    ok(flask(tmp_path, "db", "upgrade", env={"FLASK_DB_UPGRADE_X_ARG": "a=1 b=2"}))
    (run,) = env_runs(tmp_path)
    assert run["x"] == ["a=1", "b=2"]
    assert run["x_dict"] == {"a": "1", "b": "2"}
    assert version_rows(sqlite_url(tmp_path)) == [REV]


# -- 4. -x reaches env.py, once ------------------------------------------------


def test_x_arg_reaches_env_py(prepared_migrations: Path, tmp_path: Path) -> None:
    write_app(tmp_path)
    url = sqlite_url(tmp_path)
    copy_migrations(prepared_migrations, tmp_path, record=True)

    # Flask-Migrate 4.1 passed group values twice: ['a=1', 'a=1'].
    ok(flask(tmp_path, "db", "-x", "a=1", "upgrade"))
    assert [run["x"] for run in env_runs(tmp_path)] == [["a=1"]]
    assert version_rows(url) == [REV]

    ok(flask(tmp_path, "db", "-x", "a=1", "upgrade", "-x", "b=2"))
    (run,) = env_runs(tmp_path)
    assert run["x"] == ["a=1", "b=2"]
    assert run["x_dict"] == {"a": "1", "b": "2"}

    ok(flask(tmp_path, "db", "-x", "a=1", "migrate", "-x", "m=3", "-m", "none"))
    assert [run["x"] for run in env_runs(tmp_path)] == [["a=1", "m=3"]]
    # The models match the database: no new revision file.
    assert len(list((tmp_path / "migrations" / "versions").glob("*.py"))) == 1

    ok(flask(tmp_path, "db", "-x", "a=1", "downgrade", "-x", "d=4"))
    assert [run["x"] for run in env_runs(tmp_path)] == [["a=1", "d=4"]]
    assert version_rows(url) == []


# -- 5. --sql and --tag --------------------------------------------------------


def test_upgrade_sql_prints_sql_and_leaves_database_alone(
    prepared_migrations: Path, tmp_path: Path
) -> None:
    write_app(tmp_path)
    url = sqlite_url(tmp_path)
    copy_migrations(prepared_migrations, tmp_path)

    result = ok(flask(tmp_path, "db", "upgrade", "--sql"))
    assert "CREATE TABLE alembic_version" in result.stdout
    assert "CREATE TABLE employee" in result.stdout
    assert f"-- Running upgrade  -> {REV}" in result.stdout
    assert re.search(rf"INSERT INTO alembic_version .*'{REV}'", result.stdout)
    assert "INFO" not in result.stdout
    assert "Generating static SQL" in result.stderr
    assert "CREATE TABLE" not in result.stderr
    assert table_names(url) == set()

    # The default revision -1 means head:-1 in --sql mode.
    result = ok(flask(tmp_path, "db", "downgrade", "--sql"))
    assert f"-- Running downgrade {REV} -> " in result.stdout
    assert "DROP TABLE employee" in result.stdout
    assert re.search(rf"DELETE FROM alembic_version .*'{REV}'", result.stdout)
    assert "Generating static SQL" in result.stderr
    assert table_names(url) == set()


def test_tag_reaches_env_py(prepared_migrations: Path, tmp_path: Path) -> None:
    write_app(tmp_path)
    copy_migrations(prepared_migrations, tmp_path, record=True)

    ok(flask(tmp_path, "db", "upgrade", "--tag", "release-1"))
    (run,) = env_runs(tmp_path)
    assert run["tag"] == "release-1"
    assert run["x"] == []
    assert version_rows(sqlite_url(tmp_path)) == [REV]


# -- 6. Errors while loading the app -------------------------------------------


def test_app_without_extension(tmp_path: Path) -> None:
    app_source = "from flask import Flask\n\napp = Flask(__name__)\n"
    (tmp_path / "app.py").write_text(app_source)
    result = flask(tmp_path, "db", "upgrade")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "does not use flask_migrate_ext" in result.stderr
    assert "Migrate(app, db)" in result.stderr
    assert "No such command" not in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_app_import_error(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from flask import Flask\n"
        "import no_such_module_for_fmx\n"
        "\n"
        "app = Flask(__name__)\n"
    )
    result = flask(tmp_path, "db", "upgrade")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    err = result.stderr
    assert "While importing 'app', an ImportError was raised" in err
    assert "No module named 'no_such_module_for_fmx'" in err
    assert "No such command" not in err
    assert "Usage:" not in err
    # Only the traceback Flask puts in its message: the import, in Flask's
    # locate_app, then app.py; nothing from click or flask_migrate_ext.
    assert err.count("Traceback (most recent call last)") == 1
    frames = [line for line in err.splitlines() if line.startswith('  File "')]
    assert len(frames) == 2, err
    assert "flask/cli.py" in frames[0] or "flask\\cli.py" in frames[0]
    assert str(tmp_path / "app.py") in frames[1]
    assert "flask_migrate_ext" not in err


def test_custom_command_name(prepared_migrations: Path, tmp_path: Path) -> None:
    write_app(tmp_path, migrate_args=', command="database"')
    copy_migrations(prepared_migrations, tmp_path)

    result = flask(tmp_path, "db", "upgrade")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "'flask database'" in result.stderr
    assert "No such command" not in result.stderr
    assert version_rows(sqlite_url(tmp_path)) == []

    ok(flask(tmp_path, "database", "upgrade"))
    result = ok(flask(tmp_path, "database", "current"))
    assert result.stdout == f"{REV} (head)\n"


# -- 7. Passwords are never shown ----------------------------------------------


@pytest.mark.parametrize("command", ["upgrade", "current"])
def test_unreachable_database_hides_password(
    prepared_migrations: Path, tmp_path: Path, command: str
) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    write_app(tmp_path, url="postgresql+psycopg://root:s3cretpw@127.0.0.1:1/test")
    copy_migrations(prepared_migrations, tmp_path)

    result = flask(tmp_path, "db", command)
    assert result.returncode == 7, (result.stdout, result.stderr)
    assert "s3cretpw" not in result.stdout
    assert "s3cretpw" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "Error: Cannot connect to postgresql+psycopg://root:***@127.0.0.1:1/test"
    )
    assert len(lines[0]) < 300
    assert result.stdout == ""
