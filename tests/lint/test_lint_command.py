"""``flask db lint``: exit codes (errors 12, warnings 0, ``--strict`` 12),
``--since``, ``--json`` against its published schema, bad input, the dialect
taken from the app's URL without connecting; and ``flask db migrate``
printing findings on the script it wrote."""

from __future__ import annotations

import json
import os
import typing as t
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_ext import ExitCode
from flask_migrate_ext import lint
from flask_migrate_ext import LintFailedError
from flask_migrate_ext import migrate
from flask_migrate_ext.report import reporting_to
from helpers import AppFactory
from helpers import invoke
from helpers import ok
from helpers import run_flask
from helpers import write_revision

SCHEMA = Path(__file__).parents[2] / "docs" / "schemas" / "lint.schema.json"
VERSIONS = Path("migrations/versions")
#: Never connected to: lint reads the dialect from the URL only.
NOWHERE_PG = "postgresql+psycopg://nobody:secret@127.0.0.1:1/nowhere"


def history(*upgrades: str) -> None:
    """Revisions r1 (creates ``employee``), then r2, r3 ... with ``upgrades``."""
    write_revision(
        VERSIONS,
        "r1",
        None,
        "op.create_table('employee', sa.Column('id', sa.Integer),"
        " sa.Column('name', sa.String(50)))",
        "op.drop_table('employee')",
    )
    for number, upgrade in enumerate(upgrades, start=2):
        write_revision(VERSIONS, f"r{number}", f"r{number - 1}", upgrade, "pass")


@pytest.fixture
def app(make_app: AppFactory, sqlite_url: str) -> Flask:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    return app


DROP = "op.drop_column('employee', 'name')"
RENAME = "op.rename_table('employee', 'staff')"


def test_errors_exit_12_and_are_listed(app: Flask) -> None:
    history(RENAME, DROP)
    result = invoke(app, "lint")
    assert result.exit_code == ExitCode.LINT_FAILED == 12
    assert "r3 migrations/versions/r3.py" in result.stdout
    assert "FMX002 error: drop_column('employee', 'name')" in result.stdout
    assert "FMX009 warning: rename_table('employee', 'staff')" in result.stdout
    assert "Checked 3 revisions: 1 error, 1 warning." in result.stdout
    assert "Error: Lint found 1 error and 1 warning in 3 revisions" in result.stderr


def test_warnings_exit_0_unless_strict(app: Flask) -> None:
    history(RENAME)
    result = ok(invoke(app, "lint"))
    assert "Checked 2 revisions: 0 errors, 1 warning." in result.stdout
    assert invoke(app, "lint", "--strict").exit_code == 12


def test_a_clean_history_exits_0(app: Flask) -> None:
    history("op.add_column('employee', sa.Column('email', sa.String(120)))")
    result = ok(invoke(app, "lint"))
    assert result.stdout == "Checked 2 revisions: 0 errors, 0 warnings.\n"


def test_suppressed_errors_pass_and_are_counted(app: Flask) -> None:
    history(f"{DROP}  # fmx: allow FMX002")
    result = ok(invoke(app, "lint", "--strict"))
    assert "(1 suppressed by '# fmx: allow')" in result.stdout


def test_since_checks_only_the_later_revisions(app: Flask) -> None:
    history(DROP, RENAME, "op.create_table('t', sa.Column('id', sa.Integer))")
    result = ok(invoke(app, "lint", "--since", "r2"))
    assert "Checked 2 revisions: 0 errors, 1 warning." in result.stdout
    assert invoke(app, "lint", "--since", "r1").exit_code == 12
    # A head as REV: nothing after it.
    assert "Checked 0 revisions" in ok(invoke(app, "lint", "--since", "r4")).stdout


def test_revisions_by_id_or_path(app: Flask) -> None:
    history(DROP, RENAME)
    assert ok(invoke(app, "lint", "r3")).stdout.startswith("r3 ")
    assert invoke(app, "lint", "r1", "r2").exit_code == 12
    with app.app_context():
        result = lint(revisions=[os.fspath(VERSIONS / "r3.py")])
    assert [f.code for f in result.findings] == ["FMX009"]


def validated(text: str) -> dict[str, t.Any]:
    document = json.loads(text)
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(document)
    return t.cast("dict[str, t.Any]", document)


def test_json(app: Flask) -> None:
    history(RENAME, f"{DROP}\nop.drop_table('staff')  # fmx: allow FMX001")
    result = invoke(app, "lint", "--json")
    assert result.exit_code == 12
    document = validated(result.stdout)
    assert document["command"] == "lint"
    assert (document["ok"], document["exit_code"]) == (False, 12)
    assert (document["errors"], document["warnings"]) == (1, 1)
    assert document["revisions"] == ["r1", "r2", "r3"]
    drop = document["findings"][1]
    assert drop["code"] == "FMX002"
    assert drop["revision"] == "r3"
    assert drop["anchor"] == "fmx002"
    source = Path(drop["path"]).read_text().splitlines()
    assert source[drop["line"] - 1].strip() == DROP
    assert [f["code"] for f in document["suppressed"]] == ["FMX001"]

    clean = validated(ok(invoke(app, "lint", "--json", "r1")).stdout)
    assert (clean["ok"], clean["exit_code"], clean["findings"]) == (True, 0, [])


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["nope"], 1, "Can't lint 'nope'"),
        (["--since", "nope"], 1, "Can't lint 'nope'"),
        (["r1", "--since", "r1"], 2, "Give REVISIONS or --since, not both"),
        (["--dialect", "db2"], 2, "'db2' is not one of"),
        (["-d", "elsewhere"], 1, "Migration directory 'elsewhere' does not exist"),
    ],
)
def test_bad_input(app: Flask, args: list[str], exit_code: int, message: str) -> None:
    history(DROP)
    before = sorted(p.name for p in VERSIONS.iterdir())
    result = invoke(app, "lint", *args)
    assert result.exit_code == exit_code
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert sorted(p.name for p in VERSIONS.iterdir()) == before


def test_api_bad_dialect_and_both_selections(app: Flask) -> None:
    history()
    with app.app_context():
        with pytest.raises(Exception, match="Unknown dialect 'db2'"):
            lint(dialect="db2")
        with pytest.raises(Exception, match="not both"):
            lint(revisions=["r1"], since="r1")


def test_dialect_comes_from_the_url_without_connecting(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = make_app(NOWHERE_PG)
    ok(invoke(app, "init"))
    history("op.create_index('ix_employee_name', 'employee', ['name'])")
    result = invoke(app, "lint")
    assert result.exit_code == 12, result.output
    assert "FMX007 error" in result.stdout
    # The same history judged for SQLite has no PostgreSQL rule to break.
    assert ok(invoke(app, "lint", "--dialect", "sqlite"))
    assert "secret" not in result.output


def test_subprocess_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from flask import Flask\n"
        "from flask_sqlalchemy import SQLAlchemy\n"
        "from flask_migrate_ext import Migrate\n"
        "app = Flask(__name__)\n"
        f"app.config['SQLALCHEMY_DATABASE_URI'] = 'sqlite:///{tmp_path}/app.db'\n"
        "db = SQLAlchemy(app)\n"
        "Migrate(app, db)\n"
    )
    ok(run_flask(tmp_path, "--app", "app", "db", "init"))
    history(DROP)
    failed = run_flask(tmp_path, "--app", "app", "db", "lint")
    assert failed.returncode == 12, failed.stderr
    assert "FMX002 error" in failed.stdout
    assert "Error: Lint found 1 error" in failed.stderr
    ok(run_flask(tmp_path, "--app", "app", "db", "lint", "r1"))


# -- migrate -------------------------------------------------------------------


def test_migrate_prints_findings_under_generating(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url, {"name": sa.Column(sa.String(50))})
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate", "-m", "create"))
    ok(invoke(app, "upgrade"))
    assert "FMX" not in invoke(app, "migrate").output  # nothing new: no lint

    app = make_app(sqlite_url, {})
    result = ok(invoke(app, "migrate", "-m", "drop name"))  # never fails migrate
    # "Generating ... done" on stdout (Alembic's), the findings on stderr:
    # a terminal shows them under it (stdout is flushed at each line).
    assert "Generating" in result.stdout and "done" in result.stdout
    assert "FMX" not in result.stdout
    finding = next(line for line in result.stderr.splitlines() if "FMX002" in line)
    assert finding.startswith("  FMX002 error: drop_column('employee', 'name')")
    assert "(line " in finding
    (path,) = [p for p in VERSIONS.glob("*drop_name.py")]
    # The same finding as data: lint the written file.
    with app.app_context():
        with pytest.raises(LintFailedError) as caught:
            lint(revisions=[os.fspath(path)])
    (found,) = caught.value.result.findings
    assert found.code == "FMX002"
    assert found.line_text() in finding


def test_migrate_api_returns_the_path_and_reports_findings(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url, {"name": sa.Column(sa.String(50))})
    ok(invoke(app, "init"))
    ok(invoke(app, "migrate"))
    ok(invoke(app, "upgrade"))
    app = make_app(sqlite_url, {})
    messages: list[str] = []
    with app.app_context(), reporting_to(messages.append):
        path = migrate()
    assert isinstance(path, str) and os.path.isfile(path)
    assert [m for m in messages if "FMX" in m] == [
        f"  FMX002 error: drop_column('employee', 'name') deletes the column's data"
        f" (line {_line_of(path, 'drop_column')}). Deploy code that no longer reads"
        " the column first (remove it from the model), then mark the drop"
        " '# fmx: allow FMX002'."
    ]


def _line_of(path: str, text: str) -> int:
    lines = Path(path).read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if text in line)
