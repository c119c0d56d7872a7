"""``MIGRATE_*`` settings: defaults in ``app.config``, checked once per command."""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import ExitCode
from flask_migrate_ext import Migrate
from flask_migrate_ext.errors import SettingsError
from flask_migrate_ext.settings import SETTINGS
from flask_migrate_ext.settings import Settings
from helpers import invoke
from helpers import table_names


def make_app(tmp_path: Path, **config: t.Any) -> Flask:
    app = Flask("settings", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'app.db'}"
    app.config.update(config)
    Migrate(app, SQLAlchemy(app))
    return app


def test_init_app_puts_the_defaults_into_the_config(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRATE_LOCK_TIMEOUT=30)
    for setting in SETTINGS:
        assert setting.key in app.config
    assert app.config["MIGRATE_LOCK_TIMEOUT"] == 30  # the app's own value stays
    assert app.config["MIGRATE_LOG_TABLE"] == "flask_migrate_ext_log"
    settings = Settings.from_config(app.config)
    assert settings == Settings(lock_timeout=30.0)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "MIGRATE_LOCK",
            "yes",
            "MIGRATE_LOCK must be True, False, 'table' or 'session', not 'yes'.",
        ),
        (
            "MIGRATE_LOCK",
            1,
            "MIGRATE_LOCK must be True, False, 'table' or 'session', not 1.",
        ),
        ("MIGRATE_LOCK_TIMEOUT", "soon", "MIGRATE_LOCK_TIMEOUT must be a number of"),
        ("MIGRATE_LOCK_TIMEOUT", 0, "MIGRATE_LOCK_TIMEOUT must be a number of"),
        ("MIGRATE_STATEMENT_TIMEOUT", True, "MIGRATE_STATEMENT_TIMEOUT must be a"),
        ("MIGRATE_REVISION_CACHE", "no", "MIGRATE_REVISION_CACHE must be True or"),
        ("MIGRATE_SCHEMAS", "tenant_a", "(write ['tenant_a'])"),
        ("MIGRATE_EXCLUDE_BINDS", [1], "MIGRATE_EXCLUDE_BINDS must be a list of"),
        ("MIGRATE_LOG_TABLE", 3, "MIGRATE_LOG_TABLE must be a table name or None"),
        ("MIGRATE_DIRECTORY", 3, "MIGRATE_DIRECTORY must be a path, not 3."),
    ],
)
def test_a_wrong_value_stops_every_command_before_it_starts(
    tmp_path: Path, key: str, value: t.Any, message: str
) -> None:
    with pytest.raises(SettingsError, match="^" + key):
        Settings.from_config({key: value})
    app = make_app(tmp_path)
    assert invoke(app, "init").exit_code == 0
    app.config[key] = value
    for args in (["upgrade"], ["current"], ["migrate"], ["heads"]):
        result = invoke(app, *args)
        assert result.exit_code == ExitCode.USAGE, result.output
        assert message in result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert table_names(app.config["SQLALCHEMY_DATABASE_URI"], own=True) == set()


def test_accepted_values(tmp_path: Path) -> None:
    settings = Settings.from_config(
        {
            "MIGRATE_LOCK": "table",
            "MIGRATE_LOCK_TIMEOUT": "2.5",
            "MIGRATE_TRANSACTION_MODE": "all",
            "MIGRATE_LOG_TABLE": None,
            "MIGRATE_SCHEMAS": ["a", "b"],
            "MIGRATE_DIRECTORY": tmp_path,
        }
    )
    assert settings.lock == "table"
    assert settings.lock_timeout == 2.5
    assert settings.per_revision is False
    assert settings.log_table is None
    assert settings.schemas == ("a", "b")
    assert settings.directory == os.fspath(tmp_path)


def test_a_misspelled_key_is_reported(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRATE_LOCK_TIMOUT=5, MIGRATE_MY_OWN_THING=1)
    result = invoke(app, "init")
    assert result.exit_code == 0
    assert (
        "Warning: unknown setting MIGRATE_LOCK_TIMOUT; did you mean"
        " MIGRATE_LOCK_TIMEOUT?" in result.stderr
    )
    assert "MIGRATE_MY_OWN_THING" not in result.stderr
