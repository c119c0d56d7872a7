"""``flask db upgrade-env`` and the hint ``migrate`` gives for an old env.py.

Flask-Migrate 4.1.0's folders are made by its own ``init`` (which copies the
template and runs nothing); the hint tests run its env.py in-process, so they
restore logging afterwards, as the compatibility tests do.
"""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest
from flask import Flask

from flask_migrate_ext.scripts import envfile
from flask_migrate_ext.scripts.config import TEMPLATES_DIR
from helpers import AppFactory
from helpers import ignore_get_engine
from helpers import invoke
from helpers import table_names
from helpers import version_rows

TEMPLATES = TEMPLATES_DIR


def _flask_migrate_init(tmp_path: Path, **kwargs: t.Any) -> Path:
    """Write ``migrations`` with Flask-Migrate 4.1.0's ``init``; return env.py."""
    import flask_migrate

    fm_app = Flask("fm_init", root_path=os.fspath(tmp_path))
    flask_migrate.Migrate().init_app(fm_app)
    with fm_app.app_context():
        flask_migrate.init(**kwargs)
    return tmp_path / "migrations" / "env.py"


def _template(name: str) -> str:
    return (TEMPLATES / name / "env.py").read_text()


def test_flask_migrate_env_is_upgraded_and_the_folder_still_works(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    env = _flask_migrate_init(tmp_path)
    old = env.read_text()
    app = make_app(database_url)

    checked = invoke(app, "upgrade-env", "--check")
    assert checked.exit_code == 1, checked.output
    assert "-fileConfig(config.config_file_name)" in checked.stdout
    assert "+from flask_migrate_ext" not in checked.stdout
    assert "Flask-Migrate 4.0.5 to 4.1.0, 'flask' template" in checked.stderr
    assert "is available." in checked.stderr
    assert env.read_text() == old

    upgraded = invoke(app, "upgrade-env")
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout == checked.stdout
    assert "Upgraded" in upgraded.stderr
    assert env.read_text() == _template("flask")
    assert sorted(os.listdir(env.parent)) == [
        "README",
        "alembic.ini",
        "env.py",
        "script.py.mako",
        "versions",
    ]

    again = invoke(app, "upgrade-env", "--check")
    assert again.exit_code == 0, again.output
    assert again.stdout == ""
    assert "is up to date with the 'flask' template" in again.stderr

    for args in (["migrate", "-m", "initial"], ["upgrade"]):
        result = invoke(app, *args)
        assert result.exit_code == 0, result.output
    assert table_names(database_url) == {"alembic_version", "employee"}
    assert len(version_rows(database_url)) == 1
    result = invoke(app, "downgrade", "base")
    assert result.exit_code == 0, result.output
    assert table_names(database_url) == {"alembic_version"}


def test_local_edits_are_refused_then_kept_with_force(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    env = _flask_migrate_init(tmp_path)
    edited = env.read_text().replace(
        "logger = logging.getLogger('alembic.env')",
        "logger = logging.getLogger('alembic.env')\nMY_SETTING = 1",
    )
    env.write_text(edited)
    app = make_app(sqlite_url)

    checked = invoke(app, "upgrade-env", "--check")
    assert checked.exit_code == 1
    assert "-MY_SETTING = 1" in checked.stdout
    assert "(local edits)" in checked.stderr and "use --force" in checked.stderr

    refused = invoke(app, "upgrade-env")
    assert refused.exit_code == 1
    assert "-MY_SETTING = 1" in refused.stdout
    assert "has local edits, so it was not replaced" in refused.stderr
    assert env.read_text() == edited
    assert not (env.parent / "env.py.orig").exists()

    forced = invoke(app, "upgrade-env", "--force")
    assert forced.exit_code == 0, forced.output
    assert "the old file is kept as" in forced.stderr
    assert env.read_text() == _template("flask")
    assert (env.parent / "env.py.orig").read_text() == edited

    # A second forced upgrade does not overwrite the kept file.
    env.write_text(edited)
    again = invoke(app, "upgrade-env", "--force")
    assert again.exit_code == 1
    assert "env.py.orig' already exists" in again.stderr
    assert env.read_text() == edited


def test_own_env_is_up_to_date(make_app: AppFactory, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    assert invoke(app, "init").exit_code == 0
    for args in (["upgrade-env", "--check"], ["upgrade-env"]):
        result = invoke(app, *args)
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        assert "up to date" in result.stderr


@pytest.mark.parametrize(
    ("kwargs", "template"),
    [
        ({"multidb": True}, "flask-multidb"),
        ({"template": "aioflask"}, "aioflask"),
        ({"template": "aioflask-multidb"}, "aioflask-multidb"),
    ],
)
def test_template_follows_the_flask_migrate_template(
    make_app: AppFactory,
    sqlite_url: str,
    tmp_path: Path,
    kwargs: dict[str, t.Any],
    template: str,
) -> None:
    from flask_migrate_ext import upgrade_env

    env = _flask_migrate_init(tmp_path, **kwargs)
    with make_app(sqlite_url).app_context():
        checked = upgrade_env(check=True)
        assert checked.status == "available"
        assert checked.template == template
        assert checked.origin == envfile.Origin(
            "Flask-Migrate", template, "4.0.5 to 4.1.0"
        )
        assert checked.path == os.path.join("migrations", "env.py")

        # An edited file is matched to the template it looks like.
        env.write_text(env.read_text() + "# edited\n")
        edited = upgrade_env()
        assert edited.status == "refused" and edited.local_edits
        assert edited.template == template
        assert upgrade_env(template="flask", check=True).template == "flask"

        forced = upgrade_env(force=True)
        assert forced.status == "upgraded"
        assert forced.backup == os.path.join("migrations", "env.py.orig")
    assert env.read_text() == _template(template)


def test_crlf_and_trailing_spaces_do_not_count_as_edits(tmp_path: Path) -> None:
    env = _flask_migrate_init(tmp_path)
    text = env.read_text()
    env.write_bytes(text.replace("\n", "  \r\n").encode() + b"\r\n\r\n")
    result = envfile.upgrade_env_file(os.fspath(env.parent))
    assert result.status == "upgraded" and result.origin is not None
    assert env.read_text() == _template("flask")


def test_every_shipped_template_is_known() -> None:
    for name in envfile.TEMPLATES:
        origin = envfile.identify(_template(name))
        assert origin == envfile.Origin("flask_migrate_ext", name, "current")


def test_unknown_template_is_an_error(make_app: AppFactory, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    assert invoke(app, "init").exit_code == 0
    result = invoke(app, "upgrade-env", "-t", "nope")
    assert result.exit_code == 1
    assert "No template named 'nope'" in result.stderr


HINT = "env.py is from an older template (Flask-Migrate 4.0.5 to 4.1.0"


@ignore_get_engine
@pytest.mark.usefixtures("restore_logging")
def test_migrate_hints_once_at_a_flask_migrate_env(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    _flask_migrate_init(tmp_path)
    app = make_app(sqlite_url)
    result = invoke(app, "migrate", "-m", "initial")
    assert result.exit_code == 0, result.output
    assert result.stderr.count(HINT) == 1
    assert "password included" in result.stderr
    assert "run 'flask db upgrade-env' to update it." in result.stderr

    for args in (["upgrade"], ["upgrade-env"]):
        assert invoke(app, *args).exit_code == 0
    result = invoke(app, "migrate", "-m", "nothing")
    assert result.exit_code == 0, result.output
    assert "older template" not in result.stderr


def test_migrate_does_not_hint_at_own_env(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url)
    assert invoke(app, "init").exit_code == 0
    result = invoke(app, "migrate", "-m", "initial")
    assert result.exit_code == 0, result.output
    assert "older template" not in result.stderr


def test_no_hint_for_an_edited_env(tmp_path: Path) -> None:
    env = _flask_migrate_init(tmp_path)
    assert envfile.outdated_hint(os.fspath(env.parent)) is not None
    env.write_text(env.read_text() + "# mine\n")
    assert envfile.outdated_hint(os.fspath(env.parent)) is None
