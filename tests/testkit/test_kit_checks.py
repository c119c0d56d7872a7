"""``flask db test`` and ``run_migration_checks``: a healthy history passes,
each planted fault is caught and names its revision, on SQLite and PostgreSQL;
the disposable databases are dropped and the app's own database is untouched."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_ext import api
from flask_migrate_ext import ExitCode
from flask_migrate_ext import MigrationChecksFailedError
from helpers import AppFactory
from helpers import invoke
from helpers import ok
from helpers import run_flask
from helpers import SERVER_URLS
from helpers import table_names
from helpers import write_revision

CREATE = """
op.create_table(
    "employee",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50)),
)
"""
DROP = 'op.drop_table("employee")'
ADD_EMAIL = 'op.add_column("employee", sa.Column("email", sa.String(80)))'
DROP_EMAIL = """
with op.batch_alter_table("employee") as batch:
    batch.drop_column("email")
"""


def with_email() -> dict[str, t.Any]:
    """``Employee``'s columns once ``r2`` added ``email`` (new objects each time)."""
    return {"name": sa.Column(sa.String(50)), "email": sa.Column(sa.String(80))}


@pytest.fixture(params=["sqlite", "postgresql"])
def kit_backend(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.param)


@pytest.fixture
def app_url(kit_backend: str, make_database: t.Callable[[str], str]) -> str:
    """The app's own database: the kit must leave it alone."""
    return make_database(kit_backend)


@pytest.fixture
def kit_url(kit_backend: str) -> str | None:
    """``--database``: the server (the kit makes its own database there), or
    ``None`` for a temporary SQLite file."""
    return None if kit_backend == "sqlite" else SERVER_URLS[kit_backend]


def history(
    make_app: AppFactory,
    url: str,
    tmp_path: Path,
    revisions: list[tuple[str, str | None, str, str]],
    columns: dict[str, t.Any] | None = None,
) -> Flask:
    """An app (``Employee`` with ``columns``) and a migrations folder holding
    ``revisions``: ``(id, down, upgrade, downgrade)``."""
    app = make_app(url, columns)
    ok(invoke(app, "init"))
    for revision, down, upgrade, downgrade in revisions:
        write_revision(
            tmp_path / "migrations" / "versions", revision, down, upgrade, downgrade
        )
    return app


HEALTHY = [
    ("r1", None, CREATE, DROP),
    ("r2", "r1", ADD_EMAIL, DROP_EMAIL),
]


def checks(app: Flask, kit_url: str | None) -> api.MigrationChecks:
    with app.app_context():
        return api.run_migration_checks(database_url=kit_url)


def leftover_databases(kit_backend: str) -> list[str]:
    if kit_backend == "sqlite":
        return []
    engine = sa.create_engine(SERVER_URLS[kit_backend])
    query = {
        "postgresql": "SELECT datname FROM pg_database",
        "mariadb": "SHOW DATABASES",
    }[kit_backend]
    try:
        with engine.connect() as connection:
            names = connection.exec_driver_sql(query).scalars().all()
    finally:
        engine.dispose()
    return [name for name in names if name.startswith("fmx_test_")]


def test_healthy_history_passes(
    make_app: AppFactory,
    app_url: str,
    kit_url: str | None,
    kit_backend: str,
    tmp_path: Path,
) -> None:
    app = history(make_app, app_url, tmp_path, HEALTHY, with_email())
    result = checks(app, kit_url)
    assert [c.status for c in result.checks] == ["passed"] * 5, result
    assert [c.name for c in result.checks] == list(api.CHECKS)
    assert result.revisions == 2
    result.raise_for_failures()  # nothing to raise
    assert table_names(app_url) == set()  # the app's database was not used
    assert leftover_databases(kit_backend) == []


def test_downgrade_that_forgets_a_column(
    make_app: AppFactory,
    app_url: str,
    kit_url: str | None,
    kit_backend: str,
    tmp_path: Path,
) -> None:
    revisions = [("r1", None, CREATE, DROP), ("r2", "r1", ADD_EMAIL, "pass")]
    app = history(make_app, app_url, tmp_path, revisions, with_email())
    result = checks(app, kit_url)
    stairway = result["stairway"]
    assert stairway.status == "failed"
    assert stairway.revision == "r2"
    assert "Downgrading r2 did not undo its upgrade" in stairway.message
    assert "column employee.email is still there" in stairway.message
    assert "r2.py" in stairway.message
    # The other checks still ran, on a fresh database.
    assert result["upgrade"].passed and result["models_match"].passed
    assert [c.name for c in result.failures] == ["stairway"]
    with pytest.raises(MigrationChecksFailedError, match=r"stairway \(at r2\)") as e:
        result.raise_for_failures()
    assert e.value.exit_code == ExitCode.CHECKS_FAILED == 13
    assert leftover_databases(kit_backend) == []


def test_model_not_migrated(
    make_app: AppFactory, app_url: str, kit_url: str | None, tmp_path: Path
) -> None:
    app = history(make_app, app_url, tmp_path, HEALTHY[:1], with_email())
    result = checks(app, kit_url)
    found = result["models_match"]
    assert found.status == "failed"
    assert found.revision == "r1"
    assert "email" in found.message and "flask db migrate" in found.message
    assert [c.name for c in result.failures] == ["models_match"]


def test_two_heads(
    make_app: AppFactory, app_url: str, kit_url: str | None, tmp_path: Path
) -> None:
    revisions = [
        ("r1", None, CREATE, DROP),
        ("r2", "r1", ADD_EMAIL, DROP_EMAIL),
        (
            "r3",
            "r1",
            'op.create_table("other", sa.Column("id", sa.Integer))',
            'op.drop_table("other")',
        ),
    ]
    app = history(make_app, app_url, tmp_path, revisions, with_email())
    result = checks(app, kit_url)
    found = result["single_head"]
    assert found.status == "failed"
    assert found.revision == "r2, r3"
    assert "2 heads: r2, r3" in found.message and "merge heads" in found.message
    # The walks go through both branches.
    assert result["stairway"].passed and result["downgrade_to_base"].passed


def test_downgrade_that_fails(
    make_app: AppFactory,
    app_url: str,
    kit_url: str | None,
    kit_backend: str,
    tmp_path: Path,
) -> None:
    revisions = [
        ("r1", None, CREATE, DROP),
        ("r2", "r1", ADD_EMAIL, 'op.drop_column("employee", "no_such_column")'),
    ]
    app = history(make_app, app_url, tmp_path, revisions, with_email())
    result = checks(app, kit_url)
    for name in ("stairway", "downgrade_to_base"):
        found = result[name]
        assert found.status == "failed", found
        assert found.revision == "r2"
        assert found.message.startswith("The downgrade of r2 failed:")
        assert "r2.py, line" in found.message
    assert result["upgrade"].passed
    assert leftover_databases(kit_backend) == []


def test_upgrade_that_fails_skips_what_needs_the_head(
    make_app: AppFactory, app_url: str, tmp_path: Path
) -> None:
    revisions = [
        ("r1", None, CREATE, DROP),
        ("r2", "r1", 'raise RuntimeError("boom")', "pass"),
    ]
    app = history(make_app, app_url, tmp_path, revisions)
    result = checks(app, None)
    statuses = {c.name: c.status for c in result.checks}
    assert statuses == {
        "single_head": "passed",
        "upgrade": "failed",
        "stairway": "skipped",
        "models_match": "skipped",
        "downgrade_to_base": "skipped",
    }
    assert result["upgrade"].message.startswith(
        "The upgrade of r2 failed: RuntimeError: boom"
    )


def test_cli_text_json_and_exit_code(
    make_app: AppFactory, app_url: str, kit_url: str | None, tmp_path: Path
) -> None:
    revisions = [("r1", None, CREATE, DROP), ("r2", "r1", ADD_EMAIL, "pass")]
    app = history(make_app, app_url, tmp_path, revisions, with_email())
    args = ["--database", kit_url] if kit_url else []
    result = invoke(app, "test", *args)
    assert result.exit_code == ExitCode.CHECKS_FAILED, result.output
    assert "FAILED   stairway" in result.stdout
    assert "column employee.email is still there" in result.stdout
    assert "Error: 1 migration check failed: stairway (at r2)." in result.stderr
    result = invoke(app, "test", "--json", *args)
    assert result.exit_code == ExitCode.CHECKS_FAILED
    document = json.loads(result.stdout)
    assert document["schema"] == 1 and document["command"] == "test"
    assert document["ok"] is False and document["exit_code"] == 13
    assert [c["name"] for c in document["checks"]] == list(api.CHECKS)
    stairway = document["checks"][2]
    assert stairway["status"] == "failed" and stairway["revision"] == "r2"
    if kit_url:
        assert "/fmx_test_" in document["database"]


def test_cli_in_a_subprocess_with_an_app_factory(tmp_path: Path) -> None:
    (tmp_path / "factory.py").write_text(
        f"REAL = 'sqlite:///{tmp_path / 'real.db'}'\n"
        "import sqlalchemy as sa\n"
        "from flask import Flask\n"
        "from flask_sqlalchemy import SQLAlchemy\n"
        "from flask_migrate_ext import Migrate\n"
        "db = SQLAlchemy()\n"
        "class Employee(db.Model):\n"
        "    id = sa.Column(sa.Integer, primary_key=True)\n"
        "    name = sa.Column(sa.String(50))\n"
        "def create_app():\n"
        "    app = Flask(__name__)\n"
        "    app.config['SQLALCHEMY_DATABASE_URI'] = REAL\n"
        "    db.init_app(app)\n"
        "    Migrate(app, db)\n"
        "    return app\n"
    )
    ok(run_flask(tmp_path, "--app", "factory:create_app", "db", "init"))
    write_revision(tmp_path / "migrations" / "versions", "r1", None, CREATE, DROP)
    done = ok(run_flask(tmp_path, "--app", "factory:create_app", "db", "test"))
    assert "5 passed" in done.stdout
    assert (
        not (tmp_path / "real.db").exists()
        or table_names(f"sqlite:///{tmp_path / 'real.db'}") == set()
    )


def test_unknown_check_and_bad_database_url(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = history(make_app, sqlite_url, tmp_path, HEALTHY[:1])
    with app.app_context(), pytest.raises(ValueError, match="Unknown check 'nope'"):
        api.run_migration_checks(checks=["nope"])
    result = invoke(app, "test", "--database", "oracle://scott:tiger@db/x")
    assert result.exit_code == 1
    assert "PostgreSQL, MariaDB, MySQL or SQLite URL" in result.stderr
    assert "tiger" not in result.stderr
    bad = "postgresql+psycopg://root:secret@127.0.0.1:1/test"
    result = invoke(app, "test", "--database", bad)
    assert result.exit_code == ExitCode.DATABASE_UNREACHABLE
    assert "secret" not in result.stderr and "***" in result.stderr


def test_only_some_checks(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = history(make_app, sqlite_url, tmp_path, HEALTHY, with_email())
    with app.app_context():
        result = api.run_migration_checks(checks=["single_head", "upgrade"])
    assert [c.name for c in result.checks] == ["single_head", "upgrade"]
    assert result.passed


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_database_option_creates_and_drops_a_database(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path, server: str
) -> None:
    revisions = [("r1", None, CREATE, DROP), ("r2", "r1", ADD_EMAIL, "pass")]
    app = history(make_app, sqlite_url, tmp_path, revisions, with_email())
    # make sure the server is there (skips when it is not)
    leftover_databases(server)
    result = invoke(app, "test", "--database", SERVER_URLS[server])
    assert result.exit_code == ExitCode.CHECKS_FAILED, result.output
    assert "column employee.email is still there" in result.stdout
    assert f"tested on {server}" in result.stdout or "fmx_test_" in result.stdout
    assert leftover_databases(server) == []
    assert table_names(sqlite_url) == set()
