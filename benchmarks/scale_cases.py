"""The cases of workloads W5-W8 (issues 20 and 21): a deploy's no-op upgrade
and its replicas, upgrade and downgrade at several history sizes, ``check``
and ``migrate`` in sync, and tenant schemas.

Each function takes the ``Builder`` (fixtures, databases, sizes) and the
backends asked for, and returns its cases.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import generate
from cases import bind
from cases import Builder
from cases import remove_new_versions
from measure import Case
from measure import flask_argv
from measure import Target
from measure import Variant

RSS = Target("rss", 1.0)

#: Issue 20: ext/FM <= 0.8 for upgrade and downgrade of 300 and 1000 revisions.
W6_TARGET_FROM = 300


# W5 -------------------------------------------------------------------------
def w5(b: Builder, backends: list[str]) -> list[Case]:
    """``flask db upgrade`` at head (ext's defaults: lock and ledger on), alone
    and as ``w5_replicas`` processes started at once (replicas of a deploy)."""
    revs, copies = b.sizes["w5_revisions"], b.sizes["w5_replicas"]
    folders = {n: b.history(n, revs) for n in (*b.ab(), "none")}
    floor_url = b.dbs.url("sqlite", "w5_floor")  # `flask --help` never opens it
    cases = []
    for backend in backends:
        template = b.at_head(backend, revs)
        urls = {n: b.dbs.create(backend, f"w5_{backend}_{n}", template) for n in b.ab()}
        urls["none"] = floor_url

        def variant(
            n: str, k: int = 1, name: str | None = None, urls: dict[str, str] = urls
        ) -> Variant:
            argv = flask_argv("--help") if n == "none" else flask_argv("db", "upgrade")
            return Variant(name or n, folders[n], argv, urls[n], copies=k)

        title = f"`flask db upgrade` at head (no-op), {revs} revisions"
        cases.append(
            Case(
                f"w5.noop.{backend}",
                "W5",
                title,
                backend,
                [variant(n) for n in (*b.ab(), "none")],
                targets=[Target("floor", 1.1), Target("fm", 0.6), RSS],
            )
        )
        group = [variant(n, copies) for n in (*b.ab(), "none")]
        single = [variant(n, 1, f"{n}_1") for n in (*b.ab(), "none")]
        cases.append(
            Case(
                f"w5.replicas.{backend}",
                "W5",
                f"{copies} x {title} at once (floor: {copies} x `flask --help`);"
                " the same, 1 process",
                backend,
                group + single,
                targets=[
                    Target("ratio", 1.5, "ext", "ext_1", f"ext x{copies} / ext x1"),
                    Target("ratio", None, "fm", "fm_1", f"FM x{copies} / FM x1"),
                    Target(
                        "ratio", None, "none", "none_1", f"floor x{copies} / floor x1"
                    ),
                    # What the group costs beyond the machine's cores: the
                    # same ratio for `flask --help` (no database, no lock).
                    Target(
                        "ratio",
                        None,
                        "ext",
                        "ext_1",
                        f"(ext x{copies} / ext x1) / (floor x{copies} / floor x1)",
                        per=("none", "none_1"),
                    ),
                    RSS,
                ],
            )
        )
    return cases


#: The ext's settings with the lock, the ledger, the data-loss guard, the
#: per-statement limits and per-revision transactions off.
SAFETY_OFF: dict[str, object] = {
    "MIGRATE_LOCK": False,
    "MIGRATE_LOG_TABLE": None,
    "MIGRATE_DATA_LOSS_GUARD": "off",
    "MIGRATE_DB_LOCK_TIMEOUT": None,
    "MIGRATE_TRANSACTION_MODE": "all",
}


def app_start(folder: Path, url: str) -> Variant:
    """The floor of a command on this app: ``flask --help`` loads the app and
    nothing else, and no tool's command can take less (report: floor/FM)."""
    return Variant("none", folder, flask_argv("--help"), url)


# W6 -------------------------------------------------------------------------
def w6(b: Builder, backends: list[str]) -> list[Case]:
    """``upgrade`` base->head and ``downgrade`` head->base at each size of
    ``w6_revisions``; the ext/FM target applies from ``W6_TARGET_FROM``
    revisions up (report.scaling fits the cost per revision)."""
    sizes = sorted(b.sizes["w6_revisions"])
    cases = []
    for backend in backends:
        for revs in sizes:
            targets = [Target("fm", 0.8), RSS] if revs >= W6_TARGET_FROM else [RSS]
            template = b.at_head(backend, revs)
            up, down = [], []
            for n in b.ab():
                folder = b.history(n, revs)
                name = f"w6_up{revs}_{backend}_{n}"
                up.append(
                    Variant(
                        n,
                        folder,
                        flask_argv("db", "upgrade"),
                        b.dbs.url(backend, name),
                        reset=bind(b.dbs.create, backend, name),
                    )
                )
                name = f"w6_down{revs}_{backend}_{n}"
                down.append(
                    Variant(
                        n,
                        folder,
                        flask_argv("db", "downgrade", "base"),
                        b.dbs.url(backend, name),
                        reset=bind(b.dbs.create, backend, name, template),
                    )
                )
            floor = app_start(b.history("ext", revs), b.dbs.url(backend, "w6_floor"))
            # The ext with every safety off, and with only one transaction
            # per revision on, to tell what each costs from what running the
            # revisions costs (report only).
            for variant, config in (
                ("ext_bare", SAFETY_OFF),
                ("ext_txn", {**SAFETY_OFF, "MIGRATE_TRANSACTION_MODE": "per-revision"}),
            ):
                folder = b.app(
                    f"hist{revs}_{variant}",
                    "ext",
                    b.sizes["w2_models"],
                    revisions=revs,
                    config=config,
                )
                for vs, argv, kind in (
                    (up, flask_argv("db", "upgrade"), "up"),
                    (down, flask_argv("db", "downgrade", "base"), "down"),
                ):
                    name = f"w6_{kind}{revs}_{backend}_{variant}"
                    template_ = template if kind == "down" else None
                    vs.append(
                        Variant(
                            variant,
                            folder,
                            argv,
                            b.dbs.url(backend, name),
                            reset=bind(b.dbs.create, backend, name, template_),
                        )
                    )
            for command, title, vs in (
                ("upgrade", "`flask db upgrade` base->head", up + [floor]),
                ("downgrade", "`flask db downgrade base` from head", down + [floor]),
            ):
                cases.append(
                    Case(
                        f"w6.{command}{revs}.{backend}",
                        "W6",
                        f"{title}, {revs} revisions",
                        backend,
                        vs,
                        slow=True,
                        targets=[
                            *targets,
                            Target("ratio", None, "ext_bare", "fm", "safety off/FM"),
                            Target(
                                "ratio", None, "ext_txn", "fm", "transactions only/FM"
                            ),
                        ],
                        info={"command": command, "size": revs},
                    )
                )
    return cases


# W7 -------------------------------------------------------------------------
def w7(b: Builder, backends: list[str]) -> list[Case]:
    """``check`` and ``migrate`` on W3's app with the database in sync."""
    tables = b.sizes["w3_tables"]
    cases = []
    for backend in b.only("W7", backends, "sqlite postgresql"):
        fixture = b.sync_fixture(backend)
        # The folders are W3's too: its `migrate` runs may have left a file.
        check = [
            Variant(
                n,
                folder,
                flask_argv("db", "check"),
                url,
                reset=bind(remove_new_versions, folder, keep),
            )
            for n, (folder, url, keep) in fixture.items()
        ]
        migrate = [
            Variant(
                n,
                folder,
                flask_argv("db", "migrate"),
                url,
                reset=bind(remove_new_versions, folder, keep),
            )
            for n, (folder, url, keep) in fixture.items()
        ]
        folder, url, _ = fixture["ext"]
        floor = app_start(folder, url)
        for command, vs in (("check", check + [floor]), ("migrate", migrate + [floor])):
            cases.append(
                Case(
                    f"w7.{command}.{backend}",
                    "W7",
                    f"`flask db {command}`, in sync, {tables} tables",
                    backend,
                    vs,
                    slow=True,
                    targets=[Target("fm", 0.5), RSS],
                )
            )
    return cases


# W8 -------------------------------------------------------------------------

# Flask-Migrate has no tenant support: users loop over the schemas in a shell,
# one process per schema. ``$0`` is the Python, ``$@`` the schemas.
FM_LOOP = (
    'for schema in "$@"; do'
    ' "$0" -m flask --app app db upgrade -x "schema=$schema" || exit 1;'
    " done"
)


def has_jobs_option(folder: Path, url: str) -> bool:
    """Whether the ext's ``flask db upgrade`` has ``--jobs`` (branch fleet)."""
    usage = generate.run_flask(folder, "db", "upgrade", "--help", url=url)
    return "--jobs" in usage.stdout


def w8(b: Builder, backends: list[str]) -> list[Case]:
    """``w8_schemas`` tenant schemas x ``w8_revisions`` revisions, PostgreSQL:
    the ext's ``upgrade --jobs N`` (``MIGRATE_SCHEMAS``) and ``--jobs 1``
    against a shell loop running Flask-Migrate once per schema."""
    if "postgresql" not in b.only("W8", backends, "postgresql"):
        return []
    n_schemas, revs = b.sizes["w8_schemas"], b.sizes["w8_revisions"]
    jobs = b.sizes["w8_jobs"]
    schemas = [f"tenant_{i:04d}" for i in range(n_schemas)]
    models = b.sizes["w2_models"]
    ext = b.app(
        "w8", "ext", models, revisions=revs, config={"MIGRATE_SCHEMAS": schemas}
    )
    if not has_jobs_option(ext, b.dbs.url("sqlite", "w8_help")):
        b.skipped.append(
            "W8 (tenant schemas): this checkout's `flask db upgrade --help` has no"
            " --jobs option yet; the case runs once it does."
        )
        return []
    fm = b.app("w8", "fm", models, revisions=revs)
    generate.edit_fm_env_for_tenants(fm)
    template = "w8_tpl"
    b.dbs.create("postgresql", template)
    b.dbs.execute_in("postgresql", template, *(f'CREATE SCHEMA "{s}"' for s in schemas))
    sh = shutil.which("sh") or "/bin/sh"

    def variant(name: str, folder: Path, argv: list[str]) -> Variant:
        db = f"w8_{name}"
        return Variant(
            name,
            folder,
            argv,
            b.dbs.url("postgresql", db),
            reset=bind(b.dbs.create, "postgresql", db, template),
        )

    title = (
        f"`flask db upgrade --jobs {jobs}`, {n_schemas} tenant schemas x {revs}"
        " revisions (FM: a shell loop, `flask db upgrade -x schema=NAME` per schema)"
    )
    return [
        Case(
            "w8.tenants.postgresql",
            "W8",
            title,
            "postgresql",
            [
                variant("ext", ext, flask_argv("db", "upgrade", "--jobs", str(jobs))),
                variant("ext_jobs1", ext, flask_argv("db", "upgrade", "--jobs", "1")),
                variant("fm", fm, [sh, "-c", FM_LOOP, sys.executable, *schemas]),
            ],
            slow=True,
            targets=[
                Target("fm", 0.25, label=f"ext --jobs {jobs} / FM loop"),
                Target("ratio", None, "ext_jobs1", "fm", "ext --jobs 1 / FM loop"),
                RSS,
            ],
        )
    ]
