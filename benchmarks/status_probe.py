"""Time ``Migrate.status()`` as a health check calls it: warm, in-process.

Builds the benchmark app (``generate.py``) with a linear history of
``--revisions`` revisions on SQLite, runs ``flask db stamp`` to one revision
before the head (so the answer is "pending", with a ledger; the command
also writes the revision cache), then times ``--calls`` calls of
``migrate.status()`` with :func:`time.perf_counter` and prints the median
and the 95th percentile in milliseconds (and the median CPU time, which a
busy machine disturbs less). Target: a median under 5 ms.

    python benchmarks/status_probe.py                  # 100 revisions, 200 calls
    python benchmarks/status_probe.py --revisions 1000 --calls 500
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.fspath(Path(__file__).resolve().parent))

import generate  # noqa: E402

from flask_migrate_ext.scripts.revision_cache import RACY_WINDOW_NS  # noqa: E402

#: A median above this fails the run (exit code 1).
TARGET_MS = 5.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revisions", type=int, default=100)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--models", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fmx-status-") as tmp:
        folder = Path(tmp) / "app"
        url = f"sqlite:///{folder / 'app.db'}"
        generate.make_app(folder, "ext", args.models, args.revisions)
        # Stamped (the ledger gets its rows) one revision short of the head;
        # the command also writes the revision cache.
        revision = generate.rev_id(args.revisions - 2)
        generate.run_flask(folder, "db", "stamp", revision, url=url)
        # Files changed this recently are checked by content on every call
        # (the revision cache's racy window); a deployed app's are older.
        time.sleep(RACY_WINDOW_NS / 1e9 + 0.1)
        os.environ.update(generate.flask_env(url))
        os.chdir(folder)
        sys.path.insert(0, os.fspath(folder))
        module = importlib.import_module("app")
        app, migrate = module.app, module.migrate
        with app.app_context():
            first = migrate.status()
            assert first.state == "pending", first.state
            assert "alembic" not in sys.modules, "took the command's path"
            times, cpu = [], []
            for _ in range(args.calls):
                started, started_cpu = time.perf_counter(), time.process_time()
                migrate.status()
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
    median = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1]
    print(
        f"Migrate.status(), SQLite, {args.revisions} revisions, {args.calls} calls:"
        f" median {median:.2f} ms, p95 {p95:.2f} ms (target: median < {TARGET_MS} ms);"
        f" CPU time median {statistics.median(cpu):.2f} ms"
    )
    return 0 if median < TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
