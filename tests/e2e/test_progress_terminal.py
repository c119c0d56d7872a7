"""The progress line of ``flask db upgrade``/``downgrade`` on a real terminal (a
pseudo-terminal): updated in place with ``\\r`` while a revision runs, erased
before other output and at the end, absent with ``-q`` and ``--sql``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from helpers import ok
from helpers import on_terminal
from helpers import run_flask
from helpers import write_revision

APP = """\
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db = SQLAlchemy(app)
migrate = Migrate(app, db)
"""

#: The second revision prints and warns half-way through its ``R2_SECONDS``.
SLOW = """\
import os, warnings
time.sleep(float(os.environ.get("R2_SECONDS", "0")) / 2)
print("printed by r2", flush=True)
warnings.warn("warned by r2")
time.sleep(float(os.environ.get("R2_SECONDS", "0")) / 2)
"""


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after receiving ``raw``: ``\\r`` moves back
    to the start of the line, later characters overwrite earlier ones."""
    lines = []
    for physical in raw.replace("\r\n", "\n").split("\n"):
        cells: list[str] = []
        column = 0
        for char in physical:
            if char == "\r":
                column = 0
                continue
            if column < len(cells):
                cells[column] = char
            else:
                cells.append(char)
            column += 1
        lines.append("".join(cells).rstrip())
    return lines


@pytest.fixture
def project(tmp_path: Path, sqlite_url: str) -> tuple[Path, dict[str, str]]:
    (tmp_path / "app.py").write_text(APP)
    env = {"DATABASE_URL": sqlite_url}
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
    write_revision(versions, "r2", "r1", SLOW, "pass", message="second")
    write_revision(
        versions,
        "r3",
        "r2",
        'op.add_column("item", sa.Column("name", sa.String(20)))',
        'op.drop_column("item", "name")',
        message="third",
    )
    return tmp_path, env


def test_line_in_place_then_erased(project: tuple[Path, dict[str, str]]) -> None:
    cwd, env = project
    slow = {**env, "R2_SECONDS": "1.2"}
    code, raw = on_terminal(cwd, ["--app", "app", "db", "upgrade"], slow)
    assert code == 0, raw
    # Redrawn in place while r2 runs, its clock going up.
    clocks = [
        float(s) for s in re.findall(r"\r\[2/3\] r1 -> r2 second \((\S+) s\)", raw)
    ]
    assert len(set(clocks)) >= 3, raw
    assert clocks == sorted(clocks) and clocks[-1] >= 0.8, clocks
    assert "\r[1/3] base -> r1 first (" in raw
    assert "\r[3/3] r2 -> r3 third (" in raw
    # What stays on the screen: every other line whole, no progress left.
    shown = screen(raw)
    assert not [line for line in shown if re.search(r"\[\d/3\]", line)], shown
    assert "printed by r2" in shown
    (warning,) = [line for line in shown if "UserWarning" in line]
    assert warning.endswith("UserWarning: warned by r2")
    assert "INFO  [alembic.runtime.migration] Running upgrade r1 -> r2, second" in shown
    assert shown[-1] == ""  # the cursor is at the start of an empty line
    assert raw.endswith("\r")  # the last thing written: the line erased


def test_question_is_not_garbled(
    project: tuple[Path, dict[str, str]], sqlite_url: str
) -> None:
    cwd, env = project
    ok(run_flask(cwd, "--app", "app", "db", "upgrade", "-q", env=env))
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO item (id) VALUES (1)"))
    engine.dispose()
    args = ["--app", "app", "db", "downgrade", "base"]
    code, raw = on_terminal(cwd, args, env, answer="y")
    assert code == 0, raw
    shown = screen(raw)
    assert "Go on? The data is lost. [y/N]: y" in shown, shown
    assert "\r[3/3] r1 -> base first (" in raw
    assert not [line for line in shown if re.search(r"\[\d/3\]", line)], shown


def test_quiet_and_sql_draw_nothing(project: tuple[Path, dict[str, str]]) -> None:
    cwd, env = project
    code, raw = on_terminal(cwd, ["--app", "app", "db", "upgrade", "--sql"], env)
    assert code == 0, raw
    assert "CREATE TABLE item" in raw
    assert not re.search(r"\[\d/3\]", raw)
    code, raw = on_terminal(cwd, ["--app", "app", "db", "upgrade", "-q"], env)
    assert code == 0, raw
    assert "Running upgrade r2 -> r3, third" in raw
    assert not re.search(r"\[\d/3\]", raw)


def test_quiet_from_the_environment(project: tuple[Path, dict[str, str]]) -> None:
    """Flask reads ``FLASK_DB_UPGRADE_QUIET`` for ``flask db upgrade -q``."""
    cwd, env = project
    quiet = {**env, "FLASK_DB_UPGRADE_QUIET": "1"}
    done = ok(run_flask(cwd, "--app", "app", "db", "upgrade", "r1", env=quiet))
    assert "Running upgrade  -> r1, first" in done.stderr
    assert "[1/1]" not in done.stderr
    done = ok(run_flask(cwd, "--app", "app", "db", "downgrade", "base", env=env))
    assert "[1/1] r1 -> base first (" in done.stderr
