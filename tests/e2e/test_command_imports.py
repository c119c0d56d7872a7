"""What a ``flask db`` process imports: each command loads the modules it
uses, not every feature's. Memory is the reason (each module's code stays
for the life of the process); the benchmark measures it, this keeps it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ok
from helpers import run_flask
from helpers import write_revision

APP = """\
import atexit
import json
import sys

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///app.db"
db = SQLAlchemy(app)
Migrate(app, db)


class T(db.Model):
    __tablename__ = "t"
    id = db.Column(db.Integer, primary_key=True)


def _loaded():
    with open("loaded.json", "w") as f:
        json.dump(sorted(sys.modules), f)


atexit.register(_loaded)
"""

#: Not imported by any command on SQLite without ``--jobs``.
NEVER = [
    "multiprocessing",
    "sqlalchemy.dialects.mysql",
    "flask_migrate_ext.api.pool",
    "flask_migrate_ext.api.lint",
    "flask_migrate_ext.api.drawing",
    "flask_migrate_ext.linting",
    # Mako's HTML error pages' highlighting (see cli.collector).
    "pygments",
]
#: Only for running revisions, and for a run that failed or was cut off.
RUNNING = [
    "flask_migrate_ext.apply.runner",
    "flask_migrate_ext.apply.dataloss",
    "flask_migrate_ext.apply.failures",
]
FAILURES = [
    "flask_migrate_ext.scripts.recorder",
    "flask_migrate_ext.scripts.operations",
]


def loaded_by(folder: Path, *args: str) -> set[str]:
    ok(run_flask(folder, "--app", "app", "db", *args))
    return set(json.loads((folder / "loaded.json").read_text()))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    ok(run_flask(tmp_path, "--app", "app", "db", "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        "op.create_table('t', sa.Column('id', sa.Integer, primary_key=True),"
        " sa.Column('c', sa.Integer))",
        "op.drop_table('t')",
    )
    write_revision(versions, "r2", "r1", "op.drop_column('t', 'c')", "pass")
    return tmp_path


def test_upgrade_imports_what_it_runs(project: Path) -> None:
    loaded = loaded_by(project, "upgrade")
    assert set(RUNNING) <= loaded  # the test sees what it should
    assert not loaded & {*NEVER, *FAILURES}


def test_downgrade_imports_what_it_runs(project: Path) -> None:
    ok(run_flask(project, "--app", "app", "db", "upgrade"))
    loaded = loaded_by(project, "downgrade", "base", "--yes")
    assert set(RUNNING) <= loaded
    assert not loaded & {*NEVER, *FAILURES}


@pytest.mark.parametrize("command", ["current", "check", "history"])
def test_reading_commands_import_no_runner(project: Path, command: str) -> None:
    ok(run_flask(project, "--app", "app", "db", "upgrade"))
    args = [command, "-v"] if command == "history" else [command]
    loaded = loaded_by(project, *args)
    assert "flask_migrate_ext.api" in loaded
    assert not loaded & {*NEVER, *RUNNING, *FAILURES}


def test_helpers_see_a_module_that_is_imported(project: Path) -> None:
    """The check above can fail: a module imported on purpose shows."""
    (project / "app.py").write_text(APP + "\nimport multiprocessing\n")
    assert "multiprocessing" in loaded_by(project, "current")


MAKO = """\
import sys
from flask_migrate_ext.cli.collector import without_mako_highlighting

with without_mako_highlighting():
    import mako.exceptions
print("pygments" in sys.modules, mako.exceptions.pygments_html_formatter is None)
import mako.ext.pygmentplugin
print("pygments" in sys.modules)
"""


def test_mako_without_highlighting_only_while_a_command_runs() -> None:
    pytest.importorskip("pygments")
    done = ok(
        subprocess.run(
            [sys.executable, "-c", MAKO], capture_output=True, text=True, timeout=60
        )
    )
    assert done.stdout.split() == ["False", "True", "True"]
