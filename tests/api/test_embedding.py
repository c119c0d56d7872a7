"""Using flask_migrate_ext from application code, and choosing what it works on."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import current
from flask_migrate_ext import ExitCode
from flask_migrate_ext import init
from flask_migrate_ext import Migrate
from flask_migrate_ext import migrate
from flask_migrate_ext import upgrade
from helpers import invoke
from helpers import table_names
from helpers import version_rows


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# Flask-Migrate's env.py calls Flask-SQLAlchemy's deprecated get_engine().
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("env_from", ["flask_migrate_ext", "flask_migrate"])
def test_host_logging_survives_an_in_process_upgrade(
    make_app: t.Any, sqlite_url: str, tmp_path: Path, env_from: str
) -> None:
    app = make_app(sqlite_url)
    app_logger = logging.getLogger("myapp")
    handler = Collect()
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.INFO)
    root_handlers = list(logging.getLogger().handlers)
    try:
        with app.app_context():
            if env_from == "flask_migrate":
                # Flask-Migrate's env.py calls fileConfig(), which disables
                # every existing logger.
                import flask_migrate

                fm_app = Flask("fm", root_path=os.fspath(tmp_path))
                fm_app.config["SQLALCHEMY_DATABASE_URI"] = sqlite_url
                flask_migrate.Migrate(fm_app, SQLAlchemy(fm_app))
                with fm_app.app_context():
                    flask_migrate.init()
            else:
                init()
            migrate(message="initial")
            upgrade()
            assert current() != []
        app_logger.info("still here")
        assert handler.messages == ["still here"]
        assert not app_logger.disabled
        assert logging.getLogger().handlers == root_handlers
    finally:
        app_logger.removeHandler(handler)


def test_api_reports_through_logging(make_app: t.Any, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    handler = Collect()
    logger = logging.getLogger("flask_migrate_ext")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with app.app_context():
            init()
            upgrade()
    finally:
        logger.removeHandler(handler)
    assert "Nothing to upgrade: the database is at base." in handler.messages


def test_autogenerate_plugin_lines_stay_out_of_the_app_log(
    make_app: t.Any, sqlite_url: str, restore_logging: None
) -> None:
    app = make_app(sqlite_url)
    plugins = logging.getLogger("alembic.runtime.plugins")
    plugins.setLevel(logging.NOTSET)  # as in an app that never configured it
    root = logging.getLogger()
    handler = Collect()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with app.app_context():
            init()
            migrate(message="initial")
            upgrade()
            migrate(message="nothing")
    finally:
        root.removeHandler(handler)
    assert not [m for m in handler.messages if "autogenerate plugin" in m]
    assert "Detected added table 'employee'" in handler.messages  # the rest stays
    assert plugins.level == logging.NOTSET  # put back


def binds_app(tmp_path: Path, urls: dict[str | None, str], **config: t.Any) -> Flask:
    app = Flask("binds", root_path=os.fspath(tmp_path))
    if None in urls:
        app.config["SQLALCHEMY_DATABASE_URI"] = urls[None]
    app.config["SQLALCHEMY_BINDS"] = {k: v for k, v in urls.items() if k}
    app.config.update(config)
    db = SQLAlchemy(app)
    for key in urls:
        type(
            f"Model_{key or 'default'}",
            (db.Model,),
            {
                "__tablename__": f"t_{key or 'default'}",
                "__bind_key__": key,
                "id": sa.Column(sa.Integer, primary_key=True),
            },
        )
    Migrate(app, db)
    return app


def dispose(app: Flask) -> None:
    with app.app_context():
        for engine in app.extensions["sqlalchemy"].engines.values():
            engine.dispose()


def test_bind_selects_databases(make_database: t.Any, tmp_path: Path) -> None:
    urls = {
        None: make_database("sqlite"),
        "users": make_database("postgresql"),
        "stats": make_database("sqlite"),
    }
    app = binds_app(tmp_path, urls)
    try:
        assert invoke(app, "init", "--multidb").exit_code == 0
        assert invoke(app, "migrate", "-m", "all").exit_code == 0
        result = invoke(app, "upgrade", "--bind", "users")
        assert result.exit_code == 0, result.output
        assert table_names(urls["users"]) == {"alembic_version", "t_users"}
        # (autogenerate made empty version tables everywhere; nothing else.)
        assert table_names(urls[None]) <= {"alembic_version"}
        assert table_names(urls["stats"]) <= {"alembic_version"}
        assert version_rows(urls[None]) == version_rows(urls["stats"]) == []
        # The group option works too, and the rest follows.
        assert invoke(app, "--bind", "stats", "upgrade").exit_code == 0
        assert "t_stats" in table_names(urls["stats"])
        assert invoke(app, "upgrade").exit_code == 0
        assert "t_default" in table_names(urls[None])

        result = invoke(app, "current", "--bind", "users")
        # One database, named: "Database users:", "<rev> (head)".
        assert result.stdout.splitlines()[0] == "Database users:"
        assert len(result.stdout.splitlines()) == 2

        result = invoke(app, "upgrade", "--bind", "nope")
        assert result.exit_code == ExitCode.USAGE
        assert "No database named 'nope'" in result.stderr
        assert "'users'" in result.stderr and "'stats'" in result.stderr
    finally:
        dispose(app)


def test_excluded_bind_is_never_migrated(make_database: t.Any, tmp_path: Path) -> None:
    urls = {None: make_database("sqlite"), "replica": make_database("sqlite")}
    app = binds_app(tmp_path, urls, MIGRATE_EXCLUDE_BINDS=["replica"])
    try:
        assert invoke(app, "init", "--multidb").exit_code == 0
        assert invoke(app, "migrate", "-m", "all").exit_code == 0
        (script,) = (tmp_path / "migrations" / "versions").glob("*.py")
        assert "upgrade_replica" not in script.read_text()
        assert invoke(app, "upgrade").exit_code == 0
        assert table_names(urls["replica"]) == set()  # never even connected
        assert invoke(app, "check").exit_code == 0
    finally:
        dispose(app)


def test_binds_without_a_default_database(make_database: t.Any, tmp_path: Path) -> None:
    urls = {"a": make_database("sqlite"), "b": make_database("mariadb")}
    app = binds_app(tmp_path, urls)
    try:
        assert invoke(app, "init", "--multidb").exit_code == 0
        result = invoke(app, "migrate", "-m", "all")
        assert result.exit_code == 0, result.output
        assert invoke(app, "upgrade").exit_code == 0
        assert table_names(urls["a"]) == {"alembic_version", "t_a"}
        assert table_names(urls["b"]) == {"alembic_version", "t_b"}
        assert invoke(app, "downgrade", "base").exit_code == 0
        assert version_rows(urls["b"]) == []
    finally:
        dispose(app)


def test_bind_needs_a_capable_env_py(make_database: t.Any, tmp_path: Path) -> None:
    urls = {None: make_database("sqlite"), "users": make_database("sqlite")}
    app = binds_app(tmp_path, urls)
    try:
        assert invoke(app, "init", "--multidb").exit_code == 0
        env_py = tmp_path / "migrations" / "env.py"
        env_py.write_text(env_py.read_text().replace("database_names", "names"))
        result = invoke(app, "upgrade", "--bind", "users")
        assert result.exit_code == ExitCode.ERROR
        assert "--bind needs an env.py that can choose databases" in result.stderr
    finally:
        dispose(app)


APP_WITH_CONFIG_DIRECTORY = """
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["TEST_DATABASE_URL"]
app.config["MIGRATE_DIRECTORY"] = "db/migrations"
db = SQLAlchemy(app)
Migrate(app, db, directory="ignored")


class Thing(db.Model):
    id = db.Column(db.Integer, primary_key=True)
"""


def test_directory_from_config_works_from_any_folder(
    tmp_path: Path, sqlite_url: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(APP_WITH_CONFIG_DIRECTORY)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
        "FLASK_APP": "app",
        "PYTHONPATH": os.fspath(project),
        "TEST_DATABASE_URL": sqlite_url,
    }

    def flask(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flask", *args],
            cwd=elsewhere,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )

    for args in (["db", "init"], ["db", "migrate", "-m", "x"], ["db", "upgrade"]):
        done = flask(*args)
        assert done.returncode == 0, done.stderr
    assert (project / "db" / "migrations" / "env.py").is_file()
    assert not (elsewhere / "db").exists() and not (project / "ignored").exists()
    assert "thing" in table_names(sqlite_url)

    # An explicit directory (option or environment variable) still wins.
    done = flask("db", "current", FLASK_DB_DIRECTORY="nowhere")
    assert done.returncode == 1
    assert "nowhere" in done.stderr


def test_one_migrate_object_for_two_apps(tmp_path: Path) -> None:
    migrate_ext = Migrate()
    apps = []
    for name in ("a", "b"):
        app = Flask(name, root_path=os.fspath(tmp_path))
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / name}.db"
        db = SQLAlchemy(app)
        type(
            "T",
            (db.Model,),
            {
                "__tablename__": f"t_{name}",
                "id": sa.Column(sa.Integer, primary_key=True),
            },
        )
        migrate_ext.init_app(
            app, db, directory=os.fspath(tmp_path / f"migrations_{name}")
        )
        apps.append(app)
    for app in apps:
        assert invoke(app, "init").exit_code == 0
        assert invoke(app, "migrate", "-m", "x").exit_code == 0
    for name in ("a", "b"):
        (script,) = (tmp_path / f"migrations_{name}" / "versions").glob("*.py")
        assert f"'t_{name}'" in script.read_text()
