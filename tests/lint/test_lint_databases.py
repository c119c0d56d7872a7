"""The lint on real histories: the example app's committed migrations, a
multiple-database app, and PostgreSQL confirming what the PostgreSQL rules
say (the flagged script fails there, the safe variant runs)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from flask import Flask

from flask_migrate_ext import lint
from flask_migrate_ext import LintFailedError
from flask_migrate_ext import LintResult
from flask_migrate_ext import MigrationFailedError
from flask_migrate_ext import upgrade
from helpers import AppFactory
from helpers import invoke
from helpers import MultidbFactory
from helpers import ok
from helpers import write_revision

EXAMPLE = Path(__file__).resolve().parents[2] / "example_app"
RENAME = "9cf439908bba"
USERNAME = "888f1c844761"


@pytest.fixture
def example_app(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> t.Iterator[Flask]:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from example import Config
    from example import create_app
    from example import db

    class TestConfig(Config):
        SQLALCHEMY_DATABASE_URI = sqlite_url

    app = create_app(TestConfig)
    yield app
    with app.app_context():
        db.engine.dispose()


def _found(result: LintResult) -> list[tuple[str, str, str]]:
    return [(f.revision, f.code, f.severity) for f in result.findings]


def test_example_history_on_sqlite_has_two_documented_warnings(
    example_app: Flask,
) -> None:
    with example_app.app_context():
        result = lint()
    assert len(result.revisions) == 4
    # The hand-written rename keeps the data, but old code running during a
    # rolling deploy still uses the old name; the NOT NULL comes after a fill.
    assert _found(result) == [
        (RENAME, "FMX009", "warning"),
        (USERNAME, "FMX010", "warning"),
    ]
    assert not result.failed


def test_example_history_judged_for_postgresql(example_app: Flask) -> None:
    with example_app.app_context():
        with pytest.raises(LintFailedError) as caught:
            lint(dialect="postgresql")
    # The unique constraint on a filled table locks it on PostgreSQL.
    assert _found(caught.value.result) == [
        (RENAME, "FMX009", "warning"),
        (USERNAME, "FMX010", "warning"),
        (USERNAME, "FMX008", "error"),
    ]


def test_multiple_databases_each_with_its_dialect(
    make_multidb_app: MultidbFactory, make_database: t.Callable[[str], str]
) -> None:
    binds = {"": make_database("sqlite"), "users": make_database("sqlite")}
    app = make_multidb_app(binds)
    ok(invoke(app, "init", "--multidb"))
    ok(invoke(app, "migrate", "-m", "create"))
    ok(invoke(app, "upgrade"))
    app = make_multidb_app(binds, user_model=False)
    result = ok(invoke(app, "migrate", "-m", "drop user"))
    assert "FMX001 error: drop_table('user')" in result.output
    with app.app_context():
        with pytest.raises(LintFailedError) as caught:
            lint()
    (finding,) = caught.value.result.findings
    assert (finding.code, finding.database) == ("FMX001", "users")
    lines = invoke(app, "lint").stdout
    assert "FMX001 error [users]: drop_table('user')" in lines


CONCURRENT_OUTSIDE = (
    "op.create_index('ix_employee_name', 'employee', ['name'],"
    " postgresql_concurrently=True)"
)
CONCURRENT_INSIDE = (
    "with op.get_context().autocommit_block():\n"
    "    op.create_index('ix_employee_name', 'employee', ['name'],"
    " postgresql_concurrently=True)"
)


@pytest.mark.server
@pytest.mark.parametrize(
    ("upgrade_body", "codes"),
    [(CONCURRENT_OUTSIDE, ["FMX012"]), (CONCURRENT_INSIDE, [])],
)
def test_postgresql_agrees_with_the_concurrently_rules(
    make_app: AppFactory,
    make_database: t.Callable[[str], str],
    upgrade_body: str,
    codes: list[str],
) -> None:
    app = make_app(make_database("postgresql"))
    ok(invoke(app, "init"))
    versions = Path("migrations/versions")
    write_revision(
        versions,
        "a1",
        None,
        "op.create_table('employee', sa.Column('id', sa.Integer),"
        " sa.Column('name', sa.String(50)))",
        "op.drop_table('employee')",
    )
    write_revision(versions, "b2", "a1", upgrade_body, "pass")
    with app.app_context():
        try:
            found = [f.code for f in lint().findings]
        except LintFailedError as e:
            found = [f.code for f in e.result.findings]
        assert found == codes
        if codes:
            with pytest.raises(MigrationFailedError, match="CONCURRENTLY"):
                upgrade()
        else:
            upgrade()
