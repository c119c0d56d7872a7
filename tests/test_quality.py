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


def test_layers_contract_holds() -> None:
    """cli -> api -> apply -> scripts/autogenerate -> databases -> state ->
    settings/report -> errors, as declared in pyproject.toml."""
    done = subprocess.run(
        [Path(sys.executable).parent / "lint-imports", "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_no_import_cycles() -> None:
    import grimp

    graph = grimp.build_graph("flask_migrate_ext", exclude_type_checking_imports=True)
    cycles = sorted(
        f"{importer} -> {imported}"
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if not importer.startswith(f"{imported}.")  # a package and its own modules
        and imported != "flask_migrate_ext"
        and graph.chain_exists(importer=imported, imported=importer)
    )
    assert cycles == []


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
