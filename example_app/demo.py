"""Run the example app's whole migration flow on a throw-away SQLite database.

    python example_app/demo.py

Each step is a real ``flask`` command, printed before it runs, so the
output reads like a terminal session. Some staff are added half-way, so the
rename and the data migration have rows to carry. Set ``EXAMPLE_DATABASE_URL`` to run it
against another database: it starts from an empty one. A database left at one
of the example's revisions by an earlier run is first downgraded to base (a
printed step); a database with other tables is refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS = HERE / "migrations" / "versions"

#: Staff hired while the database was at the second revision, before the
#: rename and the usernames: the later revisions must carry them along.
SEED_SQL = [
    "INSERT INTO department (id, name) VALUES (1, 'Engineering'), (2, 'Research')",
    "INSERT INTO employee (name, email, department_id) VALUES"
    " ('Ada Lovelace', 'ada@example.com', 2),"
    " ('Grace Hopper', 'grace@example.com', 1),"
    " ('Ada Byron', 'ada@example.org', 1),"
    " ('Alan Turing', NULL, 2)",
]

STEPS: list[tuple[str, list[str] | None]] = [
    ("Apply the first two revisions only", ["db", "upgrade", "+2"]),
    ("Add some staff, with the schema of that time", None),
    ("Apply the rest: a rename, then a data migration", ["db", "upgrade"]),
    ("Which revision is the database at?", ["db", "current"]),
    ("The history, newest first", ["db", "history"]),
    ("Do the models match the database?", ["db", "check"]),
    ("The rows survived the rename and got usernames", ["staff"]),
    (
        "Step back one revision: it drops the usernames, so it needs --yes",
        ["db", "downgrade", "--yes"],
    ),
    ("And forward again (computes them again)", ["db", "upgrade"]),
    (
        "Back to an empty database (drops the staff: --yes)",
        ["db", "downgrade", "base", "--yes"],
    ),
    ("Up to head once more", ["db", "upgrade", "head"]),
    ("Done: the current revision", ["db", "current", "-v"]),
]


def seed(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in SEED_SQL:
            print(f"sql> {statement}", flush=True)
            connection.execute(sa.text(statement))
    engine.dispose()


#: Tables flask_migrate_ext keeps for itself: they may stay between runs.
OWN_TABLES = {"flask_migrate_ext_log", "flask_migrate_ext_lock"}


def tables(url: str) -> tuple[set[str], list[str]]:
    """The database's tables (ours left out), and the revisions it is at."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            names = set(sa.inspect(connection).get_table_names()) - OWN_TABLES
            revisions = []
            if "alembic_version" in names:
                query = sa.text("SELECT version_num FROM alembic_version")
                revisions = list(connection.execute(query).scalars())
    finally:
        engine.dispose()
    return names, revisions


def flask(args: list[str], env: dict[str, str], cwd: str) -> int:
    print(f"$ flask --app example {' '.join(args)}", flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "example", *args],
        env=env,
        cwd=cwd,
        timeout=120,
    )
    if done.returncode != 0:
        print(f"\nStep failed with exit code {done.returncode}.", file=sys.stderr)
    return done.returncode


def start_empty(url: str, env: dict[str, str], cwd: str) -> int:
    """Bring a database left by an earlier run back to empty, or refuse one
    that holds anything else."""
    names, revisions = tables(url)
    ours = {path.name.split("_", 1)[0] for path in VERSIONS.glob("*.py")}
    if revisions and set(revisions) <= ours:
        print("\n# An earlier run left the example's tables: back to empty first")
        code = flask(["db", "downgrade", "base", "--yes"], env, cwd)
        if code:
            return code
        names, revisions = tables(url)
    left = sorted(names - {"alembic_version"})
    if left:
        print(
            f"The database at EXAMPLE_DATABASE_URL is not empty (tables:"
            f" {', '.join(left)}): the demo needs an empty database.",
            file=sys.stderr,
        )
        return 1
    return 0


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env.setdefault("EXAMPLE_DATABASE_URL", f"sqlite:///{Path(tmp) / 'example.db'}")
        env["PYTHONPATH"] = os.pathsep.join(
            [os.fspath(HERE), *filter(None, [env.get("PYTHONPATH")])]
        )
        code = start_empty(env["EXAMPLE_DATABASE_URL"], env, tmp)
        if code:
            return code
        for title, args in STEPS:
            print(f"\n# {title}", flush=True)
            if args is None:
                seed(env["EXAMPLE_DATABASE_URL"])
                continue
            code = flask(args, env, tmp)
            if code:
                return code
    print("\nThe example app's migrations apply and revert cleanly.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
