"""Time ``flask db test`` against pytest-alembic on the same generated history.

The fixture is the benchmark's linear history (``generate.write_history``: a
table every 10 revisions, columns between) with an app whose models match
it at the head, so every check passes for both tools. Each tool runs as a
whole process, ``n`` times, alternating; the medians and their ratio are
printed.

- ``flask db test``: every check, the stairway included (each revision
  upgraded, downgraded, compared, upgraded again).
- pytest-alembic, adapted to the Flask app by hand (a conftest pushing the
  app context and handing over the app's engine, on a new SQLite file per
  test): its four default tests (single head, upgrade, models match, up and
  down consistency). Its experimental ``downgrade_leaves_no_trace`` (its
  counterpart of the stairway) can't run here: it holds a connection of its
  own while the Flask env.py opens the app's, and SQLite reports the
  database locked. So pytest-alembic does less work than ``flask db test``.

pytest-alembic is not a dependency of the project; install it apart, so it
does not load into every pytest run on the machine::

    python -m pip install --no-deps --target /tmp/fmx-pytest-alembic pytest-alembic
    python benchmarks/testkit.py --pytest-alembic /tmp/fmx-pytest-alembic

Options: ``--revisions`` (100), ``-n`` (3).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.fspath(Path(__file__).resolve().parent))

import generate  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

CONFTEST = """\
import os

import pytest

from app import app, db

PATH = os.environ["BENCH_SQLITE_PATH"]


@pytest.fixture(scope="session", autouse=True)
def _app_context():
    with app.app_context():
        yield


@pytest.fixture
def alembic_config():
    from pytest_alembic.config import Config

    return Config(
        config_options={
            "file": "migrations/alembic.ini",
            "script_location": "migrations",
        }
    )


@pytest.fixture
def alembic_engine():
    # Flask-Migrate's env.py connects with the app's engine: give each test a
    # new empty file behind it.
    db.engine.dispose()
    if os.path.exists(PATH):
        os.remove(PATH)
    return db.engine
"""


def models_source(revisions: int) -> str:
    """Models matching ``generate.write_history(revisions)`` at its head."""
    tables: dict[str, list[str]] = {}
    for i in range(revisions):
        table = f"hist_{i // 10:04d}"
        tables.setdefault(table, [])
        if i % 10:
            tables[table].append(f"c{i % 10}")
    lines = []
    for table, columns in tables.items():
        lines += [
            f"class {table.title().replace('_', '')}(db.Model):",
            f'    __tablename__ = "{table}"',
            "    id = db.Column(db.Integer, primary_key=True)",
            *(f"    {column} = db.Column(db.String(40))" for column in columns),
            "",
        ]
    return "\n".join(lines)


def make_fixture(root: Path, revisions: int) -> Path:
    folder = generate.make_app(root / "kit", "ext", 0, revisions)
    with (folder / "app.py").open("a") as f:
        f.write("\n\n" + models_source(revisions))
    tests = folder / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text(CONFTEST)
    (tests / "test_nothing_else.py").write_text("")
    # pytest-alembic adds its tests where it collects tests/conftest.py,
    # relative to the rootdir this file makes.
    (folder / "pytest.ini").write_text("[pytest]\n")
    return folder


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=100)
    parser.add_argument("-n", "--repeat", type=int, default=3)
    parser.add_argument(
        "--pytest-alembic",
        type=Path,
        default=None,
        help="folder pytest-alembic was installed into (pip --target)",
    )
    args = parser.parse_args(argv)
    root = generate.fixture_root("fmx-testkit-")
    try:
        folder = make_fixture(root, args.revisions)
        env = generate.flask_env(f"sqlite:///{root / 'app.db'}")
        env["TMPDIR"] = os.fspath(root)  # both tools' SQLite files on tmpfs
        env["BENCH_SQLITE_PATH"] = os.fspath(root / "app.db")
        paths = [os.fspath(REPO)]
        if args.pytest_alembic is not None:
            paths.append(os.fspath(args.pytest_alembic))
        env["PYTHONPATH"] = os.pathsep.join([*paths, os.fspath(folder)])
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        pytest_args = [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            "--test-alembic",
        ]
        cases = {
            "flask db test": [
                sys.executable,
                "-m",
                "flask",
                "--app",
                "app",
                "db",
                "test",
            ],
            "pytest-alembic (default tests)": [*pytest_args, "tests"],
        }
        for command in cases.values():  # warm up (.pyc files), and fail early
            timed(command, folder, env)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeat):
            for name, command in cases.items():
                times[name].append(timed(command, folder, env))
        ours = statistics.median(times["flask db test"])
        print(f"{args.revisions} revisions, SQLite, median of {args.repeat} runs:")
        for name, found in times.items():
            median = statistics.median(found)
            ratio = "" if median == ours else f"  (flask db test: {ours / median:.2f}x)"
            print(f"  {name:<46} {median:6.2f} s  min {min(found):6.2f} s{ratio}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
