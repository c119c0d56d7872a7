"""Each lint rule fires on a planted script and not on its safe variant; the
recorder reads batch blocks, data migrations and scripts that fail; the
``# fmx: allow`` comments suppress what they name, where they are."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from flask_migrate_ext import lint
from flask_migrate_ext import LintFailedError
from flask_migrate_ext import LintResult
from helpers import AppFactory
from helpers import invoke
from helpers import ok
from helpers import write_revision

BASE = """
op.create_table(
    'employee',
    sa.Column('id', sa.Integer, primary_key=True),
    sa.Column('name', sa.String(100)),
    sa.Column('department_id', sa.Integer),
)
op.create_table('department', sa.Column('id', sa.Integer, primary_key=True))
"""


@pytest.fixture
def app(make_app: AppFactory, sqlite_url: str) -> Flask:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    return app


def lint_upgrade(app: Flask, upgrade: str, dialect: str = "postgresql") -> LintResult:
    """Lint revision ``b2``, whose upgrade is ``upgrade``, after ``a1`` made
    the tables (so they exist, and may have rows, when ``b2`` runs)."""
    versions = Path("migrations/versions")
    write_revision(versions, "a1", None, BASE, "pass")
    write_revision(versions, "b2", "a1", upgrade, "pass")
    with app.app_context():
        try:
            return lint(revisions=["b2"], dialect=dialect)
        except LintFailedError as e:
            assert isinstance(e.result, LintResult)
            return e.result


def codes(result: LintResult) -> list[str]:
    return [finding.code for finding in result.findings]


# (code, dialect, dangerous upgrade, safe variant)
CASES = [
    (
        "FMX001",
        "sqlite",
        "op.drop_table('employee')",
        "op.create_table('tmp', sa.Column('id', sa.Integer))\nop.drop_table('tmp')",
    ),
    (
        "FMX002",
        "sqlite",
        "with op.batch_alter_table('employee') as batch_op:\n"
        "    batch_op.drop_column('name')",
        "op.create_table('t', sa.Column('id', sa.Integer), sa.Column('x', sa.Text))\n"
        "op.drop_column('t', 'x')",
    ),
    (
        "FMX003",
        "sqlite",
        "with op.batch_alter_table('employee') as batch_op:\n"
        "    batch_op.add_column(sa.Column('age', sa.Integer, nullable=False))",
        "with op.batch_alter_table('employee') as batch_op:\n"
        "    batch_op.add_column(\n"
        "        sa.Column('age', sa.Integer, nullable=False, server_default='0')\n"
        "    )",
    ),
    (
        "FMX004",
        "postgresql",
        "op.alter_column('employee', 'name', existing_type=sa.String(100),"
        " type_=sa.String(20))",
        "op.alter_column('employee', 'name', existing_type=sa.String(100),"
        " type_=sa.String(200))",
    ),
    (
        "FMX004",
        "postgresql",
        "op.alter_column('employee', 'name', existing_type=sa.String(100),"
        " type_=sa.Integer())",
        "op.alter_column('employee', 'name', existing_type=sa.String(100),"
        " type_=sa.Text())",
    ),
    (
        "FMX005",
        "postgresql",
        "op.alter_column('employee', 'id', existing_type=sa.Integer(),"
        " type_=sa.BigInteger())",
        "op.alter_column('employee', 'id', existing_type=sa.Integer(),"
        " type_=sa.Integer())",
    ),
    (
        "FMX005",
        "postgresql",
        "op.alter_column('employee', 'name', type_=sa.String(200))",
        "op.create_table('t', sa.Column('x', sa.String(10)))\n"
        "op.alter_column('t', 'x', type_=sa.String(5))",
    ),
    (
        "FMX006",
        "sqlite",
        "with op.batch_alter_table('employee') as batch_op:\n"
        "    batch_op.add_column(sa.Column('full_name', sa.String(100)))\n"
        "    batch_op.drop_column('name')",
        "with op.batch_alter_table('employee') as batch_op:\n"
        "    batch_op.alter_column('name', new_column_name='full_name')",
    ),
    (
        "FMX007",
        "postgresql",
        "op.create_index('ix_employee_name', 'employee', ['name'])",
        "with op.get_context().autocommit_block():\n"
        "    op.create_index(\n"
        "        'ix_employee_name', 'employee', ['name'],"
        " postgresql_concurrently=True\n"
        "    )",
    ),
    (
        "FMX008",
        "postgresql",
        "op.create_foreign_key('fk_employee_department', 'employee', 'department',"
        " ['department_id'], ['id'])",
        "op.create_foreign_key('fk_employee_department', 'employee', 'department',"
        " ['department_id'], ['id'], postgresql_not_valid=True)",
    ),
    (
        "FMX008",
        "mysql",
        "op.create_unique_constraint('uq_employee_name', 'employee', ['name'])",
        "op.create_table('t', sa.Column('x', sa.Integer))\n"
        "op.create_unique_constraint('uq_t_x', 't', ['x'])",
    ),
    (
        "FMX009",
        "postgresql",
        "op.rename_table('employee', 'staff')",
        "op.create_table('t', sa.Column('x', sa.Integer))\n"
        "op.rename_table('t', 'u')\n"
        "op.alter_column('u', 'x', new_column_name='y')",
    ),
    (
        "FMX010",
        "postgresql",
        "op.alter_column('employee', 'name', existing_type=sa.String(100),"
        " nullable=False)",
        "op.alter_column('employee', 'name', existing_type=sa.String(100),"
        " nullable=True)",
    ),
    (
        "FMX011",
        "sqlite",
        "op.create_unique_constraint('uq_employee_name', 'employee', ['name'])",
        "with op.batch_alter_table('employee') as batch_op:\n"
        "    batch_op.create_unique_constraint('uq_employee_name', ['name'])",
    ),
    (
        "FMX012",
        "postgresql",
        "op.create_index('ix_employee_name', 'employee', ['name'],"
        " postgresql_concurrently=True)",
        "with op.get_context().autocommit_block():\n"
        "    op.drop_index('ix_employee_name', 'employee',"
        " postgresql_concurrently=True)",
    ),
]


@pytest.mark.parametrize(
    ("code", "dialect", "dangerous", "safe"),
    CASES,
    ids=[f"{case[0]}-{i}" for i, case in enumerate(CASES)],
)
def test_rule_fires_on_dangerous_and_not_on_safe(
    app: Flask, code: str, dialect: str, dangerous: str, safe: str
) -> None:
    found = lint_upgrade(app, dangerous, dialect)
    assert code in codes(found), found.findings
    finding = next(f for f in found.findings if f.code == code)
    assert finding.revision == "b2"
    assert finding.path.endswith("b2.py")
    source = Path(finding.path).read_text().splitlines()
    assert finding.line is not None
    assert "op." in source[finding.line - 1]
    assert finding.message and finding.hint and finding.title
    assert finding.severity == (
        "warning" if code in {"FMX005", "FMX009", "FMX010"} else "error"
    )

    safe_found = lint_upgrade(app, safe, dialect)
    assert code not in codes(safe_found), safe_found.findings


def test_postgresql_rules_keep_quiet_on_other_dialects(app: Flask) -> None:
    upgrade = (
        "op.create_index('ix_employee_name', 'employee', ['name'],"
        " postgresql_concurrently=True)\n"
        "op.create_index('ix_employee_name2', 'employee', ['name'])"
    )
    assert codes(lint_upgrade(app, upgrade, "mysql")) == []
    assert codes(lint_upgrade(app, upgrade, "postgresql")) == ["FMX012", "FMX007"]


def test_a_rename_pair_is_one_finding_not_two(app: Flask) -> None:
    found = lint_upgrade(
        app,
        "op.drop_column('employee', 'name')\n"
        "op.add_column('employee', sa.Column('full_name', sa.String(100)))",
    )
    assert codes(found) == ["FMX006"]
    assert "'full_name'" in found.findings[0].message


def test_data_migration_reads_no_rows_and_later_ops_are_checked(app: Flask) -> None:
    found = lint_upgrade(
        app,
        "connection = op.get_bind()\n"
        "rows = connection.execute(sa.text('SELECT id FROM employee')).all()\n"
        "for row in rows:\n"
        "    raise AssertionError('no rows while linting')\n"
        "op.execute('UPDATE employee SET name = upper(name)')\n"
        "op.drop_column('employee', 'name')",
    )
    assert codes(found) == ["FMX002"]


def test_a_script_that_fails_is_checked_up_to_the_failure(app: Flask) -> None:
    found = lint_upgrade(
        app,
        "op.drop_table('department')\n"
        "raise RuntimeError('needs the real database')\n"
        "op.drop_table('employee')",
    )
    assert codes(found) == ["FMX001", "FMX000"]
    stopped = found.findings[1]
    assert stopped.severity == "warning"
    assert "RuntimeError: needs the real database" in stopped.message
    source = Path(stopped.path).read_text().splitlines()
    assert stopped.line is not None
    assert "raise RuntimeError" in source[stopped.line - 1]


def test_tables_created_in_the_revision_are_not_existing(app: Flask) -> None:
    found = lint_upgrade(
        app,
        "op.create_table('t', sa.Column('id', sa.Integer))\n"
        "op.add_column('t', sa.Column('x', sa.Integer, nullable=False))\n"
        "op.create_index('ix_t_x', 't', ['x'])\n"
        "op.add_column('employee', sa.Column('x', sa.Integer, nullable=False))",
    )
    assert codes(found) == ["FMX003"]
    assert "'employee'" in found.findings[0].message


# -- suppression ---------------------------------------------------------------


@pytest.mark.parametrize(
    "upgrade",
    [
        "op.drop_table('employee')  # fmx: allow FMX001",
        "op.drop_table('employee')  # fmx: allow",
        "# fmx: allow FMX001 -- archived in ticket 12\nop.drop_table('employee')",
        "# fmx: allow FMX002, FMX001\n# rows exported\nop.drop_table('employee')",
        "op.drop_table(\n    'employee',\n)  # fmx: allow FMX001",
        "# fmx: allow-file FMX001\nop.drop_table('employee')\n"
        "op.drop_table('department')",
    ],
)
def test_allow_comments_suppress(app: Flask, upgrade: str) -> None:
    found = lint_upgrade(app, upgrade)
    assert codes(found) == []
    assert {f.code for f in found.suppressed} == {"FMX001"}
    assert not found.failed


@pytest.mark.parametrize(
    ("upgrade", "left"),
    [
        # Another code.
        ("op.drop_table('employee')  # fmx: allow FMX002", ["FMX001"]),
        # A comment on the previous operation's line is that operation's.
        (
            "op.drop_table('department')  # fmx: allow FMX001\n"
            "op.drop_table('employee')",
            ["FMX001"],
        ),
        # A blank line between the comment and the operation.
        ("# fmx: allow FMX001\n\nop.drop_table('employee')", ["FMX001"]),
        # allow-file names another code.
        ("# fmx: allow-file FMX009\nop.drop_table('employee')", ["FMX001"]),
    ],
)
def test_allow_comments_suppress_only_what_they_name(
    app: Flask, upgrade: str, left: list[str]
) -> None:
    found = lint_upgrade(app, upgrade)
    assert codes(found) == left
    assert found.failed


def test_a_script_without_upgrade_is_reported(app: Flask) -> None:
    versions = Path("migrations/versions")
    write_revision(versions, "a1", None, BASE, "pass")
    (versions / "b2.py").write_text(
        "revision = 'b2'\ndown_revision = 'a1'\nbranch_labels = None\n"
        "depends_on = None\n"
    )
    with app.app_context():
        result = lint(revisions=["b2"], strict=False)
    (finding,) = result.findings
    assert finding.code == "FMX000"
    assert "defines no upgrade()" in finding.message
