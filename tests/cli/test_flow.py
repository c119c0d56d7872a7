"""The tutorial flow, end to end, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from helpers import invoke
from helpers import table_names
from helpers import version_rows


def _revision_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "migrations" / "versions").glob("*.py"))


def test_tutorial_flow(make_app, database_url: str, tmp_path: Path) -> None:
    app = make_app(database_url)

    result = invoke(app, "init")
    assert result.exit_code == 0, result.output
    names = {p.name for p in (tmp_path / "migrations").iterdir()}
    assert names == {"README", "alembic.ini", "env.py", "script.py.mako", "versions"}

    result = invoke(app, "migrate", "-m", "Initial migration")
    assert result.exit_code == 0, result.output
    (first,) = _revision_files(tmp_path)
    assert "op.create_table('employee'" in first.read_text()
    rev1 = first.name.split("_")[0]

    assert invoke(app, "upgrade").exit_code == 0
    assert "employee" in table_names(database_url)
    assert version_rows(database_url) == [rev1]

    result = invoke(app, "current")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"{rev1} (head)"

    result = invoke(app, "history")
    assert result.stdout.strip() == f"<base> -> {rev1} (head), Initial migration"

    # Nothing changed: no file, a message, success.
    result = invoke(app, "migrate", "-m", "nothing")
    assert result.exit_code == 0
    assert len(_revision_files(tmp_path)) == 1

    # An empty hand-written revision.
    result = invoke(app, "revision", "-m", "by hand")
    assert result.exit_code == 0
    (manual,) = [p for p in _revision_files(tmp_path) if p != first]
    assert "def upgrade() -> None:\n    pass" in manual.read_text()
    assert invoke(app, "upgrade").exit_code == 0

    # Add a column to the model.
    app2 = make_app(
        database_url,
        columns={"name": sa.Column(sa.String(50)), "email": sa.Column(sa.String(80))},
    )
    assert invoke(app2, "check").exit_code == 3
    result = invoke(app2, "migrate", "-m", "add email")
    assert result.exit_code == 0
    (third,) = [p for p in _revision_files(tmp_path) if p not in (first, manual)]
    assert "add_column" in third.read_text()
    assert invoke(app2, "upgrade").exit_code == 0
    assert invoke(app2, "check").exit_code == 0

    history = invoke(app2, "history").stdout.strip().splitlines()
    assert len(history) == 3
    assert re.match(r"\w+ -> \w+ \(head\), add email", history[0])

    # One step back, then all the way.
    assert invoke(app2, "downgrade").exit_code == 0
    assert len(version_rows(database_url)) == 1
    assert version_rows(database_url) != [third.name.split("_")[0]]
    assert invoke(app2, "downgrade", "base").exit_code == 0
    assert version_rows(database_url) == []
    assert "employee" not in table_names(database_url)
