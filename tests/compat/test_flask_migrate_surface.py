"""The public surface of ``flask_migrate`` 4.1.0, held against ours.

Names, ``configure_args`` and the ``db`` group as Click shows it are compared
with the installed Flask-Migrate itself, not with a list written here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
import typing as t
from pathlib import Path

import click
import flask_migrate
import flask_migrate.cli
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

import flask_migrate_ext
from flask_migrate_ext import Migrate
from helpers import invoke
from helpers import run_flask

#: Names ``flask_migrate`` has only because it imported them for itself.
_INCIDENTAL = {"current_app", "g", "wraps"}


def public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name in dir(module)
        if not name.startswith("_")
        and name not in _INCIDENTAL
        and not isinstance(getattr(module, name), types.ModuleType)
    }


def test_every_public_name_of_flask_migrate_exists() -> None:
    theirs = public_names(flask_migrate) | {"_MigrateConfig"}
    missing = {name for name in theirs if not hasattr(flask_migrate_ext, name)}
    assert missing == set()
    assert public_names(flask_migrate) <= set(dir(flask_migrate_ext))


def test_names_mean_the_same() -> None:
    assert flask_migrate_ext.alembic_version == flask_migrate.alembic_version
    assert flask_migrate_ext.CommandError is flask_migrate.CommandError
    assert flask_migrate_ext.AlembicConfig is flask_migrate.AlembicConfig
    assert issubclass(flask_migrate_ext.Config, flask_migrate_ext.AlembicConfig)
    assert flask_migrate_ext._MigrateConfig is flask_migrate_ext.MigrateState


def test_dir_lists_the_lazily_loaded_api() -> None:
    names = dir(flask_migrate_ext)
    for name in ("upgrade", "downgrade", "check", "RunResult", "catch_errors"):
        assert name in names
    assert set(flask_migrate_ext.__all__) <= set(names)


def test_catch_errors_exits_as_flask_migrate_does(tmp_path: Path) -> None:
    app = Flask("plain", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    Migrate(app, SQLAlchemy(app))
    upgrade = flask_migrate_ext.catch_errors(flask_migrate_ext.upgrade)
    with app.app_context(), pytest.raises(SystemExit) as exited:
        upgrade(directory=os.fspath(tmp_path / "nowhere"))
    assert exited.value.code == 1


def test_importing_loads_no_alembic() -> None:
    code = (
        "import sys, flask_migrate_ext as m;"
        "v = m.alembic_version; m.catch_errors; dir(m);"
        "print(v, 'alembic' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[-1] == "False"


def include_object(*args: t.Any) -> bool:
    return True


def make_app(tmp_path: Path, module: types.ModuleType, **kwargs: t.Any) -> t.Any:
    app = Flask("surface", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'app.db'}"
    db = SQLAlchemy(app)
    module.Migrate(app, db, **kwargs)
    return app


def test_configure_args_are_what_the_app_passed(tmp_path: Path) -> None:
    app = make_app(tmp_path, flask_migrate_ext, include_object=include_object)
    # Readable outside an app context, as with Flask-Migrate.
    assert app.extensions["migrate"].configure_args == {
        "include_object": include_object
    }
    explicit = make_app(tmp_path, flask_migrate_ext, compare_type=False)
    assert explicit.extensions["migrate"].configure_args == {"compare_type": False}
    # Flask-Migrate adds its two defaults; ours are applied when env.py calls
    # context.configure, so an env.py passing them itself does not collide.
    theirs = make_app(tmp_path, flask_migrate, include_object=include_object)
    assert theirs.extensions["migrate"].configure_args == {
        "include_object": include_object,
        "compare_type": True,
        "render_as_batch": True,
    }


def test_configure_args_are_a_copy(tmp_path: Path) -> None:
    app = make_app(tmp_path, flask_migrate_ext)
    app.extensions["migrate"].configure_args["process_revision_directives"] = print
    assert app.extensions["migrate"].configure_args == {}


ENV_WITH_OWN_HOOK = """
from alembic import context
from flask import current_app

config = context.config


def process_revision_directives(context, revision, directives):
    directives[0].message = "renamed by env.py"


with current_app.extensions["migrate"].db.engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=current_app.extensions["migrate"].db.metadata,
        process_revision_directives=process_revision_directives,
        compare_type=True,
        **current_app.extensions["migrate"].configure_args,
    )
    with context.begin_transaction():
        context.run_migrations()
"""


def test_env_py_passing_its_own_options_composes(tmp_path: Path) -> None:
    """An env.py's own hook and options meet the extension's rules in
    ``context.configure``: no "multiple values" error, its hook runs, empty
    revisions are still skipped and the ledger stays out of autogenerate."""
    app = make_app(tmp_path, flask_migrate_ext)
    db = app.extensions["migrate"].db

    class Employee(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    assert invoke(app, "init").exit_code == 0
    (tmp_path / "migrations" / "env.py").write_text(ENV_WITH_OWN_HOOK)
    first = invoke(app, "migrate", "-m", "one")
    assert first.exit_code == 0, first.output
    (written,) = (tmp_path / "migrations" / "versions").glob("*.py")
    assert "renamed by env.py" in written.read_text()
    assert invoke(app, "upgrade").exit_code == 0
    again = invoke(app, "migrate", "-m", "two")
    assert again.exit_code == 0, again.output
    assert len(list((tmp_path / "migrations" / "versions").glob("*.py"))) == 1
    assert invoke(app, "check").exit_code == 0


def cli_context(app: Flask) -> click.Context:
    return click.Context(app.cli, info_name="flask")


def param_names(command: click.Command) -> set[str]:
    return {param.name for param in command.params if param.name}


def test_db_group_is_the_real_group(tmp_path: Path) -> None:
    app = make_app(tmp_path, flask_migrate_ext)
    theirs = flask_migrate.cli.db
    with app.app_context():
        ctx = cli_context(app)
        group = app.cli.get_command(ctx, "db")
        assert isinstance(group, click.Group)
        assert param_names(theirs) <= param_names(group)
        assert set(theirs.list_commands(ctx)) <= set(group.list_commands(ctx))
        for name in theirs.list_commands(ctx):
            ours = group.get_command(ctx, name)
            assert ours is not None, name
            assert param_names(theirs.commands[name]) <= param_names(ours), name
        info = group.to_info_dict(ctx)
        assert "upgrade" in info["commands"]


def test_custom_command_name_keeps_its_name(tmp_path: Path) -> None:
    app = make_app(tmp_path, flask_migrate_ext, command="database")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["database", "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: surface database [OPTIONS] COMMAND [ARGS]..." in result.output
    assert "upgrade" in result.output


APP_MODULE = """\
import atexit
import sys
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
Migrate(app, SQLAlchemy(app))

LOADED = ("alembic", "flask_migrate_ext.cli.commands")
atexit.register(
    lambda: print("loaded:", [m for m in LOADED if m in sys.modules], file=sys.stderr)
)
"""


def complete(tmp_path: Path, words: str) -> list[str]:
    cword = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    env = {
        "_FLASK_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": cword,
        "FLASK_APP": "app",
    }
    # Click names the completion variable after the program: run "flask".
    done = subprocess.run(
        [Path(sys.executable).parent / "flask"],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines()]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("flask db up", {"upgrade", "upgrade-env"}),
        ("flask db -", {"-d", "--directory", "-x", "--x-arg"}),
        ("flask db upgrade --s", {"--sql", "--schema"}),
    ],
)
def test_shell_completion_reaches_the_commands(
    tmp_path: Path, words: str, expected: set[str]
) -> None:
    (tmp_path / "app.py").write_text(APP_MODULE)
    assert expected <= set(complete(tmp_path, words))


def test_flask_help_loads_neither_commands_nor_alembic(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP_MODULE)
    helped = run_flask(tmp_path, "--app", "app", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "db      Perform database migrations." in helped.stdout
    assert "loaded: []" in helped.stderr
    group_help = run_flask(tmp_path, "--app", "app", "db", "--help")
    assert "loaded: ['flask_migrate_ext.cli.commands']" in group_help.stderr


def test_names_stay_functions_after_every_module_is_loaded() -> None:
    """A subpackage named like a Flask-Migrate function would replace it on
    the package once imported; none is."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(
        flask_migrate_ext.__path__, "flask_migrate_ext."
    ):
        if ".templates" not in module.name:
            importlib.import_module(module.name)
    for name in public_names(flask_migrate) - {"log", "alembic_version"}:
        value = getattr(flask_migrate_ext, name)
        assert not isinstance(value, types.ModuleType), name
        assert callable(value), name
