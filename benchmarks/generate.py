"""Fixture generator for the benchmarks: apps, migration folders, revision histories.

Each fixture is a folder holding ``app.py`` (a Flask app with ``N`` Flask-SQLAlchemy
models, built for one *variant*) and, for the variants with an extension, a
``migrations/`` folder made by that extension's own ``flask db init``. Revision
histories are written directly as revision files (no autogenerate), so building
1000 revisions takes a fraction of a second.

Variants:

- ``ext``: ``from flask_migrate_ext import Migrate``
- ``fm``: ``from flask_migrate import Migrate`` (Flask-Migrate 4.1.0)
- ``none``: the same app without any migration extension (the floor)

The app reads its database URL from ``BENCH_DATABASE_URL`` so one fixture can be
pointed at SQLite, PostgreSQL or MariaDB. For the tenant workload (W8),
``edit_fm_env_for_tenants`` edits Flask-Migrate's ``env.py`` the way users of
schema-per-tenant apps do: it is the user's code in that benchmark.

Fixtures live in a temporary folder, on tmpfs (``/dev/shm``) when there is one:
on a real disk SQLite's fsync per revision would dominate the upgrade timings
for every extension alike.

Run it alone to look at the files::

    python benchmarks/generate.py --out /tmp/bench-fixtures --models 5 --revisions 10
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

VARIANTS = ("ext", "fm", "none")

_IMPORTS = {
    "ext": "from flask_migrate_ext import Migrate",
    "fm": "from flask_migrate import Migrate",
    "none": "",
}

DATABASE_ENV = "BENCH_DATABASE_URL"


def fixture_root(prefix: str = "fmx-bench-") -> Path:
    """A fresh temporary folder, on tmpfs if ``/dev/shm`` is usable."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def _model_source(i: int, n: int) -> str:
    """One model with mixed columns, a unique, an FK to the previous one, indexes."""
    lines = [
        f"class Model{i:04d}(db.Model):",
        f'    __tablename__ = "model_{i:04d}"',
        "    id = db.Column(db.Integer, primary_key=True)",
        "    name = db.Column(db.String(80), nullable=False)",
        "    code = db.Column(db.String(20), nullable=False, unique=True)",
        "    amount = db.Column(db.Numeric(10, 2))",
        "    created = db.Column(db.DateTime, nullable=False)",
        "    active = db.Column(db.Boolean, nullable=False, default=True)",
        "    notes = db.Column(db.Text)",
    ]
    if i > 0:
        lines.append(
            "    parent_id = db.Column(db.Integer,"
            f" db.ForeignKey('model_{i - 1:04d}.id'), index=True)"
        )
    lines += [
        "    __table_args__ = (",
        f'        db.Index("ix_model_{i:04d}_name_created", "name", "created"),',
        "    )",
        "",
    ]
    return "\n".join(lines)


def app_source(
    variant: str, models: int, config: dict[str, object] | None = None
) -> str:
    """The source of ``app.py`` for ``variant`` with ``models`` models.

    ``config``: more ``app.config`` keys (values written with ``repr``).
    """
    # The extension's own lines are timed (``_bench_ext_seconds``): its import
    # cost is a few ms, well below the noise of importing the whole app.
    head = textwrap.dedent(
        f"""\
        import os
        from time import perf_counter as _bench_clock

        from flask import Flask
        from flask_sqlalchemy import SQLAlchemy

        _bench_t0 = _bench_clock()
        {_IMPORTS[variant]}
        _bench_ext_seconds = _bench_clock() - _bench_t0

        app = Flask(__name__)
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["{DATABASE_ENV}"]
        """
    )
    for key, value in (config or {}).items():
        head += f"app.config[{key!r}] = {value!r}\n"
    head += "db = SQLAlchemy(app)\n"
    if variant != "none":
        head += (
            "_bench_t0 = _bench_clock()\n"
            "migrate = Migrate(app, db)\n"
            "_bench_ext_seconds += _bench_clock() - _bench_t0\n"
        )
    body = "\n\n".join(_model_source(i, models) for i in range(models))
    return head + "\n\n" + body


def rev_id(i: int) -> str:
    """A stable 12-hex revision id for the ``i``-th revision of a history."""
    return hashlib.sha1(f"bench-{i}".encode()).hexdigest()[:12]


def _revision_ops(i: int) -> tuple[str, str]:
    """Upgrade and downgrade bodies: a table every 10 revisions, columns between."""
    table = f"hist_{i // 10:04d}"
    if i % 10 == 0:
        up = (
            f"    op.create_table({table!r},"
            " sa.Column('id', sa.Integer(), nullable=False),"
            " sa.PrimaryKeyConstraint('id'))"
        )
        down = f"    op.drop_table({table!r})"
    else:
        column = f"c{i % 10}"
        up = f"    op.add_column({table!r}, sa.Column({column!r}, sa.String(40)))"
        down = f"    op.drop_column({table!r}, {column!r})"
    return up, down


def revision_source(i: int) -> str:
    down = repr(rev_id(i - 1)) if i > 0 else "None"
    up_body, down_body = _revision_ops(i)
    return (
        f'"""step {i}\n\nRevision ID: {rev_id(i)}\nRevises: {down if i else ""}\n'
        'Create Date: 2025-01-01 00:00:00.000000\n\n"""\n'
        "from alembic import op\nimport sqlalchemy as sa\n\n\n"
        f"revision = {rev_id(i)!r}\ndown_revision = {down}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n{up_body}\n\n\ndef downgrade():\n{down_body}\n"
    )


def write_history(versions: Path, revisions: int) -> None:
    """Write a linear history of ``revisions`` revision files into ``versions``."""
    versions.mkdir(parents=True, exist_ok=True)
    for i in range(revisions):
        (versions / f"{rev_id(i)}_step_{i}.py").write_text(revision_source(i))


def head_of(revisions: int) -> str:
    return rev_id(revisions - 1)


def flask_env(url: str) -> dict[str, str]:
    """The environment of every timed or setup process: no stray ``FLASK_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env[DATABASE_ENV] = url
    return env


def run_flask(
    cwd: Path, *args: str, url: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m flask --app app <args>`` in ``cwd``; raise on failure."""
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=cwd,
        env=flask_env(url),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"setup command failed in {cwd}: flask {' '.join(args)}\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    return proc


def make_app(
    folder: Path,
    variant: str,
    models: int,
    revisions: int = 0,
    migrations_from: Path | None = None,
    config: dict[str, object] | None = None,
) -> Path:
    """Create ``folder`` with ``app.py`` and (for an extension) ``migrations/``.

    ``migrations/`` is made by the variant's ``flask db init``, or copied from
    ``migrations_from`` (an earlier init of the same variant: saves a process).
    ``revisions`` > 0 writes a linear history of that many revision files.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(app_source(variant, models, config))
    if variant == "none":
        return folder
    if migrations_from is not None:
        shutil.copytree(migrations_from, folder / "migrations")
    else:
        run_flask(folder, "db", "init", url=f"sqlite:///{folder / 'init.db'}")
    if revisions:
        write_history(folder / "migrations" / "versions", revisions)
    return folder


# Flask-Migrate's env.py, edited the way users of schema-per-tenant apps do
# (Alembic's cookbook, "Rudimental Schema-Level Multi-Tenancy"): the schema
# comes from ``flask db upgrade -x schema=NAME``; the connection works in it,
# and the version table lives in it.
_FM_TENANT_ANCHOR = """\
    with connectable.connect() as connection:
        context.configure(
"""
_FM_TENANT_EDIT = """\
    schema = context.get_x_argument(as_dictionary=True).get("schema")
    with connectable.connect() as connection:
        if schema:
            connection.execute(text(f'SET search_path TO "{schema}"'))
            connection.commit()
            connection.dialect.default_schema_name = schema
            conf_args["version_table_schema"] = schema
        context.configure(
"""


def edit_fm_env_for_tenants(folder: Path) -> None:
    """Make a Flask-Migrate ``env.py`` in ``folder`` migrate ``-x schema=NAME``."""
    env_py = folder / "migrations" / "env.py"
    source = env_py.read_text()
    if _FM_TENANT_ANCHOR not in source:
        raise RuntimeError(f"{env_py} is not Flask-Migrate 4.1's env.py")
    source = source.replace(_FM_TENANT_ANCHOR, _FM_TENANT_EDIT)
    source = source.replace(
        "from alembic import context\n",
        "from alembic import context\nfrom sqlalchemy import text\n",
    )
    env_py.write_text(source)


def stamp(url: str, revision: str) -> None:
    """Put ``revision`` in ``alembic_version`` directly, as ``flask db stamp`` would."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL,"
                    " CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
                )
            )
            conn.execute(
                sa.text("INSERT INTO alembic_version VALUES (:rev)"), {"rev": revision}
            )
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--revisions", type=int, default=0)
    parser.add_argument("--variant", choices=VARIANTS, action="append")
    args = parser.parse_args(argv)
    out = args.out or fixture_root()
    for variant in args.variant or VARIANTS:
        make_app(out / variant, variant, args.models, args.revisions)
        print(out / variant)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
