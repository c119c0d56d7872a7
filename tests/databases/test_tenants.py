"""Tenant schemas on PostgreSQL: each schema migrated on its own, own version table."""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import ExitCode
from flask_migrate_ext import Migrate
from flask_migrate_ext import upgrade
from helpers import invoke
from helpers import write_revision


def schema_state(url: str, schema: str) -> tuple[set[str], list[str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names(schema=schema))
            versions = []
            if "alembic_version" in tables:
                versions = list(
                    conn.execute(
                        sa.text(f"SELECT version_num FROM {schema}.alembic_version")
                    ).scalars()
                )
            return tables, versions
    finally:
        engine.dispose()


@pytest.fixture
def tenant_app(make_database: t.Any, tmp_path: Path) -> t.Iterator[tuple[Flask, str]]:
    url = make_database("postgresql")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in ("tenant_a", "tenant_b"):
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    app = Flask("tenants", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    db = SQLAlchemy(app)
    Migrate(app, db)
    assert invoke(app, "init").exit_code == 0
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        'op.create_table("item", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("item")',
    )
    write_revision(
        versions,
        "r2",
        "r1",
        'op.add_column("item", sa.Column("name", sa.String(20)))',
        'op.drop_column("item", "name")',
    )
    yield app, url
    with app.app_context():
        db.engine.dispose()


def test_schemas_are_upgraded_independently(tenant_app: tuple[Flask, str]) -> None:
    app, url = tenant_app
    result = invoke(app, "upgrade", "r1", "--schema", "tenant_a")
    assert result.exit_code == 0, result.output
    assert "Schema tenant_a:" in result.stderr
    assert schema_state(url, "tenant_a")[1] == ["r1"]
    assert schema_state(url, "tenant_b") == (set(), [])
    assert schema_state(url, "public") == (set(), [])

    result = invoke(app, "upgrade", "--schema", "tenant_a", "--schema", "tenant_b")
    assert result.exit_code == 0, result.output
    for schema in ("tenant_a", "tenant_b"):
        tables, versions = schema_state(url, schema)
        assert {"item", "alembic_version"} <= tables
        assert versions == ["r2"]
    assert schema_state(url, "public") == (set(), [])

    result = invoke(app, "current", "--schema", "tenant_a", "--schema", "tenant_b")
    assert result.stdout.splitlines() == [
        "Schema tenant_a:",
        "r2 (head)",
        "Schema tenant_b:",
        "r2 (head)",
    ]

    assert invoke(app, "downgrade", "--schema", "tenant_b").exit_code == 0
    assert schema_state(url, "tenant_b")[1] == ["r1"]
    assert schema_state(url, "tenant_a")[1] == ["r2"]


def test_schemas_from_config_and_api(tenant_app: tuple[Flask, str]) -> None:
    app, url = tenant_app
    app.config["MIGRATE_SCHEMAS"] = ["tenant_b", "tenant_a"]
    with app.app_context():
        result = upgrade()
    assert [(step.schema, step.revision) for step in result.steps] == [
        ("tenant_b", "r1"),
        ("tenant_b", "r2"),
        ("tenant_a", "r1"),
        ("tenant_a", "r2"),
    ]
    # The app's own connections are back on the default search_path.
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW search_path")).scalar() == (
                '"$user", public'
            )


def test_missing_schema(tenant_app: tuple[Flask, str]) -> None:
    app, _ = tenant_app
    result = invoke(app, "upgrade", "--schema", "tenant_x")
    assert result.exit_code == ExitCode.ERROR
    assert "Schema 'tenant_x' does not exist" in result.stderr
    result = invoke(app, "upgrade", "--schema", "a;drop")
    assert "is not a plain schema name" in result.stderr


def test_schemas_need_postgresql(make_app: t.Any, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    assert invoke(app, "init").exit_code == 0
    result = invoke(app, "upgrade", "--schema", "x")
    assert result.exit_code == ExitCode.ERROR
    assert "PostgreSQL only" in result.stderr
