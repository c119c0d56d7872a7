"""``flask db status`` and ``flask db verify``: each state a database can be in,
with its exit code, on SQLite, PostgreSQL and MariaDB; the ledger's checksum
rows; and the JSON documents against their published schemas."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import jsonschema
import pytest
import referencing
import sqlalchemy as sa
from flask import Flask

from flask_migrate_ext import ExitCode
from helpers import AppFactory
from helpers import invoke
from helpers import MultidbFactory
from helpers import ok
from helpers import version_rows
from helpers import write_revision

DOCS = Path(__file__).parents[2] / "docs"
LEDGER = "flask_migrate_ext_log"


def validate(document: dict[str, t.Any], name: str) -> None:
    """Validate ``document`` against the schema the docs publish for it."""
    schemas = {
        path.stem.split(".")[0]: json.loads(path.read_text())
        for path in (DOCS / "schemas").glob("*.schema.json")
    }
    registry: referencing.Registry[t.Any] = referencing.Registry().with_resources(
        (found["$id"], referencing.Resource.from_contents(found))
        for found in schemas.values()
    )
    validator = jsonschema.Draft202012Validator(schemas[name], registry=registry)
    validator.validate(document)


def status_json(app: Flask, *args: str, exit_code: int = 0) -> dict[str, t.Any]:
    result = invoke(app, "status", "--json", *args)
    assert result.exit_code == exit_code, result.output
    document = json.loads(result.stdout)
    validate(document, "status")
    return t.cast("dict[str, t.Any]", document)


def write_line(versions: Path, *ids: str) -> None:
    """A straight history ``ids[0] <- ids[1] <- ...``, each creating a table."""
    down = None
    for revision in ids:
        write_revision(
            versions,
            revision,
            down,
            f"op.create_table('t_{revision}', sa.Column('id', sa.Integer))",
            f"op.drop_table('t_{revision}')",
        )
        down = revision


def ledger_rows(url: str) -> list[dict[str, t.Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM {LEDGER} ORDER BY id"))
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def versions(tmp_path: Path) -> Path:
    return tmp_path / "migrations" / "versions"


@pytest.fixture
def app(make_app: AppFactory, database_url: str) -> Flask:
    app = make_app(database_url)
    ok(invoke(app, "init"))
    return app


def test_before_init(make_app: AppFactory, sqlite_url: str) -> None:
    result = invoke(make_app(sqlite_url), "status")
    assert result.exit_code == ExitCode.ERROR
    assert "flask db init" in result.stderr
    assert result.stdout == ""


def test_no_revisions_is_up_to_date(app: Flask) -> None:
    document = status_json(app)
    (database,) = document["databases"]
    assert (database["state"], database["revisions"]) == ("up-to-date", [])
    assert "(no revisions yet)" in ok(invoke(app, "status")).stdout


def test_base_partly_and_head(app: Flask, versions: Path, database_url: str) -> None:
    write_line(versions, "r1", "r2", "r3")
    at_base = status_json(app, exit_code=ExitCode.NOT_UP_TO_DATE)
    assert at_base["state"] == "pending"
    assert at_base["databases"][0]["pending"] == ["r1", "r2", "r3"]
    result = invoke(app, "status")
    assert result.exit_code == ExitCode.NOT_UP_TO_DATE
    assert "[ ] r1" in result.stdout and "Current: <base>" in result.stdout
    assert "behind: 3 revisions pending (r1, r2, r3)" in result.stderr

    ok(invoke(app, "upgrade", "r2"))
    partly = status_json(app, exit_code=ExitCode.NOT_UP_TO_DATE)
    (database,) = partly["databases"]
    assert database["current"] == ["r2"] and database["pending"] == ["r3"]
    r1 = database["revisions"][0]
    assert r1["applied"] and r1["recorded_as"] == "upgrade"
    assert r1["applied_by"] and r1["duration"] is not None
    assert r1["checksum"] == "matches"

    ok(invoke(app, "upgrade"))
    result = ok(invoke(app, "status"))
    assert "[X] r3" in result.stdout and result.stdout.endswith("Up to date.\n")
    assert status_json(app)["state"] == "up-to-date"
    assert version_rows(database_url) == ["r3"]


def test_long_history_is_shortened_unless_verbose(
    make_app: AppFactory, sqlite_url: str, versions: Path
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    write_line(versions, *(f"r{n:02}" for n in range(1, 31)))
    ok(invoke(app, "upgrade", "r28"))
    short = invoke(app, "status")
    assert short.exit_code == ExitCode.NOT_UP_TO_DATE
    assert "... 18 earlier revisions applied" in short.stdout
    assert "r01" not in short.stdout and "[X] r28" in short.stdout
    assert "[ ] r29" in short.stdout
    full = invoke(app, "status", "-v")
    assert "[X] r01" in full.stdout and "earlier" not in full.stdout


def test_two_heads(make_app: AppFactory, sqlite_url: str, versions: Path) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    write_line(versions, "r1")
    write_revision(versions, "a1", "r1", "pass", "pass")
    write_revision(versions, "b1", "r1", "pass", "pass")
    ok(invoke(app, "upgrade", "a1"))
    document = status_json(app, exit_code=ExitCode.NOT_UP_TO_DATE)
    (database,) = document["databases"]
    assert sorted(database["heads"]) == ["a1", "b1"]
    assert database["pending"] == ["b1"]
    kinds = [finding["kind"] for finding in database["findings"]]
    assert kinds == ["several-heads"]
    ok(invoke(app, "upgrade", "heads"))
    result = ok(invoke(app, "status"))
    assert "merge heads" in result.stdout  # still worth a warning at the heads


def test_unknown_database_revision(
    app: Flask, versions: Path, database_url: str
) -> None:
    write_line(versions, "r1")
    ok(invoke(app, "upgrade"))
    execute(database_url, "UPDATE alembic_version SET version_num = 'deadbeef'")
    result = invoke(app, "status")
    assert result.exit_code == ExitCode.UNKNOWN_REVISION
    assert "'deadbeef', which no script defines" in result.stderr
    assert "older than the database" in result.stderr
    document = status_json(app, exit_code=ExitCode.UNKNOWN_REVISION)
    assert document["databases"][0]["state"] == "unknown-revision"


@pytest.mark.parametrize("backend", ["mariadb"])
def test_half_applied_revision(app: Flask, versions: Path, database_url: str) -> None:
    write_line(versions, "r1")
    write_revision(
        versions,
        "r2",
        "r1",
        "op.create_table('t_r2', sa.Column('id', sa.Integer))\n"
        "op.execute('SELECT * FROM no_such_table')",
        "op.drop_table('t_r2')",
    )
    assert invoke(app, "upgrade").exit_code == ExitCode.ERROR
    result = invoke(app, "status")
    assert result.exit_code == ExitCode.PARTIALLY_APPLIED
    assert "resolve r2" in result.stdout
    document = status_json(app, exit_code=ExitCode.PARTIALLY_APPLIED)
    (database,) = document["databases"]
    assert database["state"] == "partial" and database["pending"] == ["r2"]


def test_unreachable_database(make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app("postgresql+psycopg://someone:secret@127.0.0.1:1/nowhere")
    ok(invoke(app, "init"))
    result = invoke(app, "status")
    assert result.exit_code == ExitCode.DATABASE_UNREACHABLE
    assert "secret" not in result.output


def test_multidb_per_bind(
    make_multidb_app: MultidbFactory,
    make_database: t.Callable[[str], str],
    tmp_path: Path,
) -> None:
    main_url, users_url = make_database("sqlite"), make_database("postgresql")
    app = make_multidb_app({"": main_url, "users": users_url})
    ok(invoke(app, "init", "--multidb"))
    ok(invoke(app, "revision", "-m", "one", "--rev-id", "r1"))
    ok(invoke(app, "upgrade"))
    execute(users_url, "DELETE FROM alembic_version")
    document = status_json(app, exit_code=ExitCode.NOT_UP_TO_DATE)
    states = {db["name"]: db["state"] for db in document["databases"]}
    assert states == {"": "up-to-date", "users": "pending"}
    result = invoke(app, "status")
    assert "Database 'users': postgresql" in result.stdout
    assert "Database 'users' is behind: 1 revision pending (r1)" in result.stderr
    only_main = status_json(app, "--bind", "")
    assert [db["name"] for db in only_main["databases"]] == [""]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_tenant_schemas(
    make_app: AppFactory, database_url: str, versions: Path
) -> None:
    execute(database_url, "CREATE SCHEMA tenant_a", "CREATE SCHEMA tenant_b")
    app = make_app(database_url)
    app.config["MIGRATE_SCHEMAS"] = ["tenant_a", "tenant_b"]
    ok(invoke(app, "init"))
    write_line(versions, "r1", "r2")
    ok(invoke(app, "upgrade", "--schema", "tenant_a"))
    document = status_json(app, exit_code=ExitCode.NOT_UP_TO_DATE)
    found = {db["schema"]: db["pending"] for db in document["databases"]}
    assert found == {"tenant_a": [], "tenant_b": ["r1", "r2"]}


# -- the ledger's checksums ------------------------------------------------------


def test_checksum_rows_after_upgrade_downgrade_stamp(
    app: Flask, versions: Path, database_url: str
) -> None:
    write_line(versions, "r1", "r2")
    ok(invoke(app, "upgrade"))
    ok(invoke(app, "downgrade", "r1"))
    ok(invoke(app, "stamp", "r2"))
    rows = [
        (row["revision"], row["action"], row["status"], bool(row["checksum"]))
        for row in ledger_rows(database_url)
    ]
    assert rows == [
        ("r1", "upgrade", "applied", True),
        ("r2", "upgrade", "applied", True),
        ("r2", "downgrade", "applied", True),
        ("r2", "stamp", "stamped", True),
    ]
    assert all(row["tool_version"] for row in ledger_rows(database_url))
    stamped = status_json(app)["databases"][0]["revisions"][1]
    assert (stamped["recorded_as"], stamped["duration"]) == ("stamp", None)
    ok(invoke(app, "stamp", "base"))
    assert [row["status"] for row in ledger_rows(database_url)][-2:] == [
        "unstamped",
        "unstamped",
    ]
    ok(invoke(app, "verify"))


def test_ledger_from_before_checksums_gets_baseline(
    make_app: AppFactory, sqlite_url: str, versions: Path
) -> None:
    """A ledger made by an earlier version (no checksum columns) and a
    revision applied before the ledger existed: the next run adds the
    columns and records that revision as a baseline, never an error."""
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    write_line(versions, "r1", "r2")
    execute(
        sqlite_url,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)",
        "INSERT INTO alembic_version VALUES ('r1')",
        "CREATE TABLE t_r1 (id INTEGER)",
        f"CREATE TABLE {LEDGER} (id INTEGER PRIMARY KEY, revision VARCHAR(255)"
        " NOT NULL, action VARCHAR(16) NOT NULL, status VARCHAR(16) NOT NULL,"
        " partial BOOLEAN NOT NULL, statements INTEGER NOT NULL, started_at"
        " DATETIME NOT NULL, finished_at DATETIME, error TEXT, host VARCHAR(255),"
        " pid INTEGER)",
    )
    before = ok(invoke(app, "verify"))  # old ledger: nothing to hold against
    assert "1 applied before checksums were recorded" in before.stdout
    ok(invoke(app, "upgrade"))
    rows = [
        (r["revision"], r["action"], r["checksum"]) for r in ledger_rows(sqlite_url)
    ]
    assert rows[0] == ("r1", "baseline", None)
    assert rows[1][:2] == ("r2", "upgrade") and rows[1][2]
    result = ok(invoke(app, "verify"))
    assert "1 applied scripts unchanged; 1 applied before" in result.stdout.replace(
        "script ", "scripts "
    )


def test_foreign_table_with_the_ledgers_name(
    app: Flask, versions: Path, database_url: str
) -> None:
    execute(database_url, f"CREATE TABLE {LEDGER} (name VARCHAR(20))")
    write_line(versions, "r1")
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.USAGE
    assert "MIGRATE_LOG_TABLE" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert version_rows(database_url) == []


# -- verify -----------------------------------------------------------------------


def test_verify_catches_an_edit_not_line_endings(
    app: Flask, versions: Path, database_url: str
) -> None:
    write_line(versions, "r1", "r2")
    ok(invoke(app, "upgrade"))
    script = versions / "r1.py"
    script.write_bytes(script.read_bytes().replace(b"\n", b"  \r\n") + b"\r\n\r\n")
    ok(invoke(app, "verify"))
    script.write_text(script.read_text().replace("t_r1", "t_r1_renamed"))
    result = invoke(app, "verify")
    assert result.exit_code == ExitCode.VERIFY_FAILED
    assert (
        "r1's script" in result.stdout
        and "edited after it was applied" in result.stdout
    )
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: 1 problem with applied revisions: r1 edited after it was applied."
    )
    document = json.loads(invoke(app, "verify", "--json").stdout)
    validate(document, "verify")
    assert document["ok"] is False and document["exit_code"] == 9
    assert [f["kind"] for f in document["databases"][0]["findings"]] == ["edited"]
    status = status_json(app)  # status warns, but the database is up to date
    assert status["databases"][0]["revisions"][0]["checksum"] == "edited"

    accepted = ok(invoke(app, "verify", "--accept", "r1"))
    assert accepted.stdout.startswith("Accepted r1's current script in the database")
    ok(invoke(app, "verify"))
    r1 = status_json(app)["databases"][0]["revisions"][0]
    assert (r1["recorded_as"], r1["checksum"]) == ("upgrade", "matches")


def test_verify_catches_a_deleted_file(app: Flask, versions: Path) -> None:
    write_line(versions, "r1", "r2")
    ok(invoke(app, "upgrade", "r1"))
    ok(invoke(app, "stamp", "r2"))
    (versions / "r2.py").unlink()
    result = invoke(app, "verify")
    assert result.exit_code == ExitCode.VERIFY_FAILED
    assert "r2" in result.stderr


def test_verify_catches_out_of_band_revision(
    app: Flask, versions: Path, database_url: str
) -> None:
    write_line(versions, "r1", "r2")
    ok(invoke(app, "upgrade", "r1"))
    # Applied by hand, as plain Alembic or another tool would.
    execute(
        database_url,
        "CREATE TABLE t_r2 (id INTEGER)",
        "UPDATE alembic_version SET version_num = 'r2'",
    )
    result = invoke(app, "verify")
    assert result.exit_code == ExitCode.VERIFY_FAILED
    assert "r2 applied without the ledger" in result.stderr
    ok(invoke(app, "verify", "--accept", "r2"))
    ok(invoke(app, "verify"))


def test_verify_accept_rejects_what_is_not_applied(app: Flask, versions: Path) -> None:
    write_line(versions, "r1", "r2")
    ok(invoke(app, "upgrade", "r1"))
    result = invoke(app, "verify", "--accept", "r2")
    assert result.exit_code == ExitCode.ERROR
    assert "r2 is not applied" in result.stderr
    result = invoke(app, "verify", "--accept", "nope")
    assert result.exit_code == ExitCode.ERROR
    assert "nope" in result.stderr
