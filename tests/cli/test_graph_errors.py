"""A broken revision history is reported by file, and no command pretends it is fine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flask_migrate_ext import ExitCode
from helpers import invoke
from helpers import write_revision


@pytest.fixture
def app(make_app, sqlite_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    app = make_app(sqlite_url)
    assert invoke(app, "init").exit_code == 0
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, "r1", None, "pass", "pass")
    write_revision(versions, "r2", "r1", "pass", "pass")
    return app


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("command", ["heads", "history", "upgrade", "current", "check"])
def test_duplicate_revision_id(app, tmp_path: Path, command: str) -> None:  # type: ignore[no-untyped-def]
    versions = tmp_path / "migrations" / "versions"
    shutil.copy(versions / "r2.py", versions / "r2_again.py")
    result = invoke(app, command)
    assert result.exit_code == ExitCode.ERROR
    line = one_error_line(result)
    assert "Revision id 'r2' is used by more than one file" in line
    assert str(versions / "r2.py") in line
    assert str(versions / "r2_again.py") in line


@pytest.mark.parametrize("command", ["heads", "history", "upgrade", "migrate"])
def test_missing_down_revision(app, tmp_path: Path, command: str) -> None:  # type: ignore[no-untyped-def]
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, "r2", "gone", "pass", "pass")
    result = invoke(app, command)
    assert result.exit_code == ExitCode.ERROR
    line = one_error_line(result)
    assert f"{versions / 'r2.py'} revises 'gone'" in line
    assert "no file in the migration directory defines" in line


def test_syntax_error_in_a_revision(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "migrations" / "versions" / "r2.py").write_text("def upgrade(:\n")
    result = invoke(app, "heads")
    assert result.exit_code == ExitCode.ERROR
    line = one_error_line(result)
    versions = tmp_path / "migrations" / "versions"
    assert line.startswith(f"Error: {versions / 'r2.py'}, line 1: cannot be loaded:")
    assert "SyntaxError: " in line

    verbose = invoke(app, "--verbose", "heads")
    assert verbose.exit_code == ExitCode.ERROR
    assert "SyntaxError" in verbose.stderr
    assert "Traceback" in verbose.stderr
