"""Alembic environment for a Flask app with one database and an async engine.

Written by ``flask db init -t aioflask`` (flask_migrate_ext). The engine is a
``sqlalchemy.ext.asyncio.AsyncEngine`` (Alchemical's, or one given to
``SQLAlchemyDatabases`` / ``SQLAlchemyLiteDatabases``); Alembic runs on its
connection through ``run_sync``. Options given to ``Migrate(...)`` arrive as
``configure_args``.
"""

from __future__ import annotations

import asyncio
import logging
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.util import CommandError
from flask import current_app

config = context.config

# Log through the settings in alembic.ini, keeping the app's own loggers.
if config.config_file_name is not None and config.attributes.get(
    "configure_logger", True
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate_state = current_app.extensions["migrate"]


def get_engine() -> Any:
    db = migrate_state.db
    try:
        engine = db.engine
    except AttributeError:  # Alchemical and other Flask-SQLAlchemy look-alikes
        engine = db.get_engine()
    if not hasattr(engine, "sync_engine"):
        raise CommandError(
            "The database has a synchronous engine: this folder uses the"
            " 'aioflask' template, which needs an async engine (a URL such as"
            " 'sqlite+aiosqlite://' or 'postgresql+psycopg_async://'); use the"
            " 'flask' template for synchronous engines."
        )
    return engine


def get_metadata() -> Any:
    db = migrate_state.db
    metadatas = getattr(db, "metadatas", None)
    if metadatas is not None:
        return metadatas[None]
    return db.metadata


def configure_args() -> dict[str, Any]:
    args = dict(migrate_state.configure_args)
    if args.get("process_revision_directives") is None:
        # Running under Flask-Migrate, which leaves this rule to env.py.
        def skip_empty(context: Any, revision: Any, directives: list[Any]) -> None:
            if getattr(config.cmd_opts, "autogenerate", False):
                if directives and directives[0].upgrade_ops.is_empty():
                    directives[:] = []
                    logger.info("No changes in schema detected.")

        args["process_revision_directives"] = skip_empty
    if args.get("include_name") is None:
        # flask_migrate_ext's own tables (its ledger) are not the app's.
        def include_name(name: Any, type_: str, parent_names: Any) -> bool:
            return not (type_ == "table" and str(name).startswith("flask_migrate_ext_"))

        args["include_name"] = include_name
    return args


def run_migrations_offline() -> None:
    """Write the migration SQL to the output instead of running it."""
    args = configure_args()
    args.pop("process_revision_directives")
    context.configure(
        url=get_engine().url,
        target_metadata=get_metadata(),
        literal_binds=True,
        **args,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations(connection: Any) -> None:
    """Run the migrations on a synchronous view of the async connection."""
    context.configure(
        connection=connection,
        target_metadata=get_metadata(),
        **configure_args(),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    """Run the migrations on a connection from the app's async engine."""
    engine = get_engine()
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
    finally:
        # Pooled connections belong to this event loop, which ends with the
        # command: close them now rather than in another loop later.
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
