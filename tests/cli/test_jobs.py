"""Commands over many targets: ``--jobs``, ``--continue-on-error``, a line per
target and a summary; tenant schemas on PostgreSQL, binds on SQLite."""

from __future__ import annotations

import os
import re
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import ExitCode
from flask_migrate_ext import Migrate
from helpers import invoke
from helpers import MultidbFactory
from helpers import version_rows
from helpers import write_revision

server = pytest.mark.server

#: Revision r2 fails in this schema only.
FAILING = "tenant_04"
SCHEMAS = [f"tenant_{n:02}" for n in range(1, 9)]

R2_FAILS_IN_ONE_SCHEMA = f"""
op.add_column("item", sa.Column("name", sa.String(20)))
if op.get_bind().exec_driver_sql("SELECT current_schema()").scalar() == {FAILING!r}:
    op.execute("SELECT * FROM no_such_table")
"""


def versions_in(url: str, schemas: t.Sequence[str]) -> dict[str, list[str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = {}
            for schema in schemas:
                if not sa.inspect(conn).has_table("alembic_version", schema):
                    found[schema] = []
                    continue
                rows = conn.execute(
                    sa.text(f"SELECT version_num FROM {schema}.alembic_version")
                )
                found[schema] = sorted(row[0] for row in rows)
            return found
    finally:
        engine.dispose()


def make_tenant_app(url: str, root: Path, schemas: t.Sequence[str]) -> Flask:
    """An app on ``url`` with ``schemas`` created, and revisions r1 to r3 (r2
    fails in :data:`FAILING`)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in schemas:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    app = Flask("tenants", root_path=os.fspath(root))
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    db = SQLAlchemy(app)
    Migrate(app, db)
    app.extensions["test_db"] = db
    assert invoke(app, "init").exit_code == 0
    versions = root / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        'op.create_table("item", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("item")',
    )
    write_revision(
        versions, "r2", "r1", R2_FAILS_IN_ONE_SCHEMA, 'op.drop_column("item", "name")'
    )
    write_revision(
        versions,
        "r3",
        "r2",
        'op.create_index("ix_item_name", "item", ["name"])',
        'op.drop_index("ix_item_name", "item")',
    )
    return app


@pytest.fixture
def tenants(make_database: t.Any, tmp_path: Path) -> t.Iterator[tuple[Flask, str]]:
    url = make_database("postgresql")
    app = make_tenant_app(url, tmp_path, SCHEMAS)
    app.config["MIGRATE_SCHEMAS"] = SCHEMAS
    yield app, url
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def lines_of(text: str) -> list[str]:
    return [re.sub(r"\d+\.\d+ s", "T s", line) for line in text.splitlines()]


@server
def test_jobs_with_a_failing_tenant_stops_new_targets(
    tenants: tuple[Flask, str],
) -> None:
    app, url = tenants
    result = invoke(app, "upgrade", "--jobs", "2")
    assert result.exit_code == ExitCode.ERROR, result.output
    lines = lines_of(result.stderr)
    # The failed tenant: its first line, where it stands, and what was kept.
    failed = next(line for line in lines if line.startswith(f"schema {FAILING}:"))
    assert failed.startswith(f"schema {FAILING}: FAILED: Revision r2 failed:")
    assert failed.endswith("(now at r1)")
    assert "  Revision r2 was rolled back; the database is at r1." in lines
    found = versions_in(url, SCHEMAS)
    assert found[FAILING] == ["r1"]
    # Those started before the failure finished; none started after it.
    done = [s for s in SCHEMAS if found[s] == ["r3"]]
    skipped = [s for s in SCHEMAS if found[s] == []]
    assert set(done) | set(skipped) | {FAILING} == set(SCHEMAS)
    assert SCHEMAS[:3] == done[:3]
    assert skipped, "a target after the failure should not have started"
    for schema in done:
        assert f"schema {schema}: base -> r3 (3 revisions, T s)" in lines
    for schema in skipped:
        assert f"schema {schema}: skipped (not started)" in lines
    assert lines[-2] == (
        f"{len(SCHEMAS)} targets: {len(done)} upgraded, 1 failed,"
        f" {len(skipped)} skipped (T s)"
    )
    assert lines[-1].startswith(f"Error: 1 of {len(SCHEMAS)} targets failed:")
    assert "--continue-on-error" in lines[-1]


@server
def test_continue_on_error_upgrades_every_other_tenant(
    tenants: tuple[Flask, str],
) -> None:
    app, url = tenants
    result = invoke(app, "upgrade", "--jobs", "3", "--continue-on-error")
    assert result.exit_code == ExitCode.ERROR, result.output
    found = versions_in(url, SCHEMAS)
    assert found == {s: ["r1"] if s == FAILING else ["r3"] for s in SCHEMAS}
    lines = lines_of(result.stderr)
    assert lines[-2] == f"{len(SCHEMAS)} targets: 7 upgraded, 1 failed (T s)"
    # Each target's own messages come with it, not interleaved with others'.
    first = lines.index("Schema tenant_01:")
    end = lines.index("schema tenant_01: base -> r3 (3 revisions, T s)")
    assert not any(line.startswith("Schema ") for line in lines[first + 1 : end])

    # Again, one at a time in this process: the others are up to date.
    result = invoke(app, "upgrade", "--continue-on-error")
    assert result.exit_code == ExitCode.ERROR
    lines = lines_of(result.stderr)
    assert "schema tenant_01: up to date" in lines
    assert lines[-2] == f"{len(SCHEMAS)} targets: 7 up to date, 1 failed (T s)"


@server
def test_default_stops_at_the_first_failure_in_process(
    tenants: tuple[Flask, str],
) -> None:
    app, url = tenants
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.ERROR, result.output
    found = versions_in(url, SCHEMAS)
    assert found == {
        s: ["r3"] if s < FAILING else ["r1"] if s == FAILING else [] for s in SCHEMAS
    }
    lines = lines_of(result.stderr)
    assert lines[-2] == f"{len(SCHEMAS)} targets: 3 upgraded, 1 failed, 4 skipped (T s)"


@server
def test_downgrade_current_and_check_over_tenants(
    make_database: t.Any, tmp_path: Path
) -> None:
    url = make_database("postgresql")
    schemas = SCHEMAS[:3]  # none of them fails
    app = make_tenant_app(url, tmp_path, schemas)
    app.config["MIGRATE_SCHEMAS"] = schemas
    assert invoke(app, "upgrade", "-j", "2").exit_code == 0

    result = invoke(app, "current", "-j", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        line for s in schemas for line in (f"Schema {s}:", "r3 (head)")
    ]
    assert lines_of(result.stderr)[-1] == "3 targets: 3 read (T s)"
    assert "schema tenant_02: at r3" in result.stderr

    result = invoke(app, "downgrade", "r1", "-j", "2")
    assert result.exit_code == 0, result.output
    assert "schema tenant_03: r3 -> r1 (2 revisions, T s)" in lines_of(result.stderr)
    assert versions_in(url, schemas) == {s: ["r1"] for s in schemas}
    result = invoke(app, "downgrade", "r1", "-j", "2")
    assert "schema tenant_01: nothing to downgrade" in result.stderr
    assert lines_of(result.stderr)[-1] == "3 targets: 3 unchanged (T s)"

    # check: every tenant is behind the head, each says so.
    result = invoke(app, "check", "-j", "2", "--continue-on-error")
    assert result.exit_code == ExitCode.NOT_UP_TO_DATE, result.output
    assert "schema tenant_03: FAILED: Target database is not up to date" in (
        result.stderr
    )
    assert lines_of(result.stderr)[-2] == "3 targets: 3 failed (T s)"
    db = app.extensions["test_db"]
    with app.app_context():
        db.engine.dispose()


@server
def test_one_tenant_prints_what_it_always_did(tenants: tuple[Flask, str]) -> None:
    app, url = tenants
    result = invoke(app, "upgrade", "r1", "--schema", "tenant_01", "-j", "4")
    assert result.exit_code == 0, result.output
    assert "targets:" not in result.output
    assert "schema tenant_01:" not in result.output
    assert "Schema tenant_01:" in result.stderr
    assert versions_in(url, ["tenant_01"]) == {"tenant_01": ["r1"]}


@server
def test_schemas_from_a_function(tenants: tuple[Flask, str]) -> None:
    app, url = tenants
    calls = []

    def tenant_schemas() -> list[str]:
        # Called in the app context, e.g. to query the tenants table.
        with app.extensions["test_db"].engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        calls.append(1)
        return ["tenant_02", "tenant_01"]

    app.config["MIGRATE_SCHEMAS"] = tenant_schemas
    result = invoke(app, "upgrade", "r1")
    assert result.exit_code == 0, result.output
    assert calls == [1]
    assert versions_in(url, SCHEMAS[:3]) == {
        "tenant_01": ["r1"],
        "tenant_02": ["r1"],
        "tenant_03": [],
    }
    assert lines_of(result.stderr)[-1] == "2 targets: 2 upgraded (T s)"
    # --schema wins over the function, which is not called.
    result = invoke(app, "upgrade", "r1", "--schema", "tenant_03")
    assert result.exit_code == 0, result.output
    assert calls == [1]
    assert versions_in(url, ["tenant_03"]) == {"tenant_03": ["r1"]}


@server
def test_schemas_function_errors(tenants: tuple[Flask, str]) -> None:
    app, _ = tenants

    def broken() -> list[str]:
        raise LookupError("no tenants table")

    app.config["MIGRATE_SCHEMAS"] = broken
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == (
        "Error: MIGRATE_SCHEMAS's function failed: LookupError: no tenants table\n"
    )
    result = invoke(app, "-v", "upgrade")
    assert result.exit_code == ExitCode.USAGE
    assert "Traceback" in result.stderr
    assert 'raise LookupError("no tenants table")' in result.stderr

    app.config["MIGRATE_SCHEMAS"] = lambda: "tenant_01"
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.USAGE
    assert "must return a list of schema names, not 'tenant_01'" in result.stderr


def test_binds_as_targets(make_multidb_app: MultidbFactory, tmp_path: Path) -> None:
    urls = {"": f"sqlite:///{tmp_path / 'main.db'}"}
    urls["users"] = f"sqlite:///{tmp_path / 'users.db'}"
    app = make_multidb_app(urls)
    assert invoke(app, "init", "--multidb").exit_code == 0
    assert invoke(app, "migrate", "-m", "initial").exit_code == 0
    (script,) = (tmp_path / "migrations" / "versions").glob("*.py")
    rev = script.name.split("_")[0]

    # --jobs 1 and no --continue-on-error: one run for both, as always.
    result = invoke(app, "upgrade", "--sql")
    assert result.exit_code == 0
    result = invoke(app, "upgrade", "-j", "2")
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stderr)
    assert f"<default>: base -> {rev} (1 revision, T s)" in lines
    assert f"users: base -> {rev} (1 revision, T s)" in lines
    assert lines[-1] == "2 targets: 2 upgraded (T s)"
    assert version_rows(urls[""]) == version_rows(urls["users"]) == [rev]

    result = invoke(app, "--bind", "users", "downgrade", "base", "-j", "2")
    assert result.exit_code == 0, result.output
    assert "targets:" not in result.stderr  # one bind chosen: one target
    assert version_rows(urls["users"]) == []
    assert version_rows(urls[""]) == [rev]

    result = invoke(app, "upgrade", "--continue-on-error")
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stderr)
    assert "<default>: up to date" in lines
    assert lines[-1] == "2 targets: 1 upgraded, 1 up to date (T s)"


def test_one_database_prints_what_it_always_did(
    make_multidb_app: MultidbFactory, tmp_path: Path
) -> None:
    app = make_multidb_app({"": f"sqlite:///{tmp_path / 'main.db'}"}, user_model=False)
    assert invoke(app, "init").exit_code == 0
    assert invoke(app, "migrate", "-m", "initial").exit_code == 0
    plain = invoke(app, "upgrade")
    assert invoke(app, "downgrade", "base").exit_code == 0
    jobs = invoke(app, "upgrade", "-j", "4", "--continue-on-error")
    assert plain.exit_code == jobs.exit_code == 0
    assert plain.stdout == jobs.stdout == ""
    # The same lines, the progress lines' durations aside.
    assert lines_of(plain.stderr) == lines_of(jobs.stderr)
    assert "targets" not in jobs.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["upgrade", "--jobs", "0"], "Invalid value for '-j' / '--jobs'"),
        (["upgrade", "-j", "x"], "'x' is not a valid integer"),
        (["upgrade", "--jobs", "2", "--sql"], "Use one or the other."),
        (["downgrade", "base:r1", "--sql", "-j", "3"], "Use one or the other."),
    ],
)
def test_bad_jobs(
    make_multidb_app: MultidbFactory, tmp_path: Path, args: list[str], message: str
) -> None:
    app = make_multidb_app({"": f"sqlite:///{tmp_path / 'main.db'}"}, user_model=False)
    result = invoke(app, *args)
    assert result.exit_code == ExitCode.USAGE
    assert message in result.stderr
