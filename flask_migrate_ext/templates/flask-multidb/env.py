"""Alembic environment for a Flask app with several databases (binds).

Written by ``flask db init --multidb`` (flask_migrate_ext). The default
database is named ``""``; every key of ``SQLALCHEMY_BINDS`` is migrated too,
each with its own version table, in one run.
"""

from __future__ import annotations

import logging
import sys
from logging.config import fileConfig
from typing import Any

from alembic import context
from flask import current_app

config = context.config

# Log through the settings in alembic.ini, keeping the app's own loggers.
if config.config_file_name is not None and config.attributes.get(
    "configure_logger", True
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate_state = current_app.extensions["migrate"]
db = migrate_state.db


def database_names() -> list[str]:
    binds = current_app.config.get("SQLALCHEMY_BINDS")
    if binds is not None:
        return ["", *binds]
    return ["", *getattr(db, "bind_names", list)()]


def get_engine(name: str) -> Any:
    bind = name or None
    engines = getattr(db, "engines", None)
    if engines is not None:
        return engines[bind]
    return db.get_engine(bind=bind)


def get_metadata(name: str) -> Any:
    bind = name or None
    metadatas = getattr(db, "metadatas", None)
    if metadatas is not None:
        if bind in metadatas:
            return metadatas[bind]
        import sqlalchemy as sa

        return sa.MetaData()  # a database with no models yet
    return db.metadata


def configure_args() -> dict[str, Any]:
    args = dict(migrate_state.configure_args)
    if args.get("process_revision_directives") is None:
        # Running under Flask-Migrate, which leaves this rule to env.py.
        count = len(database_names())

        def skip_empty(context: Any, revision: Any, directives: list[Any]) -> None:
            if not getattr(config.cmd_opts, "autogenerate", False) or not directives:
                return
            ops_list = directives[0].upgrade_ops_list
            if len(ops_list) >= count and all(ops.is_empty() for ops in ops_list):
                directives[:] = []
                logger.info("No changes in schema detected.")

        args["process_revision_directives"] = skip_empty
    return args


def run_migrations_offline() -> None:
    """Write each database's migration SQL to the output, one after another."""
    args = configure_args()
    args.pop("process_revision_directives")
    for name in database_names():
        logger.info("Migrating database %s", name or "<default>")
        context.configure(
            url=get_engine(name).url,
            target_metadata=get_metadata(name),
            literal_binds=True,
            upgrade_token=f"{name}_upgrades",
            downgrade_token=f"{name}_downgrades",
            **args,
        )
        output = config.output_buffer or sys.stdout
        output.write(f"-- Database: {name or '<default>'}\n\n")
        with context.begin_transaction():
            context.run_migrations(engine_name=name)


def run_migrations_online() -> None:
    """Run the migrations on every database; commit all or none."""
    args = configure_args()
    connections: dict[str, Any] = {}
    transactions: dict[str, Any] = {}
    try:
        for name in database_names():
            connections[name] = get_engine(name).connect()
            transactions[name] = connections[name].begin()
        for name, connection in connections.items():
            logger.info("Migrating database %s", name or "<default>")
            context.configure(
                connection=connection,
                target_metadata=get_metadata(name),
                upgrade_token=f"{name}_upgrades",
                downgrade_token=f"{name}_downgrades",
                **args,
            )
            context.run_migrations(engine_name=name)
        for transaction in transactions.values():
            transaction.commit()
    except BaseException:
        for transaction in transactions.values():
            transaction.rollback()
        raise
    finally:
        for connection in connections.values():
            connection.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
