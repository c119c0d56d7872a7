"""Migration folders move both ways between Flask-Migrate 4.1.0 and flask_migrate_ext.

Folders are made and run through real ``flask db`` subprocesses, one app
module per tool with the same models. The last tests call the API in-process
with Flask-Migrate's env.py (which reconfigures logging; they restore it).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from helpers import AppFactory
from helpers import ignore_get_engine
from helpers import invoke
from helpers import run_switch_app
from helpers import table_names
from helpers import version_rows
from helpers import write_switch_apps

# A line only Flask-Migrate's own env.py has: it reads configure_args and
# stores its process_revision_directives hook in that dict.
FLASK_MIGRATE_ENV_LINE = "conf_args = current_app.extensions['migrate'].configure_args"


def _write_apps(tmp_path: Path) -> None:
    """``app_fm`` uses Flask-Migrate, ``app_ext`` flask_migrate_ext; same models."""
    write_switch_apps(tmp_path)


def _flask(
    tmp_path: Path, module: str, url: str, *args: str, email: bool = False
) -> subprocess.CompletedProcess[str]:
    return run_switch_app(tmp_path, module, url, *args, email=email)


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (
        f"{result.args}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def _revision_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "migrations" / "versions").glob("*.py"))


def _new_revision(tmp_path: Path, known: list[Path]) -> tuple[Path, str]:
    (path,) = [p for p in _revision_files(tmp_path) if p not in known]
    return path, path.name.split("_")[0]


def _column_names(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _drop_all_tables(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dispose(app: Flask) -> None:
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


# -- 1. A Flask-Migrate folder, run by flask_migrate_ext -------------------------


def test_flask_migrate_folder_works_under_flask_migrate_ext(
    database_url: str, tmp_path: Path
) -> None:
    _write_apps(tmp_path)
    url = database_url

    # Flask-Migrate 4.1.0 creates the folder and two revisions.
    _ok(_flask(tmp_path, "app_fm", url, "init"))
    env_py = tmp_path / "migrations" / "env.py"
    assert FLASK_MIGRATE_ENV_LINE in env_py.read_text()
    env_digest = _digest(env_py)

    _ok(_flask(tmp_path, "app_fm", url, "migrate", "-m", "initial"))
    first, rev1 = _new_revision(tmp_path, [])
    _ok(_flask(tmp_path, "app_fm", url, "upgrade"))
    assert version_rows(url) == [rev1]
    _ok(_flask(tmp_path, "app_fm", url, "migrate", "-m", "add email", email=True))
    second, rev2 = _new_revision(tmp_path, [first])
    assert "add_column" in second.read_text()
    # Back to an empty database, so that flask_migrate_ext runs every script.
    _drop_all_tables(url)
    assert table_names(url) == set()

    # From here on the app uses flask_migrate_ext, with the same models.
    def ext(*args: str, email: bool = True) -> subprocess.CompletedProcess[str]:
        return _flask(tmp_path, "app_ext", url, *args, email=email)

    result = _ok(ext("upgrade"))
    assert f"Running upgrade  -> {rev1}, initial" in result.stderr
    assert f"Running upgrade {rev1} -> {rev2}, add email" in result.stderr
    assert version_rows(url) == [rev2]
    assert _column_names(url, "employee") == {"id", "name", "email"}

    assert _ok(ext("current")).stdout.strip() == f"{rev2} (head)"

    history = _ok(ext("history")).stdout.strip().splitlines()
    assert history == [
        f"{rev1} -> {rev2} (head), add email",
        f"<base> -> {rev1}, initial",
    ]

    assert "No new upgrade operations detected." in _ok(ext("check")).stdout

    # No change: no new file, and success.
    result = _ok(ext("migrate", "-m", "nothing"))
    assert "No changes in schema detected." in result.stderr
    assert _revision_files(tmp_path) == sorted([first, second])

    result = _ok(ext("downgrade"))
    assert f"Running downgrade {rev2} -> {rev1}, add email" in result.stderr
    assert version_rows(url) == [rev1]
    assert _column_names(url, "employee") == {"id", "name"}

    _ok(ext("downgrade", "base"))
    assert version_rows(url) == []
    assert "employee" not in table_names(url)

    # flask_migrate_ext ran Flask-Migrate's env.py as it was, and left it alone.
    assert _digest(env_py) == env_digest
    assert _revision_files(tmp_path) == sorted([first, second])


# -- 2. A flask_migrate_ext folder, run by Flask-Migrate -------------------------


def _email_columns() -> dict[str, t.Any]:
    return {"name": sa.Column(sa.String(50)), "email": sa.Column(sa.String(80))}


def test_flask_migrate_ext_folder_works_under_flask_migrate(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    _write_apps(tmp_path)
    url = database_url

    # flask_migrate_ext creates the folder and two revisions (in-process CLI).
    app = make_app(url)
    assert invoke(app, "init").exit_code == 0
    env_py = tmp_path / "migrations" / "env.py"
    assert FLASK_MIGRATE_ENV_LINE not in env_py.read_text()
    assert invoke(app, "migrate", "-m", "initial").exit_code == 0
    first, rev1 = _new_revision(tmp_path, [])
    assert invoke(app, "upgrade").exit_code == 0
    app2 = make_app(url, columns=_email_columns())
    result = invoke(app2, "migrate", "-m", "add email")
    assert result.exit_code == 0, result.output
    second, rev2 = _new_revision(tmp_path, [first])
    assert invoke(app2, "downgrade", "base").exit_code == 0
    assert version_rows(url) == []
    for made in (app, app2):
        _dispose(made)

    # Flask-Migrate 4.1.0 runs it.
    def fm(*args: str) -> subprocess.CompletedProcess[str]:
        return _flask(tmp_path, "app_fm", url, *args, email=True)

    result = _ok(fm("upgrade"))
    assert f"Running upgrade {rev1} -> {rev2}, add email" in result.stderr
    assert version_rows(url) == [rev2]
    assert _column_names(url, "employee") == {"id", "name", "email"}

    # flask_migrate_ext's env.py keeps the "no change, no file" rule under
    # Flask-Migrate too.
    result = _ok(fm("migrate", "-m", "nothing"))
    assert "No changes in schema detected." in result.stderr
    assert _revision_files(tmp_path) == sorted([first, second])

    # Both revisions' downgrade scripts.
    result = _ok(fm("downgrade", "base"))
    assert f"Running downgrade {rev2} -> {rev1}, add email" in result.stderr
    assert f"Running downgrade {rev1} -> , initial" in result.stderr
    assert version_rows(url) == []
    assert "employee" not in table_names(url)


# -- 3. Flask-Migrate's env.py, several API calls in one process -----------------


def _flask_migrate_init(tmp_path: Path) -> None:
    """Create ``migrations`` with Flask-Migrate 4.1.0's own ``init``.

    ``init`` copies the template and runs no env.py.
    """
    import flask_migrate

    fm_app = Flask("fm_init", root_path=os.fspath(tmp_path))
    flask_migrate.Migrate().init_app(fm_app)
    with fm_app.app_context():
        flask_migrate.init()
    assert FLASK_MIGRATE_ENV_LINE in (tmp_path / "migrations" / "env.py").read_text()


# Flask-Migrate's env.py calls db.get_engine(), deprecated in Flask-SQLAlchemy 3.1.
@ignore_get_engine
@pytest.mark.usefixtures("restore_logging")
def test_upgrade_then_migrate_in_one_process_writes_no_empty_revision(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    from flask_migrate_ext import check
    from flask_migrate_ext import migrate
    from flask_migrate_ext import revision
    from flask_migrate_ext import SchemaDriftError
    from flask_migrate_ext import upgrade

    _flask_migrate_init(tmp_path)
    app = make_app(database_url)
    with app.app_context():
        # The first env.py run of the process is an upgrade: with Flask-Migrate
        # its hook, stored in configure_args, would outlive this run.
        assert upgrade().steps == []
        path = migrate(message="initial")
        assert path is not None
        rev = Path(path).name.split("_")[0]
        assert [step.revision for step in upgrade().steps] == [rev]

        assert migrate(message="nothing") is None
        assert revision(message="nothing either", autogenerate=True) is None
        assert upgrade().steps == []
        assert migrate(message="still nothing") is None
    assert _revision_files(tmp_path) == [Path(path)]
    assert version_rows(database_url) == [rev]

    # A real change is still found, by check and by migrate.
    app2 = make_app(database_url, columns=_email_columns())
    with app2.app_context():
        with pytest.raises(SchemaDriftError) as drift:
            check()
        assert drift.value.lines == ["+ column employee.email VARCHAR(80)"]
        path2 = migrate(message="add email")
        assert path2 is not None and "add_column" in Path(path2).read_text()
        assert upgrade().steps[0].revision == Path(path2).name.split("_")[0]
        assert migrate(message="nothing") is None
    assert len(_revision_files(tmp_path)) == 2


@ignore_get_engine
@pytest.mark.usefixtures("restore_logging")
def test_user_hook_keeps_the_empty_rule_with_flask_migrate_env(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    from flask_migrate_ext import migrate
    from flask_migrate_ext import upgrade

    calls: list[str] = []

    def hook(context: t.Any, revision: t.Any, directives: list[t.Any]) -> None:
        calls.append("called")

    _flask_migrate_init(tmp_path)
    app = make_app(sqlite_url, process_revision_directives=hook)
    with app.app_context():
        upgrade()
        assert migrate(message="initial") is not None
        upgrade()
        assert migrate(message="nothing") is None
    assert calls == ["called", "called"]
    assert len(_revision_files(tmp_path)) == 1
