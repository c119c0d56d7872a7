"""Time an in-process ``upgrade`` of a long history, with and without a progress
listener: what the progress events cost per revision.

Builds the benchmark app (``generate.py``) with a linear history of
``--revisions`` revisions, then upgrades a fresh SQLite database from base to
head ``--rounds`` times per variant, in one process, the variants taking
turns: ``none`` (nobody listens, as for an app calling the API) and, when
this checkout has :mod:`flask_migrate_ext.progress`, ``listener`` (a listener
that only counts events) and ``lines`` (the CLI's one line per revision,
written to a throwaway stream). Prints the median wall and CPU time per
variant (CPU time: a busy machine disturbs it less). Alembic's log lines go
to stderr: send it to ``/dev/null``.

    python benchmarks/progress_overhead.py 2>/dev/null
    python benchmarks/progress_overhead.py --revisions 1000 --rounds 5 2>/dev/null
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import statistics
import sys
import tempfile
import time
import typing as t
from pathlib import Path

sys.path.insert(0, os.fspath(Path(__file__).resolve().parent))

import generate  # noqa: E402

from flask_migrate_ext import api  # noqa: E402


def _variants() -> dict[str, t.Callable[[], t.ContextManager[t.Any]]]:
    variants: dict[str, t.Callable[[], t.ContextManager[t.Any]]] = {
        "none": contextlib.nullcontext
    }
    try:
        from flask_migrate_ext import progress
        from flask_migrate_ext.cli.progress_display import LineDisplay
    except ImportError:  # a checkout from before the progress events
        return variants
    events: list[int] = [0]

    def count(event: object) -> None:
        events[0] += 1

    variants["listener"] = lambda: progress.listening(count)
    variants["lines"] = lambda: progress.listening(LineDisplay(io.StringIO()))
    return variants


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revisions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    variants = _variants()
    shm = Path("/dev/shm")  # SQLite's fsyncs would otherwise dominate
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="fmx-progress-", dir=base) as tmp:
        folder = Path(tmp) / "app"
        database = folder / "app.db"
        url = f"sqlite:///{database}"
        generate.make_app(folder, "ext", 5, args.revisions)
        os.environ.update(generate.flask_env(url))
        os.chdir(folder)
        sys.path.insert(0, os.fspath(folder))
        module = importlib.import_module("app")
        app, db = module.app, module.db
        times: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        with app.app_context():
            for _ in range(args.rounds):
                for name, listening in variants.items():
                    db.engine.dispose()  # pooled connections keep the old file
                    database.unlink(missing_ok=True)
                    with listening():
                        started = time.perf_counter()
                        started_cpu = time.process_time()
                        result = api.upgrade()
                        cpu[name].append(time.process_time() - started_cpu)
                        times[name].append(time.perf_counter() - started)
                    assert len(result.steps) == args.revisions, len(result.steps)
    for name, values in times.items():
        median = statistics.median(values)
        median_cpu = statistics.median(cpu[name])
        print(
            f"{name:>8}: {len(values)} upgrades of {args.revisions} revisions:"
            f" wall median {median:.3f} s (min {min(values):.3f} s),"
            f" CPU median {median_cpu:.3f} s (min {min(cpu[name]):.3f} s),"
            f" {median_cpu / args.revisions * 1e6:.0f} us CPU per revision"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
