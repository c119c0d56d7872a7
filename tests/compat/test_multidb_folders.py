"""Multi-database folders move both ways between Flask-Migrate 4.1.0 and us.

Real ``flask db`` subprocesses, one app module per tool with the same models
on two SQLite files: ``Group`` on the default database, ``User`` on the
``users`` bind.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import run_flask
from helpers import table_names
from helpers import version_rows

APP_MODULE = """\
import os

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
{import_line}

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["FMX_MAIN_URL"]
app.config["SQLALCHEMY_BINDS"] = {{"users": os.environ["FMX_USERS_URL"]}}
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Group(db.Model):
    id = sa.Column(sa.Integer, primary_key=True)


class User(db.Model):
    __bind_key__ = "users"
    id = sa.Column(sa.Integer, primary_key=True)
    if os.environ.get("FMX_WITH_EMAIL"):
        email = sa.Column(sa.String(80))
"""

# Only Flask-Migrate's multidb env.py writes offline SQL to one file per database.
FLASK_MIGRATE_MULTIDB_LINE = 'file_ = "%s.sql" % name'


def _setup(tmp_path: Path) -> dict[str, str]:
    for module, import_line in [
        ("app_fm", "from flask_migrate import Migrate"),
        ("app_ext", "from flask_migrate_ext import Migrate"),
    ]:
        source = APP_MODULE.format(import_line=import_line)
        (tmp_path / f"{module}.py").write_text(source)
    return {
        "FMX_MAIN_URL": f"sqlite:///{tmp_path / 'main.db'}",
        "FMX_USERS_URL": f"sqlite:///{tmp_path / 'users.db'}",
    }


def _flask(
    tmp_path: Path, env: dict[str, str], module: str, *args: str, email: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {**env, **({"FMX_WITH_EMAIL": "1"} if email else {})}
    result = run_flask(tmp_path, "--app", module, "db", *args, env=env, timeout=120)
    assert result.returncode == 0, (
        f"{result.args}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def _revisions(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "migrations" / "versions").glob("*.py"))


def test_flask_migrate_multidb_folder_works_under_flask_migrate_ext(
    tmp_path: Path,
) -> None:
    env = _setup(tmp_path)
    main_url, users_url = env["FMX_MAIN_URL"], env["FMX_USERS_URL"]
    _flask(tmp_path, env, "app_fm", "init", "--multidb")
    env_py = tmp_path / "migrations" / "env.py"
    assert FLASK_MIGRATE_MULTIDB_LINE in env_py.read_text()
    _flask(tmp_path, env, "app_fm", "migrate", "-m", "initial")
    (first,) = _revisions(tmp_path)
    rev1 = first.name.split("_")[0]

    def ext(*args: str) -> subprocess.CompletedProcess[str]:
        return _flask(tmp_path, env, "app_ext", *args, email=True)

    ext("upgrade")
    assert table_names(main_url) == {"alembic_version", "group"}
    assert table_names(users_url) == {"alembic_version", "user"}
    assert version_rows(main_url) == version_rows(users_url) == [rev1]

    # The email column is on the users bind only; autogenerate puts it there.
    ext("migrate", "-m", "email")
    (second,) = [p for p in _revisions(tmp_path) if p != first]
    rev2 = second.name.split("_")[0]
    assert "add_column" in second.read_text().split("def upgrade_users")[1]
    ext("upgrade")
    assert version_rows(main_url) == version_rows(users_url) == [rev2]
    ext("check")
    result = ext("migrate", "-m", "nothing")
    assert "No changes in schema detected." in result.stderr
    assert len(_revisions(tmp_path)) == 2

    ext("downgrade", "base")
    assert table_names(main_url) == table_names(users_url) == {"alembic_version"}
    assert version_rows(main_url) == version_rows(users_url) == []

    # Flask-Migrate still runs the folder, including the revision written here.
    _flask(tmp_path, env, "app_fm", "upgrade", email=True)
    assert version_rows(main_url) == version_rows(users_url) == [rev2]


def test_flask_migrate_ext_multidb_folder_works_under_flask_migrate(
    tmp_path: Path,
) -> None:
    env = _setup(tmp_path)
    main_url, users_url = env["FMX_MAIN_URL"], env["FMX_USERS_URL"]
    _flask(tmp_path, env, "app_ext", "init", "--multidb")
    assert FLASK_MIGRATE_MULTIDB_LINE not in (
        (tmp_path / "migrations" / "env.py").read_text()
    )
    _flask(tmp_path, env, "app_ext", "migrate", "-m", "initial")
    (first,) = _revisions(tmp_path)

    def fm(*args: str) -> subprocess.CompletedProcess[str]:
        return _flask(tmp_path, env, "app_fm", *args)

    fm("upgrade")
    assert table_names(main_url) == {"alembic_version", "group"}
    assert table_names(users_url) == {"alembic_version", "user"}
    result = fm("migrate", "-m", "nothing")
    assert "No changes in schema detected." in result.stderr
    assert _revisions(tmp_path) == [first]
    fm("downgrade", "base")
    assert table_names(main_url) == table_names(users_url) == {"alembic_version"}
