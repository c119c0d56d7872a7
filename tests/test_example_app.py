"""The example app's committed migrations on every backend, and the README demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flask_migrate_ext import check
from flask_migrate_ext import downgrade
from flask_migrate_ext import upgrade
from helpers import table_names
from helpers import version_rows

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_app"


@pytest.fixture
def example_app(database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from example import Config
    from example import create_app
    from example import db

    class TestConfig(Config):
        SQLALCHEMY_DATABASE_URI = database_url

    app = create_app(TestConfig)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_migrations_go_up_and_down(example_app, database_url: str) -> None:  # type: ignore[no-untyped-def]
    with example_app.app_context():
        result = upgrade()
        assert len(result.steps) == len(
            list((EXAMPLE / "migrations" / "versions").glob("*.py"))
        )
        assert {"department", "employee"} <= table_names(database_url)
        check()  # the models match the migrations
        downgrade(revision="base", confirm_data_loss=True)
    assert version_rows(database_url) == []
    assert not {"department", "employee"} & table_names(database_url)


def test_rename_and_data_migration_keep_rows(example_app) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from example import db

    with example_app.app_context():
        upgrade(revision="+2")  # before the rename and the usernames
        with db.engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO department (id, name) VALUES (1, 'R&D')")
            )
            connection.execute(
                sa.text(
                    "INSERT INTO employee (id, name, email, department_id) VALUES"
                    " (1, 'Ada Lovelace', 'Ada@example.com', 1),"
                    " (2, 'Ada Byron', 'ada@example.org', 1),"
                    " (3, 'Alan Turing', NULL, 1)"
                )
            )
        upgrade()
        query = sa.text("SELECT full_name, username FROM employee ORDER BY id")
        with db.engine.connect() as connection:
            assert connection.execute(query).all() == [
                ("Ada Lovelace", "ada"),
                ("Ada Byron", "ada.2"),
                ("Alan Turing", "alan.turing"),
            ]
        check()
        downgrade(revision="-2", confirm_data_loss=True)
        with db.engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT name FROM employee ORDER BY id"))
            assert rows.scalars().all() == ["Ada Lovelace", "Ada Byron", "Alan Turing"]
        downgrade(revision="base", confirm_data_loss=True)


def readme_quick_start() -> list[str]:
    """The commands in the README's Quick start block, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_first_command_runs(tmp_path: Path) -> None:
    """Run the README's first command as written, in a copy of the project
    and a fresh virtualenv (which sees the installed dependencies)."""
    command = readme_quick_start()[0]
    assert command == "python3 -m pip install -e . && python3 example_app/demo.py"
    project = tmp_path / "project"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(
            ".git", "__pycache__", "_build", "instance", "*.egg-info", "*.db"
        ),
    )
    venv = tmp_path / "venv"
    # No pip of its own: the system's pip, run by the venv's python, installs
    # into the venv.
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv],
        check=True,
        timeout=60,
    )
    env = clean_env()
    env.pop("PYTHONPATH", None)
    env["PATH"] = os.pathsep.join([os.fspath(venv / "bin"), env.get("PATH", "")])
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Research: Alan Turing, user alan.turing" in done.stdout
    assert "migrations apply and revert cleanly" in done.stdout
    # What pip prints depends on what it had to install along; what counts is
    # that the venv now imports the package from the copy it installed.
    installed = subprocess.run(
        [venv / "bin" / "python", "-c", SHOW_PACKAGE_FILE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert installed.returncode == 0, installed.stderr
    assert Path(installed.stdout.strip()).is_relative_to(project)


SHOW_PACKAGE_FILE = "import flask_migrate_ext; print(flask_migrate_ext.__file__)"


def clean_env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "EXAMPLE_"))
    }


def run_demo(url: str) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env["EXAMPLE_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, os.fspath(EXAMPLE / "demo.py")],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )


@pytest.mark.parametrize("backend", ["postgresql"])
def test_demo_runs_twice_on_the_same_database(database_url: str) -> None:
    first = run_demo(database_url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "back to empty first" not in first.stdout
    assert "\nsql> INSERT INTO department" in first.stdout
    assert "$ sql>" not in first.stdout
    second = run_demo(database_url)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (
        "# An earlier run left the example's tables: back to empty first\n"
        "$ flask --app example db downgrade base --yes\n"
    ) in second.stdout
    assert "migrations apply and revert cleanly" in second.stdout
    assert "Research: Alan Turing, user alan.turing" in second.stdout


@pytest.mark.parametrize("backend", ["postgresql"])
def test_demo_refuses_a_database_with_other_tables(database_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE invoices (id INTEGER)"))
    engine.dispose()
    done = run_demo(database_url)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "The database at EXAMPLE_DATABASE_URL is not empty (tables: invoices):"
        " the demo needs an empty database."
    )
    assert table_names(database_url) == {"invoices"}
