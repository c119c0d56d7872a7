"""The questions asked on a real terminal (a pseudo-terminal): the rename
assistant of ``migrate`` and the confirmation of a downgrade dropping rows."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from helpers import ok
from helpers import on_terminal
from helpers import run_flask

APP = """\
import os

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Employee(db.Model):
    __tablename__ = "employee"
    id = sa.Column(sa.Integer, primary_key=True)
    if os.environ.get("RENAMED"):
        full_name = sa.Column(sa.String(50))
    else:
        name = sa.Column(sa.String(50))
"""


def _on_terminal(
    cwd: Path, args: list[str], answer: str, env: dict[str, str]
) -> tuple[int, str]:
    """Run ``flask <args>`` on a pseudo-terminal, typing ``answer`` at each
    question."""
    code, seen = on_terminal(cwd, args, env, answer, every_question=True)
    return code, seen.replace("\r\n", "\n")


def test_questions_on_a_terminal(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "app.py").write_text(APP)
    url = {"DATABASE_URL": sqlite_url}
    for args in (["init"], ["migrate", "-m", "initial"], ["upgrade"]):
        ok(run_flask(tmp_path, "--app", "app", "db", *args, env=url))
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO employee (name) VALUES ('a')"))
    engine.dispose()

    code, seen = _on_terminal(
        tmp_path,
        ["--app", "app", "db", "migrate", "-m", "rename"],
        "y",
        {"RENAMED": "1", **url},
    )
    assert code == 0, seen
    assert "Was employee.name renamed to employee.full_name? [y/N]: y" in seen
    (renamed,) = (tmp_path / "migrations" / "versions").glob("*_rename.py")
    assert "new_column_name='full_name'" in renamed.read_text()

    code, seen = _on_terminal(
        tmp_path, ["--app", "app", "db", "downgrade", "base"], "n", url
    )
    assert code == 11, seen
    assert "table employee (1 row), revision" in seen
    assert "Go on? The data is lost. [y/N]: n" in seen
    engine = sa.create_engine(sqlite_url)
    try:
        assert sa.inspect(engine).has_table("employee")
    finally:
        engine.dispose()
