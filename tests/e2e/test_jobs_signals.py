"""Ctrl-C reaching only the parent of ``flask db upgrade --jobs 2`` stops the
workers' statements too: they record their run as interrupted, no new
target starts, and the command exits 130."""

from __future__ import annotations

import signal
import time
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask_migrate_ext import ExitCode
from helpers import flask_process
from helpers import flask_with_url as flask
from helpers import LOCK_APP as APP
from helpers import write_revision

SCHEMAS = ["tenant_a", "tenant_b", "tenant_c", "tenant_d"]


def sleeping(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE query LIKE 'SELECT pg_sleep(30)%%'"
        )
        return int(conn.exec_driver_sql(query).scalar_one())


@pytest.mark.server
def test_sigint_to_the_parent_stops_every_worker(
    tmp_path: Path, make_database: t.Any
) -> None:
    url = make_database("postgresql")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in SCHEMAS:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    (tmp_path / "app.py").write_text(APP)
    assert flask(tmp_path, url, "db", "init").returncode == 0
    versions = tmp_path / "migrations" / "versions"
    write_revision(
        versions,
        "r1",
        None,
        'op.create_table("t1", sa.Column("n", sa.Integer))',
        'op.drop_table("t1")',
    )
    write_revision(versions, "r2", "r1", 'op.execute("SELECT pg_sleep(30)")', "pass")
    schema_args = [arg for schema in SCHEMAS for arg in ("--schema", schema)]
    process = flask_process(tmp_path, url, "db", "upgrade", "-j", "2", *schema_args)
    try:
        deadline = time.monotonic() + 30
        while sleeping(engine) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sleeping(engine) == 2
        process.send_signal(signal.SIGINT)  # the parent only, not its group
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == ExitCode.INTERRUPTED, stderr
    lines = stderr.splitlines()
    for schema in SCHEMAS[:2]:
        assert f"schema {schema}: INTERRUPTED (now at r1)" in lines
    for schema in SCHEMAS[2:]:
        assert f"schema {schema}: skipped (not started)" in lines
    assert lines[-2].startswith("4 targets: 2 interrupted, 2 skipped (")
    assert lines[-1] == "Interrupted."
    assert sleeping(engine) == 0  # the server's statements were cancelled
    with engine.connect() as conn:
        status = conn.exec_driver_sql(
            "SELECT status FROM tenant_a.flask_migrate_ext_log WHERE revision = 'r2'"
        ).scalar_one()
    assert status == "interrupted"
    engine.dispose()
