"""``Migrate.status()``: the answer of ``flask db status``, read without
Alembic from the revision cache and two queries per database, for health
checks; the command's path whenever the cache cannot vouch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_ext import api
from flask_migrate_ext import DatabaseUnreachableError
from flask_migrate_ext import Migrate
from flask_migrate_ext.apply import probe
from flask_migrate_ext.scripts import quick
from flask_migrate_ext.scripts.revision_cache import CachedLoad
from flask_migrate_ext.scripts.revisions import from_script
from flask_migrate_ext.scripts.revisions import GraphUnclear
from flask_migrate_ext.scripts.revisions import revisions_from_declared
from helpers import AppFactory
from helpers import invoke
from helpers import MultidbFactory
from helpers import ok
from helpers import write_revision

CREATE = 'op.create_table("t_{name}", sa.Column("n", sa.Integer))'
DROP = 'op.drop_table("t_{name}")'
FAILING = """
op.create_table("t_half", sa.Column("n", sa.Integer))
op.execute("SELECT * FROM no_such_table")
"""


def add(versions: Path, revision: str, down: str | tuple[str, ...] | None) -> None:
    write_revision(
        versions,
        revision,
        down,
        CREATE.format(name=revision),
        DROP.format(name=revision),
    )


def migrate_of(app: Flask) -> Migrate:
    return t.cast(Migrate, app.extensions["migrate"].migrate)


def fast(app: Flask) -> bool:
    """Whether ``Migrate.status()`` answers without the command's path."""
    with app.app_context():
        return probe.fast_status() is not None


def same_as_command(app: Flask, verify: bool = False) -> api.StatusResult:
    """``Migrate.status()``, after checking it equals ``api.status()`` (which
    brings the revision cache up to date) and answered fast."""
    with app.app_context():
        expected = api.status(verify=verify)
    assert fast(app)
    found = migrate_of(app).status(app, verify=verify)
    assert found == expected
    return found


@pytest.fixture
def app(make_app: AppFactory, database_url: str, tmp_path: Path) -> Flask:
    app = make_app(database_url)
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    add(versions, "r1", None)
    add(versions, "r2", "r1")
    ok(invoke(app, "heads"))  # writes the revision cache
    return app


def test_same_answer_as_the_command(
    app: Flask, database_url: str, backend: str, tmp_path: Path
) -> None:
    versions = tmp_path / "migrations" / "versions"
    assert same_as_command(app).state == "pending"  # base: no version table
    ok(invoke(app, "upgrade", "r1"))
    found = same_as_command(app)
    assert (found.state, found.databases[0].pending) == ("pending", ("r2",))
    ok(invoke(app, "upgrade"))
    found = same_as_command(app, verify=True)
    assert found.state == "up-to-date"
    assert found.databases[0].revisions[0].recorded_as == "upgrade"
    # A second head: one revision pending, and a finding.
    add(versions, "r3", "r1")
    found = same_as_command(app)
    assert (found.state, found.databases[0].pending) == ("pending", ("r3",))
    assert [f.kind for f in found.findings] == ["several-heads"]
    ok(invoke(app, "upgrade", "heads"))
    assert same_as_command(app).state == "up-to-date"
    # A revision no script defines (a rolled-back deploy).
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE alembic_version SET version_num = 'gone'"
                " WHERE version_num = 'r3'"
            )
        )
    engine.dispose()
    assert same_as_command(app, verify=True).state == "unknown-revision"


def test_half_applied_revision(make_app: AppFactory, tmp_path: Path) -> None:
    from helpers import create_database
    from helpers import drop_database

    url = create_database("mariadb", tmp_path)
    try:
        app = make_app(url)
        ok(invoke(app, "init"))
        versions = tmp_path / "migrations" / "versions"
        add(versions, "r1", None)
        write_revision(versions, "r2", "r1", FAILING, DROP.format(name="half"))
        assert invoke(app, "upgrade").exit_code == 1
        found = same_as_command(app)
        assert found.state == "partial"
        assert found.exit_code == 6
    finally:
        drop_database("mariadb", url)


def test_multidb_and_excluded_binds(
    make_multidb_app: MultidbFactory, tmp_path: Path
) -> None:
    binds = {
        "": f"sqlite:///{tmp_path / 'main.db'}",
        "users": f"sqlite:///{tmp_path / 'users.db'}",
        "replica": f"sqlite:///{tmp_path / 'replica.db'}",
    }
    app = make_multidb_app(binds)
    app.config["MIGRATE_EXCLUDE_BINDS"] = ["replica"]
    ok(invoke(app, "init", "--multidb"))
    ok(invoke(app, "migrate", "-m", "first"))
    ok(invoke(app, "upgrade"))
    found = same_as_command(app)
    assert [d.name for d in found.databases] == ["", "users"]
    assert found.state == "up-to-date"


def test_custom_version_table_and_no_ledger(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url, version_table="schema_versions")
    app.config["MIGRATE_LOG_TABLE"] = None
    ok(invoke(app, "init"))
    add(tmp_path / "migrations" / "versions", "r1", None)
    ok(invoke(app, "upgrade"))
    found = same_as_command(app)
    assert found.state == "up-to-date"
    assert found.databases[0].revisions[0].recorded_as is None


def test_migrate_directory_setting(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    app.config["MIGRATE_DIRECTORY"] = "db/migrations"
    ok(invoke(app, "init"))
    add(tmp_path / "db" / "migrations" / "versions", "r1", None)
    ok(invoke(app, "heads"))
    assert same_as_command(app).databases[0].pending == ("r1",)


def test_never_stale_when_a_file_is_added_or_edited(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = tmp_path / "migrations" / "versions"
    status = migrate_of(app).status
    assert status(app).databases[0].pending == ("r1", "r2")
    add(versions, "r3", "r2")  # not in the cache yet: the command's path
    assert not fast(app)
    assert status(app).databases[0].pending == ("r1", "r2", "r3")
    assert fast(app)  # that run brought the cache up to date
    # An edit keeping the size, in the same second: caught by its content.
    path = versions / "r3.py"
    text = path.read_text()
    path.write_text(text.replace('"""r3"""', '"""r9"""'))
    assert status(app).databases[0].revisions[-1].message == "r9"
    # The memo: the graph is not built again while no file changes (once
    # the files are older than the racy window, shortened here).
    monkeypatch.setattr(quick, "RACY_WINDOW_NS", 0)
    with app.app_context():
        first = quick.history_graph(None)
        assert first is not None
        assert quick.history_graph(None) is first
    path.write_text(text.replace('"""r3"""', '"""r8"""'))
    assert status(app).databases[0].revisions[-1].message == "r8"


def test_falls_back_when_the_cache_cannot_vouch(
    app: Flask, tmp_path: Path, database_url: str
) -> None:
    folder = tmp_path / "migrations"
    (folder / ".flask_migrate_ext" / "revision-graph.json").unlink()
    assert not fast(app)
    assert migrate_of(app).status(app).databases[0].pending == ("r1", "r2")
    assert fast(app)
    # env.py with local edits: only running it can say what it reads.
    env = folder / "env.py"
    env.write_text(env.read_text() + "\n# edited\n")
    assert not fast(app)
    assert migrate_of(app).status(app).state == "pending"
    # A configure callback could change anything.
    env.write_text(env.read_text().replace("\n# edited\n", ""))
    assert fast(app)
    migrate_of(app).configure(lambda config: config)
    assert not fast(app)


def test_unreachable_database_is_a_typed_error(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = make_app("postgresql+psycopg://nobody:secret@127.0.0.1:1/nothing")
    ok(invoke(app, "init"))
    with pytest.raises(DatabaseUnreachableError) as caught:
        migrate_of(app).status(app)
    assert "secret" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


def test_without_alembic(app: Flask, tmp_path: Path) -> None:
    """A health check in a fresh process answers without importing Alembic."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    (tmp_path / "probe_app.py").write_text(
        textwrap.dedent(
            f"""
            import json, sys
            from flask import Flask
            from flask_sqlalchemy import SQLAlchemy
            from flask_migrate_ext import Migrate

            app = Flask(__name__)
            app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
            db = SQLAlchemy(app)
            migrate = Migrate(app, db)
            with app.app_context():
                result = migrate.status()
            print(json.dumps([result.state, list(result.databases[0].pending),
                              "alembic" in sys.modules]))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "probe_app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["pending", ["r1", "r2"], False]


# -- the graph, built from the cache as Alembic builds it ----------------------

GRAPHS: dict[str, list[tuple[str, t.Any, t.Any, t.Any]]] = {
    "branch": [("a", None, None, None), ("b", "a", None, None), ("c", "a", None, None)],
    "merge": [
        ("a", None, None, None),
        ("b", "a", None, None),
        ("c", "a", None, None),
        ("d", ("b", "c"), None, None),
    ],
    "labels and depends_on": [
        ("a", None, ("main",), None),
        ("b", "a", None, None),
        ("x", None, ("other",), "main"),
        ("y", "x", None, "b"),
    ],
    "label on a branch": [
        ("a", None, None, None),
        ("b", "a", ("feature",), None),
        ("c", "a", None, None),
        ("d", "b", None, None),
    ],
}

REVISION = '''"""{rev} message

More text."""
revision = {rev!r}
down_revision = {down!r}
branch_labels = {labels!r}
depends_on = {deps!r}
'''


@pytest.mark.parametrize("name", GRAPHS)
def test_graph_as_alembic_reports_it(name: str, tmp_path: Path) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from flask_migrate_ext.scripts import revision_cache

    versions = tmp_path / "versions"
    versions.mkdir()
    (tmp_path / "alembic.ini").write_text("[alembic]\n")
    for position, (rev, down, labels, deps) in enumerate(GRAPHS[name]):
        (versions / f"{position:02d}_{rev}.py").write_text(
            REVISION.format(rev=rev, down=down, labels=labels, deps=deps)
        )
    config = Config(os.fspath(tmp_path / "alembic.ini"))
    config.set_main_option("script_location", os.fspath(tmp_path))
    script = revision_cache.install(ScriptDirectory.from_config(config))
    expected = {sc.revision: from_script(sc) for sc in script.walk_revisions()}
    found = CachedLoad(tmp_path, [versions.absolute()], False).declared()
    assert found is not None
    built = revisions_from_declared(found)
    assert built == expected
    assert tuple(r.id for r in built.values() if r.is_head) == tuple(script.get_heads())


@pytest.mark.parametrize(
    "revisions",
    [
        [("a", None, None, None), ("a", None, None, None)],  # duplicate id
        [("a", "zz", None, None)],  # a parent that does not exist
        [("a", "b", None, None), ("b", "a", None, None)],  # a loop
        [("a", None, ("l",), None), ("b", "a", ("l",), None)],  # a label twice
        [("a", "", None, None)],  # an empty parent
    ],
)
def test_graph_refuses_what_alembic_would_report(
    revisions: list[tuple[str, t.Any, t.Any, t.Any]],
) -> None:
    found = [
        (
            Path(f"/v/{i}.py"),
            {
                "revision": rev,
                "down_revision": down,
                "branch_labels": labels,
                "depends_on": deps,
                "doc": None,
            },
        )
        for i, (rev, down, labels, deps) in enumerate(revisions)
    ]
    with pytest.raises(GraphUnclear):
        revisions_from_declared(found)
