"""env.py files that expect a current event loop, and async env.py files given
a synchronous engine."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from flask_migrate_ext import ExitCode
from flask_migrate_ext import Migrate
from flask_migrate_ext import SQLAlchemyDatabases
from helpers import invoke
from helpers import version_rows
from helpers import write_revision

#: The shape of Flask-Migrate 4.x's aioflask env.py: it asks the thread for
#: its event loop instead of running one of its own.
LOOP_ENV = """
import asyncio

from alembic import context
from flask import current_app

db = current_app.extensions["migrate"].db


def do_run_migrations(connection):
    context.configure(connection=connection, target_metadata=db.metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations():
    async with db.engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await db.engine.dispose()


asyncio.get_event_loop().run_until_complete(run_async_migrations())
"""


def make_app(tmp_path: Path, url: str) -> Flask:
    app = Flask("loops", root_path=os.fspath(tmp_path))
    Migrate(app, SQLAlchemyDatabases(url, sa.MetaData()))
    assert invoke(app, "init").exit_code == 0
    (tmp_path / "migrations" / "env.py").write_text(LOOP_ENV)
    versions = tmp_path / "migrations" / "versions"
    for revision, down in (("r1", None), ("r2", "r1")):
        write_revision(
            versions,
            revision,
            down,
            f'op.create_table("t_{revision}", sa.Column("n", sa.Integer))',
            f'op.drop_table("t_{revision}")',
        )
    return app


def test_env_py_asking_for_the_current_loop_runs_after_asyncio_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.db"
    app = make_app(tmp_path, f"sqlite+aiosqlite:///{path}")
    asyncio.run(asyncio.sleep(0))  # leaves the thread without a current loop
    result = invoke(app, "upgrade", "r1")
    assert result.exit_code == 0, result.output
    asyncio.run(asyncio.sleep(0))
    result = invoke(app, "upgrade")
    assert result.exit_code == 0, result.output
    assert version_rows(f"sqlite:///{path}") == ["r2"]


def test_async_env_py_with_a_sync_engine_says_what_to_change(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    app = make_app(tmp_path, f"sqlite:///{path}")
    result = invoke(app, "upgrade")
    assert result.exit_code == ExitCode.ERROR
    assert result.stderr.startswith(
        "Error: env.py expects an async engine, but the database has a synchronous"
    )
    assert len(result.stderr.splitlines()) == 1
    assert version_rows(f"sqlite:///{path}") == []
