"""Run the example app's whole migration flow on a throw-away SQLite database.

    python example_app/demo.py

Each step is a real ``flask`` command, printed before it runs, so the
output reads like a terminal session. Some staff are added half-way, so the
rename and the data migration have rows to carry. Set ``EXAMPLE_DATABASE_URL`` to run it
against another database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

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
    ("Step back one revision (drops the usernames)", ["db", "downgrade"]),
    ("And forward again (computes them again)", ["db", "upgrade"]),
    ("Back to an empty database", ["db", "downgrade", "base"]),
    ("Up to head once more", ["db", "upgrade", "head"]),
    ("Done: the current revision", ["db", "current", "-v"]),
]


def seed(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in SEED_SQL:
            print(f"$ sql> {statement}", flush=True)
            connection.execute(sa.text(statement))
    engine.dispose()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env.setdefault("EXAMPLE_DATABASE_URL", f"sqlite:///{Path(tmp) / 'example.db'}")
        env["PYTHONPATH"] = os.pathsep.join(
            [os.fspath(HERE), *filter(None, [env.get("PYTHONPATH")])]
        )
        for title, args in STEPS:
            print(f"\n# {title}", flush=True)
            if args is None:
                seed(env["EXAMPLE_DATABASE_URL"])
                continue
            print(f"$ flask --app example {' '.join(args)}", flush=True)
            done = subprocess.run(
                [sys.executable, "-m", "flask", "--app", "example", *args],
                env=env,
                cwd=tmp,
                timeout=120,
            )
            if done.returncode != 0:
                print(
                    f"\nStep failed with exit code {done.returncode}.", file=sys.stderr
                )
                return done.returncode
    print("\nThe example app's migrations apply and revert cleanly.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
