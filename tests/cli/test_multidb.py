"""The ``flask-multidb`` template: each bind migrated, each table in its database."""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import Migrate
from helpers import invoke
from helpers import table_names
from helpers import version_rows


@pytest.fixture
def multidb_app(tmp_path: Path) -> t.Iterator[tuple[Flask, str, str]]:
    main_url = f"sqlite:///{tmp_path / 'main.db'}"
    users_url = f"sqlite:///{tmp_path / 'users.db'}"
    app = Flask("multidb", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = main_url
    app.config["SQLALCHEMY_BINDS"] = {"users": users_url}
    db = SQLAlchemy(app)

    class Group(db.Model):  # type: ignore[name-defined,misc]
        id = sa.Column(sa.Integer, primary_key=True)

    class User(db.Model):  # type: ignore[name-defined,misc]
        __bind_key__ = "users"
        id = sa.Column(sa.Integer, primary_key=True)

    Migrate(app, db)
    yield app, main_url, users_url
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def test_multidb_flow(multidb_app: tuple[Flask, str, str], tmp_path: Path) -> None:
    app, main_url, users_url = multidb_app
    assert invoke(app, "init", "--multidb").exit_code == 0
    assert invoke(app, "migrate", "-m", "initial").exit_code == 0
    (script,) = (tmp_path / "migrations" / "versions").glob("*.py")
    source = script.read_text()
    assert "def upgrade_users() -> None:" in source
    assert "def upgrade_() -> None:" in source

    assert invoke(app, "upgrade").exit_code == 0
    assert table_names(main_url) == {"alembic_version", "group"}
    assert table_names(users_url) == {"alembic_version", "user"}
    rev = script.name.split("_")[0]
    assert version_rows(main_url) == version_rows(users_url) == [rev]
    assert invoke(app, "current").stdout.split() == [rev, "(head)", rev, "(head)"]

    # No change in either database: no file, and check agrees.
    assert invoke(app, "migrate", "-m", "nothing").exit_code == 0
    assert len(list((tmp_path / "migrations" / "versions").glob("*.py"))) == 1
    assert invoke(app, "check").exit_code == 0

    sql = invoke(app, "upgrade", "--sql", f"base:{rev}").stdout
    assert "-- Database: <default>" in sql and "-- Database: users" in sql
    assert 'CREATE TABLE "group"' in sql and "CREATE TABLE user" in sql

    assert invoke(app, "downgrade", "base").exit_code == 0
    assert table_names(main_url) == {"alembic_version"}
    assert table_names(users_url) == {"alembic_version"}
