"""The progress line of ``flask db upgrade --jobs`` on a pseudo-terminal: one
line in place for the command (targets ended of how many, each running
target's revision and clock), drawn by the ``flask db`` process from its
workers' events, erased before each target's lines and at the end."""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_progress_terminal import screen

from helpers import ok
from helpers import on_terminal
from helpers import run_flask
from helpers import write_revision

SCHEMAS = ["tenant_01", "tenant_02", "tenant_03"]

APP = """\
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
app.config["MIGRATE_SCHEMAS"] = os.environ["SCHEMAS"].split(",")
db = SQLAlchemy(app)
migrate = Migrate(app, db)
"""

SLOW = 'time.sleep(float(os.environ.get("R2_SECONDS", "0")))'


@pytest.fixture
def project(make_database: t.Any, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    url = make_database("postgresql")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for schema in SCHEMAS:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    (tmp_path / "app.py").write_text(APP)
    env = {"DATABASE_URL": url, "SCHEMAS": ",".join(SCHEMAS)}
    ok(run_flask(tmp_path, "--app", "app", "db", "init", env=env))
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        'op.create_table("item", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("item")',
        message="first",
    )
    write_revision(versions, "r2", "r1", f"import os\n{SLOW}", "pass", message="second")
    write_revision(versions, "r3", "r2", "pass", "pass", message="third")
    return tmp_path, env


@pytest.mark.server
def test_one_line_for_the_targets(project: tuple[Path, dict[str, str]]) -> None:
    cwd, env = project
    args = ["--app", "app", "db", "upgrade", "--jobs", "2"]
    code, raw = on_terminal(cwd, args, {**env, "R2_SECONDS": "0.8"})
    assert code == 0, raw
    drawn = re.findall(r"\r(\[\d/3 targets\][^\r\n]*)", raw)
    # Both workers' targets at once (the second counted: an 80-column
    # terminal), their clocks going; then the third.
    assert max(len(line) for line in drawn) <= 79
    both = r"\[0/3 targets\] tenant_0[12] \[2/3\] r2 second \((\S+) s\) (·|\|) \+1"
    matches = [re.fullmatch(both, line) for line in drawn]
    clocks = [float(m.group(1)) for m in matches if m]
    assert len(set(clocks)) >= 2, drawn
    assert any(
        re.match(r"\[[12]/3 targets\] tenant_03 \[\d/3\]", line) for line in drawn
    ), drawn
    assert not any(line.startswith("[3/3 targets]") for line in drawn), drawn
    # What stays on the screen: each target's lines whole, no progress left.
    shown = screen(raw)
    assert not [line for line in shown if "targets]" in line or "[2/3]" in line]
    for schema in SCHEMAS:
        assert any(
            re.fullmatch(rf"schema {schema}: base -> r3 \(3 revisions, \S+ s\)", line)
            for line in shown
        ), shown
    assert "INFO  [alembic.runtime.migration] Running upgrade r1 -> r2, second" in shown
    assert [line for line in shown if line][-1].startswith("3 targets: 3 upgraded (")

    args = ["--app", "app", "db", "downgrade", "base", "--jobs", "2", "-q"]
    code, raw = on_terminal(cwd, args, env)
    assert code == 0, raw
    assert "targets]" not in raw and "[1/3]" not in raw
    assert "3 targets: 3 downgraded (" in raw
