"""``flask db upgrade`` on a database at the head: answered without Alembic
(:mod:`flask_migrate_ext.apply.noop`) exactly when the full run would do
nothing, with the full run's output; every doubt goes the full way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import typing as t
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_ext import ExitCode
from flask_migrate_ext import RunResult
from flask_migrate_ext.apply import noop
from flask_migrate_ext.state import running
from helpers import AppFactory
from helpers import ignore_get_engine
from helpers import invoke
from helpers import MultidbFactory
from helpers import ok
from helpers import table_names
from helpers import version_rows
from helpers import write_revision

LEDGER = "flask_migrate_ext_log"


def add(versions: Path, *ids: str, after: str | None = None) -> None:
    """A line of revisions after ``after``, each creating a table."""
    down = after
    for revision in ids:
        write_revision(
            versions,
            revision,
            down,
            f"op.create_table('t_{revision}', sa.Column('id', sa.Integer))",
            f"op.drop_table('t_{revision}')",
        )
        down = revision


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def ledger(url: str) -> list[tuple[str, str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(f"SELECT revision, action, status FROM {LEDGER} ORDER BY id")
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


def quick(app: Flask, revision: str = "head", **options: t.Any) -> RunResult | None:
    """What the no-op answer says, without running anything else."""
    with app.app_context(), running(active=True):
        return noop.upgraded_already(None, revision, **options)


@pytest.fixture
def versions(tmp_path: Path) -> Path:
    return tmp_path / "migrations" / "versions"


@pytest.fixture
def app(make_app: AppFactory, database_url: str, versions: Path) -> Flask:
    """An app whose database is at r2, the head, upgraded by this package."""
    app = make_app(database_url)
    ok(invoke(app, "init"))
    add(versions, "r1", "r2")
    ok(invoke(app, "upgrade"))
    return app


def test_at_head_answers_as_the_full_run(app: Flask, database_url: str) -> None:
    found = quick(app)
    assert found == RunResult(steps=[], initial=("r2",))
    assert quick(app, "heads") == found
    tables = table_names(database_url, own=True)
    rows = ledger(database_url)
    fast = ok(invoke(app, "upgrade"))
    app.config["MIGRATE_REVISION_CACHE"] = False  # the full run
    assert quick(app) is None
    full = ok(invoke(app, "upgrade"))
    assert fast.stderr == full.stderr
    assert "Nothing to upgrade: the database is at r2." in fast.stderr
    assert fast.stdout == full.stdout == ""
    assert table_names(database_url, own=True) == tables
    assert ledger(database_url) == rows


def test_behind_or_ahead_takes_the_full_run(
    app: Flask, database_url: str, versions: Path
) -> None:
    ok(invoke(app, "downgrade"))
    assert quick(app) is None  # at r1
    ok(invoke(app, "upgrade"))
    assert version_rows(database_url) == ["r2"]
    assert quick(app) is not None
    # A revision file added after the cache was written: r3 is pending.
    add(versions, "r3", after="r2")
    assert quick(app) is None
    result = ok(invoke(app, "upgrade"))
    assert "Running upgrade r2 -> r3" in result.stderr
    assert version_rows(database_url) == ["r3"]
    assert quick(app) is not None
    # The database ahead of the code (a rolled-back deploy): the full run
    # reports the unknown revision.
    (versions / "r3.py").unlink()
    assert quick(app) is None
    assert invoke(app, "upgrade").exit_code == ExitCode.UNKNOWN_REVISION


def test_an_edited_revision_file_is_read_again(
    app: Flask, database_url: str, versions: Path
) -> None:
    """r2 rewritten in place into a revision after a new r2b: the database
    at r2 is behind, whatever the cache said of the old file."""
    assert quick(app) is not None
    add(versions, "r2b", after="r1")
    path = versions / "r2.py"
    path.write_text(
        path.read_text().replace("down_revision = 'r1'", "down_revision = 'r2b'")
    )
    assert quick(app) is None
    ok(invoke(app, "upgrade"))
    assert version_rows(database_url) == ["r2"]


def test_options_the_full_run_acts_on(app: Flask) -> None:
    assert quick(app) is not None
    assert quick(app, "r2") is None
    assert quick(app, "r1:r2") is None
    assert quick(app, sql=True) is None
    assert quick(app, tag="v1") is None
    assert quick(app, x_arg=["key=value"]) is None
    assert quick(app, schemas=["tenant"]) is None
    with app.app_context(), running(active=True, group_x_args=("key=value",)):
        assert noop.upgraded_already(None, "head") is None
    with app.app_context(), running(active=True, binds=("",)):
        assert noop.upgraded_already(None, "head") is None
    app.config["MIGRATE_SCHEMAS"] = ["tenant"]
    assert quick(app) is None


def test_what_env_py_could_change(app: Flask, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    env = folder / "env.py"
    original = env.read_text()
    env.write_text(original + "\n# edited\n")
    assert quick(app) is None
    env.write_text(original)
    assert quick(app) is not None
    ini = folder / "alembic.ini"
    text = ini.read_text()
    ini.write_text(text.replace("[alembic]", "[alembic]\nsourceless = true", 1))
    assert quick(app) is None
    ini.write_text(text)
    assert quick(app) is not None
    app.extensions["migrate"].migrate.configure(lambda config: config)
    assert quick(app) is None


def test_a_configure_callback_may_point_elsewhere(
    app: Flask, database_url: str, versions: Path, tmp_path: Path
) -> None:
    """The callback moves the scripts to another folder, where r3 is
    pending: only the full run sees it."""
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "migrations", other)
    add(other / "versions", "r3", after="r2")
    migrate = app.extensions["migrate"].migrate

    @migrate.configure
    def elsewhere(config: t.Any) -> t.Any:
        config.set_main_option("script_location", os.fspath(other))
        return config

    assert quick(app) is None
    ok(invoke(app, "upgrade"))
    assert version_rows(database_url) == ["r3"]


def test_revision_cache_off_or_missing(app: Flask, tmp_path: Path) -> None:
    cache = tmp_path / "migrations" / ".flask_migrate_ext" / "revision-graph.json"
    cache.unlink()
    assert quick(app) is None
    ok(invoke(app, "upgrade"))  # the full run writes it again
    assert cache.exists()
    assert quick(app) is not None
    app.config["MIGRATE_REVISION_CACHE"] = False
    assert quick(app) is None


def test_several_heads(app: Flask, versions: Path) -> None:
    add(versions, "r3", after="r1")
    ok(invoke(app, "upgrade", "heads"))
    assert quick(app, "heads") is None
    assert invoke(app, "upgrade").exit_code != 0  # "head" is ambiguous


def test_ledger_rows_that_stop_or_change_the_run(app: Flask, database_url: str) -> None:
    now = "'2025-01-01 00:00:00'"
    columns = "revision, action, status, partial, statements, started_at, host, pid"
    execute(
        database_url,
        f"INSERT INTO {LEDGER} ({columns}) VALUES ('r2', 'upgrade', 'failed',"
        f" {sa_false(database_url)}, 1, {now}, 'elsewhere', 1)",
    )
    assert quick(app) is not None  # a failure that was rolled back: no matter
    execute(
        database_url,
        f"INSERT INTO {LEDGER} ({columns}) VALUES ('r2', 'downgrade', 'running',"
        f" {sa_false(database_url)}, 0, {now}, 'elsewhere', 1)",
    )
    assert quick(app) is None  # running, or cut off: the full run decides
    execute(
        database_url,
        f"UPDATE {LEDGER} SET status = 'failed', partial = {sa_true(database_url)}"
        " WHERE status = 'running'",
    )
    assert quick(app) is None
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED, result.output


def sa_true(url: str) -> str:
    return "true" if url.startswith("postgresql") else "1"


def sa_false(url: str) -> str:
    return "false" if url.startswith("postgresql") else "0"


def test_a_foreign_table_with_the_ledgers_name(
    make_app: AppFactory, sqlite_url: str, versions: Path
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    add(versions, "r1")
    ok(invoke(app, "upgrade"))
    execute(sqlite_url, f"DROP TABLE {LEDGER}", f"CREATE TABLE {LEDGER} (x INTEGER)")
    assert quick(app) is None
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.USAGE
    assert "MIGRATE_LOG_TABLE" in result.stderr


def test_custom_version_table_and_ledger_off(
    make_app: AppFactory, sqlite_url: str, versions: Path
) -> None:
    app = make_app(sqlite_url, version_table="schema_versions")
    app.config["MIGRATE_LOG_TABLE"] = None
    ok(invoke(app, "init"))
    add(versions, "r1")
    ok(invoke(app, "upgrade"))
    assert quick(app) is not None
    # alembic_version at the head says nothing of schema_versions.
    execute(
        sqlite_url,
        "ALTER TABLE schema_versions RENAME TO alembic_version",
    )
    assert quick(app) is None


@ignore_get_engine
@pytest.mark.usefixtures("restore_logging")
def test_migrated_by_flask_migrate_before(
    make_app: AppFactory, database_url: str, versions: Path, tmp_path: Path
) -> None:
    """A database Flask-Migrate brought to the head, with its env.py: no
    ledger yet. The answer writes none (as the full run), and the next
    upgrade that applies a revision records the earlier ones as baseline."""
    app = make_app(database_url)
    ok(invoke(app, "init"))
    fm_env = Path(flask_migrate.__file__).parent / "templates" / "flask" / "env.py"
    shutil.copy(fm_env, tmp_path / "migrations" / "env.py")
    add(versions, "r1", "r2")
    ok(invoke(app, "upgrade"))
    execute(database_url, f"DROP TABLE {LEDGER}")
    assert quick(app) is not None
    ok(invoke(app, "upgrade"))
    assert LEDGER not in table_names(database_url, own=True)
    status = ok(invoke(app, "status"))
    assert status.stdout.endswith("Up to date.\n")
    assert "Revision r1 was applied before the ledger kept checksums" in status.stdout
    add(versions, "r3", after="r2")
    ok(invoke(app, "upgrade"))
    assert ledger(database_url) == [
        ("r1", "baseline", "applied"),
        ("r2", "baseline", "applied"),
        ("r3", "upgrade", "applied"),
    ]
    ok(invoke(app, "verify"))


def test_multidb_takes_the_full_run(
    make_multidb_app: MultidbFactory, tmp_path: Path
) -> None:
    binds = {
        "": f"sqlite:///{tmp_path / 'main.db'}",
        "users": f"sqlite:///{tmp_path / 'users.db'}",
    }
    app = make_multidb_app(binds)
    ok(invoke(app, "init", "--multidb"))
    ok(invoke(app, "migrate", "-m", "first"))
    ok(invoke(app, "upgrade"))
    assert quick(app) is None


def test_unreachable_database_is_said_once(
    make_app: AppFactory, versions: Path
) -> None:
    app = make_app("postgresql+psycopg://nobody:secret@127.0.0.1:1/nothing")
    ok(invoke(app, "init"))
    add(versions, "r1")
    ok(invoke(app, "heads"))  # writes the cache
    fast = invoke(app, "upgrade")
    app.config["MIGRATE_REVISION_CACHE"] = False
    full = invoke(app, "upgrade")
    assert fast.exit_code == full.exit_code == ExitCode.DATABASE_UNREACHABLE
    assert fast.stderr == full.stderr
    assert "secret" not in fast.stderr


def test_alembic_start_lines_known_for_each_dialect() -> None:
    from alembic.ddl import impl

    for name, (cls, transactional) in noop.IMPLS.items():
        found = impl.DefaultImpl.get_by_dialect(_Dialect(name))
        assert (found.__name__, found.transactional_ddl) == (cls, transactional)


class _Dialect:
    def __init__(self, name: str) -> None:
        self.name = name


APP = """
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["TEST_DATABASE_URL"]
app.config["MIGRATE_REVISION_CACHE"] = os.environ.get("TEST_CACHE") != "off"
db = SQLAlchemy(app)
Migrate(app, db)
"""

RUN = """
import sys
from flask.cli import main
sys.argv = ["flask", "db", "upgrade"]
try:
    main()
finally:
    print("alembic:", "alembic" in sys.modules, file=sys.stderr)
"""


def test_a_real_process_imports_no_alembic(
    tmp_path: Path, database_url: str, versions: Path
) -> None:
    (tmp_path / "app.py").write_text(APP)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
        "FLASK_APP": "app",
        "TEST_DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }

    def upgrade(**more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(RUN)],
            cwd=tmp_path,
            env={**env, **more},
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = subprocess.run(
        [sys.executable, "-m", "flask", "db", "init"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    ok(done)
    add(versions, "r1", "r2")
    first = ok(upgrade())
    assert first.stderr.endswith("alembic: True\n")  # there was work
    fast = ok(upgrade())
    full = ok(upgrade(TEST_CACHE="off"))
    assert fast.stderr.endswith("alembic: False\n")
    assert full.stderr.endswith("alembic: True\n")
    assert fast.stderr.replace("False", "True") == full.stderr
    assert "INFO  [alembic.runtime.migration] Context impl" in fast.stderr


@pytest.mark.usefixtures("restore_logging")
def test_a_broken_logging_setup_is_env_pys_error(
    make_app: AppFactory, sqlite_url: str, versions: Path, tmp_path: Path
) -> None:
    """The CLI's env.py applies alembic.ini's logging sections: a broken
    one fails the command, at the head too, as it fails the full run."""
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    add(versions, "r1")
    ok(invoke(app, "upgrade"))
    ini = tmp_path / "migrations" / "alembic.ini"
    ini.write_text(ini.read_text().replace("[handler_console]", "[handler_gone]"))
    assert quick(app) is not None  # outside the CLI, env.py reads no logging setup
    fast = invoke(app, "upgrade")
    app.config["MIGRATE_REVISION_CACHE"] = False
    full = invoke(app, "upgrade")
    assert fast.exit_code == full.exit_code != 0
    assert fast.stderr == full.stderr
