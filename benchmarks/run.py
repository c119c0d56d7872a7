"""Time whole ``flask db ...`` processes: flask_migrate_ext against Flask-Migrate 4.1.0.

Every case runs each variant (``ext``, ``fm``, and sometimes ``none``) once as a
warm-up, then ``n`` times, alternating the variants (the order rotates each round)
so that both share the machine's noise. Each run is a fresh process; the runner
records wall time, CPU time (user + system) and peak RSS of that process alone
(``os.wait4``). Results: JSON in ``benchmarks/results/<timestamp>.json`` and a
markdown table on stdout and in ``<timestamp>.md`` next to it.

Examples::

    python benchmarks/run.py                     # everything, SQLite + PostgreSQL
    python benchmarks/run.py --quick             # tiny sizes, 1 repetition
    python benchmarks/run.py -w W2 -w W4 -b sqlite -n 5
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

sys.path.insert(0, os.fspath(Path(__file__).resolve().parent))

import generate  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = ("W1", "W2", "W3", "W4", "F")
BACKENDS = ("sqlite", "postgresql")
POSTGRESQL_URL = os.environ.get(
    "FLASK_MIGRATE_EXT_TEST_POSTGRESQL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)

FULL_SIZES = {
    "w1_models": 50,
    "w2_models": 10,
    "w2_revisions": 1000,
    "pg_revisions": 300,
    "w4_revisions": 300,
    "w3_tables": 300,
}
QUICK_SIZES = {
    "w1_models": 5,
    "w2_models": 3,
    "w2_revisions": 20,
    "pg_revisions": 10,
    "w4_revisions": 10,
    "w3_tables": 8,
}

IMPORT_APP = """\
import json, time
import flask, flask_sqlalchemy, sqlalchemy
t0 = time.perf_counter()
import app
inner = time.perf_counter() - t0
print(json.dumps({"inner": inner, "ext": app._bench_ext_seconds}))
"""

REVISION_MAP = """\
import json, sys, time
from alembic.script import ScriptDirectory
t0 = time.perf_counter()
heads = ScriptDirectory(sys.argv[1]).get_revisions("heads")
assert len(heads) == 1
print(json.dumps({"inner": time.perf_counter() - t0}))
"""

REFLECTION = """\
import json, os, time
import sqlalchemy as sa
engine = sa.create_engine(os.environ["BENCH_DATABASE_URL"])
with engine.connect() as conn:
    insp = sa.inspect(conn)
    t0 = time.perf_counter()
    cols = insp.get_multi_columns()
    insp.get_multi_pk_constraint()
    insp.get_multi_foreign_keys()
    insp.get_multi_indexes()
    insp.get_multi_unique_constraints()
    inner = time.perf_counter() - t0
assert cols
print(json.dumps({"inner": inner, "tables": len(cols)}))
"""

CREATE_ALL = """\
from app import app, db
with app.app_context():
    db.create_all()
    db.engine.dispose()
"""


# -- databases ---------------------------------------------------------------


class Databases:
    """Benchmark databases: SQLite files, or PostgreSQL databases we create."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._admin: t.Any = None
        self.created: list[str] = []

    def admin(self) -> t.Any:
        if self._admin is None:
            import sqlalchemy as sa

            self._admin = sa.create_engine(POSTGRESQL_URL, isolation_level="AUTOCOMMIT")
        return self._admin

    def url(self, backend: str, name: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{self.root / 'db' / (name + '.db')}"
        import sqlalchemy as sa

        url = sa.make_url(POSTGRESQL_URL).set(database=f"fmxb_{name}")
        return url.render_as_string(hide_password=False)

    def _pg(self, *statements: str) -> None:
        import sqlalchemy as sa

        with self.admin().connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))

    def create(self, backend: str, name: str, template: str | None = None) -> str:
        """Create (or recreate) an empty database, or a copy of ``template``."""
        url = self.url(backend, name)
        if backend == "sqlite":
            path = self.root / "db" / (name + ".db")
            path.parent.mkdir(exist_ok=True)
            path.unlink(missing_ok=True)
            if template is not None:
                shutil.copyfile(self.root / "db" / (template + ".db"), path)
            return url
        db = f"fmxb_{name}"
        create = f"CREATE DATABASE {db}"
        if template is not None:
            create += f" TEMPLATE fmxb_{template}"
        self._pg(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", create)
        if db not in self.created:
            self.created.append(db)
        return url

    def drop_all(self) -> None:
        if self._admin is None:
            return
        self._pg(*(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)" for db in self.created))
        self._admin.dispose()


# -- measuring ---------------------------------------------------------------


@dataclasses.dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    inner: float | None
    ext: float | None = None


# The timed process is started by this small launcher, not by the runner: a
# child's peak RSS counts the memory of the process it was forked from (Linux keeps
# the pre-exec high-water mark), and the runner holds SQLAlchemy. The launcher
# (``python -I -S``, ~10 MB) is smaller than any process we time.
LAUNCHER = """\
import json, os, signal, sys, time
result, timeout, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
start = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ)
signal.signal(signal.SIGALRM, lambda *a: os.kill(pid, signal.SIGKILL))
signal.setitimer(signal.ITIMER_REAL, timeout)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
signal.setitimer(signal.ITIMER_REAL, 0)
with open(result, "w") as f:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
               "maxrss_kb": usage.ru_maxrss,
               "rc": os.waitstatus_to_exitcode(status)}, f)
"""


def measure(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float, inner: bool
) -> Run:
    """Run one process to completion; wall, CPU and peak RSS of that process."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        result = Path(tmp) / "result.json"
        subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                LAUNCHER,
                os.fspath(result),
                str(timeout),
                *argv,
            ],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            timeout=timeout + 30,
            check=True,
        )
        data = json.loads(result.read_text())
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if data["rc"] != 0:
        tail = "\n".join((stdout + stderr).splitlines()[-15:])
        raise RuntimeError(f"exit {data['rc']} in {cwd}: {' '.join(argv)}\n{tail}")
    inner_s = ext_s = None
    if inner:
        reported = json.loads(stdout.strip().splitlines()[-1])
        inner_s = float(reported["inner"])
        ext_s = reported.get("ext")
    return Run(
        wall=data["wall"],
        cpu=data["cpu"],
        rss_mb=data["maxrss_kb"] / 1024,
        inner=inner_s,
        ext=ext_s,
    )


@dataclasses.dataclass
class Variant:
    name: str
    cwd: Path
    argv: list[str]
    url: str
    reset: t.Callable[[], None] | None = None
    inner: bool = False
    runs: list[Run] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, t.Any]:
        walls = [r.wall for r in self.runs]
        out: dict[str, t.Any] = {
            "n": len(walls),
            "median": statistics.median(walls),
            "min": min(walls),
            "cpu_median": statistics.median(r.cpu for r in self.runs),
            "rss_mb_median": statistics.median(r.rss_mb for r in self.runs),
            "rss_mb_max": max(r.rss_mb for r in self.runs),
            "wall": walls,
            "cpu": [r.cpu for r in self.runs],
            "rss_mb": [r.rss_mb for r in self.runs],
        }
        inner = [r.inner for r in self.runs if r.inner is not None]
        if inner:
            out["inner_median"] = statistics.median(inner)
            out["inner_min"] = min(inner)
            out["inner"] = inner
        ext = [r.ext for r in self.runs if r.ext is not None]
        if ext:
            out["ext_lines_median"] = statistics.median(ext)
            out["ext_lines"] = ext
        return out


@dataclasses.dataclass
class Target:
    """``kind``: ``fm`` (ext/FM median), ``floor`` (ext/floor median), ``rss``
    (ext/FM median peak RSS), ``import_ms`` (ext - none in-process import, ms)."""

    kind: str
    limit: float


@dataclasses.dataclass
class Case:
    key: str
    workload: str
    title: str
    backend: str
    variants: list[Variant]
    slow: bool = False
    targets: list[Target] = dataclasses.field(default_factory=list)

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


def flask_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


def run_case(
    case: Case, n: int, warmup: bool, timeout: float, log: t.Callable[[str], None]
) -> None:
    def once(v: Variant) -> Run:
        if v.reset is not None:
            v.reset()
        return measure(v.argv, v.cwd, generate.flask_env(v.url), timeout, v.inner)

    for v in case.variants if warmup else ():  # .pyc files, page and database caches
        once(v)
    for i in range(n):
        k = i % len(case.variants)
        for v in case.variants[k:] + case.variants[:k]:
            v.runs.append(once(v))
    parts = [
        f"{v.name} {statistics.median(r.wall for r in v.runs):.3f}s"
        for v in case.variants
    ]
    log(f"  {case.workload} {case.title} [{case.backend}]: {', '.join(parts)}")


# -- fixtures and cases ------------------------------------------------------


class Builder:
    """Builds fixtures on demand and lists the cases of each workload."""

    def __init__(
        self, root: Path, sizes: dict[str, int], dbs: Databases, quick: bool
    ) -> None:
        self.root = root
        self.quick = quick
        self.sizes = sizes
        self.dbs = dbs
        self._apps: dict[tuple[str, str], Path] = {}

    def app(self, fixture: str, variant: str, models: int, revisions: int = 0) -> Path:
        key = (fixture, variant)
        if key not in self._apps:
            self._apps[key] = generate.make_app(
                self.root / fixture / variant,
                variant,
                models,
                revisions,
                migrations_from=self._init(variant),
            )
        return self._apps[key]

    def _init(self, variant: str) -> Path | None:
        """One ``flask db init`` per extension; fixtures copy its folder."""
        if variant == "none":
            return None
        folder = self.root / "_init" / variant
        if not folder.exists():
            generate.make_app(folder, variant, 1)
        return folder / "migrations"

    def ab(self) -> tuple[str, str]:
        return ("ext", "fm")

    # W1 -------------------------------------------------------------------
    def w1(self, backends: list[str]) -> list[Case]:
        models = self.sizes["w1_models"]
        variants: dict[str, tuple[Path, str]] = {}
        for name in (*self.ab(), "none"):
            folder = self.app("w1", name, models, revisions=1)
            url = self.dbs.create("sqlite", f"w1_{name}")
            if name != "none":
                generate.stamp(url, generate.head_of(1))
            variants[name] = (folder, url)

        def vs(
            argv: list[str], names: t.Sequence[str] = self.ab(), inner: bool = False
        ) -> list[Variant]:
            return [
                Variant(n, *variants[n][:1], argv, variants[n][1], inner=inner)
                for n in names
            ]

        # The floor runs in the same rounds as the commands it is compared with.
        def floor() -> list[Variant]:
            return vs(flask_argv("--help"), ["none"])

        rss = Target("rss", 1.0)
        return [
            Case(
                "w1.help",
                "W1",
                "`flask db --help`",
                "sqlite",
                vs(flask_argv("db", "--help")) + floor(),
                targets=[Target("floor", 1.1), rss],
            ),
            Case(
                "w1.current",
                "W1",
                "`flask db current`",
                "sqlite",
                vs(flask_argv("db", "current")) + floor(),
                targets=[Target("floor", 1.15), rss],
            ),
            Case(
                "w1.heads",
                "W1",
                "`flask db heads`",
                "sqlite",
                vs(flask_argv("db", "heads")) + floor(),
                targets=[Target("floor", 1.15), rss],
            ),
            Case(
                "w1.import",
                "W1",
                "import the app (python -c)",
                "sqlite",
                vs(
                    [sys.executable, "-c", IMPORT_APP], [*self.ab(), "none"], inner=True
                ),
                targets=[Target("import_ms", 5.0), rss],
            ),
        ]

    # W2 -------------------------------------------------------------------
    def w2(self, backends: list[str]) -> list[Case]:
        models, revs = self.sizes["w2_models"], self.sizes["w2_revisions"]
        head = generate.head_of(revs)
        cases: list[Case] = []
        folders = {
            n: self.app("w2", n, models, revisions=revs) for n in (*self.ab(), "none")
        }
        at_head = {}
        for n in self.ab():
            at_head[n] = self.dbs.create("sqlite", f"w2_head_{n}")
            generate.stamp(at_head[n], head)
        rss = Target("rss", 1.0)
        url = self.dbs.url("sqlite", "w2_none")
        for cmd in ("heads", "history", "current"):
            cases.append(
                Case(
                    f"w2.{cmd}",
                    "W2",
                    f"`flask db {cmd}`, {revs} revisions",
                    "sqlite",
                    [
                        Variant(n, folders[n], flask_argv("db", cmd), at_head[n])
                        for n in self.ab()
                    ]
                    + [Variant("none", folders["none"], flask_argv("--help"), url)],
                    targets=[Target("floor", 1.2), Target("fm", 0.6), rss],
                )
            )
        for backend in backends:
            if backend == "sqlite":
                fixture, n_revs = "w2", revs
            else:
                n_revs = self.sizes["pg_revisions"]
                fixture = f"hist{n_revs}"
            vs = []
            for n in self.ab():
                folder = self.app(fixture, n, models, revisions=n_revs)
                name = f"w2_up_{backend}_{n}"
                vs.append(
                    Variant(
                        n,
                        folder,
                        flask_argv("db", "upgrade"),
                        self.dbs.url(backend, name),
                        reset=_bind(self.dbs.create, backend, name),
                    )
                )
            cases.append(
                Case(
                    f"w2.upgrade.{backend}",
                    "W2",
                    f"`flask db upgrade` base->head, {n_revs} revisions",
                    backend,
                    vs,
                    slow=True,
                    targets=[Target("fm", 0.8), rss],
                )
            )
        return cases

    # W4 -------------------------------------------------------------------
    def w4(self, backends: list[str]) -> list[Case]:
        models, revs = self.sizes["w2_models"], self.sizes["w4_revisions"]
        cases = []
        for backend in backends:
            vs = []
            template = f"w4_tpl_{backend}"
            url = self.dbs.create(backend, template)
            for n in self.ab():
                folder = self.app(f"hist{revs}", n, models, revisions=revs)
                if n == "ext":  # same revision files: one database at head serves both
                    generate.run_flask(folder, "db", "upgrade", url=url)
                name = f"w4_{backend}_{n}"
                vs.append(
                    Variant(
                        n,
                        folder,
                        flask_argv("db", "downgrade", "base"),
                        self.dbs.url(backend, name),
                        reset=_bind(self.dbs.create, backend, name, template),
                    )
                )
            cases.append(
                Case(
                    f"w4.downgrade.{backend}",
                    "W4",
                    f"`flask db downgrade base`, {revs} revisions",
                    backend,
                    vs,
                    slow=True,
                    targets=[Target("fm", 0.8), Target("rss", 1.0)],
                )
            )
        return cases

    # W3 -------------------------------------------------------------------
    def w3(self, backends: list[str]) -> list[Case]:
        tables = self.sizes["w3_tables"]
        cases = []
        for backend in backends:
            empty, sync = [], []
            # One database in sync with the models, made the way a user would
            # (migrate + upgrade, by ext); both variants get a copy of it and of
            # the revision file.
            template = f"w3_sync_tpl_{backend}"
            url = self.dbs.create(backend, template)
            for n in self.ab():
                folder = self.app(f"w3_empty_{backend}", n, tables)
                name = f"w3_empty_{backend}_{n}"
                empty.append(
                    Variant(
                        n,
                        folder,
                        flask_argv("db", "migrate"),
                        self.dbs.url(backend, name),
                        reset=_bind(_reset_migrate, folder, self.dbs, backend, name),
                    )
                )
                folder = self.app(f"w3_sync_{backend}", n, tables)
                if n == "ext":
                    generate.run_flask(folder, "db", "migrate", "-m", "all", url=url)
                    generate.run_flask(folder, "db", "upgrade", url=url)
                    revision_files = sorted(
                        (folder / "migrations" / "versions").glob("*.py")
                    )
                else:
                    for f in revision_files:
                        shutil.copy(f, folder / "migrations" / "versions")
                db_url = self.dbs.create(backend, f"w3_sync_{backend}_{n}", template)
                keep = _versions(folder)
                if not self.quick:  # in sync means autogenerate finds nothing
                    generate.run_flask(folder, "db", "migrate", url=db_url)
                    if _versions(folder) != keep:
                        print(
                            f"warning: {n} finds changes in the synced {backend}"
                            " database",
                            file=sys.stderr,
                        )
                        _remove_new_versions(folder, keep)
                sync.append(
                    Variant(
                        n,
                        folder,
                        flask_argv("db", "migrate"),
                        db_url,
                        reset=_bind(_remove_new_versions, folder, keep),
                    )
                )
            in_sync = 0.5 if backend == "postgresql" else 0.7
            rss = Target("rss", 1.0)
            cases.append(
                Case(
                    f"w3.empty.{backend}",
                    "W3",
                    f"`flask db migrate`, empty database, {tables} tables",
                    backend,
                    empty,
                    slow=True,
                    targets=[Target("fm", 0.7), rss],
                )
            )
            cases.append(
                Case(
                    f"w3.sync.{backend}",
                    "W3",
                    f"`flask db migrate`, in sync, {tables} tables",
                    backend,
                    sync,
                    slow=True,
                    targets=[Target("fm", in_sync), rss],
                )
            )
        return cases

    # Floors ---------------------------------------------------------------
    def floors(self, backends: list[str]) -> list[Case]:
        folder = self.root / "floors"
        folder.mkdir(exist_ok=True)
        url = self.dbs.url("sqlite", "floors")

        def py(
            name: str,
            code: str,
            *args: str,
            cwd: Path = folder,
            u: str = url,
            inner: bool = False,
        ) -> list[Variant]:
            return [
                Variant(name, cwd, [sys.executable, "-c", code, *args], u, inner=inner)
            ]

        revs = self.sizes["w2_revisions"]
        script_dir = folder / "revmap"
        generate.write_history(script_dir / "versions", revs)
        cases = [
            Case("f.pass", "F", "`python -c pass`", "-", py("floor", "pass")),
            Case(
                "f.import",
                "F",
                "`import flask, sqlalchemy`",
                "-",
                py("floor", "import flask, sqlalchemy"),
            ),
            Case(
                "f.import_alembic",
                "F",
                "`import flask, flask_sqlalchemy, alembic.command`",
                "-",
                py("floor", "import flask, flask_sqlalchemy, alembic.command"),
            ),
            Case(
                "f.revmap",
                "F",
                f"Alembic revision map, {revs} revisions",
                "-",
                py("floor", REVISION_MAP, os.fspath(script_dir), inner=True),
            ),
        ]
        tables = self.sizes["w3_tables"]
        app = generate.make_app(folder / "w3", "none", tables)
        for backend in backends:
            db_url = self.dbs.create(backend, f"floors_reflect_{backend}")
            subprocess.run(
                [sys.executable, "-c", CREATE_ALL],
                cwd=app,
                env=generate.flask_env(db_url),
                check=True,
                timeout=600,
            )
            cases.append(
                Case(
                    f"f.reflect.{backend}",
                    "F",
                    f"one batched reflection (`get_multi_*`), {tables} tables",
                    backend,
                    py("floor", REFLECTION, u=db_url, inner=True),
                )
            )
        return cases


def _bind(f: t.Callable[..., t.Any], *args: t.Any) -> t.Callable[[], None]:
    def call() -> None:
        f(*args)

    return call


def _versions(folder: Path) -> set[str]:
    return {p.name for p in (folder / "migrations" / "versions").glob("*.py")}


def _remove_new_versions(folder: Path, keep: set[str]) -> None:
    for p in (folder / "migrations" / "versions").glob("*.py"):
        if p.name not in keep:
            p.unlink()


def _reset_migrate(folder: Path, dbs: Databases, backend: str, name: str) -> None:
    _remove_new_versions(folder, set())
    dbs.create(backend, name)


# -- report ------------------------------------------------------------------


def evaluate(case: Case, results: dict[str, t.Any]) -> dict[str, t.Any]:
    s = {v.name: v.summary() for v in case.variants}
    row: dict[str, t.Any] = {
        "key": case.key,
        "workload": case.workload,
        "title": case.title,
        "backend": case.backend,
        "variants": s,
    }
    if "ext" in s and "fm" in s:
        e, f = s["ext"], s["fm"]
        row["ext_fm"] = {
            "median": e["median"] / f["median"],
            "min": e["min"] / f["min"],
            "cpu_median": e["cpu_median"] / f["cpu_median"],
            "rss": e["rss_mb_median"] / f["rss_mb_median"],
        }
    if "none" in s and any(target.kind == "floor" for target in case.targets):
        floor = s["none"]["median"]
        row["floor_median"] = floor
        row["ext_floor"] = s["ext"]["median"] / floor
        row["ext_floor_min"] = s["ext"]["min"] / s["none"]["min"]
        if "fm" in s:
            row["fm_floor"] = s["fm"]["median"] / floor
    checks = []
    for target in case.targets:
        if target.kind == "fm":
            value, label = row["ext_fm"]["median"], "ext/FM"
        elif target.kind == "floor":
            value, label = row.get("ext_floor"), "ext/floor"
        elif target.kind == "rss":
            value, label = row["ext_fm"]["rss"], "RSS ext/FM"
        else:  # the extension's own lines in app.py: import + Migrate(app, db)
            value = s["ext"]["ext_lines_median"] * 1000
            label = "extension import + init ms"
            row["import_ext_minus_none_ms"] = (
                s["ext"]["inner_median"] - s["none"]["inner_median"]
            ) * 1000
        checks.append(
            {
                "label": label,
                "limit": target.limit,
                "value": value,
                "met": None if value is None else value <= target.limit,
            }
        )
    row["targets"] = checks
    return row


def _f(x: float | None, fmt: str = ".2f") -> str:
    return "" if x is None else format(x, fmt)


def markdown(meta: dict[str, t.Any], rows: list[dict[str, t.Any]]) -> str:
    lines = [
        f"Run {meta['started']} on {meta['machine']}; Python {meta['python']};"
        f" n={meta['repeat']} (fast) / {meta['repeat_slow']} (slow)"
        f"{' after one warm-up' if meta['warmup'] else ', no warm-up'};"
        f" sizes {', '.join(f'{k}={v}' for k, v in meta['sizes'].items())};"
        f" load average {meta['loadavg_before']} before,"
        f" {meta['loadavg_after']} after.",
        "",
        "Seconds, wall clock of the whole process. Ratios of medians unless marked.",
        "",
        "| workload | case | backend | ext median | ext min | FM median | FM min"
        " | ext/FM median | ext/FM min | ext/FM CPU | floor median"
        " | ext/floor median (min) | RSS MB ext / FM"
        " | targets |",
        "|" + " --- |" * 14,
    ]
    for row in rows:
        s = row["variants"]
        first = s.get("ext") or s.get("floor") or s.get("none")
        fm = s.get("fm", {})
        r = row.get("ext_fm", {})
        rss = _f(first["rss_mb_median"], ".0f")
        if fm:
            rss += f" / {fm['rss_mb_median']:.0f}"
        title = row["title"]
        inner = {k: v["inner_median"] for k, v in s.items() if "inner_median" in v}
        ext_lines = {
            k: v["ext_lines_median"] for k, v in s.items() if v.get("ext_lines_median")
        }
        if ext_lines:
            title += (
                " (extension lines: "
                + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in ext_lines.items())
                + ")"
            )
        if inner:
            title += (
                " (in-process: "
                + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in inner.items())
                + ")"
            )
        if row["workload"] == "F":
            title = f"floor: {title}"
        floor_ratio = ""
        if "ext_floor" in row:
            floor_ratio = f"{row['ext_floor']:.2f} ({row['ext_floor_min']:.2f})"
        targets = "; ".join(
            f"{c['label']} {_f(c['value'], '.3f' if 'RSS' in c['label'] else '.2f')}"
            f" <= {c['limit']:g} " + ("ok" if c["met"] else "MISS")
            for c in row["targets"]
        )
        lines.append(
            f"| {row['workload']} | {title} | {row['backend']}"
            f" | {first['median']:.3f} | {first['min']:.3f}"
            f" | {_f(fm.get('median'), '.3f')} | {_f(fm.get('min'), '.3f')}"
            f" | {_f(r.get('median'))} | {_f(r.get('min'))} | {_f(r.get('cpu_median'))}"
            f" | {_f(row.get('floor_median'), '.3f')} | {floor_ratio} | {rss}"
            f" | {targets} |"
        )
    met = sum(1 for row in rows for c in row["targets"] if c["met"])
    total = sum(1 for row in rows for c in row["targets"])
    lines += ["", f"Targets met: {met} of {total}."]
    return "\n".join(lines) + "\n"


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
        help="backends (repeatable; default: sqlite and postgresql)",
    )
    p.add_argument("-n", "--repeat", type=int, default=9, help="runs per fast case")
    p.add_argument("--repeat-slow", type=int, default=5, help="runs per slow case")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 run per case")
    p.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=N",
        help=f"override a size: {', '.join(FULL_SIZES)}",
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
        sizes[name] = int(value)
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
    builder = Builder(root, sizes, dbs, args.quick)
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
            "click",
        ),
        "repeat": args.repeat,
        "repeat_slow": args.repeat_slow,
        "warmup": not args.quick,
        "sizes": sizes,
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
            build = {
                "W1": builder.w1,
                "W2": builder.w2,
                "W3": builder.w3,
                "W4": builder.w4,
                "F": builder.floors,
            }[workload]
            for case in build(backends):
                n = args.repeat_slow if case.slow else args.repeat
                run_case(case, n, not args.quick, args.timeout, log)
                results[case.key] = evaluate(case, results)
    finally:
        dbs.drop_all()
        if not args.keep_fixtures:
            shutil.rmtree(root, ignore_errors=True)

    meta["loadavg_after"] = _loadavg()
    meta["seconds"] = round((datetime.datetime.now() - started).total_seconds(), 1)
    rows = list(results.values())
    table = markdown(meta, rows)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    stem = started.strftime("%Y%m%d-%H%M%S")
    (args.output_dir / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "results": rows}, indent=1) + "\n"
    )
    (args.output_dir / f"{stem}.md").write_text(table)
    print(table)
    log(f"wrote {args.output_dir / stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
