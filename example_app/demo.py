"""Run the example app's whole migration flow on a throw-away SQLite database.

    python example_app/demo.py

Each step is a real ``flask db`` command, printed before it runs, so the
output reads like a terminal session. Set ``EXAMPLE_DATABASE_URL`` to run it
against another database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

STEPS = [
    ("Apply every migration", ["db", "upgrade"]),
    ("Which revision is the database at?", ["db", "current"]),
    ("The history, newest first", ["db", "history"]),
    ("Do the models match the database?", ["db", "check"]),
    ("Step back one revision", ["db", "downgrade"]),
    ("And forward again", ["db", "upgrade"]),
    ("Back to an empty database", ["db", "downgrade", "base"]),
    ("Up to head once more", ["db", "upgrade", "head"]),
    ("Done: the current revision", ["db", "current", "-v"]),
]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env.setdefault("EXAMPLE_DATABASE_URL", f"sqlite:///{Path(tmp) / 'example.db'}")
        env["PYTHONPATH"] = os.pathsep.join(
            [os.fspath(HERE), *filter(None, [env.get("PYTHONPATH")])]
        )
        for title, args in STEPS:
            print(f"\n# {title}\n$ flask --app example {' '.join(args)}", flush=True)
            done = subprocess.run(
                [sys.executable, "-m", "flask", "--app", "example", *args],
                env=env,
                cwd=tmp,
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
