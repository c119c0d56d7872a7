"""The version table's rows through branches and merges, now that the runner
writes each step's UPDATE itself (bound parameters; on PostgreSQL carrying
the ledger's writes): the same rows Alembic would leave, a ledger row per
revision, and Alembic's own error when the version row is not there."""

from __future__ import annotations

import collections
import os
import typing as t
from pathlib import Path

import sqlalchemy as sa

from helpers import AppFactory
from helpers import invoke
from helpers import ledger_rows
from helpers import ok
from helpers import write_revision


def _versions(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(
                conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                .scalars()
                .all()
            )
    finally:
        engine.dispose()


def _table(name: str) -> tuple[str, str]:
    return (
        f'op.create_table("{name}", sa.Column("n", sa.Integer))',
        f'op.drop_table("{name}")',
    )


def test_branches_and_merges_leave_alembic_s_rows(
    make_app: AppFactory,
    make_database: t.Callable[[str], str],
    backend: str,
    tmp_path: Path,
) -> None:
    """a -> (b1 | b2) -> m (merge) -> c: a branch's own row is inserted
    (no UPDATE to carry the ledger), a merge deletes one row and updates the
    other, an unmerge inserts one back and updates the other; each step
    still gets its ledger row."""
    url = make_database(backend)
    app = make_app(url)
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, "a", None, *_table("ta"))
    write_revision(versions, "b1", "a", *_table("tb1"))
    write_revision(versions, "b2", "a", *_table("tb2"))
    write_revision(versions, "m", ("b1", "b2"), "pass", "pass")
    write_revision(versions, "c", "m", *_table("tc"))

    ok(invoke(app, "upgrade", "b1"))
    assert _versions(url) == {"b1"}
    ok(invoke(app, "upgrade", "heads"))  # b2 (a new branch row), m, c
    assert _versions(url) == {"c"}
    ok(invoke(app, "downgrade", "-1", "--yes"))
    assert _versions(url) == {"m"}
    ok(invoke(app, "downgrade", "b1", "--yes"))  # m unmerges: b2's row is back
    assert _versions(url) == {"b1", "b2"}
    ok(invoke(app, "downgrade", "a", "--yes"))  # one row deleted, one updated
    assert _versions(url) == {"a"}
    ok(invoke(app, "upgrade", "heads"))
    assert _versions(url) == {"c"}
    rows = ledger_rows(url)
    assert {status for _, _, status in rows} == {"applied"}
    assert collections.Counter((revision, action) for revision, action, _ in rows) == {
        ("a", "upgrade"): 1,
        ("b1", "upgrade"): 2,
        ("b2", "upgrade"): 2,
        ("m", "upgrade"): 2,
        ("c", "upgrade"): 2,
        ("c", "downgrade"): 1,
        ("m", "downgrade"): 1,
        ("b1", "downgrade"): 1,
        ("b2", "downgrade"): 1,
    }


def test_a_version_row_gone_missing_fails_the_step_as_alembic_does(
    make_app: AppFactory,
    make_database: t.Callable[[str], str],
    backend: str,
    tmp_path: Path,
) -> None:
    """r2 moves the version row itself: its own UPDATE finds no row, Alembic's
    message says so, r2 is rolled back (its table and its move of the row
    with it, where DDL is transactional) and recorded as failed."""
    url = make_database(backend)
    app = make_app(url)
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, "r1", None, *_table("t1"))
    write_revision(
        versions,
        "r2",
        "r1",
        "op.execute(\"UPDATE alembic_version SET version_num = 'elsewhere'\")",
        "pass",
    )
    write_revision(versions, "r3", "r2", *_table("t3"))
    result = invoke(app, "upgrade")
    assert result.exit_code != 0
    assert (
        "Online migration expected to match one row when updating 'r1' to 'r2'"
        in result.stderr
    )
    assert _versions(url) == {"r1"}
    assert ledger_rows(url)[:2] == [
        ("r1", "upgrade", "applied"),
        ("r2", "upgrade", "failed"),
    ]
    assert ("r3", "upgrade", "applied") not in ledger_rows(url)


def test_a_schema_translate_map_moves_the_version_row_as_alembic_does(
    make_app: AppFactory, make_database: t.Callable[[str], str], tmp_path: Path
) -> None:
    """env.py maps the default schema to ``tenant``: the runner's version
    UPDATE is translated as Alembic's was, so the version rows and the
    revisions' tables are in ``tenant``, none in ``public``. (The ledger is
    off: it is read before env.py runs, so it cannot follow env.py's map.)"""
    url = make_database("postgresql")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA tenant"))
    app = make_app(url)
    app.config["MIGRATE_LOG_TABLE"] = None
    ok(invoke(app, "init"))
    env = tmp_path / "migrations" / "env.py"
    source = env.read_text()
    assert source.count("connection=connection,") == 1
    env.write_text(
        source.replace(
            "connection=connection,",
            "connection=connection.execution_options("
            'schema_translate_map={None: "tenant"}),',
        )
    )
    versions = tmp_path / "migrations" / "versions"
    for number in (1, 2, 3):
        previous = f"r{number - 1}" if number > 1 else None
        write_revision(versions, f"r{number}", previous, *_table(f"t{number}"))
    ok(invoke(app, "upgrade"))
    try:
        with engine.connect() as conn:
            assert conn.execute(
                sa.text("SELECT version_num FROM tenant.alembic_version")
            ).scalars().all() == ["r3"]
            public = sa.inspect(conn).get_table_names()
            assert "alembic_version" not in public
            assert {"t1", "t2", "t3"} <= set(
                sa.inspect(conn).get_table_names(schema="tenant")
            )
    finally:
        engine.dispose()


def test_the_shortcut_for_deleting_a_branch_answers_as_alembic(
    tmp_path: Path,
) -> None:
    """For every downgrade step and every set of up to two heads holding its
    revision (branches, a merge, a dependency, two bases), a tracked step
    says what Alembic's step says."""
    from alembic.runtime.migration import RevisionStep
    from alembic.script import ScriptDirectory

    from flask_migrate_ext.apply.tracking import TrackedStep

    versions = tmp_path / "versions"
    versions.mkdir()
    write_revision(versions, "a", None, "pass", "pass")
    write_revision(versions, "b1", "a", "pass", "pass")
    write_revision(versions, "b2", "a", "pass", "pass")
    write_revision(versions, "m", ("b1", "b2"), "pass", "pass")
    write_revision(versions, "c", "m", "pass", "pass")
    write_revision(versions, "d", "c", "pass", "pass", depends_on="b2")
    write_revision(versions, "x", None, "pass", "pass")  # a second base
    script = ScriptDirectory(
        os.fspath(tmp_path), version_locations=[os.fspath(versions)]
    )
    revisions = [r.revision for r in script.walk_revisions()]
    asked = 0
    for name in revisions:
        step = RevisionStep(script.revision_map, script.get_revision(name), False)
        tracked = TrackedStep(step, t.cast(t.Any, None))
        for other in [None, *revisions]:
            heads = {name} if other is None else {name, other}
            assert tracked.should_delete_branch(heads) == step.should_delete_branch(
                heads
            ), (name, heads)
            asked += 1
    assert asked == len(revisions) * (len(revisions) + 1)
