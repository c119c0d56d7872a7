"""What safety costs per revision: the statements each revision sends on top
of its own and the version table's, and the checks folded into them (the
migration lock's, in the ledger's statements) still telling a lost lock."""

from __future__ import annotations

import collections
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_ext.apply.lock import LockCondition
from flask_migrate_ext.apply.lock import LockTarget
from flask_migrate_ext.apply.lock import migration_lock
from flask_migrate_ext.errors import LockLostError
from helpers import AppFactory
from helpers import invoke
from helpers import ok
from helpers import write_revision

#: Statements a revision may send besides its own DDL and the version
#: table's update: PostgreSQL, one statement setting the limits and checking
#: the lock (before the DDL; the ledger's writes ride on the version
#: table's UPDATE);
#: MariaDB, the limits and the ledger's insert (carrying the lock's check)
#: and update; SQLite, the ledger's three (no lock to check: a file lock).
EXTRA_PER_REVISION = {"postgresql": 1, "mariadb": 3, "sqlite": 3}


def _history(versions: Path, first: int, last: int) -> None:
    """Revisions ``r<first>``..``r<last>``, each creating one table."""
    for number in range(first, last + 1):
        write_revision(
            versions,
            f"r{number}",
            f"r{number - 1}" if number > 1 else None,
            f'op.create_table("t{number}", sa.Column("n", sa.Integer))',
            f'op.drop_table("t{number}")',
        )


def _statements(app: Flask, *args: str) -> collections.Counter[str]:
    """The statements sent to any database by ``flask db <args>``, by kind."""
    seen: collections.Counter[str] = collections.Counter()

    def count(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        if "UPDATE alembic_version SET" in statement:
            seen["UPDATE ALEMBIC_VERSION"] += 1  # maybe carrying the ledger's
        else:
            seen[" ".join(statement.split()[:2]).upper()] += 1

    sa.event.listen(sa.Engine, "before_cursor_execute", count)
    try:
        ok(invoke(app, *args))
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", count)
    return seen


def _extra(seen: collections.Counter[str]) -> int:
    """Statements that are neither the revisions' DDL nor the version table's.

    SQLite's ``PRAGMA`` calls (the data-loss guard's look at each table a
    downgrade drops: SQLite has no batched reflection) are left out: calls
    inside the process, not round trips to a server.
    """
    own = seen["CREATE TABLE"] + seen["DROP TABLE"] + seen["UPDATE ALEMBIC_VERSION"]
    pragmas = sum(n for kind, n in seen.items() if kind.startswith("PRAGMA"))
    return sum(seen.values()) - own - pragmas


def _ledger(url: str) -> list[tuple[str, str, str, int, str | None]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                tuple(row)  # type: ignore[misc]
                for row in conn.execute(
                    sa.text(
                        "SELECT revision, action, status, statements, checksum"
                        " FROM flask_migrate_ext_log ORDER BY id"
                    )
                )
            ]
    finally:
        engine.dispose()


def test_cost_per_revision_is_flat_and_small(
    make_app: AppFactory,
    make_database: t.Callable[[str], str],
    backend: str,
    tmp_path: Path,
) -> None:
    """Upgrading and downgrading 4 or 12 revisions: the 8 more cost at most
    ``EXTRA_PER_REVISION`` statements each beyond their own, whatever the
    length of the run; and every revision still gets its ledger row, with
    its checksum."""
    extra = {}
    for count in (4, 12):
        url = make_database(backend)
        app = make_app(url)
        versions = tmp_path / "migrations" / "versions"
        if not versions.is_dir():
            ok(invoke(app, "init"))
        _history(versions, 1, count)
        up = _statements(app, "upgrade")
        rows = _ledger(url)
        assert [row[:4] for row in rows] == [
            (f"r{n}", "upgrade", "applied", 1) for n in range(1, count + 1)
        ]
        assert all(row[4] and row[4].startswith("sha256:") for row in rows)
        down = _statements(app, "downgrade", "base", "--yes")
        rows = _ledger(url)[count:]
        assert [row[:4] for row in rows] == [
            (f"r{n}", "downgrade", "applied", 1) for n in range(count, 0, -1)
        ]
        extra[count] = (_extra(up), _extra(down))
    for action in (0, 1):
        per_revision = (extra[12][action] - extra[4][action]) / 8
        assert per_revision <= EXTRA_PER_REVISION[backend], (backend, action, extra)


def _holds(connection: sa.Connection, condition: LockCondition) -> bool:
    return bool(
        connection.execute(
            sa.text(f"SELECT {condition.sql}"), condition.params
        ).scalar()
    )


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_lock_condition_is_false_once_the_lock_is_lost(
    make_database: t.Callable[[str], str], backend: str
) -> None:
    """The lock's check as SQL, from another connection: true while the lock
    is ours; false once its connection is killed, and still false when
    another session takes the lock (same key, maybe the same pid)."""
    url = make_database(backend)
    engine = sa.create_engine(url)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with (
            migration_lock([LockTarget("", engine)], 5) as handle,
            admin.connect() as other,
        ):
            assert handle.condition("another database") is None
            condition = handle.condition("")
            assert condition is not None
            assert _holds(other, condition)
            if backend == "postgresql":
                pid = condition.params["fmx_lock_pid"]
                other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                take = "SELECT pg_try_advisory_lock(:key)"
                params = {"key": condition.params["fmx_lock_key"]}
            else:
                other.execute(
                    sa.text(f"KILL {int(condition.params['fmx_lock_connection'])}")
                )
                take = "SELECT GET_LOCK(:name, 5)"
                params = {"name": condition.params["fmx_lock_name"]}
            assert not _holds(other, condition)
            assert other.execute(sa.text(take), params).scalar() == 1
            assert not _holds(other, condition)
            error = handle.lost()
            assert isinstance(error, LockLostError)
            assert "Lost the migration lock" in str(error)
            assert handle.condition("") is None  # known lost: check() tells
    finally:
        engine.dispose()
        admin.dispose()


def test_lock_lost_between_revisions_stops_before_the_next(
    make_app: AppFactory, make_database: t.Callable[[str], str], tmp_path: Path
) -> None:
    """PostgreSQL, one transaction per revision: r1 kills the lock's
    connection itself. r1 commits; r2's first statement (its limits, with the
    lock's check) finds the lock gone: r2 never runs, and the ledger says
    why."""
    url = make_database("postgresql")
    app = make_app(url)
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    kill = (
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()"
        " AND l.database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database())"
    )
    write_revision(
        versions,
        "r1",
        None,
        f'op.create_table("t1", sa.Column("n", sa.Integer))\nop.execute("{kill}")',
        'op.drop_table("t1")',
    )
    _history(versions, 2, 3)
    result = invoke(app, "upgrade")
    assert result.exit_code != 0
    assert "Stopped before the upgrade of r2. Lost the migration lock" in (
        result.stderr
    )
    rows = [row[:3] for row in _ledger(url)]
    assert rows == [("r1", "upgrade", "applied"), ("r2", "upgrade", "interrupted")]
