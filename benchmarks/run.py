"""Time whole ``flask db ...`` processes: flask_migrate_ext against Flask-Migrate 4.1.0.

Every case runs each variant (``ext``, ``fm``, and sometimes ``none``) once as a
warm-up, then ``n`` times, alternating the variants (the order rotates each round)
so that both share the machine's noise. Each run is a fresh process (or a group
of processes started at once); the runner records wall time, CPU time (user +
system) and peak RSS of that process alone (``os.wait4``). Results: JSON in
``benchmarks/results/<timestamp>.json`` and a markdown table on stdout and in
``<timestamp>.md`` next to it.

Examples::

    python benchmarks/run.py                     # everything, all backends
    python benchmarks/run.py --quick             # tiny sizes, 1 repetition
    python benchmarks/run.py -w W2 -w W4 -b sqlite -n 5
    python benchmarks/run.py -w W6 --size w6_revisions=100,300,1000
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import typing as t
from pathlib import Path

sys.path.insert(0, os.fspath(Path(__file__).resolve().parent))

import generate  # noqa: E402
import scale_cases  # noqa: E402
from cases import Builder  # noqa: E402
from dbs import BACKENDS  # noqa: E402
from dbs import Databases  # noqa: E402
from measure import Case  # noqa: E402
from measure import run_case  # noqa: E402

import report  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "F")

FULL_SIZES: dict[str, t.Any] = {
    "w1_models": 50,
    "w2_models": 10,
    "w2_revisions": 1000,
    "pg_revisions": 300,  # W2's upgrade on PostgreSQL and MariaDB
    "w4_revisions": 300,
    "w3_tables": 300,
    "w5_revisions": 1000,
    "w5_replicas": 4,
    # 1000 as well for the slope at 1000: `--size w6_revisions=100,300,1000`
    # (on MariaDB, where DDL is slow, that adds ~30 min).
    "w6_revisions": (100, 300),
    "w8_schemas": 200,
    "w8_revisions": 10,
    "w8_jobs": 4,
}
QUICK_SIZES: dict[str, t.Any] = {
    "w1_models": 5,
    "w2_models": 3,
    "w2_revisions": 20,
    "pg_revisions": 10,
    "w4_revisions": 10,
    "w3_tables": 8,
    "w5_revisions": 20,
    "w5_replicas": 4,
    "w6_revisions": (5, 10, 20),
    "w8_schemas": 6,
    "w8_revisions": 3,
    "w8_jobs": 4,
}


def _workload_builders(
    builder: Builder,
) -> dict[str, t.Callable[[list[str]], list[Case]]]:
    def bind(
        f: t.Callable[[Builder, list[str]], list[Case]],
    ) -> t.Callable[[list[str]], list[Case]]:
        return lambda backends: f(builder, backends)

    return {
        "W1": builder.w1,
        "W2": builder.w2,
        "W3": builder.w3,
        "W4": builder.w4,
        "W5": bind(scale_cases.w5),
        "W6": bind(scale_cases.w6),
        "W7": bind(scale_cases.w7),
        "W8": bind(scale_cases.w8),
        "F": builder.floors,
    }


def _parse_size(default: t.Any, value: str) -> t.Any:
    if isinstance(default, tuple):
        return tuple(int(part) for part in value.split(","))
    return int(value)


def _show(value: t.Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _versions_of(*names: str) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "-w",
        "--workload",
        action="append",
        choices=WORKLOADS,
        help="workloads to run (repeatable; default: all)",
    )
    p.add_argument(
        "-b",
        "--backend",
        action="append",
        choices=BACKENDS,
        help="backends (repeatable; default: all)",
    )
    p.add_argument("-n", "--repeat", type=int, default=9, help="runs per fast case")
    p.add_argument("--repeat-slow", type=int, default=5, help="runs per slow case")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 run per case")
    p.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=N",
        help=f"override a size (lists: comma-separated): {', '.join(FULL_SIZES)}",
    )
    p.add_argument("--timeout", type=float, default=600, help="seconds per process")
    p.add_argument("--output-dir", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--keep-fixtures", action="store_true")
    args = p.parse_args(argv)

    sizes = dict(QUICK_SIZES if args.quick else FULL_SIZES)
    for item in args.size:
        name, _, value = item.partition("=")
        if name not in sizes:
            p.error(f"unknown size {name!r}")
        try:
            sizes[name] = _parse_size(sizes[name], value)
        except ValueError:
            p.error(f"size {name!r} takes a number (or numbers, comma-separated)")
    if args.quick:  # a smoke test: tiny sizes, one run, no warm-up
        args.repeat = args.repeat_slow = 1
    workloads = args.workload or list(WORKLOADS)
    backends = args.backend or list(BACKENDS)

    # Bytecode caches as on a user's machine: a sandbox that sets
    # PYTHONDONTWRITEBYTECODE would time compiling every module and revision
    # file on every run (for both packages alike).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    # The checkout's flask_migrate_ext, also in every child process.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.fspath(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    root = generate.fixture_root()
    dbs = Databases(root)
    builder = Builder(root, sizes, dbs, args.quick, args.timeout)
    started = datetime.datetime.now()
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "packages": _versions_of(
            "flask",
            "flask-sqlalchemy",
            "flask-migrate",
            "alembic",
            "sqlalchemy",
            "psycopg",
            "pymysql",
            "click",
        ),
        "repeat": args.repeat,
        "repeat_slow": args.repeat_slow,
        "warmup": not args.quick,
        "sizes": {k: _show(v) for k, v in sizes.items()},
        "workloads": workloads,
        "backends": backends,
        "fixtures": os.fspath(root),
        "loadavg_before": _loadavg(),
    }

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results: dict[str, dict[str, t.Any]] = {}
    try:
        for workload in workloads:
            log(f"{workload}: building fixtures in {root}")
            build = _workload_builders(builder)[workload]
            for case in build(backends):
                n = args.repeat_slow if case.slow else args.repeat
                run_case(case, n, not args.quick, args.timeout, log)
                results[case.key] = report.evaluate(case)
    finally:
        dbs.drop_all()
        if not args.keep_fixtures:
            shutil.rmtree(root, ignore_errors=True)

    meta["skipped"] = builder.skipped
    for note in builder.skipped:
        log(f"skipped: {note}")
    meta["loadavg_after"] = _loadavg()
    meta["seconds"] = round((datetime.datetime.now() - started).total_seconds(), 1)
    rows = list(results.values())
    slopes = report.scaling(rows)
    table = report.markdown(meta, rows, slopes)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    stem = started.strftime("%Y%m%d-%H%M%S")
    (args.output_dir / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "results": rows, "scaling": slopes}, indent=1) + "\n"
    )
    (args.output_dir / f"{stem}.md").write_text(table)
    print(table)
    log(f"wrote {args.output_dir / stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
