"""The pytest plugin, used as a project would: a sample project's own test
suite run by ``python -m pytest`` in a subprocess; and its import cost."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import ok
from helpers import run_flask
from helpers import write_revision

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "flask_migrate_ext.testing.pytest_plugin"

APP = """\
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

db = SQLAlchemy()


class Employee(db.Model):
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(50))
    display = sa.Column(sa.String(50))


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///{real}"
    db.init_app(app)
    Migrate(app, db)
    return app
"""

TESTS = """\
import sqlalchemy as sa

from flask_migrate_ext.testing import TestMigrations  # noqa: F401


def test_backfill_of_display(migration_runner):
    migration_runner.upgrade("r1")
    migration_runner.insert("employee", [{"id": 1, "name": "ada"}, {"id": 2}])
    migration_runner.upgrade("r2")
    assert migration_runner.current() == ("r2",)
    rows = migration_runner.rows("employee")
    assert rows == [
        {"id": 1, "name": "ada", "display": "ADA"},
        {"id": 2, "name": None, "display": "?"},
    ]
    migration_runner.downgrade("r1")
    assert migration_runner.execute("SELECT id, name FROM employee ORDER BY id") == [
        (1, "ada"),
        (2, None),
    ]


def test_at_head(migrated_database):
    assert "employee" in sa.inspect(migrated_database).get_table_names()
"""

BACKFILL_DOWN = """
with op.batch_alter_table("employee") as batch:
    batch.drop_column("display")
"""


def _registered() -> bool:
    """Whether the installed distribution declares the plugin (an editable
    install made before the entry point was added does not)."""
    return any(
        entry.value == PLUGIN
        for entry in importlib.metadata.entry_points(group="pytest11")
    )


def sample_project(tmp_path: Path, downgrade_r2: str = BACKFILL_DOWN) -> Path:
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "app.py").write_text(APP.format(real=project / "real.db"))
    (project / "pytest.ini").write_text(
        "[pytest]\nflask_migrate_app = app:create_app\ntestpaths = tests\n"
    )
    (project / "tests" / "test_sample_migrations.py").write_text(TESTS)
    ok(run_flask(project, "--app", "app:create_app", "db", "init"))
    versions = project / "migrations" / "versions"
    create = """
    op.create_table(
        "employee",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50)),
    )
    """
    write_revision(versions, "r1", None, create, 'op.drop_table("employee")')
    backfill = """
    op.add_column("employee", sa.Column("display", sa.String(50)))
    employee = sa.table("employee", sa.column("name"), sa.column("display"))
    op.execute(
        employee.update().values(
            display=sa.func.coalesce(sa.func.upper(employee.c.name), "?")
        )
    )
    """
    write_revision(versions, "r2", "r1", backfill, downgrade_r2)
    return project


def run_pytest(project: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env["PYTHONPATH"] = os.pathsep.join([os.fspath(REPO), os.fspath(project)])
    plugin = [] if _registered() else ["-p", PLUGIN]
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_sample_project_passes(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    done = run_pytest(project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 passed" in done.stdout, done.stdout
    assert not (project / "real.db").exists()  # the app's database untouched


def test_sample_project_fails_on_a_planted_fault(tmp_path: Path) -> None:
    project = sample_project(tmp_path, downgrade_r2="pass")
    done = run_pytest(project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED tests/test_sample_migrations.py::TestMigrations::test_stairway" in (
        done.stdout
    )
    assert "stairway failed at r2" in done.stdout
    assert "column employee.display is still there" in done.stdout
    assert "6 passed" in done.stdout  # the data migration test still passes


def test_without_an_app_the_message_says_how(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    (project / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    done = run_pytest(project)
    assert done.returncode != 0
    assert "Define a 'migrate_app' fixture" in done.stdout + done.stderr


def test_entry_point_is_declared() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert f'[project.entry-points.pytest11]\nflask_migrate_ext = "{PLUGIN}"\n' in text


@pytest.mark.parametrize("module", [PLUGIN, "flask_migrate_ext.testing"])
def test_loading_the_plugin_imports_no_alembic(module: str) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        import {module}
        heavy = [m for m in ("alembic", "sqlalchemy") if m in sys.modules]
        print(heavy)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.fspath(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
