"""The cases of workloads W1-W4 and F, and the fixtures they share.

``Builder`` makes fixtures on demand (apps, migration folders, databases at
head) and lists each workload's cases; W5-W8 are in ``scale_cases.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import generate
from dbs import Databases
from measure import Case
from measure import flask_argv
from measure import Target
from measure import Variant

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


class Builder:
    """Builds fixtures on demand and lists the cases of each workload."""

    def __init__(
        self,
        root: Path,
        sizes: dict[str, t.Any],
        dbs: Databases,
        quick: bool,
        timeout: float = 600,
    ) -> None:
        self.root = root
        self.quick = quick
        self.sizes = sizes
        self.dbs = dbs
        self.timeout = timeout
        #: Why a workload or case did not run, for the report.
        self.skipped: list[str] = []
        self._apps: dict[tuple[str, str], Path] = {}
        self._heads: dict[tuple[str, int], str] = {}
        self._sync: dict[str, dict[str, tuple[Path, str, set[str]]]] = {}

    def app(
        self,
        fixture: str,
        variant: str,
        models: int,
        revisions: int = 0,
        config: dict[str, object] | None = None,
    ) -> Path:
        key = (fixture, variant)
        if key not in self._apps:
            self._apps[key] = generate.make_app(
                self.root / fixture / variant,
                variant,
                models,
                revisions,
                migrations_from=self._init(variant),
                config=config,
            )
        return self._apps[key]

    def history(self, variant: str, revisions: int) -> Path:
        """The app of W2's models with a linear history of ``revisions``."""
        return self.app(
            f"hist{revisions}", variant, self.sizes["w2_models"], revisions=revisions
        )

    def at_head(self, backend: str, revisions: int) -> str:
        """A template database at the head of ``history(revisions)``, made by
        the ext's ``flask db upgrade`` (ledger included); FM's copies carry the
        ext's ledger table too, which FM never reads."""
        key = (backend, revisions)
        if key not in self._heads:
            name = f"head{revisions}_{backend}"
            url = self.dbs.create(backend, name)
            generate.run_flask(
                self.history("ext", revisions),
                "db",
                "upgrade",
                url=url,
                timeout=self.timeout,
            )
            self._heads[key] = name
        return self._heads[key]

    def sync_fixture(self, backend: str) -> dict[str, tuple[Path, str, set[str]]]:
        """Per variant: the W3 app, a database in sync with its models, and the
        revision files there (``migrate`` may add one: delete it after).

        The database is made the way a user would (``migrate`` + ``upgrade``, by
        ext); both variants get a copy of it and of the revision file.
        """
        if backend in self._sync:
            return self._sync[backend]
        tables = self.sizes["w3_tables"]
        template = f"w3_sync_tpl_{backend}"
        url = self.dbs.create(backend, template)
        out = {}
        revision_files: list[Path] = []
        for n in self.ab():
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
            name = f"w3_sync_{backend}_{n}"
            db_url = self.dbs.create(backend, name, template)
            if n != "ext":
                # The ext's own tables (ledger, lock) are not FM's: its
                # autogenerate would want to drop them.
                self.dbs.drop_tables(backend, name, "flask_migrate_ext")
            keep = _versions(folder)
            # In sync means autogenerate finds nothing.
            generate.run_flask(folder, "db", "migrate", url=db_url)
            if _versions(folder) != keep:
                print(
                    f"warning: {n} finds changes in the synced {backend} database",
                    file=sys.stderr,
                )
                remove_new_versions(folder, keep)
            out[n] = (folder, db_url, keep)
        self._sync[backend] = out
        return out

    def only(self, workload: str, backends: list[str], supported: str) -> list[str]:
        """``backends`` the workload runs on; notes the ones it leaves out."""
        left = [b for b in backends if b not in supported.split()]
        if left:
            self.skipped.append(
                f"{workload} on {', '.join(left)}: it runs on {supported} only."
            )
        return [b for b in backends if b in supported.split()]

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
                        reset=bind(self.dbs.create, backend, name),
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
        revs = self.sizes["w4_revisions"]
        cases = []
        for backend in backends:
            vs = []
            # Same revision files: one database at head serves both.
            template = self.at_head(backend, revs)
            for n in self.ab():
                folder = self.history(n, revs)
                name = f"w4_{backend}_{n}"
                vs.append(
                    Variant(
                        n,
                        folder,
                        flask_argv("db", "downgrade", "base"),
                        self.dbs.url(backend, name),
                        reset=bind(self.dbs.create, backend, name, template),
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
        for backend in self.only("W3", backends, "sqlite postgresql"):
            empty, sync = [], []
            for n in self.ab():
                folder = self.app(f"w3_empty_{backend}", n, tables)
                name = f"w3_empty_{backend}_{n}"
                empty.append(
                    Variant(
                        n,
                        folder,
                        flask_argv("db", "migrate"),
                        self.dbs.url(backend, name),
                        reset=bind(_reset_migrate, folder, self.dbs, backend, name),
                    )
                )
            for n, (folder, db_url, keep) in self.sync_fixture(backend).items():
                sync.append(
                    Variant(
                        n,
                        folder,
                        flask_argv("db", "migrate"),
                        db_url,
                        reset=bind(remove_new_versions, folder, keep),
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
        for backend in self.only("F reflection", backends, "sqlite postgresql"):
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


def bind(f: t.Callable[..., t.Any], *args: t.Any) -> t.Callable[[], None]:
    def call() -> None:
        f(*args)

    return call


def _versions(folder: Path) -> set[str]:
    return {p.name for p in (folder / "migrations" / "versions").glob("*.py")}


def remove_new_versions(folder: Path, keep: set[str]) -> None:
    for p in (folder / "migrations" / "versions").glob("*.py"):
        if p.name not in keep:
            p.unlink()


def _reset_migrate(folder: Path, dbs: Databases, backend: str, name: str) -> None:
    remove_new_versions(folder, set())
    dbs.create(backend, name)
