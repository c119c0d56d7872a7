"""Through a real PgBouncer in transaction pooling mode: the pooler is found
out, the lock holds, session state stays ours, and the commands work."""

from __future__ import annotations

import os
import subprocess
import time
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask_migrate_ext.apply.lock import LockTarget
from flask_migrate_ext.apply.lock import migration_lock
from flask_migrate_ext.databases.poolers import behind_transaction_pooler
from flask_migrate_ext.settings import LOCK_TABLE
from helpers import AppFactory
from helpers import create_database
from helpers import drop_database
from helpers import flask_process
from helpers import flask_with_url
from helpers import invoke
from helpers import LOCK_APP
from helpers import ok
from helpers import write_revision
from servers import PgBouncer

pytestmark = pytest.mark.server

DETECTED = "is behind a pooler or proxy"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[str]:
    """A fresh PostgreSQL database for this module (its direct URL)."""
    url = create_database("postgresql", tmp_path_factory.mktemp("pgbouncer"))
    yield url
    drop_database("postgresql", url)


@pytest.fixture
def pooled(pgbouncer_server: PgBouncer, database: str) -> t.Iterator[str]:
    """``database`` through the pooler; emptied after the test."""
    yield pgbouncer_server.url(sa.make_url(database).database)
    engine = sa.create_engine(database)
    try:
        with engine.begin() as conn:
            for name in sa.inspect(conn).get_table_names():
                conn.exec_driver_sql(f'DROP TABLE "{name}" CASCADE')
    finally:
        engine.dispose()


def advisory_locks(direct: str) -> int:
    """Advisory locks held in the database, by anyone."""
    engine = sa.create_engine(direct)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND database = (SELECT oid FROM pg_database"
                        "   WHERE datname = current_database())"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def lock_rows(direct: str) -> int:
    engine = sa.create_engine(direct)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(LOCK_TABLE):
                return 0
            count = conn.exec_driver_sql(f"SELECT count(*) FROM {LOCK_TABLE}")
            return int(count.scalar_one())
    finally:
        engine.dispose()


def test_pooler_is_found_and_a_direct_connection_is_not(
    pooled: str, database: str
) -> None:
    direct = sa.create_engine(database)
    try:
        assert not behind_transaction_pooler(direct)
        with direct.connect() as conn:
            assert conn.connection.dbapi_connection.prepare_threshold == 5
    finally:
        direct.dispose()


def test_pooler_is_found_through_a_unix_socket(
    pgbouncer_server: PgBouncer, database: str
) -> None:
    """No ports to compare: the server sessions shared between two client
    connections tell."""
    name = sa.make_url(database).database
    assert name is not None
    through = sa.create_engine(pgbouncer_server.unix_url(name))
    direct = sa.create_engine(
        sa.make_url(database)
        .set(host=None, port=None)
        .update_query_dict({"host": "/var/run/postgresql"})
    )
    try:
        assert behind_transaction_pooler(through)
        if os.path.exists("/var/run/postgresql/.s.PGSQL.5432"):
            assert not behind_transaction_pooler(direct)
    finally:
        through.dispose()
        direct.dispose()


def same_statement_many_times(engines: list[sa.Engine]) -> None:
    """What psycopg prepares (five runs of one statement on a connection),
    from several clients sharing the pool's server sessions."""
    for n in range(12):
        for engine in engines:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1 + :n"), {"n": n})
                conn.commit()


def test_prepared_statements_are_off_behind_the_pooler(pooled: str) -> None:
    unprepared = [sa.create_engine(pooled) for _ in range(3)]
    try:
        # The failure the detection avoids, shown first.
        with pytest.raises(sa.exc.DBAPIError, match="prepared statement"):
            same_statement_many_times(unprepared)
    finally:
        for engine in unprepared:
            engine.dispose()
    engines = [sa.create_engine(pooled) for _ in range(3)]
    try:
        assert all(behind_transaction_pooler(engine) for engine in engines)
        same_statement_many_times(engines)
    finally:
        for engine in engines:
            engine.dispose()


def test_commands_work_through_the_pooler(
    make_app: AppFactory, pooled: str, database: str, tmp_path: Path
) -> None:
    app = make_app(pooled)
    outputs = [ok(invoke(app, "init")).output]
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        """
        op.create_table(
            "employee",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(50)),
        )
        """,
        'op.drop_table("employee")',
    )
    write_revision(
        versions,
        "r2",
        "r1",
        # Six times the same statement: psycopg would prepare it.
        """
        for n in range(6):
            op.get_bind().execute(
                sa.text("INSERT INTO employee (name) VALUES (:n)"), {"n": str(n)}
            )
        """,
        'op.execute("DELETE FROM employee")',
    )
    for args in [
        ("upgrade",),
        ("current",),
        ("check",),
        ("status",),
        ("downgrade", "r1", "--yes"),
        ("current",),
        ("upgrade",),
    ]:
        result = invoke(app, *args)
        outputs.append(ok(result).output)
    assert "r2 (head)" in outputs[2]
    assert "r1" in outputs[6] and "r2" not in outputs[6]
    assert "".join(outputs).count(DETECTED) == 1
    assert lock_rows(database) == 0
    assert advisory_locks(database) == 0
    # The ledger's rows went through the pooler too, without leaving
    # synchronous_commit off in the pool's server sessions.
    through = sa.create_engine(pooled, poolclass=sa.pool.NullPool)
    try:
        for _ in range(4):
            with through.connect() as conn:
                setting = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
                assert setting == "on"
    finally:
        through.dispose()


def test_lock_is_exclusive_through_the_pooler(pooled: str, database: str) -> None:
    engine = sa.create_engine(pooled)
    other = sa.create_engine(pooled)
    try:
        with migration_lock([LockTarget("", engine)], timeout=5):
            assert lock_rows(database) == 1
            start = time.monotonic()
            with pytest.raises(Exception, match="Gave up after 1 s"):
                with migration_lock([LockTarget("", other)], timeout=1):
                    pass  # pragma: no cover - must not get the lock
            assert time.monotonic() - start >= 1
        assert lock_rows(database) == 0
        assert advisory_locks(database) == 0
    finally:
        engine.dispose()
        other.dispose()


def test_session_mode_can_be_forced(
    make_app: AppFactory, pooled: str, tmp_path: Path
) -> None:
    app = make_app(pooled)
    app.config["MIGRATE_LOCK"] = "session"
    ok(invoke(app, "init"))
    # (An upgrade would take a session lock, and leave it on a pooled
    # server connection: what the detection is for.)
    for command in ("current", "heads"):
        assert DETECTED not in ok(invoke(app, command)).output


#: Rounds of four concurrent upgrades.
ROUNDS = 20


def test_concurrent_upgrades_through_the_pooler(
    pooled: str, database: str, tmp_path: Path
) -> None:
    """Four ``flask db upgrade`` processes at once, again and again: each
    round applies the data migration once, every process succeeds, and no
    lock is left behind."""
    (tmp_path / "app.py").write_text(LOCK_APP)
    done = flask_with_url(tmp_path, pooled, "db", "init")
    assert done.returncode == 0, done.stderr
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        'op.create_table("counter", sa.Column("n", sa.Integer))',
        'op.drop_table("counter")',
    )
    write_revision(
        versions, "r2", "r1", 'op.execute("INSERT INTO counter (n) VALUES (1)")', "pass"
    )
    direct = sa.create_engine(database)
    try:
        for round_ in range(ROUNDS):
            processes = [
                flask_process(tmp_path, pooled, "db", "upgrade") for _ in range(4)
            ]
            outputs = []
            for process in processes:
                try:
                    outputs.append(process.communicate(timeout=60))
                except subprocess.TimeoutExpired:
                    process.kill()
                    outputs.append(process.communicate())
            codes = [process.returncode for process in processes]
            assert codes == [0, 0, 0, 0], (round_, outputs)
            stderr = "".join(err for _, err in outputs)
            assert stderr.count("Running upgrade r1 -> r2") == 1, (round_, stderr)
            with direct.begin() as conn:
                rows = conn.exec_driver_sql("SELECT count(*) FROM counter")
                assert rows.scalar() == 1, round_
                version = conn.exec_driver_sql(
                    "SELECT version_num FROM alembic_version"
                )
                assert version.scalars().all() == ["r2"], round_
                # Back to the start: no revision applied.
                conn.exec_driver_sql("DROP TABLE counter")
                conn.exec_driver_sql("DROP TABLE alembic_version")
                conn.exec_driver_sql("DROP TABLE flask_migrate_ext_log")
            assert lock_rows(database) == 0, round_
            assert advisory_locks(database) == 0, round_
    finally:
        direct.dispose()
