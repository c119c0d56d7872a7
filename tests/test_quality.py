"""Lint and type checks, run with the tests so one command covers everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_passes(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


TEMPLATE_ENVS = sorted((ROOT / "flask_migrate_ext" / "templates").glob("*/env.py"))


@pytest.mark.parametrize(
    "env_py", TEMPLATE_ENVS, ids=[path.parent.name for path in TEMPLATE_ENVS]
)
def test_template_env_py_type_checks(env_py: Path) -> None:
    # One env.py per run: they all define the module "env".
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(env_py)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
